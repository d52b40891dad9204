"""Outputs appear whole or not at all, concurrent runs never mix, leftovers are tidied.

The writer is exercised in subprocesses that are SIGKILLed at chosen points (the
``HSJ_TEST_PAUSE`` hook in pipeline/outputs.py makes it wait there), with synthetic results so the
tests do not depend on the stages' speed.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.backends.forked import can_fork
from pipeline.errors import OutputError
from pipeline.run import (COMPLETE_MARKER, OUTPUT_FILES, STAGING_PREFIX, OutputLock, check_output_dir,
                          remove_leftovers)

# Writes a synthetic result of N articles whose headlines carry TAG, under the lock, like run().
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.config import Config
    from pipeline.records import Article, Reject
    from pipeline import outputs
    from pipeline.run import OutputLock, RunResult, remove_leftovers, write_outputs

    out, tag, n, jobs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    outputs.PARALLEL_MIN_ARTICLES = 100  # with jobs > 1, a forked child encodes part of the articles
    arts = [Article(id=f"{i:016x}", headline=f"{tag} headline {i}", systems=["X ICS"], category="finance",
                    confidence=0.9, uncertain=False, cluster=0) for i in range(n)]
    result = RunResult(articles=arts, rejects=[Reject(file="p", line=1, reason=tag)], clusters=[],
                       counts={}, timings={"parse": 0.0}, manifest={"tag": tag, "jobs": jobs},
                       config=Config(), inputs=[])
    with OutputLock(out):
        remove_leftovers(out)
        print("locked", flush=True)
        write_outputs(result, out)
    print("done", flush=True)
""")


def _writer(out: Path, tag: str, n: int = 200, pause: str | None = None, jobs: int = 1) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("HSJ_TEST_PAUSE", None)
    if pause:
        env["HSJ_TEST_PAUSE"] = pause
    return subprocess.Popen([sys.executable, "-c", WRITER, str(out), tag, str(n), str(jobs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _write(out: Path, tag: str, n: int = 200, jobs: int = 1) -> None:
    proc = _writer(out, tag, n, jobs=jobs)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def _snapshot(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
            if not p.name.startswith(".")}


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the writer")


def _staging_dirs(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_writes_the_whole_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out, "first")
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {"articles.jsonl", "rejects.jsonl", "report.html", "run.json"}
    assert (out / "articles.jsonl").read_text().count("\n") == 200
    assert not _staging_dirs(out)


@pytest.mark.slow
def test_killed_while_writing_leaves_previous_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out, "first")
    before = _snapshot(out)
    proc = _writer(out, "second", pause="write:30")
    assert proc.stdout.readline().strip() == "locked"
    _wait_for(lambda: bool(_staging_dirs(out)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _snapshot(out) == before  # old set intact, nothing partial under an output name
    assert "first headline" in (out / "articles.jsonl").read_text()
    # the next run tidies the incomplete staging directory and publishes its own set
    _write(out, "third")
    assert not _staging_dirs(out)
    assert "third headline" in (out / "articles.jsonl").read_text()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_killed_mid_file_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out, "first", n=10)
    before = _snapshot(out)
    proc = _writer(out, "second", n=400_000)  # big enough to be killed inside articles.jsonl
    assert proc.stdout.readline().strip() == "locked"
    _wait_for(lambda: any(d.iterdir() for d in _staging_dirs(out)) if _staging_dirs(out) else False)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _snapshot(out) == before
    actions = remove_leftovers(out)
    assert actions and actions[0].startswith("removed incomplete")
    assert not _staging_dirs(out)


@pytest.mark.slow
@pytest.mark.skipif(not can_fork(), reason="the forked encoder is Linux-only")
def test_killed_while_its_child_encodes_frees_the_lock_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out, "first")
    before = _snapshot(out)
    # the child encoding the tail of articles.jsonl sleeps; the parent writes the head, then waits
    proc = _writer(out, "second", n=2000, pause="encode:60", jobs=2)
    assert proc.stdout.readline().strip() == "locked"
    _wait_for(lambda: any(p.name.startswith(".articles.jsonl.") for d in _staging_dirs(out) for p in d.iterdir()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the child inherited the lock's descriptor; it dies with its parent instead of holding it 60 s
    _wait_for(lambda: _lock_is_free(out), timeout=10)
    assert _snapshot(out) == before
    _write(out, "third", n=2000, jobs=2)  # and a two-process write after it is whole
    lines = (out / "articles.jsonl").read_text().splitlines()
    assert len(lines) == 2000 and all("third headline" in line for line in lines)
    assert not _staging_dirs(out)


def _lock_is_free(out: Path) -> bool:
    try:
        with OutputLock(out):
            return True
    except OutputError:
        return False


@pytest.mark.slow
def test_killed_while_publishing_is_completed_by_next_start(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out, "first")
    proc = _writer(out, "second", pause="publish:30")
    assert proc.stdout.readline().strip() == "locked"
    _wait_for(lambda: any((d / COMPLETE_MARKER).exists() for d in _staging_dirs(out)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert "first headline" in (out / "articles.jsonl").read_text()  # nothing renamed yet
    actions = remove_leftovers(out)
    assert actions and actions[0].startswith("completed publication")
    # the complete staged set was published as a whole: every file is from the second run
    assert "second headline" in (out / "articles.jsonl").read_text()
    assert '"tag": "second"' in (out / "run.json").read_text()
    assert "second" in (out / "rejects.jsonl").read_text()
    assert not _staging_dirs(out)


@pytest.mark.slow
def test_concurrent_run_is_refused_and_outputs_not_mixed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _writer(out, "first", pause="write:1")
    assert first.stdout.readline().strip() == "locked"
    with pytest.raises(OutputError, match=rf"in use by another run \(pid {first.pid}\)"):
        with OutputLock(out):
            pass
    second = _writer(out, "second")
    _, err = second.communicate(timeout=60)
    assert second.returncode != 0 and "in use by another run" in err
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    text = (out / "articles.jsonl").read_text()
    assert "first headline" in text and "second" not in text
    # once the first has finished, the directory is free again
    with OutputLock(out):
        pass


def test_lock_is_released_when_holder_dies(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _writer(out, "x", pause="write:30")
    assert proc.stdout.readline().strip() == "locked"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with OutputLock(out):  # the kernel drops a dead process's flock
        pass


def test_output_path_checks(tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="existing file"):
        check_output_dir(page, [page])
    with pytest.raises(OutputError, match="overwrite the input articles.jsonl"):
        (tmp_path / "articles.jsonl").write_text("{}\n", encoding="utf-8")
        check_output_dir(tmp_path, [tmp_path / "articles.jsonl"])
    assert check_output_dir(tmp_path / "new", [page]) == tmp_path / "new"
    # an input reached through a symlink is still protected
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "page.txt").symlink_to(tmp_path / "articles.jsonl")
    with pytest.raises(OutputError, match="overwrite the input articles.jsonl"):
        check_output_dir(tmp_path, [tmp_path / "in" / "page.txt"])
    with pytest.raises(OutputError, match="same as an input"):
        check_output_dir(tmp_path / "in" / ".." / "in", [tmp_path / "in"])
    assert set(OUTPUT_FILES) >= {"articles.jsonl", "rejects.jsonl", "run.json", "report.html"}


def test_unwritable_output_dir_is_one_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocked = Path("/proc/hsj-cannot-create")  # root ignores permission bits
    else:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        blocked = locked / "out"
    with pytest.raises(OutputError, match="cannot create or write the output directory"):
        with OutputLock(blocked):
            pass
