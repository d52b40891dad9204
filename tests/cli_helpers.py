"""Helpers shared by the CLI tests (imported, not a test module)."""
from __future__ import annotations

import subprocess


def one_line_error(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Assert a user error: the exit code, exactly one ``error:`` line, no traceback, no stdout."""
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
