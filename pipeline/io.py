"""All file I/O: reading inputs safely and writing outputs atomically.

Stages never touch files; they take and return records. Outputs are written to a temporary
file in the destination directory, flushed, fsynced and renamed into place, so a reader (or a
crash) only ever sees the old file or the whole new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import InputError, OutputError

MAX_INPUT_BYTES = 2 * 1024**3


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def real_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """``os.path.realpath`` of each path, resolving each directory once.

    ``Path.resolve`` walks every component of every file (about 0.3 s per 6,000 pages, paid
    twice per run); a file's real path is its directory's real path plus its name unless the
    file itself is a symlink, which one ``lstat`` tells.
    """
    dirs: dict[str, str] = {}
    out: list[str] = []
    for path in paths:
        text = os.fspath(path)
        head, name = os.path.split(text)
        if name in ("", ".", ".."):
            out.append(os.path.realpath(text))
            continue
        real_dir = dirs.get(head)
        if real_dir is None:
            real_dir = dirs[head] = os.path.realpath(head or os.curdir)
        full = os.path.join(real_dir, name)
        out.append(os.path.realpath(full) if os.path.islink(full) else full)
    return out


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a regular file, read in chunks (anything else is an :class:`InputError`)."""
    digest = hashlib.sha256()
    with _input_errors(path), _open_input(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for the error message."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "an unknown kind of file"


def _require_regular(mode: int, path: Path) -> None:
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a file (pass the files inside it)", file=str(path))
    if not stat.S_ISREG(mode):
        raise InputError(f"not a regular file ({_file_kind(mode)}); inputs must be files",
                         file=str(path))


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (symlinks followed).

    Why: opening a FIFO for reading blocks until someone writes to it (a run would hang holding
    the output lock), and a device such as /dev/zero never ends. The kind is checked before the
    file is opened, and again on the descriptor (opened non-blocking, so a FIFO swapped in
    between cannot block either). OS errors propagate; :func:`_input_errors` names them.
    """
    _require_regular(os.stat(path).st_mode, path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _require_regular(os.fstat(fd).st_mode, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_input(path: Path) -> IO[bytes]:
    """A binary file object over :func:`open_regular` (the descriptor closed if wrapping fails)."""
    fd = open_regular(path)
    try:
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def _input_errors(path: Path) -> Iterator[None]:
    """Turn every OS problem reading ``path`` into an :class:`InputError` naming it."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError):
        raise InputError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file (pass the files inside it)", file=str(path)) from None
    except PermissionError:
        raise InputError("permission denied", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None


def read_bytes(path: Path) -> bytes:
    """Read an input file, turning every OS problem into an :class:`InputError` naming it."""
    with _input_errors(path), _open_input(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_INPUT_BYTES:
            raise InputError(f"file is too large ({size} bytes; limit {MAX_INPUT_BYTES})", file=str(path))
        # a regular file's size is known: asking for 2 GiB would allocate (and map) that much
        # first, a third of the time of reading a small page; one byte more tells if it grew
        data = handle.read(size + 1)
        if len(data) > size:  # bounded even where the file grows while it is read
            data += handle.read(MAX_INPUT_BYTES + 1 - len(data))
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(f"file is too large (over {MAX_INPUT_BYTES} bytes)", file=str(path))
        return data


def decode_text(data: bytes, file: str) -> str:
    """Decode input bytes as UTF-8 (BOM allowed) or BOM-marked UTF-16; anything else is an error.

    Binary data (NUL bytes) and text that is not UTF-8 are refused with the line of the first
    bad byte rather than guessed at, so nothing is silently mis-decoded.
    """
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if utf16:
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-16 text: {exc.reason}", file=file) from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if _looks_utf16(data):
                raise InputError("UTF-16 text without a byte-order mark; re-save the file as UTF-8",
                                 file=file, line=1) from None
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(
                f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "re-save the file as UTF-8", file=file, line=line) from None
    nul = text.find("\x00")
    if nul >= 0:
        if _looks_utf16(data):
            raise InputError("UTF-16 text without a byte-order mark; re-save the file as UTF-8",
                             file=file, line=1)
        raise InputError("binary data (NUL byte), not a text file", file=file,
                         line=text.count("\n", 0, nul) + 1)
    # in UTF-8 these bytes only ever encode the control characters themselves, so deleting them
    # from the bytes (C speed) tells whether the regex needs to look at all
    control = _CONTROL.search(text) if utf16 or len(data.translate(None, _CONTROL_BYTES)) != len(data) \
        else None
    if control:
        raise InputError(f"binary data (control character 0x{ord(control.group()):02x}), "
                         "not a text file", file=file, line=text.count("\n", 0, control.start()) + 1)
    return text


# C0 control characters that never occur in text (tab, newlines, VT, FF and CR are allowed).
_CONTROL = re.compile("[\x01-\x08\x0e-\x1f]")
_CONTROL_BYTES = bytes(range(0x01, 0x09)) + bytes(range(0x0e, 0x20))


def _looks_utf16(data: bytes) -> bool:
    """Mostly-ASCII UTF-16 has a NUL in every other byte: name it rather than call it binary."""
    sample = data[:4096]
    if len(sample) < 4:
        return False
    for half in (sample[0::2], sample[1::2]):
        if half.count(0) >= 0.9 * len(half):
            return True
    return False


def read_text(path: Path) -> str:
    """Read and decode one text input file."""
    return decode_text(read_bytes(path), str(path))


def json_objects(path: Path, what: str = "a JSON object") -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a JSONL file; a line that is not valid
    JSON, or not an object, is an InputError naming the file and line (``what`` says what was
    expected)."""
    import json

    for lineno, line in enumerate(read_text(Path(path)).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", file=str(path), line=lineno) from None
        if not isinstance(record, dict):
            raise InputError(f"expected {what} per line", file=str(path), line=lineno)
        yield lineno, record


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w", *, label: str | None = None) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was; an OS error
    (a full disk, a read-only filesystem, no permission), whether from the caller's writes or
    from the flush, fsync or rename, becomes an :class:`OutputError` naming ``label`` (default
    ``path``), so every command that writes reports it in one line with exit code 5. The
    temporary file is created afresh (``O_EXCL | O_NOFOLLOW``), never through a planted name.
    """
    path = Path(path)
    name = label if label is not None else str(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror or exc}", file=name) from None
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else "\n"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write: {exc.strerror or exc}", file=name) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_writer(path) as handle:
        handle.write(text)


def write_lines_atomic(path: Path, lines: Iterable[str]) -> int:
    """Write one line per item (newline-terminated) atomically; returns the count written."""
    count = 0
    with atomic_writer(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
            count += 1
    return count
