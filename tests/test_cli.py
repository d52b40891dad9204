"""Behaviour shared by every command, through the real process: exit codes that never depend on
--debug, messages that never put a raw control character on a terminal, and train's --out/--force."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import DEFAULT_MODEL, MODELS_DIR
from pipeline.model_store import TRAINED_MODEL_NAME, card_path
from tests.cli_helpers import one_line_error

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS = REPO_ROOT / "data" / "labels" / "seeds.jsonl"


def cli(*args: object, cwd: Path = REPO_ROOT, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=cwd)


def _error_cases(tmp: Path) -> list[tuple[list[object], int]]:
    (tmp / "empty.jsonl").write_text("", encoding="utf-8")
    (tmp / "exists.joblib").write_bytes(b"x")
    return [
        (["parse", tmp / "missing.txt", "--out", tmp / "a.jsonl"], 2),
        (["train", "--labels", tmp / "empty.jsonl", "--out", tmp / "m.joblib"], 2),
        (["run", "--set", "cluster.random_state=-1", "--out", tmp / "out"], 3),
        (["tag", "-", "--model", tmp / "absent.joblib"], 4),
        (["train", "--labels", SEEDS, "--out", tmp / "exists.joblib"], 5),
    ]


@pytest.mark.parametrize("case", range(5))
def test_debug_never_changes_the_exit_code(tmp_path: Path, case: int) -> None:
    args, code = _error_cases(tmp_path)[case]
    plain = cli(*args, stdin="x\n")
    line = one_line_error(plain, code)
    debug = cli("--debug", *args, stdin="x\n")
    assert debug.returncode == code, debug.stderr
    assert "Traceback" in debug.stderr and debug.stderr.strip().splitlines()[-1] == line


def test_train_empty_labels_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    one_line_error(cli("train", "--labels", empty, cwd=tmp_path), 2,
                   f"error: no labelled examples in {empty}")
    assert not (tmp_path / TRAINED_MODEL_NAME).exists()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_without_out_writes_in_the_current_directory_and_never_replaces(tmp_path: Path) -> None:
    shipped = {p: _digest(p) for p in (DEFAULT_MODEL, card_path(DEFAULT_MODEL))}
    done = cli("train", "--labels", SEEDS, "--folds", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = tmp_path / TRAINED_MODEL_NAME
    assert model.is_file() and card_path(model).is_file()
    assert {p: _digest(p) for p in shipped} == shipped  # the shipped model and card untouched
    before = _digest(model)
    one_line_error(cli("train", "--labels", SEEDS, "--folds", "2", cwd=tmp_path), 5,
                   f"error: {model}: already exists; pass --force")
    card_path(model).unlink()  # the card alone is protected too
    model.unlink()
    card_path(model).write_text("{}", encoding="utf-8")
    one_line_error(cli("train", "--labels", SEEDS, cwd=tmp_path), 5, str(card_path(model)))
    done = cli("train", "--labels", SEEDS, "--folds", "2", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _digest(model) == before  # same labels and seed: same bytes


def test_train_never_writes_into_the_shipped_models_directory_unasked(tmp_path: Path) -> None:
    shipped = {p: _digest(p) for p in (DEFAULT_MODEL, card_path(DEFAULT_MODEL))}
    other = MODELS_DIR / "new_model.joblib"
    for args, cwd in ((["--out", DEFAULT_MODEL], tmp_path), (["--out", other], tmp_path),
                      (["--force"], MODELS_DIR), ([], MODELS_DIR)):
        one_line_error(cli("train", "--labels", SEEDS, *args, cwd=cwd), 5,
                       "shipped models directory")
    assert not other.exists()
    assert {p: _digest(p) for p in shipped} == shipped


# ---- parse, run and tag agree on bad lines and on inputs with nothing usable --------------------

GOOD = '{"headline": "Trust fined over late accounts", "standfirst": "A trust was fined."}'
SURROGATE = '{"headline": "Bad \\udfff story", "standfirst": "x"}'


def _command(name: str, source: Path, tmp: Path) -> list[object]:
    return {"parse": ["parse", source, "--out", tmp / "a.jsonl"],
            "run": ["run", source, "--out", tmp / "out", "-q"],
            "tag": ["tag", source, "--out", tmp / "t.jsonl"]}[name]


def _rejects(name: str, tmp: Path) -> list[dict]:
    import json

    path = {"parse": tmp / "a.rejects.jsonl", "run": tmp / "out" / "rejects.jsonl",
            "tag": tmp / "t.rejects.jsonl"}[name]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", ["parse", "run", "tag"])
def test_bad_lines_are_rejects_in_every_command(tmp_path: Path, name: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([GOOD, SURROGATE, '{"headline": ', '{"standfirst": "no headline"}',
                                 '{"headline": "\\u001b\\u0007"}']) + "\n", encoding="utf-8")
    done = cli(*_command(name, source, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert [(r["line"], r["reason"]) for r in _rejects(name, tmp_path)] == [
        (2, "headline contains a lone surrogate (U+DFFF), which is not text"),
        (3, "not valid JSON (Expecting value)"),
        (4, "no headline"),
        (5, "no headline (nothing left once tags and control characters are removed)")]


@pytest.mark.parametrize("name", ["parse", "run", "tag"])
@pytest.mark.parametrize("content, needle", [
    ("", "empty file (no text)"),
    ("\n  \n", "empty file (no text)"),
    ('{"headline": ""}\n' + SURROGATE + "\n", "no usable articles in the input (2 read, 2 rejected; reasons in"),
])
def test_nothing_usable_is_one_error_line_exit_2_in_every_command(tmp_path: Path, name: str,
                                                                    content: str, needle: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(content, encoding="utf-8")
    one_line_error(cli(*_command(name, source, tmp_path)), 2, needle)


@pytest.mark.parametrize("data", [b"Kent ICS\n\n\nTrust \xed\xb3\xbf fined\n",  # UTF-8 of a surrogate
                                  b"Kent ICS\n\n\nTrust \xff fined\n"])
@pytest.mark.parametrize("suffix", [".txt", ".csv"])
@pytest.mark.parametrize("name", ["parse", "run", "tag"])
def test_invalid_utf8_is_one_line_naming_file_and_line(tmp_path: Path, data: bytes, suffix: str,
                                                       name: str) -> None:
    source = tmp_path / f"in{suffix}"
    source.write_bytes(data)
    one_line_error(cli(*_command(name, source, tmp_path)), 2, f"{source}:4: not UTF-8 text")


# ---- no raw control character ever reaches the terminal -----------------------------------------

def _terminal_safe(text: str) -> bool:
    return all(c == "\n" or c.isprintable() for c in text)


def test_tag_stdout_and_stderr_carry_no_raw_controls(tmp_path: Path) -> None:
    import json

    source = tmp_path / "in.jsonl"
    source.write_text('{"headline": "Trust \\u001b]0;pwned\\u0007 fined \\u009b31m", "note": '
                      '"\\u0085 \\u202e \\udfff"}\n{"headline": "\\u001b\\u0007", "x": 1}\n', encoding="utf-8")
    done = cli("tag", source)
    assert done.returncode == 0, done.stderr
    assert _terminal_safe(done.stdout) and _terminal_safe(done.stderr)
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["headline"] == "Trust ]0;pwned fined 31m"
    assert record["note"] == "\u0085 \u202e \udfff"  # passed through, escaped in the JSON text
    # counted in every line read, the rejected one too (as parse counts)
    assert "2 lines read = 1 tagged + 1 rejected; 5 control characters stripped" in done.stderr


def test_error_messages_escape_controls_in_file_names_and_text(tmp_path: Path) -> None:
    name = tmp_path / "evil\x1b]0;title\x07.txt"
    line = one_line_error(cli("parse", name, "--out", tmp_path / "a.jsonl"), 2, "no such file")
    assert "\\x1b]0;title\\x07.txt" in line and "\x1b" not in line
    done = cli("--debug", "parse", name, "--out", tmp_path / "a.jsonl")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == line
    bad = tmp_path / "c.toml"
    bad.write_text('[cluster]\nmethod = "k\\u001b[31mmeans"\n', encoding="utf-8")
    line = one_line_error(cli("parse", name, "--out", tmp_path / "a.jsonl", "--config", bad), 3,
                          "cluster.method")
    assert "\\x1b[31m" in line


def test_parse_and_run_summaries_carry_no_raw_controls(tmp_path: Path) -> None:
    source = tmp_path / "in\x9b.jsonl"
    source.write_text(GOOD.replace("Trust", "Trust\\u001b[5m") + "\n"
                      '{"headline": "Another \\u0085story [red]about[/] ICBs", "standfirst": "Yes."}\n',
                      encoding="utf-8")
    done = cli("parse", source, "--out", tmp_path / "a.jsonl")
    assert done.returncode == 0 and _terminal_safe(done.stderr), done.stderr
    assert "2 control characters stripped" in done.stderr
    done = cli("run", source, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert _terminal_safe(done.stdout) and _terminal_safe(done.stderr)
    assert "control characters stripped" in done.stdout
