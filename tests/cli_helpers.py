"""Helpers shared by the CLI tests (imported, not a test module)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def one_line_error(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Assert a user error: the exit code, exactly one ``error:`` line, no traceback, no stdout."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# Loaded by every Python process started with ``full_disk_env``: files opened for writing under
# HSJ_TEST_FULL_DIR take half of what they are given, then fail as a full disk does (ENOSPC).
_FULL_DISK = '''
import errno, os

_FULL = os.environ.get("HSJ_TEST_FULL_DIR")


class _FullDisk:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


if _FULL:
    _fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = _fdopen(fd, mode, *args, **kwargs)
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return handle
        if "w" in mode and where.startswith(_FULL + os.sep):
            return _FullDisk(handle)
        return handle

    os.fdopen = fdopen
'''


def full_disk_env(tmp_path: Path, full_dir: Path) -> dict[str, str]:
    """Environment for a CLI subprocess whose writes under ``full_dir`` fail with ENOSPC midway.

    A ``sitecustomize`` module on PYTHONPATH wraps ``os.fdopen`` (what the atomic writer writes
    through); the test asserts the failure happened, so a writer that bypassed it would be noticed.
    """
    hook = tmp_path / "full-disk-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_FULL_DISK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
    env["PYTHONPATH"] = os.pathsep.join([str(hook), *filter(None, [env.get("PYTHONPATH")])])
    env["HSJ_TEST_FULL_DIR"] = os.path.realpath(full_dir)
    env["COLUMNS"] = "160"
    return env
