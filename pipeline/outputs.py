"""The output directory: checks, lock, crash-safe staging and publication of one run's files.

Why a module of its own: writing is a stage with its own guarantees (every file written whole
into a hidden staging directory, then renamed into place with ``run.json`` last; a lock against
concurrent runs; leftovers of killed runs tidied) and its own speed budget, separate from the job
that computes the records.
"""
from __future__ import annotations

import contextlib
import errno
import hmac
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .errors import OutputError
from .io import real_paths

# Version of the output directory's layout (run.json "output_format"): raised when a change to
# articles.jsonl or run.json would mislead a reader of older runs (``hsj-pipeline compare``).
OUTPUT_FORMAT = 1
OUTPUT_FILES = ("articles.jsonl", "rejects.jsonl", "report.html", "vectoriser.joblib", "run.json")
LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"
COMPLETE_MARKER = "COMPLETE"
# JSON lines encoded and written at a time: large enough to amortise the join, small enough to stream
LINES_PER_BLOCK = 1024


def utc_now() -> str:
    """The time now in UTC to the second (ISO 8601): the ``started``/``finished`` stamps of run.json."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_output_dir(out_dir: Path, inputs: Sequence[Path], model: Path | None = None, *,
                     input_dirs: Sequence[Path] = ()) -> Path:
    """Refuse an output location that is a file, is an input, would overwrite one, or lies in a
    directory given as input (``input_dirs``: the next run over it would read the outputs as
    inputs). Real paths are compared: the user's own symlinks are resolved, nothing is created."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output path is an existing file, not a directory", file=str(out_dir))
    resolved = os.path.realpath(out_dir)
    for directory in input_dirs:
        real = os.path.realpath(directory)
        if resolved == real or resolved.startswith(real.rstrip(os.sep) + os.sep):
            raise OutputError(f"output directory is inside the input directory {directory} (the next run "
                              "would read the outputs as inputs); choose another --out", file=str(out_dir))
    for name in OUTPUT_FILES:
        _refuse_directory(out_dir / name)
    written = {os.path.join(resolved, name) for name in OUTPUT_FILES}
    protected = list(inputs) + ([model] if model else [])
    for path in real_paths(protected):
        if path == resolved:
            raise OutputError("output path is the same as an input", file=str(out_dir))
        if path in written:
            raise OutputError(f"output would overwrite the input {os.path.basename(path)}; "
                              "choose another --out", file=path)
    return out_dir


def _refuse_directory(path: Path, dir_fd: int | None = None) -> None:
    """A directory where an output file goes is someone's: it is not replaced or emptied."""
    try:
        info = os.stat(path.name if dir_fd is not None else path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise OutputError("is a directory where an output file goes; move it or choose another --out",
                          file=str(path))


# Only what this program provably made is ever removed or published from --out: a staging
# directory is ours when its name is recorded in the lock file with a random token (the lock
# file is written by this program alone, under the lock) and the real directory of that name
# holds an OWNER_MARKER file with the same token, made with O_EXCL | O_NOFOLLOW. Everything else
# there -- a user's ``.staging-x`` or ``.notes.tmp``, a symlink, a forged COMPLETE -- is left alone.
OWNER_MARKER = ".owner"
_RECORD = "staging"
_STAGING_NAME = re.compile(r"\.staging-[0-9]+-[0-9a-f]{8}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_LOCK_BYTES = 1 << 16
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# locks this process holds, by the output directory's (device, inode): write_outputs and
# remove_leftovers use the one held instead of asking for a second (flock would refuse it)
_held: dict[tuple[int, int], OutputLock] = {}


class OutputLock:
    """Exclusive non-blocking ``flock`` on ``out_dir/.lock``, released on exit (or process death).

    The lock file is opened without following a symlink, and must be a regular file with no other
    link: it is written (the holder's pid, then the staging directories in flight with their
    tokens), so a planted link would have this program overwrite someone else's file. What a
    killed run recorded is read before it is replaced (``previous``) for :func:`remove_leftovers`.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self.dir_fd: int | None = None
        self.previous: list[tuple[str, str]] = []  # staging records of killed runs, not yet tidied
        self._staged: list[tuple[str, str]] = []  # this run's staging directories
        self._fd: int | None = None
        self._pid = os.getpid()
        self._key: tuple[int, int] | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.dir_fd = os.open(self.out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise OutputError(f"cannot create or write the output directory: {exc.strerror or exc}",
                              file=str(self.out_dir)) from None
        try:
            self._fd = self._open_lock_file()
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").split("\n")[0].strip()
                raise OutputError(f"output directory is in use by another run (pid {holder or 'unknown'})",
                                  file=str(self.out_dir)) from None
            self.previous = _parse_records(os.pread(self._fd, _LOCK_BYTES, 0))
            self._save()
        except BaseException:
            self._close()
            raise
        info = os.fstat(self.dir_fd)
        self._key = (info.st_dev, info.st_ino)
        _held[self._key] = self
        return self

    def _open_lock_file(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(LOCK_NAME, flags, 0o644, dir_fd=self.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError("is a symlink; this program never writes through one (remove it if "
                                  "it is not yours)", file=str(self.path)) from None
            if exc.errno in (errno.EISDIR, errno.ENXIO):
                raise OutputError("is not a regular file; remove it if it is not yours",
                                  file=str(self.path)) from None
            raise OutputError(f"cannot create or write the output directory: {exc.strerror or exc}",
                              file=str(self.out_dir)) from None
        info = os.fstat(fd)
        problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode) else
                   "has other links (a hard link to another file); this program never writes "
                   "through one" if info.st_nlink != 1 else None)
        if problem:
            os.close(fd)
            raise OutputError(f"{problem}; remove it if it is not yours", file=str(self.path))
        return fd

    def _save(self) -> None:
        """Rewrite the lock file: pid, then every staging directory that may still exist."""
        text = f"{os.getpid()}\n" + "".join(f"{_RECORD} {name} {token}\n"
                                            for name, token in self.previous + self._staged)
        data = text.encode("ascii")
        try:  # written before truncating: an interrupted rewrite leaves records, never loses them
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))
        except OSError as exc:
            raise OutputError(f"cannot write: {exc.strerror or exc}", file=str(self.path)) from None

    def stage(self, name: str, token: str) -> None:
        """Record a staging directory about to be made (before it exists: none goes unrecorded)."""
        self._staged.append((name, token))
        self._save()

    def unstage(self, name: str) -> None:
        """Forget a staging directory that has been removed."""
        self._staged = [record for record in self._staged if record[0] != name]
        self._save()

    def recover(self) -> list[str]:
        """Finish or remove the staging directories killed runs recorded; what was done, one line each."""
        actions = [action for name, token in self.previous
                   if (action := _recover(self.out_dir, self.dir_fd, name, token))]
        self.previous = []  # recovered, gone, or not provably ours: forgotten either way
        self._save()
        return actions

    def _close(self) -> None:
        for fd in (self._fd, self.dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing releases the lock; the file stays (removing it races)
        self._fd = self.dir_fd = None

    def __exit__(self, *exc: object) -> None:
        if self._key is not None and _held.get(self._key) is self:
            del _held[self._key]
        self._close()


def _parse_records(data: bytes) -> list[tuple[str, str]]:
    """The ``staging NAME TOKEN`` lines of a lock file; anything malformed is ignored."""
    records = []
    for line in data.decode("ascii", "replace").splitlines()[1:]:
        parts = line.split()
        if (len(parts) == 3 and parts[0] == _RECORD and _STAGING_NAME.fullmatch(parts[1])
                and _TOKEN.fullmatch(parts[2])):
            records.append((parts[1], parts[2]))
    return records


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[OutputLock]:
    """The lock this process holds on ``out_dir``, or one taken for the duration."""
    try:
        info = os.stat(out_dir)
        held = _held.get((info.st_dev, info.st_ino))
    except OSError:
        held = None
    if held is not None and held._pid == os.getpid():
        yield held
        return
    with OutputLock(out_dir) as lock:
        yield lock


def _owned_by_token(dir_fd: int, token: str) -> bool:
    """Whether the directory holds our owner marker with ``token`` (a regular file, not a link)."""
    try:
        fd = os.open(OWNER_MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        return hmac.compare_digest(os.read(fd, 64), token.encode("ascii"))
    finally:
        os.close(fd)


def _is_regular(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _remove_staging(out_fd: int, name: str, stage_fd: int) -> None:
    """Delete our staging directory ``name``, if that name still is the directory we hold."""
    held = os.fstat(stage_fd)
    with contextlib.suppress(OSError):
        now = os.stat(name, dir_fd=out_fd, follow_symlinks=False)
        if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            shutil.rmtree(name, dir_fd=out_fd)  # fd-based walk: never follows a link inside


def _recover(out_dir: Path, out_fd: int, name: str, token: str) -> str | None:
    """Finish (COMPLETE marked) or remove one recorded staging directory, if it is provably ours."""
    try:
        stage_fd = os.open(name, _DIR_FLAGS, dir_fd=out_fd)
    except OSError:
        return None  # gone, or a symlink or a file by that name now: not ours to touch
    try:
        if os.fstat(stage_fd).st_uid != os.geteuid() or not _owned_by_token(stage_fd, token):
            return None
        where = out_dir / name
        if _is_regular(COMPLETE_MARKER, stage_fd):
            _publish(stage_fd, out_fd, out_dir)
            action = f"completed publication of staging directory {where} (left by a run killed while publishing)"
        else:
            action = f"removed incomplete staging directory {where} (left by a killed run)"
        _remove_staging(out_fd, name, stage_fd)
        return action
    finally:
        os.close(stage_fd)


def remove_leftovers(out_dir: Path) -> list[str]:
    """Tidy what a killed run of this program left behind; call before writing (under the lock,
    which is taken for the call if this process does not hold it).

    A staging directory holding a ``COMPLETE`` marker was killed while publishing: its remaining
    files are whole and belong with the ones already renamed, so publication is finished (rolled
    forward). Any other staging directory of a killed run is incomplete and is deleted. Only
    directories the lock file records and whose owner marker carries the recorded token are
    touched; nothing else in ``out_dir`` is. Returns what was done, one line each.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    with _locked(out_dir) as lock:
        return lock.recover()


class _Stage:
    """This run's staging directory: its name in ``out_dir``, a descriptor of it, and a path to
    write through. On Linux the path goes through the descriptor (``/proc/self/fd/N``), so the
    files land in the directory made here even if its name in ``out_dir`` were swapped for a link."""

    def __init__(self, out_dir: Path, name: str, fd: int) -> None:
        self.name, self.fd = name, fd
        by_fd = Path(f"/proc/self/fd/{fd}")
        self.path = by_fd if by_fd.is_dir() else out_dir / name


@contextlib.contextmanager
def _staging(lock: OutputLock) -> Iterator[_Stage]:
    """A hidden directory beside the outputs (same filesystem, so renames are atomic), recorded in
    the lock file and marked with a random token, so a later run can prove it is ours."""
    token = secrets.token_hex(16)
    name = f"{STAGING_PREFIX}{os.getpid()}-{token[:8]}"
    lock.stage(name, token)
    try:
        os.mkdir(name, 0o700, dir_fd=lock.dir_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=lock.dir_fd)
    except OSError as exc:
        lock.unstage(name)
        raise OutputError(f"cannot write to the output directory: {exc.strerror or exc}",
                          file=str(lock.out_dir)) from None
    try:
        try:
            marker = os.open(OWNER_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=fd)
            try:
                os.write(marker, token.encode("ascii"))
            finally:
                os.close(marker)
        except OSError as exc:
            raise OutputError(f"cannot write to the output directory: {exc.strerror or exc}",
                              file=str(lock.out_dir)) from None
        yield _Stage(lock.out_dir, name, fd)
    finally:
        _remove_staging(lock.dir_fd, name, fd)
        os.close(fd)
        with contextlib.suppress(OutputError):
            lock.unstage(name)


def _test_pause(phase: str) -> None:
    """Test hook: ``HSJ_TEST_PAUSE=<phase>:<seconds>`` sleeps at that point of writing.

    Phases are ``write`` (before each staged file is written) and ``publish`` (before each
    rename into place). Only the kill-mid-write tests set it; otherwise it is one environment lookup.
    """
    spec = os.environ.get("HSJ_TEST_PAUSE", "")
    if spec.startswith(phase + ":"):
        time.sleep(float(spec.split(":", 1)[1]))


def _fsync_dir(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(fd)


def _make_readable(stage: Path, names: list[str]) -> None:
    """Temporary files are created 0600; outputs get the usual umask-based mode (e.g. 0644)."""
    mask = os.umask(0)
    os.umask(mask)
    for name in names:
        with contextlib.suppress(OSError):
            os.chmod(stage / name, 0o666 & ~mask)


def _publish(stage_fd: int, out_fd: int, out_dir: Path) -> dict[str, Path]:
    """Rename the staged files into place, ``run.json`` last (it names the set that is complete).

    Renames go from descriptor to descriptor, so neither a swapped staging path nor a symlink in
    ``out_dir`` redirects them (a rename replaces a link; it never writes through one).
    """
    for name in OUTPUT_FILES:  # before any rename: a refusal must not leave half a set published
        _refuse_directory(out_dir / name, out_fd)
    published: dict[str, Path] = {}
    for name in OUTPUT_FILES:
        if _is_regular(name, stage_fd):
            _test_pause("publish")
            try:
                os.replace(name, name, src_dir_fd=stage_fd, dst_dir_fd=out_fd)
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror or exc}", file=str(out_dir / name)) from None
            published[name] = out_dir / name
    _fsync_dir(out_fd)
    return published


def _write_lines(handle: IO[bytes], records: Sequence[Any], digest: Any) -> None:
    """Each record's ``to_json()`` as a line, written and hashed at once (so the 100 MB file is
    never read back for its checksum), a block of lines at a time."""
    for start in range(0, len(records), LINES_PER_BLOCK):
        lines = [record.to_json() for record in records[start:start + LINES_PER_BLOCK]]
        lines.append("")
        block = "\n".join(lines).encode("utf-8")
        digest.update(block)
        handle.write(block)


def write_outputs(result: Any, out_dir: Path) -> dict[str, Path]:
    """Write every output whole into a staging directory, mark it complete, then publish it.

    Checksums are taken from the bytes as they are written. Nothing is published until every
    file is staged and ``COMPLETE`` is marked.
    """
    import hashlib
    import json

    import joblib

    from .io import atomic_writer, sha256_file, write_text_atomic
    from .report import render_report

    out_dir = Path(out_dir)
    with _locked(out_dir) as lock, _staging(lock) as staging:
        stage = staging.path
        digests: dict[str, str] = {}
        try:
            _test_pause("write")
            result.manifest["finished"] = utc_now()
            report = render_report(result).encode("utf-8")
            if result.vectoriser is not None:
                with atomic_writer(stage / "vectoriser.joblib", "wb", label=str(out_dir / "vectoriser.joblib")) \
                        as vectoriser:
                    joblib.dump(result.vectoriser, vectoriser)
            _test_pause("write")
            with atomic_writer(stage / "rejects.jsonl", "wb", label=str(out_dir / "rejects.jsonl")) as handle:
                digest = hashlib.sha256()
                _write_lines(handle, result.rejects, digest)
            digests["rejects.jsonl"] = digest.hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "report.html", "wb", label=str(out_dir / "report.html")) as handle:
                handle.write(report)
            digests["report.html"] = hashlib.sha256(report).hexdigest()
            _test_pause("write")
            with atomic_writer(stage / "articles.jsonl", "wb", label=str(out_dir / "articles.jsonl")) as handle:
                digest = hashlib.sha256()
                _write_lines(handle, result.articles, digest)
            digests["articles.jsonl"] = digest.hexdigest()
            staged = [n for n in OUTPUT_FILES if (stage / n).exists()]
            result.manifest["outputs"] = {
                n: {"path": str(out_dir / n), "sha256": digests.get(n) or sha256_file(stage / n),
                    "bytes": (stage / n).stat().st_size} for n in staged}
            with atomic_writer(stage / "run.json", label=str(out_dir / "run.json")) as handle:
                handle.write(json.dumps(result.manifest, indent=2, ensure_ascii=False, default=str) + "\n")
            _make_readable(stage, staged + ["run.json"])
            _fsync_dir(staging.fd)
            write_text_atomic(stage / COMPLETE_MARKER, "")
        except OSError as exc:
            raise OutputError(f"cannot write the outputs: {exc.strerror or exc}", file=str(out_dir)) from None
        return _publish(staging.fd, lock.dir_fd, out_dir)
