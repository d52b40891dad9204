"""The output directory: checks, lock, crash-safe staging and publication of one run's files.

Why a module of its own: writing is a stage with its own guarantees (every file written whole
into a hidden staging directory, then renamed into place with ``run.json`` last; a lock against
concurrent runs; leftovers of killed runs tidied) and its own speed budget, separate from the job
that computes the records.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .errors import OutputError
from .io import real_paths

OUTPUT_FILES = ("articles.jsonl", "rejects.jsonl", "report.html", "vectoriser.joblib", "run.json")
LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"
COMPLETE_MARKER = "COMPLETE"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_output_dir(out_dir: Path, inputs: Sequence[Path], model: Path | None = None) -> Path:
    """Refuse an output location that is a file, is an input, or would overwrite one."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output path is an existing file, not a directory", file=str(out_dir))
    resolved = os.path.realpath(out_dir)
    written = {os.path.join(resolved, name) for name in OUTPUT_FILES}
    protected = list(inputs) + ([model] if model else [])
    for path in real_paths(protected):
        if path == resolved:
            raise OutputError("output path is the same as an input", file=str(out_dir))
        if path in written:
            raise OutputError(f"output would overwrite the input {os.path.basename(path)}; "
                              "choose another --out", file=path)
    return out_dir


class OutputLock:
    """Exclusive non-blocking ``flock`` on ``out_dir/.lock``, released on exit (or process death)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot create or write the output directory: {exc.strerror or exc}",
                              file=str(self.path.parent)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"output directory is in use by another run (pid {holder})",
                              file=str(self.path.parent)) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock; the file stays (removing it races)
            self._fd = None


def remove_leftovers(out_dir: Path) -> list[str]:
    """Tidy what a killed run left behind; call under the lock, before writing.

    A staging directory holding a ``COMPLETE`` marker was killed while publishing: its remaining
    files are whole and belong with the ones already renamed, so publication is finished (rolled
    forward). Any other staging directory, and any ``.*.tmp`` file, is incomplete and is deleted.
    Returns what was done, for the manifest.
    """
    actions: list[str] = []
    if not out_dir.is_dir():
        return actions
    for entry in sorted(out_dir.iterdir()):
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
            if (entry / COMPLETE_MARKER).is_file():
                _publish(entry, out_dir)
                actions.append(f"completed publication of {entry.name}")
            else:
                actions.append(f"removed incomplete {entry.name}")
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                actions.append(f"removed {entry.name}")
    return actions


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A hidden directory beside the outputs (same filesystem, so renames are atomic)."""
    stage = out_dir / f"{STAGING_PREFIX}{os.getpid()}"
    try:
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot write to the output directory: {exc.strerror or exc}",
                          file=str(out_dir)) from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _test_pause(phase: str) -> None:
    """Test hook: ``HSJ_TEST_PAUSE=<phase>:<seconds>`` sleeps at that point of writing.

    Phases are ``write`` (before each staged file is written), ``publish`` (before each rename
    into place) and ``encode`` (in the forked child encoding part of articles.jsonl, before it
    starts). Only the kill-mid-write tests set it; otherwise it is one environment lookup.
    """
    spec = os.environ.get("HSJ_TEST_PAUSE", "")
    if spec.startswith(phase + ":"):
        time.sleep(float(spec.split(":", 1)[1]))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_readable(stage: Path, names: list[str]) -> None:
    """Temporary files are created 0600; outputs get the usual umask-based mode (e.g. 0644)."""
    mask = os.umask(0)
    os.umask(mask)
    for name in names:
        with contextlib.suppress(OSError):
            os.chmod(stage / name, 0o666 & ~mask)


def _publish(stage: Path, out_dir: Path) -> dict[str, Path]:
    """Rename the staged files into place, ``run.json`` last (it names the set that is complete)."""
    published: dict[str, Path] = {}
    for name in OUTPUT_FILES:
        if (stage / name).exists():
            _test_pause("publish")
            try:
                os.replace(stage / name, out_dir / name)
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror or exc}", file=str(out_dir / name)) from None
            published[name] = out_dir / name
    _fsync_dir(out_dir)
    return published


# Records per encoded block: large enough to amortise the join and encode, small enough to stream.
BLOCK_RECORDS = 1024
# From this many articles (and with jobs > 1) a forked child encodes the tail of articles.jsonl
# while this process encodes the head and renders the report. Below it the fork and the pages it
# copies cost more than they save (at 10k: +0.07 s CPU for -0.04 s). The head is the smaller share
# as the report (about a quarter of the encoding time at 100k) is this process's too; the child,
# for its part, pays for copying the pages it touches (copy-on-write), so the two end together.
PARALLEL_MIN_ARTICLES = 20_000
HEAD_SHARE = 0.45
_PART_NAME = ".articles.part.tmp"


def _blocks(records: Sequence[Any], start: int, stop: int) -> Iterator[bytes]:
    """UTF-8 blocks of newline-terminated JSON lines for ``records[start:stop]``."""
    for i in range(start, stop, BLOCK_RECORDS):
        lines = [r.to_json() for r in records[i:min(i + BLOCK_RECORDS, stop)]]
        lines.append("")
        yield "\n".join(lines).encode("utf-8")


def _write_blocks(handle: IO[bytes], blocks: Iterable[bytes], digest: Any) -> None:
    """Write and hash at once, so the 100 MB file is never read back for its checksum."""
    for block in blocks:
        digest.update(block)
        handle.write(block)


def _die_with_parent(parent: int) -> None:
    """In a forked child: be killed when the parent dies (it holds the output lock's descriptor too)."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _encode_part(records: Sequence[Any], start: int, stop: int, path: Path, parent: int) -> int:
    """The forked child's work: ``records[start:stop]`` encoded into ``path``; returns its bytes."""
    import gc

    gc.disable()  # a collection would touch (and so copy) every page inherited from the parent
    _die_with_parent(parent)
    _test_pause("encode")
    size = 0
    with open(path, "wb") as handle:
        for block in _blocks(records, start, stop):
            handle.write(block)
            size += len(block)
    return size


class _ArticleLines:
    """``articles.jsonl`` written in two parts when it pays, the tail by a forked child.

    The child starts at once (:meth:`start`); the parent writes the head (:meth:`write_head`), is
    free to do other work, then appends the tail (:meth:`write_tail`), read back from the child's
    part file in the staging directory. If the child fails, the parent encodes the tail itself:
    the file is the same either way.
    """

    def __init__(self, articles: Sequence[Any], stage: Path, jobs: int) -> None:
        from .backends.forked import can_fork

        self.articles = articles
        self.part = stage / _PART_NAME
        parallel = jobs > 1 and len(articles) >= PARALLEL_MIN_ARTICLES and can_fork()
        self.mid = int(len(articles) * HEAD_SHARE) if parallel else len(articles)
        self.child: Any = None

    def start(self) -> None:
        if self.mid < len(self.articles):
            from .backends.forked import Forked

            parent, n = os.getpid(), len(self.articles)
            self.child = Forked(lambda: _encode_part(self.articles, self.mid, n, self.part, parent))

    def write_head(self, handle: IO[bytes], digest: Any) -> None:
        _write_blocks(handle, _blocks(self.articles, 0, self.mid), digest)

    def write_tail(self, handle: IO[bytes], digest: Any) -> None:
        if self.child is None:
            return
        from .backends.forked import ForkFailed

        try:
            size = self.child.result()
            if self.part.stat().st_size != size:
                raise ForkFailed("part file has the wrong size")
        except (ForkFailed, OSError):  # encode the tail here: same bytes
            _write_blocks(handle, _blocks(self.articles, self.mid, len(self.articles)), digest)
        else:
            with open(self.part, "rb") as part:
                _write_blocks(handle, iter(lambda: part.read(1 << 20), b""), digest)
        finally:
            self.child = None
            with contextlib.suppress(OSError):
                self.part.unlink()

    def cancel(self) -> None:
        """Stop the child if the parent gives up before collecting it."""
        if self.child is not None:
            self.child.cancel()
            self.child = None


def write_outputs(result: Any, out_dir: Path) -> dict[str, Path]:
    """Write every output whole into a staging directory, mark it complete, then publish it.

    Large runs overlap work: a forked child encodes the tail of ``articles.jsonl`` while this
    process encodes the head and renders the report. Checksums are taken from the bytes as they are
    written. Nothing is published until every file is staged and ``COMPLETE`` is marked.
    """
    import hashlib
    import json

    import joblib

    from .io import atomic_writer, sha256_file, write_text_atomic
    from .report import render_report

    out_dir = Path(out_dir)
    with _staging(out_dir) as stage:
        lines = _ArticleLines(result.articles, stage, int(result.manifest.get("jobs") or 1))
        digests: dict[str, str] = {}
        try:
            _test_pause("write")
            lines.start()
            with atomic_writer(stage / "articles.jsonl", "wb") as handle:
                digest = hashlib.sha256()
                lines.write_head(handle, digest)
                # this process's other work, while the child finishes the tail
                result.manifest["finished"] = _now()
                report = render_report(result).encode("utf-8")
                if result.vectoriser is not None:
                    with atomic_writer(stage / "vectoriser.joblib", "wb") as vectoriser:
                        joblib.dump(result.vectoriser, vectoriser)
                lines.write_tail(handle, digest)
            digests["articles.jsonl"] = digest.hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "rejects.jsonl", "wb") as handle:
                digest = hashlib.sha256()
                _write_blocks(handle, _blocks(result.rejects, 0, len(result.rejects)), digest)
            digests["rejects.jsonl"] = digest.hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "report.html", "wb") as handle:
                handle.write(report)
            digests["report.html"] = hashlib.sha256(report).hexdigest()
            staged = [n for n in OUTPUT_FILES if (stage / n).exists()]
            result.manifest["outputs"] = {
                n: {"path": str(out_dir / n), "sha256": digests.get(n) or sha256_file(stage / n),
                    "bytes": (stage / n).stat().st_size} for n in staged}
            write_text_atomic(stage / "run.json",
                              json.dumps(result.manifest, indent=2, ensure_ascii=False, default=str) + "\n")
            _make_readable(stage, staged + ["run.json"])
            _fsync_dir(stage)
            write_text_atomic(stage / COMPLETE_MARKER, "")
        except OSError as exc:
            raise OutputError(f"cannot write the outputs: {exc.strerror or exc}", file=str(out_dir)) from None
        finally:
            lines.cancel()
        return _publish(stage, out_dir)
