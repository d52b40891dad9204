"""``report.html``: one self-contained page (inline CSS and SVG, no network) for people, not parsers.

It shows the run's headline figures, category counts per ICS page (stacked bars), a 2-D map of
the articles coloured by category with clusters outlined, a cluster table (terms, size,
representative headline, category mix), the uncertain articles, and the counts and
reconciliation. It carries no date or timing (run.json has them), so the same input and config
give the same bytes whatever the job count or the day. Every text from the data goes through
:func:`html.escape`. Large runs stay small: the map draws a deterministic sample of at most
``MAX_POINTS`` articles and tables are capped.
"""
from __future__ import annotations

import heapq
import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

# The taxonomy's order (configs/categories.toml / docs taxonomy); unknown categories go after it.
CATEGORY_ORDER = ("finance", "performance", "leadership", "workforce", "governance", "quality",
                  "services", "digital", "policy")
# Okabe-Ito (colour-blind safe) plus Tol's indigo and a neutral grey for the ninth.
PALETTE = {
    "finance": "#0072B2", "performance": "#E69F00", "leadership": "#CC79A7",
    "workforce": "#009E73", "governance": "#56B4E9", "quality": "#D55E00",
    "services": "#F0E442", "digital": "#332288", "policy": "#8C8C8C",
}
EXTRA_COLOURS = ("#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#661100")
NONE_COLOUR = "#D0D0D0"
MAX_POINTS = 5000
MAX_MAP_LABELS = 12
MAX_LABEL_CHARS = 42
MAX_SYSTEMS = 60
MAX_CLUSTERS = 100
MAX_UNCERTAIN = 200
MAX_REJECT_REASONS = 30
MAX_INPUTS = 50


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(n: float | int | None, digits: int = 0) -> str:
    if n is None:
        return "–"
    if isinstance(n, float) and digits:
        return f"{n:,.{digits}f}"
    return f"{int(round(n)):,}"


def _categories(articles: Sequence[Any]) -> list[str]:
    """Categories to show: the taxonomy's order, then any other label found, sorted."""
    found = {a.category for a in articles if a.category}
    extra = sorted(found - set(CATEGORY_ORDER))
    return list(CATEGORY_ORDER) + extra


def _colours(categories: Sequence[str]) -> dict[str, str]:
    colours = {}
    extra = iter(EXTRA_COLOURS * (1 + len(categories) // len(EXTRA_COLOURS)))
    for cat in categories:
        colours[cat] = PALETTE.get(cat) or next(extra)
    return colours


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


# ---- small SVG pieces ------------------------------------------------------------------------------


def _stack_bar(parts: Sequence[tuple[str, int]], colours: dict[str, str], width: float,
               height: float, x: float = 0, y: float = 0, total: int | None = None) -> str:
    """Horizontal stacked bar of (category, count); each segment has a hover title."""
    total = total if total is not None else sum(n for _, n in parts)
    if total <= 0:
        return ""
    out, cx = [], x
    for cat, n in parts:
        if n <= 0:
            continue
        w = width * n / total
        out.append(f'<rect x="{cx:.2f}" y="{y:.2f}" width="{max(w, 0.5):.2f}" height="{height:.2f}" '
                   f'fill="{colours.get(cat, NONE_COLOUR)}"><title>{_e(cat)}: {n}</title></rect>')
        cx += w
    return "".join(out)


def _mini_mix(mix: Counter, categories: Sequence[str], colours: dict[str, str]) -> str:
    parts = [(c, mix.get(c, 0)) for c in categories] + [("(none)", mix.get(None, 0))]
    bar = _stack_bar(parts, colours, 160, 12)
    label = ", ".join(f"{c} {n}" for c, n in parts if n)
    return (f'<svg class="mix" width="160" height="12" viewBox="0 0 160 12" role="img" '
            f'aria-label="{_e(label)}">{bar}</svg>')


def _legend(categories: Sequence[str], colours: dict[str, str], counts: Counter) -> str:
    items = [f'<span class="key"><i style="background:{colours[c]}"></i>{_e(c)} '
             f'<b>{counts.get(c, 0)}</b></span>' for c in categories]
    if counts.get(None):
        items.append(f'<span class="key"><i style="background:{NONE_COLOUR}"></i>untagged '
                     f'<b>{counts[None]}</b></span>')
    return f'<div class="legend">{"".join(items)}</div>'


# ---- sections ----------------------------------------------------------------------------------------


def _systems_chart(articles: Sequence[Any], categories: Sequence[str], colours: dict[str, str]) -> str:
    per_system: dict[str, Counter] = defaultdict(Counter)
    for a in articles:
        for system in (a.systems or ["(no ICS page)"]):
            per_system[system][a.category] += 1
    if not per_system:
        return '<p class="muted">No articles.</p>'
    ranked = sorted(per_system.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    hidden = len(ranked) - MAX_SYSTEMS
    ranked = ranked[:MAX_SYSTEMS]
    biggest = max(sum(c.values()) for _, c in ranked)
    label_w, bar_w, row_h, bar_h = 300, 720, 30, 20
    width, height = label_w + bar_w + 60, row_h * len(ranked) + 28
    rows = []
    # light vertical grid at "nice" steps so bar lengths can be read
    step = _nice_step(biggest)
    for tick in range(0, biggest + 1, step):
        gx = label_w + bar_w * tick / biggest
        rows.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="0" y2="{height - 20}" class="grid"/>'
                    f'<text x="{gx:.1f}" y="{height - 6}" class="tick" text-anchor="middle">{tick}</text>')
    for i, (system, mix) in enumerate(ranked):
        y = i * row_h + 4
        total = sum(mix.values())
        parts = [(c, mix.get(c, 0)) for c in categories] + [("(untagged)", mix.get(None, 0))]
        short = system if len(system) <= MAX_LABEL_CHARS else system[:MAX_LABEL_CHARS - 1].rstrip() + "…"
        rows.append(f'<text x="{label_w - 10}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" class="lab">'
                    f'{_e(short)}<title>{_e(system)}</title></text>')
        rows.append(_stack_bar(parts, colours, bar_w * total / biggest, bar_h, label_w, y, total))
        rows.append(f'<text x="{label_w + bar_w * total / biggest + 6:.1f}" y="{y + bar_h * 0.72:.1f}" '
                    f'class="val">{total}</text>')
    note = f'<p class="muted">{hidden} smaller ICS pages not shown.</p>' if hidden > 0 else ""
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="Articles per ICS page by category">{"".join(rows)}</svg>{note}')


def _nice_step(biggest: int, max_ticks: int = 8) -> int:
    """Smallest of 1, 2, 5, 10, 20, 50, ... giving at most ``max_ticks`` grid steps."""
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if biggest / step <= max_ticks:
                return step
        magnitude *= 10


def _sample(n: int, limit: int = MAX_POINTS, seed: int = 0) -> list[int]:
    """Deterministic subsample of indices (all of them when ``n <= limit``)."""
    if n <= limit:
        return list(range(n))
    import numpy as np

    return sorted(np.random.default_rng(seed).choice(n, size=limit, replace=False).tolist())


def _ellipse(xs: list[float], ys: list[float], cid: Any) -> str:
    """Dashed 1.5-sigma covariance ellipse around a cluster's core (a circle for one or two points)."""
    n = len(xs)
    cx = sum(xs) / n
    cy = sum(ys) / n
    if n < 3:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="12" class="hull"><title>cluster {_e(cid)}</title></circle>'
    sxx = sum([(x - cx) ** 2 for x in xs]) / n
    syy = sum([(y - cy) ** 2 for y in ys]) / n
    sxy = sum([(x - cx) * (y - cy) for x, y in zip(xs, ys)]) / n
    half_trace, det = (sxx + syy) / 2, sxx * syy - sxy * sxy
    root = math.sqrt(max(half_trace ** 2 - det, 0.0))
    l1, l2 = half_trace + root, max(half_trace - root, 0.0)
    angle = math.degrees(0.5 * math.atan2(2 * sxy, sxx - syy))
    rx, ry = max(1.5 * math.sqrt(l1), 10.0), max(1.5 * math.sqrt(l2), 10.0)
    return (f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{rx:.1f}" ry="{ry:.1f}" '
            f'transform="rotate({angle:.1f} {cx:.1f} {cy:.1f})" class="hull">'
            f'<title>cluster {_e(cid)}: {n} articles</title></ellipse>')


def _limits(values: list[float]) -> tuple[float, float]:
    """Axis range from the 1st to the 99th percentile plus a 4% margin (all values if few)."""
    ordered = sorted(values)
    n = len(ordered)
    lo, hi = (ordered[0], ordered[-1]) if n < 200 else (ordered[n // 100], ordered[-1 - n // 100])
    margin = (hi - lo) * 0.04
    return lo - margin, hi + margin


def _place_label(text: str, x: float, y: float, placed: list[tuple[str, float, float, float]],
                 width: float, height: float) -> tuple[str, float, float, float]:
    """Put a label at (x, y), moved down/up in steps until it overlaps no earlier label."""
    w = 7.2 * len(text) + 14
    for step in range(0, 40):
        dy = (step + 1) // 2 * 20 * (1 if step % 2 else -1)
        ly = min(max(y + dy, 16), height - 8)
        lx = min(max(x, w / 2 + 4), width - w / 2 - 4)
        if all(abs(lx - px_) * 2 >= (w + pw) or abs(ly - py_) >= 20 for _, px_, py_, pw in placed):
            return text, lx, ly, w
    return text, x, y, w


def _clip(values: Any, lo: float, hi: float) -> Any:
    """``min(max(v, lo), hi)`` per element, with Python's tie and NaN rules (not ``np.clip``'s)."""
    import numpy as np

    values = np.where(lo > values, lo, values)  # max(v, lo) keeps v unless lo > v
    return np.where(hi < values, hi, values)  # min(v, hi) keeps v unless hi < v


def _map(articles: Sequence[Any], coords: Any, clusters: Sequence[Any], categories: Sequence[str],
         colours: dict[str, str], seed: int) -> str:
    n = len(articles)
    if coords is None or n == 0 or len(coords) != n:
        return '<p class="muted">No 2-D coordinates from the cluster stage.</p>'
    import numpy as np

    points = np.asarray(coords, dtype=float)
    keep = _sample(n, MAX_POINTS, seed)
    W, H, pad = 1100, 620, 30
    # robust axes: the 1st..99th percentiles fill the plot, the few beyond sit on its edge, so a
    # handful of outlying articles cannot squeeze everything else into a corner
    x0, x1 = _limits(points[:, 0].tolist())
    y0, y1 = _limits(points[:, 1].tolist())
    sx = (W - 2 * pad) / ((x1 - x0) or 1.0)
    sy = (H - 2 * pad) / ((y1 - y0) or 1.0)
    # pixel positions of every article, vectorised but with the arithmetic of the scalar
    # pad + (min(max(x, x0), x1) - x0) * sx (so the same floats, to the last bit)
    xs = (pad + (_clip(points[:, 0], x0, x1) - x0) * sx).tolist()
    ys = (H - pad - (_clip(points[:, 1], y0, y1) - y0) * sy).tolist()

    shapes, placed = [], []
    by_cluster: dict[int, list[int]] = defaultdict(list)
    for i, a in enumerate(articles):
        if a.cluster is not None and a.cluster >= 0:
            by_cluster[a.cluster].append(i)
    terms = {_get(c, "id"): list(_get(c, "terms", []) or []) for c in clusters}
    for rank, cid in enumerate(sorted(by_cluster, key=lambda c: (-len(by_cluster[c]), c))):
        mx, my = [xs[i] for i in by_cluster[cid]], [ys[i] for i in by_cluster[cid]]
        shapes.append(_ellipse(mx, my, cid))
        cx = sum(mx) / len(mx)
        cy = sum(my) / len(my)
        words = ", ".join(terms.get(cid, [])[:2])
        # the largest clusters get their terms; the rest just their id (the table has the terms)
        text = f"{cid}" + (f" · {words}" if words and rank < MAX_MAP_LABELS else "")
        placed.append(_place_label(text, cx, cy, placed, W, H))
    labels = []
    for text, lx, ly, w in placed:
        labels.append(f'<g class="clab"><rect x="{lx - w / 2:.1f}" y="{ly - 13:.1f}" width="{w:.1f}" '
                      f'height="18" rx="9"/><text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle">'
                      f'{_e(text)}</text></g>')
    dots = []
    r = 4.5 if len(keep) <= 500 else 3 if len(keep) <= 2000 else 2
    for i in keep:
        a = articles[i]
        x, y = xs[i], ys[i]
        tip = f"{a.headline} — {a.category or 'untagged'}, cluster {a.cluster}"
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colours.get(a.category, NONE_COLOUR)}">'
                    f'<title>{_e(tip)}</title></circle>')
    note = (f'<p class="muted">Showing a fixed random sample of {len(keep):,} of {n:,} articles; '
            f'cluster outlines use all of them.</p>' if len(keep) < n else "")
    return (f'<svg class="map" viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'aria-label="2-D map of articles by category">'
            f'<defs><clipPath id="plotclip"><rect x="0" y="0" width="{W}" height="{H}"/></clipPath></defs>'
            f'<rect x="0" y="0" width="{W}" height="{H}" class="plot"/>'
            f'<g clip-path="url(#plotclip)">{"".join(shapes)}</g><g class="dots">{"".join(dots)}</g>{"".join(labels)}</svg>{note}')


def _cluster_table(articles: Sequence[Any], clusters: Sequence[Any], categories: Sequence[str],
                   colours: dict[str, str]) -> str:
    if not clusters:
        return '<p class="muted">No clusters.</p>'
    mixes: dict[Any, Counter] = defaultdict(Counter)
    for a in articles:
        mixes[a.cluster][a.category] += 1
    ordered = sorted(clusters, key=lambda c: (-int(_get(c, "size", 0) or 0), _get(c, "id")))
    rows = []
    for c in ordered[:MAX_CLUSTERS]:
        cid = _get(c, "id")
        chips = "".join(f'<span class="chip">{_e(t)}</span>' for t in (_get(c, "terms") or [])[:8])
        mix = mixes.get(cid, Counter())
        top = mix.most_common(1)
        top_txt = f"{_e(top[0][0] or 'untagged')} {100 * top[0][1] / max(sum(mix.values()), 1):.0f}%" if top else ""
        rows.append(f'<tr><td class="num">{_e(cid)}</td><td class="num">{_e(_get(c, "size"))}</td>'
                    f'<td>{chips}</td><td class="hl">{_e(_get(c, "representative_headline"))}</td>'
                    f'<td>{_mini_mix(mix, categories, colours)}<div class="small">{top_txt}</div></td></tr>')
    outliers = sum(1 for a in articles if a.cluster == -1)
    note = f'<p class="muted">{outliers} articles were left outside any cluster (cluster −1).</p>' if outliers else ""
    more = (f'<p class="muted">{len(ordered) - MAX_CLUSTERS} smaller clusters not shown.</p>'
            if len(ordered) > MAX_CLUSTERS else "")
    return ('<table><thead><tr><th>cluster</th><th>size</th><th>top terms</th>'
            '<th>representative headline</th><th>category mix</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{note}{more}')


def _runner_up(scores: dict[str, float] | None, best: str | None) -> tuple[str | None, float | None]:
    if not scores:
        return None, None
    others = sorted(((v, k) for k, v in scores.items() if k != best), key=lambda t: (-t[0], t[1]))
    return (others[0][1], others[0][0]) if others else (None, None)


def _uncertain_table(articles: Sequence[Any], colours: dict[str, str], threshold: float | None) -> str:
    unsure = [a for a in articles if a.uncertain]
    if not unsure:
        return '<p class="muted">No article fell below the confidence threshold.</p>'
    # the lowest MAX_UNCERTAIN in order: nsmallest is sorted(...)[:n] (same ties) without sorting all
    shown = heapq.nsmallest(MAX_UNCERTAIN, unsure,
                            key=lambda a: (a.confidence if a.confidence is not None else 0.0, a.id))
    rows = []
    for a in shown:
        second, second_score = _runner_up(a.scores, a.category)
        conf = a.confidence or 0.0
        rows.append(
            f'<tr><td class="hl">{_e(a.headline)}</td>'
            f'<td><i class="dot" style="background:{colours.get(a.category, NONE_COLOUR)}"></i>{_e(a.category)}</td>'
            f'<td class="num"><span class="conf"><span style="width:{100 * conf:.0f}%"></span></span> {conf:.2f}</td>'
            f'<td>{_e(second)} <span class="muted">{"" if second_score is None else f"{second_score:.2f}"}</span></td></tr>')
    more = (f'<p class="muted">{len(unsure) - MAX_UNCERTAIN} more uncertain articles are in articles.jsonl '
            f'(<code>uncertain: true</code>).</p>' if len(unsure) > MAX_UNCERTAIN else "")
    intro = (f'<p class="muted">Best category kept, but its probability is below {threshold:.2f}; '
             'lowest confidence first.</p>' if threshold is not None else "")
    return (f'{intro}<table><thead><tr><th>headline</th><th>best category</th><th>confidence</th>'
            f'<th>runner-up</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{more}')


def _previous_section(comparison: Any) -> str:
    """"Since the previous run": articles new and gone (overall and per ICS page), topics by
    status; matched topics kept the previous run's ids (``run --previous``)."""
    c = comparison
    counts = c.topic_counts()
    lead = (f'<p class="lead">Compared with the run in <code>{_e(c.old.get("path"))}</code> '
            f'(started {_e(c.old.get("started") or "?")}, {_fmt(c.old.get("articles"))} articles): '
            f'<b>{_fmt(len(c.new_ids))}</b> articles new, <b>{_fmt(len(c.gone_ids))}</b> gone, '
            f'{_fmt(c.kept)} in both ({_fmt(len(c.category_changed))} of them changed category). '
            f'Topics: ' + ", ".join(f"<b>{n}</b> {_e(s)}" for s, n in counts.items())
            + '. A topic that matches one of the previous run\'s keeps its id.</p>')
    rows = "".join(
        f'<tr><td>{_e(system)}</td><td class="num">{ch.articles[0]} → {ch.articles[1]}</td>'
        f'<td class="num">{len(ch.new)}</td><td class="num">{len(ch.gone)}</td></tr>'
        for system, ch in c.systems.items())
    systems = ('<table><thead><tr><th>ICS page</th><th>articles</th><th>new</th><th>gone</th></tr></thead>'
               f'<tbody>{rows}</tbody></table>')
    trows = []
    for t in c.topics:
        if t.status == "same":
            continue
        size = f'{"–" if t.old_size is None else t.old_size} → {"–" if t.new_size is None else t.new_size}'
        chips = "".join(f'<span class="chip">{_e(w)}</span>' for w in (t.new_terms or t.old_terms or [])[:8])
        trows.append(f'<tr><td>{_e(t.status)}</td><td class="num">{_e(t.new_id if t.new_id is not None else t.old_id)}</td>'
                     f'<td class="num">{size}</td><td>{chips}</td></tr>')
    topics = ('<table><thead><tr><th>status</th><th>topic</th><th>size</th><th>terms</th></tr></thead>'
              f'<tbody>{"".join(trows[:MAX_CLUSTERS])}</tbody></table>' if trows
              else '<p class="muted">Every topic is the same size as before.</p>')
    return f'{lead}<div class="grid2"><div>{systems}</div><div>{topics}</div></div>'


def _counts_section(result: Any) -> str:
    counts = dict(_get(result, "counts", {}) or {})
    rec = counts.get("reconciliation", {}) or {}
    timings = dict(_get(result, "timings", {}) or {})
    parts = []
    if rec:
        ok = rec.get("ok")
        badge = '<span class="ok">reconciled</span>' if ok else '<span class="bad">does not reconcile</span>'
        parts.append(
            f'<p class="recon">{badge} slots read <b>{_fmt(rec.get("slots"))}</b> = written '
            f'<b>{_fmt(rec.get("written"))}</b> + merged duplicates <b>{_fmt(rec.get("merged"))}</b> + '
            f'rejected <b>{_fmt(rec.get("rejected"))}</b>; articles out <b>{_fmt(rec.get("articles_out"))}</b></p>')
    rows = []
    for stage, values in counts.items():
        if stage in ("reconciliation",) or not isinstance(values, dict):
            continue
        cells = ", ".join(f"{_e(k)} <b>{_e(_short(v))}</b>" for k, v in values.items())
        rows.append(f'<tr><td>{_e(stage)}</td><td>{cells}</td></tr>')
    if rows:
        parts.append(f'<table class="counts"><thead><tr><th>stage</th><th>counts</th></tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
    if timings:  # not drawn: the page is the same bytes for the same input and config
        parts.append('<p class="muted">Time per stage and the run\'s date are in run.json '
                     '(<code>timings_seconds</code>, <code>started</code>, <code>finished</code>).</p>')
    return "".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"{len(value)} entries"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)


def _rejects_section(rejects: Sequence[Any]) -> str:
    if not rejects:
        return '<p class="muted">Nothing was rejected.</p>'
    by_reason: dict[str, list[Any]] = defaultdict(list)
    for r in rejects:
        by_reason[r.reason].append(r)
    ordered = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    rows = []
    for reason, items in ordered[:MAX_REJECT_REASONS]:
        ex = items[0]
        rows.append(f'<tr><td>{_e(reason)}</td><td class="num">{len(items)}</td>'
                    f'<td class="small">{_e(ex.file)}:{_e(ex.line)} {_e((ex.text or "")[:120])}</td></tr>')
    return ('<table><thead><tr><th>reason</th><th>count</th><th>first example</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table><p class="muted">All of them are in rejects.jsonl.</p>')


def _provenance(manifest: dict[str, Any]) -> str:
    rows = []
    for item in (manifest.get("inputs") or [])[:MAX_INPUTS]:
        rows.append(f'<tr><td>{_e(item.get("path"))}</td><td class="num">{_fmt(item.get("bytes"))}</td>'
                    f'<td><code>{_e(str(item.get("sha256", ""))[:16])}</code></td></tr>')
    extra = len(manifest.get("inputs") or []) - MAX_INPUTS
    model = manifest.get("model") or {}
    libs = manifest.get("libraries") or {}
    lib_txt = ", ".join(f"{_e(k)} {_e(v)}" for k, v in libs.items() if v)
    more = f'<p class="muted">and {extra} more inputs (see run.json).</p>' if extra > 0 else ""
    return (f'<table><thead><tr><th>input</th><th>bytes</th><th>sha256</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{more}'
            f'<p class="small">Model <code>{_e(model.get("path"))}</code> '
            f'(sha256 <code>{_e(str(model.get("sha256", ""))[:16])}</code>). Libraries: {lib_txt}. '
            f'Seeds: {_e(manifest.get("seeds"))}.</p>')


_CSS = """
:root{--ink:#1d2430;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#13233a;color:#fff;padding:28px 40px 22px}
header h1{margin:0;font-size:24px;font-weight:650;letter-spacing:.2px}
header p{margin:6px 0 0;color:#b8c4d6}
main{max-width:1240px;margin:0 auto;padding:24px 32px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:0 0 22px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{margin:0 0 4px;font-size:18px}
h2+p.lead{margin:0 0 14px;color:var(--muted)}
h3{font-size:14px;margin:18px 0 8px}
.kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:14px;margin:-44px 0 22px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;box-shadow:0 2px 6px rgba(16,24,40,.08)}
.kpi b{display:block;font-size:28px;font-weight:700;line-height:1.1}
.kpi span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.kpi.warn b{color:#b54708}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:6px 0 10px}
.key{display:inline-flex;align-items:center;gap:6px;font-size:13px}
.key i,.dot{display:inline-block;width:12px;height:12px;border-radius:3px;border:1px solid rgba(0,0,0,.15)}
.dot{border-radius:50%;margin-right:6px;vertical-align:-1px}
.key b{color:var(--muted);font-weight:500}
svg text{font-family:inherit}
.chart .lab{font-size:13px;fill:var(--ink)} .chart .val{font-size:12px;fill:var(--muted)}
.chart .grid{stroke:#eef0f3} .chart .tick{font-size:11px;fill:#98a2b3}
.map .plot{fill:#fbfbfc;stroke:var(--line)}
.map .dots circle{stroke:rgba(0,0,0,.45);stroke-width:.6;fill-opacity:.9}
.map .dots circle:hover{stroke:#000;stroke-width:2}
.map .hull{fill:rgba(19,35,58,.045);stroke:#55606f;stroke-width:1.2;stroke-dasharray:5 4;stroke-linejoin:round}
.map .clab{pointer-events:none}
.map .clab rect{fill:rgba(255,255,255,.88);stroke:#9aa4b2;stroke-width:.8}
.map .clab text{font-size:12px;font-weight:650;fill:#13233a}
table{width:100%;border-collapse:collapse;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.4px;border-bottom:2px solid var(--line);padding:8px 10px}
td{border-bottom:1px solid var(--line);padding:8px 10px;vertical-align:top}
tbody tr:hover{background:#f9fafb}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.hl{max-width:520px}
.chip{display:inline-block;background:#eef4fb;color:#0b4a8b;border-radius:999px;padding:1px 8px;margin:1px 3px 2px 0;font-size:12px}
.small{font-size:12px;color:var(--muted)}
.muted{color:var(--muted)}
.conf{display:inline-block;width:60px;height:6px;background:#eef0f3;border-radius:3px;vertical-align:middle;overflow:hidden}
.conf span{display:block;height:100%;background:#b54708}
.recon{font-size:14px}
.ok,.bad{display:inline-block;border-radius:999px;padding:2px 10px;font-weight:600;font-size:12px;margin-right:8px}
.ok{background:#e3f6ea;color:#05603a}.bad{background:#fde8e7;color:#b42318}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:22px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding-bottom:30px}
@media (max-width:900px){.kpis{grid-template-columns:repeat(3,1fr)}.grid2{grid-template-columns:1fr}}
"""


def render_report(result: Any) -> str:
    """The whole report as one HTML string (no external resources; safe to open offline)."""
    articles = list(_get(result, "articles", []) or [])
    clusters = list(_get(result, "clusters", []) or [])
    rejects = list(_get(result, "rejects", []) or [])
    manifest = dict(_get(result, "manifest", {}) or {})
    config = _get(result, "config")
    seed = int(getattr(getattr(config, "cluster", None), "random_state", 0) or 0)
    threshold = getattr(getattr(config, "tag", None), "min_confidence", None)
    categories = _categories(articles)
    colours = _colours(categories)
    cat_counts = Counter(a.category for a in articles)
    systems = {s for a in articles for s in (a.systems or [])}
    n_uncertain = sum(1 for a in articles if a.uncertain)
    used = [c for c in categories if cat_counts.get(c)]
    inputs = manifest.get("inputs") or [{"path": str(p)} for p in (_get(result, "inputs", []) or [])]
    kpis = [("articles", len(articles), ""), ("ICS pages", len(systems), ""),
            ("clusters", len(clusters), ""), ("categories used", len(used), ""),
            ("uncertain", n_uncertain, "warn" if n_uncertain else ""),
            ("rejects", len(rejects), "warn" if rejects else "")]
    kpi_html = "".join(f'<div class="kpi {cls}"><b>{_fmt(v)}</b><span>{_e(k)}</span></div>'
                       for k, v, cls in kpis)
    # no date or timing on the page (they are in run.json): same input and config, same bytes
    subtitle = (f'{len(inputs)} input file{"s" if len(inputs) != 1 else ""} · '
                f'hsj-pipeline {_e(manifest.get("version", ""))}')
    legend = _legend(categories, colours, cat_counts)
    comparison = _get(result, "comparison")
    since = ('<section id="previous"><h2>Since the previous run</h2>'
             f'{_previous_section(comparison)}</section>' if comparison is not None else "")
    body = f"""
<header><h1>HSJ integrated care systems — news run report</h1><p>{subtitle}</p></header>
<main>
<div class="kpis">{kpi_html}</div>{since}
<section id="categories"><h2>Categories per ICS page</h2>
<p class="lead">How many articles on each ICS page fall in each category (an article that appears on
several pages counts on each).</p>{legend}{_systems_chart(articles, categories, colours)}</section>
<section id="map"><h2>Map of the articles</h2>
<p class="lead">Each dot is an article placed by the similarity of its words (2-D projection from
the cluster stage), coloured by category; dashed outlines mark the clusters, labelled with their top
terms. Hover a dot for its headline.</p>{legend}{_map(articles, _get(result, "coords"), clusters, categories, colours, seed)}</section>
<section id="clusters"><h2>Clusters</h2>
<p class="lead">Topics found without labels: their top terms, size, the headline closest to the
centre, and which categories the classifier gave their articles.</p>
{_cluster_table(articles, clusters, categories, colours)}</section>
<section id="uncertain"><h2>Uncertain articles ({n_uncertain})</h2>
{_uncertain_table(articles, colours, threshold)}</section>
<section id="counts"><h2>Run counts</h2>
<p class="lead">Every slot read from the pages is accounted for.</p>{_counts_section(result)}</section>
<div class="grid2">
<section id="rejects"><h2>Rejects ({len(rejects)})</h2>{_rejects_section(rejects)}</section>
<section id="provenance"><h2>Inputs and model</h2>{_provenance(manifest)}</section>
</div>
</main>
<footer>Generated by hsj-pipeline. This file is self-contained and makes no network requests.</footer>
"""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>HSJ pipeline report</title><style>{_CSS}</style></head><body>{body}</body></html>\n')


def category_counts(articles: Iterable[Any]) -> Counter:
    """Articles per category (``None`` for untagged), for summaries."""
    return Counter(a.category for a in articles)
