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

import gc
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
            # short-lived: a collection would find nothing and copy every inherited page it walks
            gc.disable()
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


class SharedChunks:
    """Chunks ``0..n-1`` of one job, handed out on demand to forked children and to this process.

    Why: a fixed split leaves a core idle whenever the shares take unequal time (texts differ in
    length; a child competes with imports or another stage). Here every process takes the next
    undone chunk whenever it is free, so all finish within one chunk of each other; this process
    joins in when it calls :meth:`results` (after other work of its own, if it has any).

    The queue is a pipe holding one byte per chunk, filled before the fork and read one byte at
    a time (a pipe read is atomic, so each chunk goes to exactly one process); no lock exists that
    a dying child could leave held. Results are gathered by chunk index, so they come out in
    order whoever computed them. A child that fails loses nothing: its chunks are redone here,
    where a real error then raises as usual.
    """

    MAX_CHUNKS = 255  # one byte per chunk index

    def __init__(self, n_chunks: int, work: Callable[[int], Any], children: int = 1) -> None:
        if not 0 <= n_chunks <= self.MAX_CHUNKS:
            raise ValueError(f"n_chunks must be 0..{self.MAX_CHUNKS}, got {n_chunks}")
        self.n_chunks = n_chunks
        self.work = work
        read_fd, write_fd = os.pipe()
        try:
            os.write(write_fd, bytes(range(n_chunks)))  # <= 255 bytes: never blocks
        finally:
            os.close(write_fd)  # an empty queue then reads as end-of-file
        self._queue = read_fd
        self.failures: list[str] = []  # one line per failed child (its chunks were redone here)
        self._children: list[Forked] = []
        try:
            self._children = [Forked(self._drain) for _ in range(children if n_chunks else 0)]
        except BaseException:
            self.cancel()
            raise

    def _next(self) -> int | None:
        byte = os.read(self._queue, 1)
        return byte[0] if byte else None

    def _drain(self) -> list[tuple[int, Any]]:
        done = []
        while (index := self._next()) is not None:
            done.append((index, self.work(index)))
        return done

    def results(self) -> list[Any]:
        """Work on the chunks nobody has taken yet, then every chunk's result in index order.

        An error in a chunk here is raised only once every earlier chunk is known to be fine,
        so the error raised is the one in-order processing would have raised first.
        """
        try:
            found: dict[int, Any] = {}
            failed: dict[int, Exception] = {}
            while (index := self._next()) is not None:
                try:
                    found[index] = self.work(index)
                except Exception as exc:  # noqa: BLE001 - re-raised below, in chunk order
                    failed[index] = exc
                    break
            for child in self._children:
                try:
                    found.update(child.result())
                except ForkFailed as exc:  # its chunks are missing below and redone here
                    self.failures.append(str(exc).splitlines()[0] + (
                        f" ({str(exc).strip().splitlines()[-1]})" if "\n" in str(exc) else ""))
            results = []
            for i in range(self.n_chunks):
                if i in failed:
                    raise failed[i]
                results.append(found[i] if i in found else self.work(i))
            return results
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop and reap any child still running and close the queue (safe to call twice)."""
        for child in self._children:
            child.cancel()
        if self._queue >= 0:
            os.close(self._queue)
            self._queue = -1
