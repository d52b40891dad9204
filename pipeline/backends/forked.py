"""Run one function in a forked child process while the parent goes on with other work.

Why: the parallel stages gain little from a process pool when their inputs are large Python
objects (pickling 100k token lists costs about what tagging them does). A forked child inherits
the parent's memory as it is at the fork -- the articles, their tokens, imported libraries --
for free (copy-on-write), so only the *result* crosses a pipe. ``run`` uses it to tag in a
second process while the parent vectorises and clusters.

Failure is never silent and never fatal by itself: if the child raises, dies or is killed, the
handle says so (:class:`ForkFailed`) and the caller redoes the work in-process, where any real
error surfaces with its usual one-line message. Only Linux-style ``fork`` is used; elsewhere
:func:`can_fork` is False and callers run in-process.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from collections.abc import Callable
from typing import Any


class ForkFailed(RuntimeError):
    """The child did not deliver a result (it raised, died or was killed); redo the work here."""


def can_fork() -> bool:
    """True where ``fork`` exists and is safe to use for this purpose (Linux, not Windows/macOS)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods() \
        and os.uname().sysname == "Linux"


class Forked:
    """A handle on ``fn()`` running in a forked child; :meth:`result` waits for its return value.

    The return value is pickled through a pipe, so it should be plain data (lists, dicts, arrays).
    The child never returns into the caller's code: it exits with ``os._exit`` so no atexit
    handler, buffered output or lock of the parent runs twice.
    """

    def __init__(self, fn: Callable[[], Any]) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            status = 0
            try:
                payload = pickle.dumps(("ok", fn()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # noqa: BLE001 - reported to the parent, which redoes the work
                payload = pickle.dumps(("error", traceback.format_exc(limit=5)))
                status = 1
            try:
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(payload)
            finally:
                os._exit(status)
        os.close(write_fd)
        self.pid = pid
        self._read_fd = read_fd
        self._done = False

    def result(self) -> Any:
        """The child's return value; raises :class:`ForkFailed` if there is none."""
        if self._done:
            raise ForkFailed("result already collected")
        self._done = True
        with os.fdopen(self._read_fd, "rb") as pipe:
            data = pipe.read()  # read before waiting: a full pipe would block the child
        _, status = os.waitpid(self.pid, 0)
        try:
            kind, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - truncated: the child died mid-write
            raise ForkFailed(f"child process {self.pid} died (wait status {status})") from None
        if kind != "ok":
            raise ForkFailed(f"child process {self.pid} failed:\n{value}")
        return value

    def cancel(self) -> None:
        """Stop the child and reap it (the parent hit an error and will not collect)."""
        if self._done:
            return
        self._done = True
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self._read_fd)
        os.waitpid(self.pid, 0)
