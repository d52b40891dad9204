"""The review loop's Python side: the queue order, `hsj-pipeline review`, and corrections in
`train --labels` (read_labels). The browser side is in test_report_browser.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_helpers import one_line_error
from pipeline.errors import InputError
from pipeline.model_store import read_labels
from pipeline.records import Article, Source
from pipeline.report import article_data, render_report, script_json
from pipeline.review import queue_order, review_queue, score_margin, score_margins
from test_report import synthetic_result

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=cwd or REPO)


def article(i: int, cluster: int, top: float, second: float, *, uncertain: bool = False,
            gold: bool = False) -> Article:
    scores = {"finance": top, "workforce": second, "policy": round(1 - top - second, 4)}
    return Article(id=f"{i:016x}", headline=f"Headline {i}", standfirst=f"Standfirst {i}",
                   systems=["Kent and Medway ICS"], sources=[Source("p.txt", i + 1, i)], cluster=cluster,
                   category="finance", confidence=top, uncertain=uncertain,
                   uncertain_reason="low_confidence" if uncertain else None,
                   label_source="gold" if gold else "model", scores=scores)


def test_margin_is_best_minus_second() -> None:
    assert score_margin({"a": 0.5, "b": 0.3, "c": 0.2}) == 0.2
    assert score_margin({"a": 0.2, "b": 0.5, "c": 0.5}) == 0.0
    assert score_margin({"a": 0.9}) == 1.0 and score_margin(None) == 0.0
    # the vectorised path (all items with the same number of scores) is the per-item one
    same = [{"a": 0.3, "b": 0.2999, "c": 0.4001}, {"a": 0.6, "b": 0.1, "c": 0.3}, {"a": 0.5, "b": 0.5, "c": 0.0}]
    assert score_margins(same).tolist() == [1001, 3000, 0]
    assert score_margins(same + [None]).tolist() == [1001, 3000, 0, 0]


def test_queue_uncertain_first_lowest_margin_round_robin_gold_left_out() -> None:
    arts = [
        article(0, 0, 0.50, 0.45),                   # cluster 0, margin .05
        article(1, 0, 0.50, 0.49),                   # cluster 0, margin .01
        article(2, 0, 0.50, 0.48),                   # cluster 0, margin .02
        article(3, 1, 0.60, 0.30),                   # cluster 1, margin .30
        article(4, 1, 0.40, 0.38, uncertain=True),   # uncertain, margin .02
        article(5, 2, 0.40, 0.10, uncertain=True),   # uncertain, margin .30
        article(6, 0, 0.50, 0.50, gold=True),        # gold: never in the queue
    ]
    order = review_queue(arts)
    # uncertain first (by margin), then round 1: best of each cluster (1: .01, 3: .30),
    # round 2: cluster 0's next (2: .02), round 3: (0: .05)
    assert order == [4, 5, 1, 3, 2, 0]
    # the same from plain dicts (what the CLI reads)
    dicts = [json.loads(a.to_json()) for a in arts]
    assert review_queue(dicts) == order


def reference_order(ids, clusters, margins, uncertain, eligible) -> list[int]:
    """The queue's definition written plainly (lanes and rounds), as the oracle of queue_order."""
    from collections import defaultdict

    order = []
    for want in (True, False):
        lanes = defaultdict(list)
        for i, ok in enumerate(eligible):
            if ok and bool(uncertain[i]) is want:
                lanes[-1 if clusters[i] is None else clusters[i]].append((margins[i], ids[i], i))
        lanes = [sorted(v) for v in lanes.values()]
        for r in range(max((len(v) for v in lanes), default=0)):
            order.extend(i for _, _, i in sorted(v[r] for v in lanes if r < len(v)))
    return order


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from([None, -1, 0, 1, 2, 7]),
                          st.sampled_from([0.0, 0.01, 0.02, 0.5, 1.0]), st.booleans(), st.booleans()),
                max_size=40))
def test_queue_order_is_its_definition(rows) -> None:
    columns = [list(c) for c in zip(*rows)] if rows else [[], [], [], [], []]
    assert queue_order(*columns) == reference_order(*columns)


def test_queue_spreads_one_big_cluster() -> None:
    """Without the round-robin the top 5 would all be cluster 0 (its margins are lowest)."""
    arts = [article(i, 0, 0.5, 0.5 - i / 1000) for i in range(10)]
    arts += [article(10 + i, 1 + i, 0.5, 0.3) for i in range(4)]
    top = review_queue(arts)[:5]
    assert len({arts[i].cluster for i in top}) == 5


def test_report_embeds_the_same_queue() -> None:
    result = synthetic_result(200, k=6)
    for i, a in enumerate(result.articles):
        a.label_source = "gold" if i % 9 == 0 else "model"
    html = render_report(result)
    block = html.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    data = json.loads(block)
    assert data["q"] == review_queue(result.articles)
    assert len(data["id"]) == 200 and all(data["g"][i] == (1 if i % 9 == 0 else 0) for i in range(200))


def test_script_json_cannot_end_the_script_element() -> None:
    hostile = 'a</script><script>alert(1)</script><!-- \u2028 \u2029 & "q"'
    text = script_json({"h": [hostile]})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"h": [hostile]}
    result = synthetic_result(5)
    result.articles[1].headline = hostile
    page = render_report(result)
    assert page.count("</script>") == 2  # the data block and the page's script, nothing else
    assert json.loads(page.split('id="report-data">')[1].split("</script>")[0])["h"][1] == hostile


def test_article_data_columns() -> None:
    result = synthetic_result(10)
    a = result.articles[3]
    a.systems = ["Kent and Medway ICS", "Coventry and Warwickshire ICS"]
    a.uncertain, a.uncertain_reason, a.standfirst = True, "out_of_scope", None
    data = article_data(result.articles, ["finance", "performance", "leadership", "workforce", "governance",
                                          "quality", "services", "digital", "policy"], {}, {})
    assert data["u"][3] == 2 and data["s"][3] == ""
    assert [data["sys"][k] for k in data["y"][3]] == a.systems
    assert data["p"][3] == round(a.confidence * 10000)
    assert data["m"][3] == round(score_margin(a.scores) * 10000)


# ---- the command -----------------------------------------------------------------------------------


def write_run(out_dir: Path, arts: list[Article]) -> None:
    out_dir.mkdir()
    (out_dir / "articles.jsonl").write_text("".join(a.to_json() + "\n" for a in arts), encoding="utf-8")


def test_review_command_writes_the_queue(tmp_path: Path) -> None:
    arts = [article(i, i % 3, 0.5, 0.5 - (i % 7) / 20, uncertain=i % 4 == 0, gold=i % 5 == 0) for i in range(40)]
    write_run(tmp_path / "out", arts)
    done = cli("review", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    order = review_queue(arts)
    assert [r["id"] for r in rows] == [arts[i].id for i in order]
    assert len(rows) == sum(1 for a in arts if a.label_source != "gold")
    first = arts[order[0]]
    assert rows[0] == {"id": first.id, "headline": first.headline, "standfirst": first.standfirst,
                       "predicted": "finance", "confidence": first.confidence,
                       "margin": score_margin(first.scores), "cluster": first.cluster,
                       "uncertain_reason": "low_confidence", "category": ""}
    queue = tmp_path / "queue.jsonl"
    done = cli("review", str(tmp_path / "out"), "--out", str(queue), "--limit", "5")
    assert done.returncode == 0 and done.stdout == ""
    assert "5 of 40 articles" in done.stderr
    assert [json.loads(x) for x in queue.read_text(encoding="utf-8").splitlines()] == rows[:5]


def test_review_command_errors(tmp_path: Path) -> None:
    one_line_error(cli("review", str(tmp_path / "missing")), 2, "missing", "not a directory")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("review", str(tmp_path / "empty")), 2, "articles.jsonl", "no such file")
    write_run(tmp_path / "out", [article(0, 0, 0.5, 0.4)])
    with open(tmp_path / "out" / "articles.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    one_line_error(cli("review", str(tmp_path / "out")), 2, "articles.jsonl:2", "not valid JSON")
    target = tmp_path / "out" / "articles.jsonl"
    one_line_error(cli("review", str(tmp_path / "out"), "--out", str(target)), 5, "would overwrite")


# ---- corrections as labels ---------------------------------------------------------------------------


def labels_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_later_correction_replaces_a_training_label(tmp_path: Path) -> None:
    train = labels_file(tmp_path / "train.jsonl", [
        {"headline": "Trust deficit doubles", "standfirst": "It now forecasts £40m.", "category": "finance"},
        {"headline": "Nurses strike", "standfirst": None, "category": "workforce"}])
    fixes = labels_file(tmp_path / "fix.jsonl", [
        # same text after normalisation (case, spaces, curly quote): a correction, with extra fields
        {"headline": "trust  DEFICIT doubles", "standfirst": "It now forecasts £40m.", "category": "governance",
         "id": "x1", "note": "checked"},
        {"headline": "A new article", "standfirst": "", "category": "digital", "id": "x2"},
        {"headline": "Not labelled yet", "standfirst": None, "category": "", "id": "x3"}])
    data = read_labels([train, fixes], categories=["finance", "workforce", "governance", "digital"])
    assert data.labels == ["governance", "workforce", "digital"]
    assert data.corrections == 1 and data.unlabelled == 1 and data.duplicates == 0
    assert [f["examples"] for f in data.files] == [2, 2]


def test_conflicts_without_a_correction_are_still_errors(tmp_path: Path) -> None:
    a = labels_file(tmp_path / "a.jsonl", [{"headline": "Trust deficit doubles", "category": "finance"}])
    b = labels_file(tmp_path / "b.jsonl", [{"headline": "Trust deficit doubles", "category": "governance"}])
    with pytest.raises(InputError, match="same text labelled"):
        read_labels([a, b])
    # two different answers inside one corrections file are a conflict too
    c = labels_file(tmp_path / "c.jsonl", [{"headline": "X rises", "category": "finance", "id": "1"},
                                           {"headline": "x rises", "category": "policy", "id": "1"}])
    with pytest.raises(InputError, match="c.jsonl:2"):
        read_labels([c])


def test_train_takes_a_directory_and_a_corrections_file(tmp_path: Path) -> None:
    """One real `train` (no folds): data/labels as a directory, then a corrections file."""
    first = json.loads((REPO / "data" / "labels" / "seeds.jsonl").read_text(encoding="utf-8").splitlines()[0])
    other = "digital" if first["category"] != "digital" else "finance"
    fixes = labels_file(tmp_path / "fixes.jsonl", [{"headline": first["headline"], "standfirst": first.get("standfirst"),
                                                     "category": other, "id": "abc"}])
    done = cli("train", "--labels", str(REPO / "data" / "labels"), "--labels", str(fixes), "--folds", "0",
               "--out", str(tmp_path / "m.skops"))
    assert done.returncode == 0, done.stderr
    assert "1 corrections replaced training labels" in done.stdout
    card = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    names = [f["name"] for f in card["training_data"]["files"]]
    assert names[-1] == "fixes.jsonl" and len(names) == len(list((REPO / "data" / "labels").glob("*.jsonl"))) + 1
    assert card["training_data"]["corrections_applied"] == 1
