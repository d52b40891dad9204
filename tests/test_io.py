"""Input reading and atomic writing: every OS or encoding problem is an InputError naming the file."""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline.io
from pipeline.errors import InputError, OutputError
from pipeline.io import (atomic_writer, decode_text, read_bytes, read_text, sha256_file, write_lines_atomic,
                         write_text_atomic)


def test_utf8_with_and_without_bom() -> None:
    assert decode_text("£5m ‘quoted’\n".encode(), "f") == "£5m ‘quoted’\n"
    assert decode_text(b"\xef\xbb\xbf" + "£5m\n".encode(), "f") == "£5m\n"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_needs_a_bom(codec) -> None:
    text = "Kent and Medway ICS\n\n£5m deal\n"
    data = text.encode(codec)
    if codec == "utf-16":
        assert decode_text(data, "f") == text
    else:
        assert decode_text({"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec] + data, "f") == text
        with pytest.raises(InputError, match="UTF-16 text without a byte-order mark"):
            decode_text(data, "f")


def test_latin1_names_byte_and_line() -> None:
    with pytest.raises(InputError) as info:
        decode_text("line one\nline two\ncosts £5m\n".encode("latin-1"), "old.txt")
    err = info.value
    assert (err.file, err.line) == ("old.txt", 3)
    assert "0xa3" in err.message and "offset 24" in err.message
    assert str(err).startswith("old.txt:3: not UTF-8 text")


def test_broken_utf16_is_an_input_error() -> None:
    with pytest.raises(InputError, match="invalid UTF-16"):
        decode_text(b"\xff\xfe\x00\xd8", "f")  # an unpaired surrogate


@pytest.mark.parametrize("data, line, what", [
    (b"a\nb\x00c", 2, "NUL byte"),
    (b"a\nb\nc\x07d", 3, "control character 0x07"),
    (b"\x1b[31mred\x1b[0m", 1, "control character 0x1b"),
])
def test_binary_is_refused_with_line(data, line, what) -> None:
    with pytest.raises(InputError, match=what) as info:
        decode_text(data, "bin")
    assert info.value.line == line


def test_tabs_form_feeds_and_carriage_returns_are_text() -> None:
    assert decode_text(b"a\tb\r\nc\x0cd\x0be", "f") == "a\tb\r\nc\x0cd\x0be"


def test_read_errors_name_the_file(tmp_path, monkeypatch) -> None:
    with pytest.raises(InputError, match="no such file") as info:
        read_bytes(tmp_path / "missing.txt")
    assert info.value.file == str(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_bytes(tmp_path)
    path = tmp_path / "f.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="no such file"):  # a file where a directory should be
        read_bytes(path / "inside.txt")

    real_open = os.open

    def denied(name, *args: object, **kwargs: object) -> int:  # (tests may run as root: chmod denies nothing)
        if Path(name) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(InputError, match="permission denied"):
        read_bytes(path)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir() or not Path("/dev/zero").exists(),
                    reason="needs /dev/zero and /proc (Linux)")
def test_reads_are_bounded_by_the_size_limit_whatever_the_file_says(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline.io, "MAX_INPUT_BYTES", 1000)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(InputError, match="too large"):
        read_bytes(big)


def test_read_text_round_trip(tmp_path) -> None:
    path = tmp_path / "page.txt"
    path.write_bytes(b"\xef\xbb\xbfTitle ICS\r\n\r\nmoney\r\n")
    assert read_text(path) == "Title ICS\r\n\r\nmoney\r\n"


def test_atomic_writes_replace_whole_file_or_nothing(tmp_path) -> None:
    path = tmp_path / "out" / "a.jsonl"
    assert write_lines_atomic(path, ["{}", "[]"]) == 2
    assert path.read_text(encoding="utf-8") == "{}\n[]\n"

    def failing():
        yield "new"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_lines_atomic(path, failing())
    assert path.read_text(encoding="utf-8") == "{}\n[]\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.jsonl"]  # no temporary left behind
    write_text_atomic(path, "£\n")
    assert path.read_bytes() == "£\n".encode()


@pytest.mark.parametrize("code", [*range(0x01, 0x09), *range(0x0e, 0x20)])
def test_every_control_character_is_refused_in_utf8_and_utf16(code: int) -> None:
    text = f"caf\u00e9 \u2019ok\u2019\nline {chr(code)} two\n"
    for data in (text.encode("utf-8"), text.encode("utf-8-sig"), text.encode("utf-16")):
        with pytest.raises(InputError, match=f"control character 0x{code:02x}"):
            decode_text(data, "f.txt")


@pytest.mark.parametrize("code", [0x09, 0x0a, 0x0b, 0x0c, 0x0d])
def test_whitespace_controls_are_text(code: int) -> None:
    assert decode_text(f"caf\u00e9{chr(code)}x".encode(), "f.txt") == f"caf\u00e9{chr(code)}x"


def test_real_paths_match_realpath_for_files_dirs_and_symlinks(tmp_path):
    """The per-directory shortcut must agree with os.path.realpath, symlinks included."""
    import os

    from pipeline.io import real_paths

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "d" / "a.txt")
    (tmp_path / "dlink").symlink_to(tmp_path / "d")
    paths = [tmp_path / "d" / "a.txt", tmp_path / "link.txt", tmp_path / "dlink" / "a.txt",
             tmp_path / "d" / "missing.txt", tmp_path / "d" / ".." / "link.txt", tmp_path / "d" / ".",
             "relative.txt", tmp_path / "d"]
    assert real_paths(paths) == [os.path.realpath(p) for p in paths]
    assert real_paths(paths)[1] == str((tmp_path / "d" / "a.txt").resolve())


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a regression that opens a FIFO for reading blocks forever."""
    def expired(*_: object) -> None:
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _special_files(tmp_path: Path) -> list[tuple[Path, str]]:
    fifo = tmp_path / "pages.fifo"
    os.mkfifo(fifo)
    found = [(fifo, "a FIFO")]
    with contextlib.suppress(OSError):  # binding a socket needs a short enough path
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(tmp_path / "s.sock"))
        found.append((tmp_path / "s.sock", "a socket"))
    for device in ("/dev/zero", "/dev/urandom", "/dev/null"):
        if Path(device).exists():
            found.append((Path(device), "a character device"))
    return found


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_files_that_are_not_regular_are_refused_before_being_opened(tmp_path, monkeypatch) -> None:
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda name, *a, **k: opened.append(str(name)) or real_open(name, *a, **k))
    with _deadline(20):
        for path, kind in _special_files(tmp_path):
            for read in (read_bytes, read_text, sha256_file):
                with pytest.raises(InputError, match=f"not a regular file \\({kind}\\)") as info:
                    read(path)
                assert info.value.file == str(path)
    assert opened == []  # refused from stat alone, so a FIFO never blocks and a device is never read
    link = tmp_path / "link.txt"  # a symlink the user made to a regular file is followed
    (tmp_path / "page.txt").write_bytes(b"Kent ICS\n")
    link.symlink_to(tmp_path / "page.txt")
    assert read_bytes(link) == b"Kent ICS\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_without_blocking(tmp_path, monkeypatch) -> None:
    fifo = tmp_path / "page.txt"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    # the check sees a regular file; by the time it is opened, the name is a FIFO
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: regular if Path(p) == fifo else real_stat(p, *a, **k))
    with _deadline(20), pytest.raises(InputError, match="not a regular file \\(a FIFO\\)"):
        read_bytes(fifo)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT])
def test_write_errors_are_output_errors_naming_the_file_and_leave_nothing(tmp_path, code) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("old\n", encoding="utf-8")

    def lines() -> Iterator[str]:
        yield "new"
        raise OSError(code, os.strerror(code))

    with pytest.raises(OutputError, match=os.strerror(code)) as info:
        write_lines_atomic(path, lines())
    assert info.value.file == str(path) and info.value.exit_code == 5
    assert path.read_text(encoding="utf-8") == "old\n"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]  # no temporary left behind
    with pytest.raises(OutputError) as info:  # named as the caller calls it (a staged file by its final name)
        with atomic_writer(tmp_path / "b.bin", "wb", label="out/b.bin") as handle:
            handle.write(b"x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(info.value) == "out/b.bin: cannot write: No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]



def test_a_file_that_grows_after_its_size_was_taken_is_read_whole_within_the_limit(tmp_path, monkeypatch) -> None:
    path = tmp_path / "page.txt"
    path.write_bytes(b"Kent ICS\n\nTrust deficit doubles\n")
    real_fstat = os.fstat

    def stale(fd: int) -> os.stat_result:  # the size as it was before the file grew
        fields = list(real_fstat(fd))
        fields[stat_size] = 3
        return os.stat_result(fields)

    stat_size = 6  # st_size's index in the stat tuple
    monkeypatch.setattr(os, "fstat", stale)
    assert read_bytes(path) == b"Kent ICS\n\nTrust deficit doubles\n"
    monkeypatch.setattr(pipeline.io, "MAX_INPUT_BYTES", 10)
    with pytest.raises(InputError, match="too large"):
        read_bytes(path)
