"""One small error hierarchy, so the CLI can turn any user error into one line and an exit code."""
from __future__ import annotations

import re

# What must never reach a terminal raw: C0 and C1 controls (ESC starts cursor, title and
# clipboard sequences), DEL, lone surrogates (unprintable: encoding them raises) and the
# bidirectional overrides that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` safe to print on one terminal line: every control character (newline and tab
    too), lone surrogate and bidi override shown as a ``\\xNN``/``\\uNNNN`` escape.

    The one helper for every message that quotes user text or file names."""
    return text if text.isprintable() else _UNSAFE.sub(_escape_one, text)



class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose (user errors, not bugs)."""

    exit_code: int = 1

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.key is not None:
            where = f"{self.key}: "
        return escape_controls(f"{where}{self.message}")


class InputError(PipelineError):
    """An input file or record that cannot be read (names the file and line)."""

    exit_code = 2


class ConfigError(PipelineError):
    """A configuration key that is unknown or has a wrong value (names the key)."""

    exit_code = 3


class ModelError(PipelineError):
    """A model file that is missing, corrupt, untrusted or from another library version."""

    exit_code = 4


class OutputError(PipelineError):
    """An output location that cannot be written, or that would overwrite an input."""

    exit_code = 5
