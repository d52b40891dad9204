"""``hsj-pipeline run`` as a user meets it: summary, --quiet, --set, and one-line errors with exit codes."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.run import resolve_inputs

from cli_helpers import full_disk_env, one_line_error


def cli(*args: str, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
        env["COLUMNS"] = "160"
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def page() -> Path:
    return resolve_inputs(None)[0]


def test_run_prints_summary_and_writes_outputs(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    done = cli("run", str(page), "--out", str(out), "--model", str(model_path), "--set", "cluster.n_clusters=3")
    assert done.returncode == 0, done.stderr
    articles = (out / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert manifest["config"]["cluster"]["n_clusters"] == 3 and manifest["counts"]["cluster"]["clusters"] == 3
    for needle in ("articles", "rejects", "clusters", "uncertain", "categories", "reconciled",
                   "representative headline", str(out / "report.html")):
        assert needle in done.stdout, needle
    assert re.search(rf"^\s*articles\s+{len(articles)}\s*$", done.stdout, re.M)


def test_quiet_prints_nothing(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    done = cli("run", str(page), "-o", str(tmp_path / "out"), "--model", str(model_path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert (tmp_path / "out" / "articles.jsonl").stat().st_size > 0


def test_unknown_config_key(tmp_path: Path) -> None:
    line = one_line_error(cli("run", "--out", str(tmp_path / "o"), "--set", "cluster.nclusters=3"), 3,
                          "cluster.nclusters", "unknown key")
    assert not (tmp_path / "o").exists(), line


def test_bad_config_value(tmp_path: Path) -> None:
    one_line_error(cli("run", "--out", str(tmp_path / "o"), "--set", "tag.min_confidence=2"), 3,
                   "tag.min_confidence")


def test_missing_config_file(tmp_path: Path) -> None:
    one_line_error(cli("run", "--config", str(tmp_path / "none.toml")), 3, "not found")


def test_missing_model(tmp_path: Path) -> None:
    one_line_error(cli("run", "--out", str(tmp_path / "o"), "--model", str(tmp_path / "m.joblib")), 4,
                   "m.joblib", "model file not found")
    assert not (tmp_path / "o").exists()


def test_output_equal_to_input(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    before = page.read_bytes()
    one_line_error(cli("run", str(page), "--out", str(page), "--model", str(model_path)), 5, "existing file")
    assert page.read_bytes() == before


def test_unwritable_output_directory(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    one_line_error(cli("run", str(page), "--out", str(blocker / "out"), "--model", str(model_path)), 5,
                   "cannot create or write the output directory")


def test_missing_input(model_path: Path, tmp_path: Path) -> None:  # noqa: F811
    one_line_error(cli("run", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"), "--model",
                       str(model_path)), 2, "nope.txt", "no such file")
    assert not [p for p in (tmp_path / "o").iterdir() if not p.name.startswith(".")]


def test_debug_shows_traceback(tmp_path: Path) -> None:
    done = cli("run", "--debug", "--set", "cluster.nclusters=3")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr


def _listing(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else b"dir"
            for p in sorted(directory.rglob("*"))}


def test_output_in_an_input_directory_is_refused(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.txt").write_bytes(page.read_bytes())
    before = _listing(pages)
    # the next run over pages/ would read articles.jsonl and rejects.jsonl as inputs
    for out in (pages, pages / "out"):
        one_line_error(cli("run", str(pages), "--out", str(out), "--model", str(model_path)), 5,
                       f"error: {out}: ", "input directory")
        assert _listing(pages) == before  # nothing written, not even a lock


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_inputs_are_refused_at_once(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    fifo = tmp_path / "pages.txt"
    os.mkfifo(fifo)
    for path in [fifo] + [Path(d) for d in ("/dev/zero",) if Path(d).exists()]:
        # a regression blocks on the FIFO while holding the lock, or reads 2 GiB: fail, do not hang
        done = cli("run", str(page), str(path), "--out", str(tmp_path / "o"), "--model", str(model_path),
                   timeout=90)
        one_line_error(done, 2, f"error: {path}: ", "not a regular file")
        assert not [p for p in (tmp_path / "o").iterdir() if not p.name.startswith(".")]


def test_a_lock_symlink_is_refused_and_its_target_untouched(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"not yours\n")
    out = tmp_path / "o"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    one_line_error(cli("run", str(page), "--out", str(out), "--model", str(model_path)), 5,
                   f"error: {out / '.lock'}: ", "symlink")
    assert victim.read_bytes() == b"not yours\n"
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_full_disk_is_one_line_exit_5(model_path: Path, tmp_path: Path, page: Path) -> None:  # noqa: F811
    out = tmp_path / "o"
    done = cli("run", str(page), "--out", str(out), "--model", str(model_path),
               env=full_disk_env(tmp_path, out))
    one_line_error(done, 5, f"error: {out}", "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no staging directory, no partial file
