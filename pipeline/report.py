"""``report.html``: one self-contained page (inline CSS, SVG and script, no network) for people.

It shows the run's headline figures, articles per category (predicted and gold apart) and per ICS
page, a table of every article (search, filters, sorting, paging, CSV download, category
corrections downloadable as a labels file, the review queue), a 2-D map of the articles coloured by
category with clusters outlined, a cluster table (terms, size, representative headline, category
mix), the uncertain articles, and the counts and reconciliation; with ``run --previous``, what
changed since that run. Bars, ICS pages, cluster rows and map dots filter the table; the view
lives in the URL fragment. The page carries no date or timing (run.json has them), so the same
input and config give the same bytes whatever the job count or the day.

The articles go to the page as one JSON block, column by column (:func:`article_data`), escaped so
no text can end the script (:func:`script_json`); the page's script and style are in
``pipeline/report_assets/``. Every other text from the data goes through :func:`html.escape`. The
map draws a deterministic sample of at most ``MAX_POINTS`` articles and the other tables are capped.
"""
from __future__ import annotations

import hashlib
import heapq
import html
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import orjson

from .review import queue_order, score_margins

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
MAX_SYSTEMS = 60
MAX_CLUSTERS = 100
MAX_UNCERTAIN = 200
MAX_REJECT_REASONS = 30
MAX_INPUTS = 50
# Articles embedded for the page's table: 100k make a 29 MB page that opens in about 2 s; beyond
# this the page would no longer open comfortably, so a larger run lists its first MAX_LISTED.
MAX_LISTED = 200_000


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
    """One HTML row per ICS page (label above the bar on a phone); a row or a segment is a filter."""
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
    rows = []
    for system, mix in ranked:
        total = sum(mix.values())
        parts = [(c, mix.get(c, 0)) for c in categories] + [("(untagged)", mix.get(None, 0))]
        segs = "".join(
            f'<span class="seg" data-cat="{_e(c)}" style="width:{100 * n / total:.2f}%;'
            f'background:{colours.get(c, NONE_COLOUR)}" title="{_e(c)}: {n}"></span>'
            for c, n in parts if n > 0)
        label = ", ".join(f"{c} {n}" for c, n in parts if n)
        rows.append(f'<div class="srow pick" role="button" tabindex="0" data-sys="{_e(system)}" '
                    f'aria-label="{_e(system)}: {total} articles ({_e(label)}); show them">'
                    f'<span class="slab" title="{_e(system)}">{_e(system)}</span>'
                    f'<span class="sbar"><span class="stack" style="width:{100 * total / biggest:.2f}%">{segs}</span>'
                    f'<span class="sval">{total}</span></span></div>')
    note = f'<p class="muted">{hidden} smaller ICS pages not shown.</p>' if hidden > 0 else ""
    return f'<div class="systems">{"".join(rows)}</div>{note}'


def _category_bars(articles: Sequence[Any], categories: Sequence[str], colours: dict[str, str]) -> str:
    """Articles per category, predicted and gold counted apart; a bar is a filter."""
    model: Counter = Counter()
    gold: Counter = Counter()
    for a in articles:
        (gold if a.label_source == "gold" else model)[a.category] += 1
    shown = [c for c in categories if model.get(c) or gold.get(c)]
    if not shown:
        return '<p class="muted">No articles.</p>'
    biggest = max(model.get(c, 0) + gold.get(c, 0) for c in shown) or 1
    rows = []
    for c in shown:
        m, g = model.get(c, 0), gold.get(c, 0)
        colour = colours.get(c, NONE_COLOUR)
        rows.append(
            f'<div class="cbar pick" role="button" tabindex="0" data-cat="{_e(c)}" '
            f'aria-label="{_e(c)}: {m} predicted, {g} gold; show them">'
            f'<span class="clabel"><i class="dot" style="background:{colour}"></i>{_e(c)}</span>'
            f'<span class="sbar"><span class="stack" style="width:{100 * (m + g) / biggest:.2f}%">'
            f'<span class="seg" style="width:{100 * m / max(m + g, 1):.2f}%;background-color:{colour}" title="{_e(c)}: {m} predicted"></span>'
            f'<span class="seg gold" style="width:{100 * g / max(m + g, 1):.2f}%;background-color:{colour}" title="{_e(c)}: {g} gold"></span>'
            f'</span><span class="sval">{m} predicted · {g} gold</span></span></div>')
    return f'<div class="systems cats">{"".join(rows)}</div>'


def _sample(n: int, limit: int = MAX_POINTS, seed: int = 0) -> list[int]:
    """Deterministic subsample of indices (all of them when ``n <= limit``)."""
    if n <= limit:
        return list(range(n))
    import numpy as np

    return sorted(np.random.default_rng(seed).choice(n, size=limit, replace=False).tolist())


def _ellipse(xs: list[float], ys: list[float], cid: Any) -> str:
    """Dashed 1.2-sigma covariance ellipse around a cluster's core (a circle for one or two points)."""
    n = len(xs)
    cx = sum(xs) / n
    cy = sum(ys) / n
    if n < 3:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="12" class="hull" data-cluster="{_e(cid)}"><title>cluster {_e(cid)}</title></circle>'
    sxx = sum([(x - cx) ** 2 for x in xs]) / n
    syy = sum([(y - cy) ** 2 for y in ys]) / n
    sxy = sum([(x - cx) * (y - cy) for x, y in zip(xs, ys)]) / n
    half_trace, det = (sxx + syy) / 2, sxx * syy - sxy * sxy
    root = math.sqrt(max(half_trace ** 2 - det, 0.0))
    l1, l2 = half_trace + root, max(half_trace - root, 0.0)
    angle = math.degrees(0.5 * math.atan2(2 * sxy, sxx - syy))
    rx, ry = max(1.2 * math.sqrt(l1), 10.0), max(1.2 * math.sqrt(l2), 10.0)
    return (f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{rx:.1f}" ry="{ry:.1f}" '
            f'transform="rotate({angle:.1f} {cx:.1f} {cy:.1f})" class="hull" data-cluster="{_e(cid)}">'
            f'<title>cluster {_e(cid)}: {n} articles</title></ellipse>')


def _limits(values: list[float]) -> tuple[float, float]:
    """Axis range from the 1st to the 99th percentile plus a 4% margin (all values if few)."""
    ordered = sorted(values)
    n = len(ordered)
    lo, hi = (ordered[0], ordered[-1]) if n < 200 else (ordered[n // 100], ordered[-1 - n // 100])
    margin = (hi - lo) * 0.04
    return lo - margin, hi + margin


LABEL_H = 18  # height of a map label's pill, px


def _label_width(text: str) -> float:
    """Width of a 12 px semi-bold label: generous per character so estimates never under-run."""
    return 7.4 * len(text) + 16


def _overlaps(a: tuple[float, float, float], b: tuple[float, float, float], gap: float = 3.0) -> bool:
    """Whether two label boxes (centre x, centre y, width; height LABEL_H) overlap."""
    return abs(a[0] - b[0]) * 2 < a[2] + b[2] + 2 * gap and abs(a[1] - b[1]) < LABEL_H + gap


def _place_label(text: str, x: float, y: float, placed: list[tuple[str, float, float, float]],
                 width: float, height: float) -> tuple[str, float, float, float] | None:
    """The position nearest (x, y) (rings of 8 directions) where the label overlaps no earlier
    label and stays inside the plot; None if there is none within reach."""
    w = _label_width(text)
    boxes = [(px_, py_, pw) for _, px_, py_, pw in placed]
    for ring in range(0, 9):
        r = ring * 24.0
        for dx, dy in ((0, 0),) if ring == 0 else ((0, -1), (0, 1), (1, 0), (-1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1)):
            lx = min(max(x + dx * r * 1.6, w / 2 + 4), width - w / 2 - 4)
            ly = min(max(y + dy * r, LABEL_H), height - 6)
            if not any(_overlaps((lx, ly - 4, w), box) for box in boxes):
                return text, lx, ly - 4, w
    return None


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

    shapes: list[str] = []
    placed: list[tuple[str, float, float, float]] = []
    anchors: list[tuple[float, float]] = []
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
        spot = _place_label(text, cx, cy, placed, W, H) or _place_label(f"{cid}", cx, cy, placed, W, H)
        if spot is not None:  # no free place even for the bare id: the outline's title names it
            placed.append(spot)
            anchors.append((cx, cy))
    labels = []
    for (text, lx, ly, w), (cx, cy) in zip(placed, anchors):
        leader = (f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{lx:.1f}" y2="{ly:.1f}"/>'
                  if abs(cx - lx) > w / 2 or abs(cy - ly) > LABEL_H / 2 else "")
        labels.append(f'<g class="clab">{leader}<rect x="{lx - w / 2:.1f}" y="{ly - LABEL_H / 2:.1f}" '
                      f'width="{w:.1f}" height="{LABEL_H}" rx="9"/><text x="{lx:.1f}" y="{ly + 4:.1f}" '
                      f'text-anchor="middle">{_e(text)}</text></g>')
    dots = []
    r = 4.5 if len(keep) <= 500 else 3 if len(keep) <= 2000 else 2
    for i in keep:
        a = articles[i]
        x, y = xs[i], ys[i]
        tip = f"{a.headline} — {a.category or 'untagged'}, cluster {a.cluster}"
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colours.get(a.category, NONE_COLOUR)}" '
                    f'data-i="{i}"><title>{_e(tip)}</title></circle>')
    note = (f'<p class="muted">Showing a fixed random sample of {len(keep):,} of {n:,} articles; '
            f'cluster outlines use all of them.</p>' if len(keep) < n else "")
    return (f'<div class="mapwrap"><svg class="map" viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'aria-label="2-D map of articles by category">'
            f'<defs><clipPath id="plotclip"><rect x="0" y="0" width="{W}" height="{H}"/></clipPath></defs>'
            f'<rect x="0" y="0" width="{W}" height="{H}" class="plot"/>'
            f'<g clip-path="url(#plotclip)">{"".join(shapes)}</g><g class="dots">{"".join(dots)}</g><g class="clabs">{"".join(labels)}</g></svg></div>{note}')


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
        rows.append(f'<tr class="crow pick" tabindex="0" data-cluster="{_e(cid)}" '
                    f'aria-label="cluster {_e(cid)}, {_e(_get(c, "size"))} articles; show them">'
                    f'<td class="num" data-label="cluster">{_e(cid)}</td>'
                    f'<td class="num" data-label="size">{_e(_get(c, "size"))}</td>'
                    f'<td data-label="top terms">{chips}</td>'
                    f'<td class="hl" data-label="representative">{_e(_get(c, "representative_headline"))}</td>'
                    f'<td data-label="category mix">{_mini_mix(mix, categories, colours)}<div class="small">{top_txt}</div></td></tr>')
    outliers = sum(1 for a in articles if a.cluster == -1)
    note = f'<p class="muted">{outliers} articles were left outside any cluster (cluster −1).</p>' if outliers else ""
    more = (f'<p class="muted">{len(ordered) - MAX_CLUSTERS} smaller clusters not shown.</p>'
            if len(ordered) > MAX_CLUSTERS else "")
    return ('<p class="small">Click a row (or Enter on it) to list its articles.</p>'
            '<table class="cards"><thead><tr><th>cluster</th><th>size</th><th>top terms</th>'
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
            f'<td>{_e(second)} <span class="muted">{"" if second_score is None else f"{second_score:.2f}"}</span></td>'
            f'<td>{_e((a.uncertain_reason or "").replace("_", " "))}</td></tr>')
    more = (f'<p class="muted">{len(unsure) - MAX_UNCERTAIN} more uncertain articles are in articles.jsonl '
            f'(<code>uncertain: true</code>).</p>' if len(unsure) > MAX_UNCERTAIN else "")
    intro = (f'<p class="muted">Best category kept, but its probability is below {threshold:.2f} '
             '(low confidence) or the text looks like something other than NHS news (out of scope); '
             'lowest confidence first. The review queue in the article list orders them for checking.</p>'
             if threshold is not None else "")
    return (f'{intro}<div class="scroll"><table><thead><tr><th>headline</th><th>best category</th><th>confidence</th>'
            f'<th>runner-up</th><th>why</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}')


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


REASON_CODES = {None: 0, "low_confidence": 1, "out_of_scope": 2}


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element: no ``<``, ``>`` or ``&``
    (so no ``</script>`` or ``<!--``), and U+2028/U+2029 escaped, all as JSON string escapes."""
    try:
        raw = orjson.dumps(value)  # 29 MB at 100k articles: about 10x faster than json.dumps
    except (orjson.JSONEncodeError, TypeError):  # e.g. a lone surrogate: json escapes it as \udxxx
        raw = json.dumps(value, separators=(",", ":")).encode("ascii")
    for char, escaped in ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
                          ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029")):
        if char in raw:
            raw = raw.replace(char, escaped)
    return raw.decode("utf-8")


def article_data(articles: Sequence[Any], categories: Sequence[str], colours: dict[str, str],
                 manifest: dict[str, Any]) -> dict[str, Any]:
    """The article list for the page's script, column by column (compact at 100k articles).

    ``c`` category index (-1 none), ``p`` confidence x 10^4 (-1 none), ``m`` margin between the two
    best scores x 10^4, ``u`` 0 certain / 1 low confidence / 2 out of scope, ``g`` 1 for gold,
    ``y`` ICS page index (a list when several), ``q`` the review queue (row indices, in order),
    ``run`` a key of this run (the page keeps corrections under it).
    """
    cat_index = {c: i for i, c in enumerate(categories)}
    sys_index: dict[str, int] = {}
    for a in articles:
        for name in a.systems or ():
            if name not in sys_index:
                sys_index[name] = len(sys_index)
    ids = [a.id for a in articles]
    margins = score_margins([a.scores for a in articles])
    uncertain = [bool(a.uncertain) for a in articles]
    gold = [1 if a.label_source == "gold" else 0 for a in articles]
    clusters = [a.cluster for a in articles]
    systems = [[sys_index[n] for n in a.systems] if len(a.systems) != 1 else sys_index[a.systems[0]]
               for a in articles]
    queue = queue_order(ids, clusters, margins, uncertain, [g == 0 for g in gold])
    # the browser keeps corrections under this key: the same articles tagged by the same model
    # share them (no date in it, so the page stays the same bytes for the same input and config)
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    run_key = hashlib.sha256("\n".join([str(model.get("sha256", "")), *ids]).encode()).hexdigest()[:16]
    return {"run": run_key, "cats": list(categories), "colours": [colours.get(c, NONE_COLOUR) for c in categories],
            "sys": list(sys_index), "id": ids, "h": [a.headline for a in articles],
            "s": [a.standfirst or "" for a in articles],
            "c": [cat_index.get(a.category, -1) for a in articles],
            "p": [-1 if a.confidence is None else int(round(a.confidence * 10000)) for a in articles],
            "m": margins.tolist(),
            "u": [REASON_CODES.get(a.uncertain_reason, 1 if a.uncertain else 0) for a in articles],
            "g": gold, "y": systems, "k": [-1 if c is None else c for c in clusters], "q": queue}


def _asset(name: str) -> str:
    """A file of ``pipeline/report_assets`` (the page's script and style), read once."""
    if name not in _ASSETS:
        _ASSETS[name] = resources.files("pipeline").joinpath("report_assets", name).read_text(encoding="utf-8")
    return _ASSETS[name]


_ASSETS: dict[str, str] = {}




def render_report(result: Any) -> str:
    """The whole report as one HTML string (no external resources; safe to open offline).

    The page's script (``report_assets/report.js``) reads the article list from a JSON block and
    draws the searchable table, the filters, the review queue and the downloads; without script
    the figures and tables drawn here still show.
    """
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
    n_gold = sum(1 for a in articles if a.label_source == "gold")
    used = [c for c in categories if cat_counts.get(c)]
    inputs = manifest.get("inputs") or [{"path": str(p)} for p in (_get(result, "inputs", []) or [])]
    kpis = [("articles", len(articles), ""), ("ICS pages", len(systems), ""),
            ("clusters", len(clusters), ""), ("categories used", len(used), ""),
            ("predicted", len(articles) - n_gold, ""), ("gold", n_gold, ""),
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
    gold_note = ('<p class="note">Gold articles are in the classifier\'s training data and carry their '
                 'training label: they are counted apart and are <b>not</b> evidence of how well the '
                 'model does. Only the predicted counts say anything about the model.</p>')
    listed = articles[:MAX_LISTED]
    data = script_json(article_data(listed, categories, colours, manifest))
    cut = (f'<p class="note">This run has {len(articles):,} articles; the list holds the first '
           f'{len(listed):,} (in input order) so that the page still opens. All of them are in '
           f'articles.jsonl, and <code>hsj-pipeline review</code> ranks all of them.</p>'
           if len(listed) < len(articles) else "")
    body = f"""
<header><h1>HSJ integrated care systems — news run report</h1><p>{subtitle}</p></header>
<main>
<div class="kpis">{kpi_html}</div>{since}
<section id="bycategory"><h2>Categories</h2>
<p class="lead">Articles per category: predicted by the model (solid) and gold (hatched: the
article is a training example and keeps its label). Click a bar to list its articles.</p>
{gold_note}{_category_bars(articles, categories, colours)}</section>
<section id="categories"><h2>Categories per ICS page</h2>
<p class="lead">How many articles on each ICS page fall in each category (an article that appears on
several pages counts on each). Click a page to list its articles.</p>{legend}{_systems_chart(articles, categories, colours)}</section>
<section id="articles"><h2>Articles</h2>
<p class="lead">Every article of the run. Search, filter and sort; click a column heading to sort.
Change a category to correct it, then download the corrections as a labels file for
<code>hsj-pipeline train --labels data/labels --labels corrections.jsonl</code>.</p>{cut}
<div id="app"><noscript><p class="muted">The article list needs JavaScript.</p></noscript></div></section>
<section id="map"><h2>Map of the articles</h2>
<p class="lead">Each dot is an article placed by the similarity of its words (2-D projection from
the cluster stage), coloured by category; dashed outlines mark the clusters' cores, labelled with
their top terms. Hover a dot for its headline; click it to show it in the article list.</p>{legend}{_map(articles, _get(result, "coords"), clusters, categories, colours, seed)}</section>
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
            f'<title>HSJ pipeline report</title><style>{_asset("report.css")}</style></head><body>{body}'
            f'<script type="application/json" id="report-data">{data}</script>'
            f'<script>{_asset("report.js")}</script></body></html>\n')


def category_counts(articles: Iterable[Any]) -> Counter:
    """Articles per category (``None`` for untagged), for summaries."""
    return Counter(a.category for a in articles)
