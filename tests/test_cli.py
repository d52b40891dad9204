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
