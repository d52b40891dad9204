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
from .records import Article

# Version of the output directory's layout (run.json "output_format"): raised when a change to
# articles.jsonl or run.json would mislead a reader of older runs (``hsj-pipeline compare``).
OUTPUT_FORMAT = 1
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
    into place) and ``encode`` (in the forked child encoding part of articles.jsonl, before each
    chunk). Only the kill-mid-write tests set it; otherwise it is one environment lookup.
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
# From this many articles (and with jobs > 1) a forked child encodes part of articles.jsonl while
# this process renders the report and then encodes the rest. Below it the fork and the pages it
# copies cost more than they save (at 10k: +0.07 s CPU for -0.04 s).
PARALLEL_MIN_ARTICLES = 20_000


def _blocks(records: Sequence[Any], start: int, stop: int) -> Iterator[bytes]:
    """UTF-8 blocks of newline-terminated JSON lines for ``records[start:stop]``."""
    for i in range(start, stop, BLOCK_RECORDS):
        yield _encode_block(records[i:min(i + BLOCK_RECORDS, stop)])


try:  # a third of the time of json's own C encoder on article lines (0.28 s against 0.92 s at 100k)
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - a declared dependency; without it, the exact path only
    _orjson_dumps = None
if _orjson_dumps is not None and _orjson_dumps([1e16, 1e22]) != b"[1e+16,1e+22]":  # pragma: no cover
    _orjson_dumps = None  # before 3.12 orjson wrote 1e16: then the exact path only

# Where orjson (3.12 on) may spell a float otherwise than json.dumps: magnitudes below 1e-4,
# which json writes as 1e-05 and orjson as 0.00001 (or 1e-7 for 1e-07). Either form anywhere in
# a block -- a float, or text that merely looks like one -- has the block encoded again by
# ``to_json``, so the bytes never differ.
_DIGITS = frozenset(b"0123456789")


def _floats_spelled_alike(block: bytes) -> bool:
    """No "0.0000" and no "<digit>e-<digit>" in ``block`` (a find loop: 100x a regex here)."""
    if b"0.0000" in block:
        return False
    find, digits = block.find, _DIGITS
    at = find(b"e-", 1)
    while at >= 0:
        if block[at - 1] in digits and at + 2 < len(block) and block[at + 2] in digits:
            return False
        at = find(b"e-", at + 2)
    return True


def _finite_floats(article: Article) -> bool:
    """Whether the float fields are finite numbers (orjson writes NaN and infinities as null,
    json.dumps as NaN and Infinity). Any other type or a missing value: False (exact path)."""
    try:
        total = article.cluster_score + article.confidence + sum(article.scores.values())
        if article.amounts:
            total += sum(article.amounts)
        return total - total == 0.0
    except Exception:  # noqa: BLE001 - None or an odd type: let to_json decide
        return False


def _encode_block(records: Sequence[Any]) -> bytes:
    """Newline-terminated JSON lines, byte for byte ``record.to_json()`` of each record of the
    declared field types (every record the stages make).

    Articles with finite floats are encoded by orjson, which spells strings, integers and
    containers as json.dumps does (``ensure_ascii=False``, no spaces) and floats too except for
    the forms :func:`_floats_spelled_alike` catches; anything else, or anything orjson refuses (a
    lone surrogate, an integer beyond 64 bits, a key that is not a string), goes through
    ``to_json``. A field of an undeclared type that orjson encodes but json.dumps cannot (a
    dataclass, a datetime) or spells as valid JSON (NaN as null) still gives a valid JSON line.
    Tested against ``to_json`` on generated records of every kind.
    """
    if _orjson_dumps is not None:
        lines: list[bytes] = []
        for record in records:
            if type(record) is Article and _finite_floats(record):
                try:
                    lines.append(_orjson_dumps(record))
                    continue
                except Exception:  # noqa: BLE001 - to_json gives the right line or the right error
                    pass
            lines.append(record.to_json().encode("utf-8"))
        lines.append(b"")
        block = b"\n".join(lines)
        if _floats_spelled_alike(block):
            return block
    text = [record.to_json() for record in records]
    text.append("")
    return "\n".join(text).encode("utf-8")


def _write_blocks(handle: IO[bytes], blocks: Iterable[bytes], digest: Any) -> None:
    """Write and hash at once, so the 100 MB file is never read back for its checksum."""
    for block in blocks:
        digest.update(block)
        handle.write(block)


class _ArticleLines:
    """``articles.jsonl`` encoded by this process and, when it pays, one forked child.

    The chunks of records are shared out on demand (:class:`SharedChunks`): the child starts at
    once (:meth:`start`) and encodes chunks from the front, handing each over as it is made;
    this process does its other work (the report), then writes the child's chunks in order as
    they arrive and encodes chunks from the back whenever the next one is not there yet. Whoever
    is faster does more, so the two finish together. A chunk a failed child did not deliver is
    encoded here: the file is the same either way.
    """

    def __init__(self, articles: Sequence[Any], jobs: int) -> None:
        from .backends.forked import SharedChunks, can_fork

        self.articles = articles
        self.pid = os.getpid()
        self.parallel = jobs > 1 and len(articles) >= PARALLEL_MIN_ARTICLES and can_fork()
        self.size = max(BLOCK_RECORDS, -(-len(articles) // SharedChunks.MAX_CHUNKS))
        self.starts = range(0, len(articles), self.size)
        self.shared: Any = None

    def _encode(self, index: int) -> bytes:
        if os.getpid() != self.pid:
            _test_pause("encode")  # in the forked child
        start = self.starts[index]
        return b"".join(_blocks(self.articles, start, min(start + self.size, len(self.articles))))

    def start(self) -> None:
        if self.parallel:
            from .backends.forked import SharedChunks

            self.shared = SharedChunks(len(self.starts), self._encode, children=1, raw=True)

    def write(self, handle: IO[bytes], digest: Any) -> None:
        """Every line, in order, into ``handle`` (and ``digest``)."""
        if self.shared is None:
            _write_blocks(handle, _blocks(self.articles, 0, len(self.articles)), digest)
            return
        shared, self.shared = self.shared, None
        _write_blocks(handle, shared.in_order(), digest)

    def cancel(self) -> None:
        """Stop the child if the parent gives up before collecting it."""
        if self.shared is not None:
            self.shared.cancel()
            self.shared = None


def write_outputs(result: Any, out_dir: Path) -> dict[str, Path]:
    """Write every output whole into a staging directory, mark it complete, then publish it.

    Large runs overlap work: a forked child encodes chunks of ``articles.jsonl`` while this
    process renders the report and writes the other files, then both encode what is left (see
    :class:`_ArticleLines`).
    Checksums are taken from the bytes as they are written. Nothing is published until every
    file is staged and ``COMPLETE`` is marked.
    """
    import hashlib
    import json

    import joblib

    from .io import atomic_writer, sha256_file, write_text_atomic
    from .report import render_report

    out_dir = Path(out_dir)
    with _staging(out_dir) as stage:
        lines = _ArticleLines(result.articles, int(result.manifest.get("jobs") or 1))
        digests: dict[str, str] = {}
        try:
            _test_pause("write")
            lines.start()
            # this process's other work first, while the child encodes from the front (all of
            # it before articles.jsonl: whatever is left after that file runs with a core idle)
            result.manifest["finished"] = _now()
            report = render_report(result).encode("utf-8")
            if result.vectoriser is not None:
                with atomic_writer(stage / "vectoriser.joblib", "wb") as vectoriser:
                    joblib.dump(result.vectoriser, vectoriser)
            _test_pause("write")
            with atomic_writer(stage / "rejects.jsonl", "wb") as handle:
                digest = hashlib.sha256()
                _write_blocks(handle, _blocks(result.rejects, 0, len(result.rejects)), digest)
            digests["rejects.jsonl"] = digest.hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "report.html", "wb") as handle:
                handle.write(report)
            digests["report.html"] = hashlib.sha256(report).hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "articles.jsonl", "wb") as handle:
                digest = hashlib.sha256()
                lines.write(handle, digest)
            digests["articles.jsonl"] = digest.hexdigest()
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
