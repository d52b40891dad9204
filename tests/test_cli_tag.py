"""The train, evaluate and tag commands: outputs, options, and one-line errors for user mistakes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import TagConfig
from pipeline.errors import InputError, ModelError
from pipeline.model_store import load_classifier
from pipeline.tag import tag_items

from cli_helpers import full_disk_env

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "m.skops"
    result = runner.invoke(app, ["train", "--labels", str(SEEDS), "--out", str(out), "--folds", "2"])
    assert result.exit_code == 0, result.output
    assert "79 examples from 1 files" in result.output and "macro-F1" in result.output
    return out


def test_train_writes_model_and_card(model: Path) -> None:
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["artefact"] == "m.skops" and card["artefact_format"] == "skops"
    assert card["cross_validation"]["folds"] == 2 and card["cross_validation"]["n"] == 79
    assert sum(card["examples_per_class"].values()) == 79
    assert card["training_data"]["files"][0]["name"] == "seeds.jsonl"
    assert load_classifier(model).classes_.tolist() == card["labels"]


def test_evaluate_cross_validates_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", "--labels", str(SEEDS), "--folds", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "2-fold stratified cross-validation on 79 examples" in result.output
    assert "confusion matrix" in result.output
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 79 and metrics["folds"] == 2
    assert sum(map(sum, metrics["confusion_matrix"])) == 79
    assert set(metrics["per_class"]) == set(metrics["labels"])
    assert 0.0 <= metrics["macro_f1"] <= 1.0


def test_evaluate_saved_model_on_a_file_with_label_field(tmp_path: Path, model: Path) -> None:
    test = tmp_path / "test.jsonl"
    rows = [{"headline": "Trust chief executive resigns", "label": "leadership"},
            {"headline": "System deficit doubles to £80m", "label": "finance"},
            {"headline": "CQC rates maternity unit inadequate", "label": "quality"}]
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", "--labels", str(test), "--model", str(model), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "saved model" in result.output
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 3 and sum(map(sum, metrics["confusion_matrix"])) == 3


def test_evaluate_held_out_test_file(tmp_path: Path) -> None:
    out = tmp_path / "h.json"
    result = runner.invoke(app, ["evaluate", "--labels", str(SEEDS), "--test", str(SEEDS), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "tested on 79 held-out" in result.output
    assert json.loads(out.read_text())["n"] == 79


def test_tag_plain_lines_and_jsonl_records(tmp_path: Path, model: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("Trust chair steps down\n\n"
                      '{"headline": "ICB overspend grows", "standfirst": "Deficit widens", "id": "x1"}\n')
    result = runner.invoke(app, ["tag", str(source), "--model", str(model)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["headline"] == "Trust chair steps down" and lines[1]["id"] == "x1"
    clf = load_classifier(model)
    expected = tag_items(["Trust chair steps down",
                          {"headline": "ICB overspend grows", "standfirst": "Deficit widens"}],
                         clf, TagConfig())
    for line, tag in zip(lines, expected):
        assert {k: line[k] for k in ("category", "confidence", "uncertain", "uncertain_reason", "label_source", "scores")} == tag
        assert list(line["scores"]) == clf.classes_.tolist()


def test_tag_stdin_out_file_and_threshold(tmp_path: Path, model: Path) -> None:
    out = tmp_path / "tagged.jsonl"
    headlines = ["Nurses strike over pay", "Board meets in private", "New ward opens", "Budget cut"]
    result = runner.invoke(app, ["tag", "-", "--model", str(model), "--out", str(out),
                                 "--set", "tag.min_confidence=0.7"], input="\n".join(headlines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["headline"] for r in records] == headlines
    assert all(r["uncertain"] == (r["confidence"] < 0.7) for r in records)
    assert all(abs(sum(r["scores"].values()) - 1) < 1e-3 for r in records)


def test_tag_bad_jsonl_record_is_a_reject_naming_the_line(tmp_path: Path, model: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"headline": "ok"}\n{"standfirst": "no headline"}\n{"headline": "b", "x"\n')
    done = run_cli("tag", str(source), "--model", str(model))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["headline"] for line in done.stdout.splitlines()] == ["ok"]
    assert done.stderr.splitlines() == [
        f"reject: {source}:2: no headline",
        f"reject: {source}:3: not valid JSON (Expecting ':' delimiter)",
        "tagged 1 headlines: 3 lines read = 1 tagged + 2 rejected"]
    out = tmp_path / "t.jsonl"
    done = run_cli("tag", str(source), "--model", str(model), "--out", str(out))
    assert done.returncode == 0, done.stderr
    rejects = [json.loads(line) for line in (tmp_path / "t.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (2, "no headline"), (3, "not valid JSON (Expecting ':' delimiter)")]
    assert len(out.read_text().splitlines()) == 1
    assert f"rejects written to {tmp_path / 't.rejects.jsonl'}" in done.stderr


def test_tag_missing_model_is_a_model_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tag", "-", "--model", str(tmp_path / "none.joblib")], input="x\n")
    assert isinstance(result.exception, ModelError)
    assert "hsj-pipeline train" in str(result.exception)


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO_ROOT)


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    labels = tmp_path / "bad.jsonl"
    labels.write_text('{"headline": "a", "category": "finance"}\n{"headline": "b", "category": "sport"}\n')
    done = run_cli("train", "--labels", str(labels), "--out", str(tmp_path / "m.joblib"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert lines == [f"error: {labels}:2: unknown category 'sport' (valid: finance, performance, "
                     "leadership, workforce, governance, quality, services, digital, policy)"]
    assert not (tmp_path / "m.joblib").exists()
    done = run_cli("evaluate", "--labels", str(SEEDS), "--folds", "5")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "smallest class has 2 examples; need at least 5" in done.stderr
    done = run_cli("tag", "-", "--model", str(tmp_path / "absent.joblib"), stdin="x\n")
    assert done.returncode == 4 and "Traceback" not in done.stderr
    assert "model file not found" in done.stderr


def test_tag_in_chunks_gives_the_whole_batch_result(tmp_path: Path, model: Path) -> None:
    """More lines than one chunk (5,000): same tags, same order, as tagging all at once."""
    words = ["deficit", "strike", "chair", "ward", "cyber", "inspection", "merger", "plan"]
    headlines = [f"Trust {words[i % 8]} {words[(i // 8) % 8]} item {i}" for i in range(5003)]
    source = tmp_path / "many.txt"
    source.write_text("\n".join(headlines) + "\n")
    out = tmp_path / "many.jsonl"
    result = runner.invoke(app, ["tag", str(source), "--model", str(model), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "tagged 5003 headlines" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = tag_items(headlines, load_classifier(model), TagConfig())
    assert [r["headline"] for r in records] == headlines
    assert [{k: r[k] for k in ("category", "confidence", "uncertain", "uncertain_reason", "label_source", "scores")} for r in records] \
        == expected


@pytest.mark.parametrize("command", ["tag", "evaluate", "train"])
def test_full_disk_is_one_line_exit_5_and_no_partial_file(tmp_path: Path, command: str) -> None:
    full = tmp_path / "full"
    full.mkdir()
    headlines = tmp_path / "h.txt"
    headlines.write_text("Trust deficit doubles\nICB appoints chief executive\n", encoding="utf-8")
    target = full / {"tag": "t.jsonl", "evaluate": "m.json", "train": "m.skops"}[command]
    args = {"tag": ["tag", str(headlines), "--out", str(target)],
            "evaluate": ["evaluate", "--labels", str(SEEDS), "--folds", "2", "--json", str(target)],
            "train": ["train", "--labels", str(SEEDS), "--folds", "2", "--out", str(target)]}[command]
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=300, env=full_disk_env(tmp_path, full))
    assert done.returncode == 5, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {target}: cannot write: No space left on device"], done.stderr
    assert "Traceback" not in done.stderr
    assert list(full.iterdir()) == []


def test_a_pickle_model_needs_trust_pickle_on_every_command(tmp_path: Path) -> None:
    """A .joblib model is a pickle: tag, run and evaluate refuse it (exit 4, one line saying why)
    unless --trust-pickle is given."""
    pickle_model = tmp_path / "p.joblib"
    done = run_cli("train", "--labels", str(SEEDS), "--out", str(pickle_model), "--folds", "0")
    assert done.returncode == 0, done.stderr
    refused = run_cli("tag", "-", "--model", str(pickle_model), stdin="Chair steps down\n")
    assert refused.returncode == 4 and "--trust-pickle" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not refused.stdout
    trusted = run_cli("tag", "-", "--model", str(pickle_model), "--trust-pickle", stdin="Chair steps down\n")
    assert trusted.returncode == 0 and json.loads(trusted.stdout)["category"]
    run_refused = run_cli("run", "--model", str(pickle_model), "--out", str(tmp_path / "o"))
    assert run_refused.returncode == 4 and not (tmp_path / "o" / "articles.jsonl").exists()
