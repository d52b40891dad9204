"""report.html: self-contained, escaped, has every section, and stays small on big runs.

Built from synthetic run results so it does not depend on the stages' models.
"""
from __future__ import annotations

import html
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Config
from pipeline.records import Article, Reject, Source
from pipeline.report import CATEGORY_ORDER, MAX_POINTS, MAX_UNCERTAIN, PALETTE, _clip, render_report

SYSTEMS = ["Coventry and Warwickshire ICS", "Kent and Medway ICS", "North East and North Cumbria ICS",
           "Cornwall & Isles of Scilly ICS"]
TRICKY = 'ICB\'s "£20m" deficit <script>alert(1)</script> & more'


@dataclass
class FakeCluster:
    id: int
    size: int
    terms: list[str]
    representative_id: str
    representative_headline: str


@dataclass
class FakeResult:
    articles: list[Article]
    rejects: list[Reject]
    clusters: list[FakeCluster]
    counts: dict
    timings: dict
    manifest: dict
    config: Config = field(default_factory=Config)
    inputs: list = field(default_factory=list)
    coords: list | None = None


def synthetic_result(n: int, seed: int = 0, k: int = 4) -> FakeResult:
    """A run of ``n`` articles in ``k`` clusters with random categories, scores and 2-D coords."""
    rng = random.Random(seed)
    articles, coords = [], []
    for i in range(n):
        cluster = i % k
        cat = CATEGORY_ORDER[rng.randrange(len(CATEGORY_ORDER))]
        conf = rng.uniform(0.2, 0.99)
        scores = {c: (conf if c == cat else (1 - conf) / 8) for c in CATEGORY_ORDER}
        headline = TRICKY if i == 0 else f"Headline {i} about {cat}"
        articles.append(Article(
            id=f"{i:016x}", headline=headline, standfirst="s", systems=[SYSTEMS[i % len(SYSTEMS)]],
            sources=[Source(file="p.txt", line=i + 1, position=i)], cluster=cluster,
            cluster_terms=[f"term{cluster}a", f"term{cluster}b"], cluster_score=0.5, category=cat,
            confidence=conf, uncertain=conf < 0.5, scores=scores))
        coords.append((cluster * 3 + rng.gauss(0, 0.6), (cluster % 2) * 3 + rng.gauss(0, 0.6)))
    clusters = [FakeCluster(c, sum(1 for a in articles if a.cluster == c), [f"term{c}a", f"term{c}b", "£m & <co>"],
                            articles[c].id, articles[c].headline) for c in range(min(k, n))]
    rejects = [Reject(file="p.txt", line=3, reason="headline too short", text="<b>x</b>")]
    counts = {"parse": {"slots": n + 3, "written": n, "merged": 2, "rejected": 1},
              "reconciliation": {"slots": n + 3, "written": n, "merged": 2, "rejected": 1,
                                 "articles_out": n, "ok": True}}
    manifest = {"version": "0.1.0", "started": "2025-01-01T00:00:00+00:00",
                "inputs": [{"path": "p.txt", "bytes": 10, "sha256": "ab" * 32}],
                "model": {"path": "models/m.joblib", "sha256": "cd" * 32}, "libraries": {"spacy": "3.8"},
                "seeds": {"cluster.random_state": 0}}
    timings = {"parse": 0.1, "clean": 1.5, "vectorise": 0.2, "cluster": 0.7, "tag": 0.3}
    return FakeResult(articles, rejects, clusters, counts, timings, manifest, coords=coords)


@pytest.fixture(scope="module")
def small_html() -> str:
    return render_report(synthetic_result(60))


def test_has_every_section(small_html: str) -> None:
    for section in ("categories", "map", "clusters", "uncertain", "counts", "rejects", "provenance"):
        assert f'<section id="{section}">' in small_html
    assert small_html.startswith("<!DOCTYPE html>")


def test_no_external_resources(small_html: str) -> None:
    # the only URL-like text allowed is none at all: no src/href to the network, no @import, no fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", small_html, re.I)
    assert "@import" not in small_html
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", small_html))  # local only
    assert "http://" not in small_html and "https://" not in small_html
    assert "<script src" not in small_html


def test_text_is_escaped(small_html: str) -> None:
    assert "<script>alert" not in small_html
    # only the page's own two script elements, and the data block closes where it should
    assert small_html.count("<script") == 2 and small_html.count("</script>") == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in small_html
    assert "&quot;£20m&quot;" in small_html and "&amp; more" in small_html
    assert "Cornwall &amp; Isles of Scilly ICS" in small_html
    assert "&lt;b&gt;x&lt;/b&gt;" in small_html  # reject text


def test_counts_and_figures_match_the_data(small_html: str) -> None:
    result = synthetic_result(60)
    n_uncertain = sum(1 for a in result.articles if a.uncertain)
    assert f'<h2>Uncertain articles ({n_uncertain})</h2>' in small_html
    assert '<div class="kpi "><b>60</b><span>articles</span></div>' in small_html
    assert '<b>4</b><span>ICS pages</span>' in small_html
    assert "reconciled" in small_html
    # one dot per article, each with its headline as hover title
    assert small_html.split('<g class="dots">')[1].split("</g>")[0].count("<circle") == 60
    # each category present is drawn in its palette colour
    for cat, n in Counter(a.category for a in result.articles).items():
        assert f'fill="{PALETTE[cat]}"' in small_html


def test_uncertain_table_shows_runner_up() -> None:
    result = synthetic_result(30)
    html = render_report(result)
    unsure = [a for a in result.articles if a.uncertain]
    assert unsure
    lowest = min(unsure, key=lambda a: a.confidence)
    table = html.split('<section id="uncertain">')[1].split("</section>")[0]
    assert table.index(lowest.headline) < max(table.index(a.headline) for a in unsure)
    assert table.count("<tr>") == len(unsure) + 1


def test_does_not_reconcile_is_shown() -> None:
    result = synthetic_result(10)
    result.counts["reconciliation"]["ok"] = False
    assert "does not reconcile" in render_report(result)


def test_large_run_is_subsampled_and_small() -> None:
    result = synthetic_result(20_000, k=12)
    html = render_report(result)
    dots = html.split('<g class="dots">')[1].split("</g>")[0].count("<circle")
    assert dots == MAX_POINTS
    assert "fixed random sample of 5,000 of 20,000" in html
    unsure_rows = html.split('<section id="uncertain">')[1].split("</section>")[0].count("<tr>")
    assert unsure_rows == MAX_UNCERTAIN + 1
    assert len(html.encode()) < 3_000_000
    assert render_report(result) == html  # the sample is deterministic


def test_empty_run_renders() -> None:
    empty = FakeResult([], [], [], {}, {}, {})
    html = render_report(empty)
    assert "No articles." in html and "No clusters." in html


def test_plain_namespace_clusters_and_no_coords() -> None:
    result = synthetic_result(8)
    result.coords = None
    result.clusters = [SimpleNamespace(**vars(c)) for c in result.clusters]
    html = render_report(result)
    assert "No 2-D coordinates" in html and "term0a" in html


@given(st.lists(st.floats(allow_nan=True) | st.sampled_from([0.0, -0.0, 1.0, -1.0]), max_size=20),
       st.sampled_from([0.0, -0.0, -1.0]), st.sampled_from([0.0, -0.0, 1.0]))
def test_vectorised_clip_is_the_scalar_min_max(values: list[float], lo: float, hi: float) -> None:
    """The map's pixel positions are computed with numpy but must be the scalar code's floats
    (ties and signed zeros included), or the SVG coordinates would change."""
    got = _clip(np.array(values, dtype=float), lo, hi).tolist()
    expected = [min(max(v, lo), hi) for v in values]
    assert [repr(v) for v in got] == [repr(v) for v in expected]


def test_uncertain_table_is_the_lowest_confidence_first_with_ties_by_id() -> None:
    result = synthetic_result(3 * MAX_UNCERTAIN)
    for i, a in enumerate(result.articles):  # many ties in confidence, ids out of order
        a.uncertain, a.confidence, a.id = True, (i % 5) / 10, f"{(7 * i) % 997:016x}"
    table = render_report(result).split('<section id="uncertain">')[1].split("</section>")[0]
    shown = re.findall(r'<td class="hl">(.*?)</td>', table)
    expected = sorted(result.articles, key=lambda a: (a.confidence, a.id))[:MAX_UNCERTAIN]
    assert shown == [html.escape(a.headline, quote=True) for a in expected]


def test_same_results_give_the_same_page_whatever_the_timings_date_or_jobs() -> None:
    """The page is an output compared byte for byte across --jobs: no time or date on it."""
    first, second = synthetic_result(40), synthetic_result(40)
    second.timings = {stage: t * 7 + 0.013 for stage, t in first.timings.items()}
    second.manifest = {**first.manifest, "started": "2031-06-30T23:59:58+00:00",
                       "finished": "2031-06-30T23:59:59+00:00", "jobs": 8}
    page = render_report(first)
    assert page == render_report(second)
    assert "2025-01-01" not in page and "1.50 s" not in page and "run.json" in page


def label_boxes(page: str) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of every cluster label pill on the map."""
    svg = page.split('<g class="clabs">')[1].split("</g></svg>")[0]
    return [tuple(float(v) for v in m) for m in
            re.findall(r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg)]


@pytest.mark.parametrize("k, spread", [(12, 0.6), (40, 0.05), (60, 2.0)])
def test_map_labels_never_overlap(k: int, spread: float) -> None:
    """Clusters whose centres crowd together (spread 0.05: all labels want the same spot) still get
    labels that do not overlap, each inside the plot."""
    result = synthetic_result(20 * k, k=k)
    rng = random.Random(1)
    result.coords = [((a.cluster % 5) * spread + rng.gauss(0, 0.01), (a.cluster // 5) * spread)
                     for a in result.articles]
    boxes = label_boxes(render_report(result))
    assert len(boxes) >= min(k, 12)  # crowding may cost a label its place, never its neighbour's
    for i, (x, y, w, h) in enumerate(boxes):
        assert 0 <= x and x + w <= 1100 and 0 <= y and y + h <= 620
        for x2, y2, w2, h2 in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, ((x, y, w, h), (x2, y2, w2, h2))


def test_a_huge_run_lists_its_first_articles_and_says_so(monkeypatch) -> None:
    import json

    import pipeline.report as report

    monkeypatch.setattr(report, "MAX_LISTED", 25)
    page = report.render_report(synthetic_result(60))
    data = json.loads(page.split('id="report-data">')[1].split("</script>")[0])
    assert len(data["id"]) == 25 and all(i < 25 for i in data["q"])
    assert "This run has 60 articles; the list holds the first 25" in page
    assert "the list holds" not in report.render_report(synthetic_result(25))
