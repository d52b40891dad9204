"""report.html at scale: render time and size in Python, then load and filter times in headless Chromium.

Builds a run result of N synthetic articles directly (texts from ``generate_corpus.generate``,
so headline and standfirst lengths look like news; random categories, scores, clusters and 2-D
coordinates), renders it with :func:`pipeline.report.render_report`, and opens the file in the
system Chromium through Playwright. Figures per size:

- render: ``render_report`` wall time (best of 3) and the HTML size;
- load: navigation start to the page's script having drawn the table (``data-ready``);
- search: a search filter applied through the URL fragment (hashchange -> table redrawn),
  first search (builds the lower-cased search text) and a second one;
- category filter and sort by headline, the same way.

    python benchmarks/report_browser.py --sizes 10000,100000

Needs ``apt-get install chromium`` and ``pip install playwright``. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from generate_corpus import SYSTEMS, generate  # noqa: E402

from pipeline.records import Article, Source, article_id  # noqa: E402
from pipeline.report import CATEGORY_ORDER, render_report  # noqa: E402


@dataclass
class Cluster:
    id: int
    size: int
    terms: list[str]
    representative_id: str
    representative_headline: str


@dataclass
class Result:
    articles: list[Article]
    clusters: list[Cluster]
    coords: Any
    rejects: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


def synthetic_run(n: int, seed: int = 0, k: int = 40) -> Result:
    """N unique articles with categories, scores, clusters and coordinates (no model needed)."""
    rng = random.Random(seed)
    articles: list[Article] = []
    seen: set[str] = set()
    coords = []
    for system, _caption, headline, standfirst in generate(int(n * 1.4) + 100, seed):
        key = article_id(headline, standfirst)
        if key in seen:
            continue
        seen.add(key)
        i = len(articles)
        cluster = min(int(rng.expovariate(1 / (k / 4))), k - 1)
        cat = CATEGORY_ORDER[rng.randrange(len(CATEGORY_ORDER))]
        conf = round(rng.uniform(0.25, 0.99), 4)
        rest = (1 - conf) / 8
        scores = {c: (conf if c == cat else round(rest * rng.uniform(0.5, 1.5), 4)) for c in CATEGORY_ORDER}
        gold = rng.random() < 0.03
        uncertain = not gold and conf < 0.5
        articles.append(Article(
            id=key, headline=headline, standfirst=standfirst, systems=[system],
            sources=[Source(file=f"page_{i // 20:06d}.txt", line=i % 20 * 4 + 2, position=i % 20)],
            cluster=cluster, cluster_terms=[f"term{cluster}"], cluster_score=0.5, category=cat,
            confidence=1.0 if gold else conf, uncertain=uncertain,
            uncertain_reason=("out_of_scope" if rng.random() < 0.1 else "low_confidence") if uncertain else None,
            label_source="gold" if gold else "model", scores=scores))
        coords.append((cluster % 8 * 3 + rng.gauss(0, 0.8), cluster // 8 * 3 + rng.gauss(0, 0.8)))
        if len(articles) == n:
            break
    sizes = [sum(1 for a in articles if a.cluster == c) for c in range(k)]
    clusters = [Cluster(c, sizes[c], [f"term{c}a", f"term{c}b", f"term{c}c"], "", f"cluster {c}")
                for c in range(k) if sizes[c]]
    counts = {"reconciliation": {"slots": n, "written": n, "merged": 0, "rejected": 0, "articles_out": n, "ok": True}}
    manifest = {"version": "bench", "started": "2026-01-01T00:00:00+00:00", "inputs": [],
                "systems": SYSTEMS}
    return Result(articles, clusters, coords, counts=counts, manifest=manifest)


# a search, a category filter and a sort, each applied through the fragment; the time runs from
# setting location.hash to the table having been redrawn (the #count text changes)
MEASURE = """async (hash) => {
  const target = document.getElementById('count');
  const before = target.textContent;
  const t0 = performance.now();
  const done = new Promise(resolve => {
    window.addEventListener('hashchange', () => resolve(performance.now()), {once: true});
  });
  location.hash = hash;
  const t1 = await done;  // the report's own hashchange listener ran first (registered earlier)
  return {ms: t1 - t0, count: target.textContent, changed: target.textContent !== before};
}"""


def measure(n: int, workdir: Path, browser: Any) -> dict[str, Any]:
    result = synthetic_run(n)
    renders = []
    for _ in range(3):
        t0 = time.perf_counter()
        html = render_report(result)
        renders.append(time.perf_counter() - t0)
    path = workdir / f"report_{n}.html"
    path.write_text(html, encoding="utf-8")
    word = result.articles[n // 2].headline.split()[-1].lower()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]", timeout=120_000)
    load_wall = time.perf_counter() - t0
    load_nav = page.evaluate("performance.now()")  # ms since navigation start, just after ready
    first = page.evaluate(MEASURE, f"#q={word}")
    second = page.evaluate(MEASURE, f"#q={word}+the")
    category = page.evaluate(MEASURE, "#cat=finance")
    sort = page.evaluate(MEASURE, "#sort=headline")
    rows = page.eval_on_selector_all("#rows tr", "rs => rs.length")
    page.close()
    assert not errors, errors
    return {"n": n, "render_s": min(renders), "mb": len(html.encode()) / 1e6, "load_s": load_wall,
            "load_nav_ms": load_nav, "search1_ms": first["ms"], "search2_ms": second["ms"],
            "search_count": first["count"], "category_ms": category["ms"], "sort_ms": sort["ms"],
            "rows_drawn": rows, "word": word}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hsj-report-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            rows.append(measure(n, workdir, browser))
            print(rows[-1], file=sys.stderr)
    finally:
        browser.close()
        pw.stop()
    print("| articles | render_report | HTML | open (wall / nav->ready) | 1st search | 2nd search | category filter | sort by headline | rows drawn |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['render_s']:.2f} s | {r['mb']:.1f} MB | {r['load_s']:.2f} s / {r['load_nav_ms'] / 1000:.2f} s "
              f"| {r['search1_ms']:.0f} ms | {r['search2_ms']:.0f} ms | {r['category_ms']:.0f} ms "
              f"| {r['sort_ms']:.0f} ms | {r['rows_drawn']} |")


if __name__ == "__main__":
    main()
