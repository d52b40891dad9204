"""Runs over time: ``hsj-pipeline compare`` and ``run --previous`` (pipeline/compare.py).

Real runs of the bundled sample pages (and a modified copy of them) are made once per module
through the library; the commands under test run as real processes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.compare import (RunSnapshot, carried_ids, compare, match_topics, read_run, size_status,
                              snapshot_of)
from pipeline.config import CompareConfig, load_config
from pipeline.parse import parse_paths
from pipeline.run import run

from cli_helpers import one_line_error

REMOVED_HEADLINE = "Hospital chief moves to nearby trust"  # only on the Kent and Medway page
ADDED = ("\nWard closures\n\nTrust shuts two community wards to fund winter pressures\n\n\n"
         "The community trust will close two wards at its rural hospitals to pay for extra winter beds.\n")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
    env["COLUMNS"] = "160"
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _drop_block(text: str, headline: str) -> str:
    """The page without the article whose headline is ``headline`` (caption and standfirst too)."""
    lines = text.split("\n")
    at = lines.index(headline)
    start = at - 2 if lines[at - 2].strip() else at  # caption two lines above, if any
    end = at + 3  # headline, two blank lines, standfirst
    return "\n".join(lines[:start] + lines[end + 1:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, sample_pages: list[Path]) -> SimpleNamespace:
    """old: pages 000-003. new: pages 001-004 with Kent and Medway's page changed (one article
    removed, one added). kept: pages 001-004 as they are, made with --previous old; fresh: the
    same without --previous."""
    base = tmp_path_factory.mktemp("runs")
    config = load_config(None, ["run.jobs=1"])
    pages = base / "pages_new"
    pages.mkdir()
    for page in sample_pages[1:]:
        shutil.copy(page, pages / page.name)
    kent = pages / sample_pages[2].name
    text = kent.read_text(encoding="utf-8")
    kent.write_text(_drop_block(text, REMOVED_HEADLINE).rstrip("\n") + "\n" + ADDED, encoding="utf-8")
    old = run(sample_pages[:4], config=config, out_dir=base / "old")
    new = run([pages], config=config, out_dir=base / "new")
    kept = run(sample_pages[1:], config=config, out_dir=base / "kept", previous=base / "old")
    fresh = run(sample_pages[1:], config=config, out_dir=base / "fresh")
    return SimpleNamespace(base=base, old=base / "old", new=base / "new", kept=base / "kept",
                           fresh=base / "fresh", new_pages=pages, kept_inputs=[str(p) for p in sample_pages[1:]],
                           old_result=old, new_result=new, kept_result=kept, fresh_result=fresh,
                           old_pages=sample_pages[:4])


def _compare_json(old: Path, new: Path, tmp_path: Path) -> dict:
    out = tmp_path / "cmp.json"
    done = cli("compare", str(old), str(new), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "per ICS page" in done.stdout
    return json.loads(out.read_text(encoding="utf-8"))


# ---- compare ------------------------------------------------------------------------------------


def test_compared_with_a_copy_of_itself_nothing_changed(runs: SimpleNamespace, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs.old, copy)
    data = _compare_json(runs.old, copy, tmp_path)
    n = len(runs.old_result.articles)
    assert data["new"] == [] and data["gone"] == [] and data["category_changed"] == []
    assert data["counts"]["kept"] == n and data["counts"]["topics"]["same"] == len(runs.old_result.clusters)
    assert {t["status"] for t in data["topics"]} == {"same"}
    assert all(t["old_id"] == t["new_id"] and t["similarity"] == 1.0 for t in data["topics"])
    assert set(data["systems"]) == {a for x in runs.old_result.articles for a in x.systems}
    for system in data["systems"].values():
        assert system["new"] == [] and system["gone"] == []
        assert all(before == after for before, after in system["categories"].values())


def test_one_page_removed_one_added_one_changed(runs: SimpleNamespace, tmp_path: Path) -> None:
    data = _compare_json(runs.old, runs.new, tmp_path)
    systems = data["systems"]
    # per ICS: the removed page's articles are all gone, the added page's all new, the changed
    # page has exactly one of each, the untouched pages nothing
    counts = {name: (len(s["new"]), len(s["gone"])) for name, s in systems.items()}
    assert counts == {"Coventry and Warwickshire ICS": (0, 20), "Gloucestershire ICS": (0, 0),
                      "Kent and Medway ICS": (1, 1), "Northamptonshire ICS": (0, 0),
                      "South West London ICS": (20, 0)}
    assert systems["Coventry and Warwickshire ICS"]["articles"] == [20, 0]
    # overall, checked against the parser's ids of the two sets of pages
    cfg = load_config().parse
    before = {a.id for a in parse_paths(runs.old_pages, cfg).articles}
    after = {a.id for a in parse_paths(sorted(runs.new_pages.iterdir()), cfg).articles}
    assert data["new"] == sorted(after - before) and data["gone"] == sorted(before - after)
    assert (len(data["new"]), len(data["gone"])) == (17, 15)
    headlines = {a.id: a.headline for a in runs.old_result.articles}
    assert REMOVED_HEADLINE in {headlines[i] for i in systems["Kent and Medway ICS"]["gone"]}
    # category counts per ICS: [old, new], summing to the page's articles on each side
    for s in systems.values():
        assert sum(v[0] for v in s["categories"].values()) == s["articles"][0]
        assert sum(v[1] for v in s["categories"].values()) == s["articles"][1]
    assert systems["South West London ICS"]["categories"] and \
        all(v[0] == 0 for v in systems["South West London ICS"]["categories"].values())
    statuses = {t["status"] for t in data["topics"]}
    assert statuses <= {"same", "grown", "shrunk", "new", "faded"} and statuses - {"same"}


def test_json_is_deterministic_and_sorted(runs: SimpleNamespace, tmp_path: Path) -> None:
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    for path in (first, second):
        assert cli("compare", str(runs.old), str(runs.new), "--json", str(path), "--quiet").returncode == 0
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text(encoding="utf-8"))
    assert list(data) == sorted(data)
    assert data["new"] == sorted(data["new"]) and data["gone"] == sorted(data["gone"])


def test_category_changed_between_models(runs: SimpleNamespace) -> None:
    old = read_run(runs.old)
    new = read_run(runs.new)
    target = sorted(set(old.categories) & set(new.categories))[0]
    new.categories[target] = "policy" if old.categories[target] != "policy" else "finance"
    changed = compare(old, new).category_changed
    assert [(c["id"], c["old"], c["new"]) for c in changed] == [(target, old.categories[target], new.categories[target])]


# ---- run --previous -----------------------------------------------------------------------------


def _members(result) -> dict[int, set[str]]:
    groups: dict[int, set[str]] = {}
    for a in result.articles:
        if a.cluster is not None and a.cluster >= 0:
            groups.setdefault(a.cluster, set()).add(a.id)
    return groups


def _same_id_overlap(old: dict[int, set[str]], new: dict[int, set[str]]) -> int:
    return sum(len(old[t] & new[t]) for t in set(old) & set(new))


def _best_overlap(old: dict[int, set[str]], new: dict[int, set[str]]) -> int:
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    o, n = sorted(old), sorted(new)
    shared = np.array([[len(old[i] & new[j]) for j in n] for i in o])
    rows, cols = linear_sum_assignment(shared, maximize=True)
    return int(shared[rows, cols].sum())


def test_topic_ids_kept_across_overlapping_runs(runs: SimpleNamespace) -> None:
    old, new, fresh = _members(runs.old_result), _members(runs.kept_result), _members(runs.fresh_result)
    kept = sorted(set(new) & set(old))
    assert kept, "no topic kept its id"
    assert all(old[t] & new[t] for t in kept)  # a kept id continues a topic: they share articles
    # the ids follow the articles: the articles in both runs that keep their topic id are as many
    # as the best one-to-one pairing of old and new topics by shared articles could give
    best = _best_overlap(old, new)
    assert _same_id_overlap(old, new) >= 0.9 * best
    assert _same_id_overlap(old, fresh) < 0.5 * best  # without --previous they do not (the test can fail)
    # the same clusters as without --previous, only renumbered; new topics above the old ids
    assert sorted(map(frozenset, new.values()), key=sorted) == sorted(map(frozenset, fresh.values()), key=sorted)
    assert all(t > max(old) for t in set(new) - set(old))
    manifest = json.loads((runs.kept / "run.json").read_text(encoding="utf-8"))
    assert manifest["previous"]["path"] == str(runs.old)
    assert manifest["previous"]["topic_ids_kept"] == len(kept)
    assert manifest["previous"]["new"] == 16 and manifest["previous"]["gone"] == 14
    assert manifest["next_topic_id"] == max(max(old) + 1, max(new) + 1)
    assert {c.id for c in runs.kept_result.clusters} == set(new)
    report = (runs.kept / "report.html").read_text(encoding="utf-8")
    assert "Since the previous run" in report and "<b>16</b> articles new" in report
    assert "Since the previous run" not in (runs.fresh / "report.html").read_text(encoding="utf-8")


def test_run_previous_cli_is_deterministic_across_jobs(runs: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = cli("run", *runs.kept_inputs, "--out", str(out), "--previous", str(runs.old), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "since the previous run" in done.stdout
    assert (out / "articles.jsonl").read_bytes() == (runs.kept / "articles.jsonl").read_bytes()
    # the output directory may be its own previous run: read before it is replaced
    again = cli("run", *runs.kept_inputs, "--out", str(out), "--previous", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    same = _members(SimpleNamespace(articles=[SimpleNamespace(**json.loads(line)) for line in
                                              (out / "articles.jsonl").read_text(encoding="utf-8").splitlines()]))
    assert same == _members(runs.kept_result)


# ---- the matcher, on snapshots made in memory -----------------------------------------------------


def _snapshot(topics: dict[int, list[list[str]]], manifest: dict | None = None) -> RunSnapshot:
    articles = [SimpleNamespace(id=f"{cid}-{i}-{'-'.join(toks)}", headline="h", systems=["S"], category="finance",
                                cluster=cid, cluster_terms=[], tokens=toks)
                for cid, docs in topics.items() for i, toks in enumerate(docs)]
    return snapshot_of(articles, manifest or {})


def test_match_topics_follows_content_not_numbers() -> None:
    money = [["deficit", "budget"], ["deficit", "savings"], ["budget", "cuts"]]
    staff = [["nurses", "strike"], ["nurses", "pay"], ["doctors", "strike"]]
    beds = [["beds", "winter"], ["beds", "corridor"]]
    old = _snapshot({0: money, 1: staff, 2: beds})
    new = _snapshot({0: staff + [["nurses", "vacancies"]], 1: money[:2], 2: [["digital", "records"]] * 2})
    matches = match_topics(old, new, CompareConfig().min_similarity)
    assert [(m.old_id, m.new_id) for m in matches] == [(0, 1), (1, 0)]
    mapping = carried_ids(old, new, matches)
    assert mapping == {0: 1, 1: 0, 2: 3}  # the unmatched new topic gets the next unused id
    statuses = {(t.old_id, t.new_id): t.status for t in compare(old, new).topics}
    assert statuses == {(1, 0): "grown", (0, 1): "shrunk", (None, 2): "new", (2, None): "faded"}


def test_fresh_ids_never_reuse_an_id_of_an_earlier_run() -> None:
    old = _snapshot({0: [["beds", "winter"]] * 2}, {"next_topic_id": 7})
    new = _snapshot({0: [["beds", "winter"]] * 2, 1: [["digital", "records"]] * 2})
    assert carried_ids(old, new, match_topics(old, new, 0.3)) == {0: 0, 1: 7}


def test_size_status() -> None:
    assert [size_status(10, n, 0.1) for n in (8, 9, 10, 11, 12)] == ["shrunk", "same", "same", "same", "grown"]


# ---- bad input: one line, exit 2 ------------------------------------------------------------------


def _broken_copy(runs: SimpleNamespace, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(runs.old, copy)
    return copy


def test_same_directory_twice(runs: SimpleNamespace) -> None:
    one_line_error(cli("compare", str(runs.old), str(runs.old) + "/"), 2, "same run directory")


def test_not_a_run_directory(runs: SimpleNamespace, tmp_path: Path) -> None:
    one_line_error(cli("compare", str(runs.old), str(tmp_path)), 2, str(tmp_path), "no run.json")
    one_line_error(cli("compare", str(tmp_path / "missing"), str(runs.old)), 2, "not found")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n", encoding="utf-8")
    one_line_error(cli("compare", str(a_file), str(runs.old)), 2, "not a directory")
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text('{"tool": "something-else"}\n', encoding="utf-8")
    one_line_error(cli("compare", str(runs.old), str(other)), 2, "not written by hsj-pipeline")
    (other / "run.json").write_text('{"tool": \n', encoding="utf-8")
    one_line_error(cli("compare", str(runs.old), str(other)), 2, "run.json:2", "not valid JSON")


def test_incompatible_version(runs: SimpleNamespace, tmp_path: Path) -> None:
    copy = _broken_copy(runs, tmp_path, "future")
    manifest = json.loads((copy / "run.json").read_text(encoding="utf-8"))
    manifest["output_format"], manifest["version"] = 99, "9.0.0"
    (copy / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    one_line_error(cli("compare", str(runs.old), str(copy)), 2, "hsj-pipeline 9.0.0", "output format 99")


def test_edited_articles_are_refused(runs: SimpleNamespace, tmp_path: Path) -> None:
    copy = _broken_copy(runs, tmp_path, "edited")
    lines = (copy / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    (copy / "articles.jsonl").write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    one_line_error(cli("compare", str(copy), str(runs.new)), 2, "articles.jsonl", "checksum")
    # a record without the fields compare needs names the line (once the checksum agrees)
    (copy / "articles.jsonl").write_text(lines[0] + "\n" + '{"id": "x"}\n', encoding="utf-8")
    manifest = json.loads((copy / "run.json").read_text(encoding="utf-8"))
    del manifest["outputs"]["articles.jsonl"]
    (copy / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    one_line_error(cli("compare", str(copy), str(runs.new)), 2, "articles.jsonl:2")


def test_run_previous_bad_input_fails_before_any_work(runs: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = cli("run", str(runs.old_pages[0]), "--out", str(out), "--previous", str(tmp_path / "nope"))
    one_line_error(done, 2, "nope", "not found")
    assert not out.exists()
    future = _broken_copy(runs, tmp_path, "future")
    manifest = json.loads((future / "run.json").read_text(encoding="utf-8"))
    manifest["output_format"] = 2
    (future / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    one_line_error(cli("run", str(runs.old_pages[0]), "--out", str(future), "--previous", str(future)),
                   2, "output format 2")
    assert json.loads((future / "run.json").read_text(encoding="utf-8"))["output_format"] == 2  # untouched


def test_json_must_not_overwrite_a_run(runs: SimpleNamespace, tmp_path: Path) -> None:
    copy = _broken_copy(runs, tmp_path, "target")
    before = (copy / "articles.jsonl").read_bytes()
    one_line_error(cli("compare", str(runs.new), str(copy), "--json", str(copy / "articles.jsonl")), 5)
    assert (copy / "articles.jsonl").read_bytes() == before
    one_line_error(cli("compare", str(runs.new), str(copy), "--json", str(tmp_path)), 5, "directory")


def test_category_change_through_the_cli(runs: SimpleNamespace, tmp_path: Path) -> None:
    """A rerun whose model tags one article differently (simulated by editing a copy and its
    checksum, as a retrained model would write it)."""
    import hashlib

    copy = _broken_copy(runs, tmp_path, "retagged")
    lines = (copy / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    before = record["category"]
    record["category"] = "digital" if before != "digital" else "policy"
    lines[3] = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    (copy / "articles.jsonl").write_bytes(data)
    manifest = json.loads((copy / "run.json").read_text(encoding="utf-8"))
    manifest["outputs"]["articles.jsonl"]["sha256"] = hashlib.sha256(data).hexdigest()
    (copy / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "cmp.json"
    done = cli("compare", str(runs.old), str(copy), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "category changed" in done.stdout and record["id"] in done.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["category_changed"] == [{"id": record["id"], "old": before, "new": record["category"],
                                         "headline": record["headline"]}]
    assert data["new"] == [] and data["gone"] == []
    shifted = {name: s["categories"] for name, s in data["systems"].items()
               if any(a != b for a, b in s["categories"].values())}
    assert set(shifted) == set(record["systems"])
    for cats in shifted.values():
        assert cats[before][1] == cats[before][0] - 1 and cats[record["category"]][1] == cats[record["category"]][0] + 1
