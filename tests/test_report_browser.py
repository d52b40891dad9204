"""report.html in a real browser (Playwright driving the system Chromium): search, filters from the
charts, sorting, the URL fragment, CSV and corrections downloads, phone width, keyboard, and the
whole review loop (run, correct, download, retrain, run again).

Chromium comes from the system (`apt-get install chromium`; Playwright's own download cannot be
fetched here). Without it these tests skip, except under CI=true, where they fail.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from test_report import synthetic_result

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _need_browser() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed, and the browser tests must run in CI")
        pytest.skip("chromium not on PATH (apt-get install -y chromium) - browser tests skipped")
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> tuple[Path, object]:
    """A 300-article report: 9 clusters, every 7th article gold, uncertain ones with reasons."""
    from pipeline.report import render_report

    result = synthetic_result(300, k=9)
    for i, a in enumerate(result.articles):
        if i % 7 == 0:
            a.label_source, a.uncertain, a.uncertain_reason, a.confidence = "gold", False, None, 1.0
        else:
            a.label_source = "model"
            if a.uncertain:
                a.uncertain_reason = "out_of_scope" if i % 5 == 0 else "low_confidence"
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(result), encoding="utf-8")
    return path, result


@pytest.fixture()
def page(browser, report_file):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    p = context.new_page()
    p.errors = []
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("console", lambda m: p.errors.append(m.text) if m.type == "error" else None)
    p.on_dialog = lambda d: p.errors.append(f"dialog: {d.message}")  # a headline must never run
    p.on("dialog", p.on_dialog)
    open_report(p, report_file[0])
    yield p
    assert p.errors == []
    context.close()


def open_report(p, path: Path, fragment: str = "") -> None:
    p.goto(path.as_uri() + fragment)
    p.wait_for_selector("html[data-ready]")


def count(p) -> int:
    return int(p.locator("#count").inner_text().split(" of ")[0].replace(",", ""))


def shown_rows(p) -> list[int]:
    return [int(x) for x in p.eval_on_selector_all("#rows tr[data-i]", "rs => rs.map(r => r.dataset.i)")]


def fragment(p) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(p.evaluate("location.hash").lstrip("#")))


def test_table_lists_every_article_in_pages(page, report_file) -> None:
    _, result = report_file
    assert count(page) == 300
    assert len(shown_rows(page)) == 50  # paged: what is drawn is capped
    first = page.locator("#rows tr").first
    assert result.articles[0].headline in first.inner_text()  # escaped text shown as text
    page.click("#next")
    assert shown_rows(page)[0] == 50 and fragment(page)["page"] == "2"


def test_search_filters_headline_and_standfirst(page, report_file) -> None:
    _, result = report_file
    page.fill("#f-q", "DIGITAL about")  # every word, in any order, any case
    page.wait_for_function("location.hash.includes('q=')")
    expected = [i for i, a in enumerate(result.articles) if "about digital" in a.headline]
    assert 0 < count(page) == len(expected) and shown_rows(page) == expected[:50]
    # the standfirst shows on demand
    row = page.locator("#rows tr").first
    assert not row.locator(".sf").is_visible()
    row.locator("button.more").click()
    assert row.locator(".sf").is_visible()


def test_category_bar_filters_and_gold_is_counted_apart(page, report_file) -> None:
    _, result = report_file
    bar = page.locator('.cbar[data-cat="finance"]')
    model = sum(1 for a in result.articles if a.category == "finance" and a.label_source == "model")
    gold = sum(1 for a in result.articles if a.category == "finance" and a.label_source == "gold")
    assert f"{model} predicted · {gold} gold" in bar.inner_text()
    assert "not" in page.locator("#bycategory .note").inner_text()
    bar.click()
    assert fragment(page)["cat"] == "finance"
    assert count(page) == model + gold
    assert all(result.articles[i].category == "finance" for i in shown_rows(page))
    assert page.locator("#f-cat").input_value() == "finance"


def test_cluster_row_and_map_dot_filter(page, report_file) -> None:
    _, result = report_file
    page.click('tr.crow[data-cluster="3"]')
    assert fragment(page)["cluster"] == "3"
    assert count(page) == sum(1 for a in result.articles if a.cluster == 3)
    assert page.locator("svg.map.focus").count() == 1  # the map shows the cluster, the rest dimmed
    assert page.locator("svg.map .dots circle.dim").count() == 300 - count(page)
    page.click("#f-reset")
    dot = page.locator("svg.map .dots circle").nth(17)
    dot.click(force=True)
    i = int(dot.get_attribute("data-i"))
    assert fragment(page)["id"] == result.articles[i].id and shown_rows(page) == [i]


def test_ics_row_filters(page, report_file) -> None:
    _, result = report_file
    name = "Cornwall & Isles of Scilly ICS"
    page.locator(".srow", has_text=name).click()
    assert fragment(page)["ics"] == name
    assert count(page) == sum(1 for a in result.articles if name in a.systems)


def test_sorting_by_columns(page, report_file) -> None:
    _, result = report_file
    page.click('button[data-sort="category"]')
    cats = [result.articles[i].category for i in shown_rows(page)]
    assert cats == sorted(cats)
    page.click('th[data-key="cluster"] button')
    page.click('th[data-key="cluster"] button')  # second click: descending
    assert page.locator('th[data-key="cluster"]').get_attribute("aria-sort") == "descending"
    clusters = [result.articles[i].cluster for i in shown_rows(page)]
    assert clusters == sorted(clusters, reverse=True) and clusters[0] == 8
    page.click('th[data-key="headline"] button')
    heads = [result.articles[i].headline.lower() for i in shown_rows(page)]
    assert heads == sorted(heads)
    page.click('button[data-sort="confidence"]')
    page.click('button[data-sort="confidence"]')
    confs = [result.articles[i].confidence for i in shown_rows(page)]
    assert confs == sorted(confs, reverse=True) and confs[0] == max(a.confidence for a in result.articles)


def test_url_fragment_round_trip(page, report_file, browser) -> None:
    path, result = report_file
    page.select_option("#f-unc", "low_confidence")
    page.select_option("#f-cluster", "2")
    page.click('th[data-key="headline"] button')
    page.fill("#f-q", "about")
    page.wait_for_function("location.hash.includes('q=about')")
    rows, n, hash_ = shown_rows(page), count(page), page.evaluate("location.hash")
    assert n == sum(1 for a in result.articles if a.cluster == 2 and a.uncertain_reason == "low_confidence")
    other = browser.new_page(viewport={"width": 1280, "height": 900})
    open_report(other, path, hash_)  # a shared link opens the same view
    assert shown_rows(other) == rows and count(other) == n
    assert other.locator("#f-q").input_value() == "about" and other.locator("#f-cluster").input_value() == "2"
    assert other.locator('th[data-key="headline"]').get_attribute("aria-sort") == "ascending"
    other.close()
    page.evaluate("location.hash = '#cat=policy'")  # editing the fragment changes the view
    page.wait_for_function("document.querySelector('#f-cat').value === 'policy'")
    assert count(page) == sum(1 for a in result.articles if a.category == "policy")


def test_csv_download_is_the_filtered_rows(page, report_file) -> None:
    _, result = report_file
    page.select_option("#f-cat", "digital")
    with page.expect_download() as info:
        page.click("#dl-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = [a for a in result.articles if a.category == "digital"]
    assert [r["id"] for r in rows] == [a.id for a in expected]
    assert rows[0]["headline"] == expected[0].headline and rows[0]["label_source"] in ("gold", "model")


def test_review_queue_view_is_the_python_order(page, report_file) -> None:
    from pipeline.review import review_queue

    _, result = report_file
    page.select_option("#f-view", "queue")
    queue = review_queue(result.articles)
    assert count(page) == len(queue) and shown_rows(page) == queue[:50]
    assert all(result.articles[i].label_source == "model" for i in shown_rows(page))


def test_correcting_a_category_and_downloading_corrections(page, report_file) -> None:
    path, result = report_file
    page.select_option("#f-view", "queue")
    row = page.locator("#rows tr").first
    i = int(row.get_attribute("data-i"))
    new = "digital" if result.articles[i].category != "digital" else "policy"
    row.locator("select.catsel").select_option(new)
    assert "1 correction" in page.locator("#fixcount").inner_text()
    with page.expect_download() as info:
        page.click("#dl-fix")
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    a = result.articles[i]
    assert [json.loads(x) for x in lines] == [{"headline": a.headline, "standfirst": a.standfirst,
                                                "category": new, "id": a.id}]
    # kept across a reload (localStorage, keyed by the run), and the category filter sees it
    page.reload()
    page.wait_for_selector("html[data-ready]")
    assert "1 correction" in page.locator("#fixcount").inner_text()
    page.select_option("#f-src", "fixed")
    assert shown_rows(page) == [i]
    assert page.locator("#rows select.catsel").input_value() == new
    page.remove_listener("dialog", page.on_dialog)  # this confirm() is the page's own
    page.on("dialog", lambda d: d.accept())
    page.click("#clear-fix")
    assert "no corrections" in page.locator("#fixcount").inner_text()


def test_keyboard_reaches_and_uses_the_filters(page, report_file) -> None:
    _, result = report_file
    bar = page.locator('.cbar[data-cat="quality"]')
    bar.focus()
    page.keyboard.press("Enter")
    assert fragment(page)["cat"] == "quality"
    row = page.locator('tr.crow[data-cluster="5"]')
    row.focus()
    page.keyboard.press("Space")
    assert fragment(page)["cluster"] == "5"
    assert count(page) == sum(1 for a in result.articles if a.category == "quality" and a.cluster == 5)
    # Tab order reaches the search box, and typing there searches
    page.locator("#f-q").focus()
    page.keyboard.type("headline 1")
    page.wait_for_function("location.hash.includes('q=headline')")
    # sort headers and row controls are real buttons/selects: focusable without a mouse
    tags = page.eval_on_selector_all("#grid th button, #rows select", "els => els.map(e => e.tabIndex)")
    assert tags and all(t == 0 for t in tags)


def test_map_labels_do_not_overlap(page) -> None:
    boxes = page.eval_on_selector_all("svg.map .clab rect", "rs => rs.map(r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })")
    assert len(boxes) == 9
    for k, a in enumerate(boxes):
        for b in boxes[k + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_phone_width_has_no_horizontal_scroll(browser, report_file, tmp_path: Path) -> None:
    p = browser.new_page(viewport={"width": 420, "height": 900})
    open_report(p, report_file[0])
    assert p.evaluate("document.documentElement.scrollWidth") <= 420
    assert p.evaluate("document.body.scrollWidth") <= 420
    # ICS labels are readable text (not a scaled-down drawing): at least 12 px
    size = p.eval_on_selector(".srow .slab", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 12
    # the cluster table fits: every cell's right edge inside the viewport
    right = p.eval_on_selector_all("#clusters td", "tds => Math.max(...tds.map(t => t.getBoundingClientRect().right))")
    assert right <= 420
    p.screenshot(path=str(tmp_path / "phone.png"))
    p.close()


def test_an_empty_run_and_a_run_without_coordinates_open(browser, tmp_path: Path) -> None:
    from pipeline.report import render_report
    from test_report import FakeResult

    for name, result in (("empty", FakeResult([], [], [], {}, {}, {})), ("nocoords", synthetic_result(5))):
        if name == "nocoords":
            result.coords = None
        path = tmp_path / f"{name}.html"
        path.write_text(render_report(result), encoding="utf-8")
        p = browser.new_page()
        errors: list[str] = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        open_report(p, path)
        assert errors == []
        assert p.locator("#count").inner_text().startswith("0 of 0" if name == "empty" else "5 of 5")
        p.close()


@pytest.mark.slow
def test_the_whole_review_loop(browser, tmp_path: Path) -> None:
    """Run on the samples, correct an article in the report, download the corrections, retrain
    with them, run again: the article comes out with the corrected category, as gold."""
    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done

    cli("run", "--out", "out1", "-q")
    context = browser.new_context(accept_downloads=True)
    p = context.new_page()
    open_report(p, tmp_path / "out1" / "report.html")
    row = p.locator("#rows tr").first
    i = int(row.get_attribute("data-i"))
    first = json.loads((tmp_path / "out1" / "articles.jsonl").read_text(encoding="utf-8").splitlines()[i])
    new = "digital" if first["category"] != "digital" else "finance"
    row.locator("select.catsel").select_option(new)
    with p.expect_download() as info:
        p.click("#dl-fix")
    corrections = tmp_path / "corrections.jsonl"
    info.value.save_as(corrections)
    context.close()
    done = cli("train", "--labels", str(REPO / "data" / "labels"), "--labels", str(corrections),
               "--folds", "0", "--out", "model/m.skops")
    assert "1 corrections replaced training labels" in done.stdout
    cli("run", "--out", "out2", "-q", "--model", "model/m.skops")
    again = {r["id"]: r for r in map(json.loads, (tmp_path / "out2" / "articles.jsonl").read_text(encoding="utf-8").splitlines())}
    assert again[first["id"]]["category"] == new and again[first["id"]]["label_source"] == "gold"
