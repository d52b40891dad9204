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
    assert len(actions) == 1 and actions[0].startswith("removed incomplete staging directory")
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


def test_output_inside_an_input_directory_is_refused(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    page = pages / "a.txt"
    page.write_text("x", encoding="utf-8")
    for out in (pages, pages / ".", pages / "out", pages / "sub" / "deeper", tmp_path / "x" / ".." / "pages"):
        with pytest.raises(OutputError, match="input directory") as info:
            check_output_dir(out, [page], input_dirs=[pages])
        assert info.value.file == str(out)
    (tmp_path / "alias").symlink_to(pages)  # the user's own symlink to the input directory
    with pytest.raises(OutputError, match="input directory"):
        check_output_dir(tmp_path / "alias" / "out", [page], input_dirs=[pages])
    with pytest.raises(OutputError, match="input directory"):
        check_output_dir(pages / "out", [page], input_dirs=[tmp_path / "alias"])
    # beside it, or a directory whose name merely starts the same, is fine
    assert check_output_dir(tmp_path / "pages-out", [page], input_dirs=[pages]) == tmp_path / "pages-out"
    assert check_output_dir(tmp_path / "out", [page], input_dirs=[pages]) == tmp_path / "out"


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


# ---- files in --out that this program did not make ------------------------------------------------


def _tree(path: Path) -> dict[str, bytes | str]:
    """Every entry under ``path`` (not following symlinks): file bytes, or a symlink's target."""
    found: dict[str, bytes | str] = {}
    for entry in sorted(path.rglob("*")):
        key = str(entry.relative_to(path))
        if entry.is_symlink():
            found[key] = "-> " + os.readlink(entry)
        elif entry.is_file():
            found[key] = entry.read_bytes()
        else:
            found[key] = "dir"
    return found


def test_a_lock_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"a file outside --out\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with pytest.raises(OutputError, match="is a symlink") as info:
        with OutputLock(out):
            pass
    assert info.value.file == str(out / ".lock") and info.value.exit_code == 5
    assert victim.read_bytes() == b"a file outside --out\n"  # byte for byte: not truncated, no pid
    assert (out / ".lock").is_symlink()  # and left where it was
    hard = out / "hard"  # a hard link to someone's file is refused too (it would be written through)
    hard.mkdir()
    os.link(victim, hard / ".lock")
    with pytest.raises(OutputError, match="other links"):
        with OutputLock(hard):
            pass
    assert victim.read_bytes() == b"a file outside --out\n"


def test_user_files_that_look_like_leftovers_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".staging-x").mkdir(parents=True)
    (out / ".staging-x" / "notes.txt").write_bytes(b"mine")
    (out / ".staging-12345").mkdir()  # even one named like an old run's, without proof it is one
    (out / ".user.tmp").write_bytes(b"also mine")
    before = _tree(out)
    _write(out, "first")
    _write(out, "second")
    after = _tree(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert "second headline" in (out / "articles.jsonl").read_text()


def test_a_staging_symlink_to_a_complete_directory_is_not_touched(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in (COMPLETE_MARKER, "articles.jsonl", "run.json", "keep.txt"):
        (elsewhere / name).write_text(f"not yours: {name}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".staging-1").symlink_to(elsewhere)
    (out / ".staging-2").symlink_to(elsewhere / "keep.txt")
    before = _tree(elsewhere)
    with OutputLock(out):
        assert remove_leftovers(out) == []
    _write(out, "first")
    assert _tree(elsewhere) == before  # no file moved out of it or deleted
    assert (out / ".staging-1").is_symlink() and (out / ".staging-2").is_symlink()
    assert "first headline" in (out / "articles.jsonl").read_text()


def test_a_forged_complete_staging_directory_is_not_published(tmp_path: Path) -> None:
    out = tmp_path / "out"
    forged = out / ".staging-999"
    forged.mkdir(parents=True)
    for name in (COMPLETE_MARKER, *OUTPUT_FILES, ".owner"):
        (forged / name).write_text("forged\n")
    before = _tree(forged)
    with OutputLock(out):
        assert remove_leftovers(out) == []
    assert not (out / "articles.jsonl").exists()  # nothing published
    _write(out, "first")
    assert "first headline" in (out / "articles.jsonl").read_text()
    assert _tree(forged) == before


def test_a_lock_file_naming_a_directory_it_cannot_prove_is_ours_is_ignored(tmp_path: Path) -> None:
    """The proof is the token in the directory matching the one in the lock: a name alone is not."""
    out = tmp_path / "out"
    forged = out / ".staging-5-abc"
    forged.mkdir(parents=True)
    (forged / COMPLETE_MARKER).write_text("")
    (forged / "articles.jsonl").write_text("forged\n")
    (forged / ".owner").write_text("wrong-token")
    token = "0123456789abcdef" * 2
    # a recorded name that is now a symlink to a directory holding the right token and COMPLETE
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in (COMPLETE_MARKER, "articles.jsonl"):
        (elsewhere / name).write_text("not yours\n")
    (elsewhere / ".owner").write_text(token)
    (out / ".staging-6-0123abcd").symlink_to(elsewhere)
    (out / ".lock").write_text(f"5\nstaging .staging-5-abc {token}\nstaging .staging-6-0123abcd {token}\n"
                               f"staging ../elsewhere {token}\n")
    before = _tree(tmp_path)
    with OutputLock(out):
        assert remove_leftovers(out) == []
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if k != "out/.lock"} == {k: v for k, v in before.items() if k != "out/.lock"}
    assert not (out / "articles.jsonl").exists()


@pytest.mark.slow
def test_a_killed_runs_staging_is_removed_by_the_next_run_with_a_line_on_stderr(tmp_path: Path,
                                                                                  model_path: Path) -> None:
    from pipeline.run import resolve_inputs

    out = tmp_path / "out"
    _write(out, "first")
    proc = _writer(out, "second", pause="write:30")
    assert proc.stdout.readline().strip() == "locked"
    _wait_for(lambda: bool(_staging_dirs(out)))
    (staging,) = _staging_dirs(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(resolve_inputs(None)[0]), "--out",
                           str(out), "--model", str(model_path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"note: removed incomplete staging directory {staging} (left by a killed run)"]
    assert not _staging_dirs(out)
    assert "first headline" not in (out / "articles.jsonl").read_text()


def test_output_names_that_are_links_or_directories_are_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "precious.jsonl"
    victim.write_bytes(b"not yours\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "articles.jsonl").symlink_to(victim)
    _write(out, "first")  # the link is replaced by the new file; its target is not written
    assert victim.read_bytes() == b"not yours\n"
    assert not (out / "articles.jsonl").is_symlink() and "first headline" in (out / "articles.jsonl").read_text()
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    (out / "report.html" / "mine.txt").write_bytes(b"mine")
    before = {k: v for k, v in _tree(out).items() if k != ".lock"}
    with pytest.raises(OutputError, match="is a directory where an output file goes"):
        check_output_dir(out, [victim])
    proc = _writer(out, "second")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "is a directory where an output file goes" in err
    assert {k: v for k, v in _tree(out).items() if k != ".lock"} == before  # nothing of it published
    assert (out / "report.html" / "mine.txt").read_bytes() == b"mine"
