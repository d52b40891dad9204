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

import contextlib
import gc
import multiprocessing
import os
import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any


class ForkFailed(RuntimeError):
    """The child did not deliver a result (it raised, died or was killed); redo the work here."""


def can_fork() -> bool:
    """True where ``fork`` exists and is safe to use for this purpose (Linux, not Windows/macOS)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods() \
        and os.uname().sysname == "Linux"


def die_with_parent(parent: int) -> None:
    """In a forked child: be killed when the parent dies. A child inherits the parent's open
    files, the output directory's lock among them; without this, a run killed mid-stage kept its
    lock held until its children had finished their share of the work."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class Forked:
    """A handle on ``fn()`` running in a forked child; :meth:`result` waits for its return value.

    The return value is pickled through a pipe, so it should be plain data (lists, dicts, arrays).
    The child never returns into the caller's code: it exits with ``os._exit`` so no atexit
    handler, buffered output or lock of the parent runs twice.
    """

    def __init__(self, fn: Callable[[], Any]) -> None:
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            die_with_parent(parent)
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
    """Chunks ``0..n-1`` of one job, shared out on demand between forked children and this process.

    Why: a fixed split leaves a core idle whenever the shares take unequal time (texts differ in
    length; a child competes with imports or another stage). Here the children take chunks from
    the back as soon as they are forked, and this process takes them from the front once it is
    free (:meth:`in_order`), so everyone finishes within a chunk of the others. Taking from the
    front lets this process consume its results in order while the children are still working
    (merge parsed files, write encoded lines as it goes); the children's come after.

    A claim moves one of two shared counters under a lock held for a few instructions; a claim
    that cannot get the lock within a timeout is treated as "no chunks left" (the work is then
    done here), so even a child killed while holding it cannot hang the run. A child that fails
    loses nothing: its chunks are redone here, where a real error then raises as usual.
    """

    MAX_CHUNKS = 255  # enough for balance; more only adds per-chunk overhead
    LOCK_TIMEOUT = 10.0

    def __init__(self, n_chunks: int, work: Callable[[int], Any], children: int = 1,
                 child_work: Callable[[int], Any] | None = None) -> None:
        """``work(i)``: chunk ``i``'s result. ``child_work(i)``: what a child computes for it
        instead, if given (e.g. bytes written to a file and their place there); the caller
        then tells the two kinds of result apart."""
        if not 0 <= n_chunks <= self.MAX_CHUNKS:
            raise ValueError(f"n_chunks must be 0..{self.MAX_CHUNKS}, got {n_chunks}")
        self.n_chunks = n_chunks
        self.work = work
        self.child_work = child_work or work
        self.failures: list[str] = []  # one line per failed child (its chunks were redone here)
        self._children: list[Forked] = []
        self._lock: Any = None
        self._bounds: Any = None
        if not (children > 0 and n_chunks > 1 and can_fork()):
            return
        try:
            context = multiprocessing.get_context("fork")
            self._lock = context.Lock()
            self._bounds = context.RawArray("q", [0, n_chunks])  # next front chunk, end of the rest
        except (OSError, ImportError):  # no POSIX semaphores (e.g. no /dev/shm): all done here
            return
        try:
            self._children = [Forked(self._drain_back) for _ in range(children)]
        except BaseException:
            self.cancel()
            raise

    def _claim(self, front: bool) -> int | None:
        """The next chunk from the front (this process) or the back (children); None when none
        is left or the lock is stuck."""
        if self._lock is None or not self._lock.acquire(timeout=self.LOCK_TIMEOUT):
            return None
        try:
            first, end = self._bounds[0], self._bounds[1]
            if first >= end:
                return None
            if front:
                self._bounds[0] = first + 1
                return first
            self._bounds[1] = end - 1
            return end - 1
        finally:
            self._lock.release()

    def _drain_back(self) -> list[tuple[int, bytes]]:
        # each result is pickled as soon as it is made, alongside the parent's own work:
        # pickling them all after the last chunk kept the parent waiting (0.3 s at the
        # 100k-article parse); the final list of bytes pickles at memory speed
        done = []
        while (index := self._claim(front=False)) is not None:
            done.append((index, pickle.dumps(self.child_work(index), protocol=pickle.HIGHEST_PROTOCOL)))
        return done

    def in_order(self) -> Iterator[Any]:
        """Every chunk's result in index order: first those this process computes itself from
        the front, then the children's (and any a failed child left, computed here)."""
        try:
            position = 0
            if self._lock is not None:
                while (index := self._claim(front=True)) is not None:
                    yield self.work(index)  # every earlier chunk was this process's: in order
                    position = index + 1
            found: dict[int, Any] = {}
            for child in self._children:
                try:
                    found.update(child.result())
                except ForkFailed as exc:  # its chunks are missing below and redone here
                    lines = str(exc).strip().splitlines()
                    self.failures.append(lines[0] + (f" ({lines[-1]})" if len(lines) > 1 else ""))
            for index in range(position, self.n_chunks):
                yield pickle.loads(found.pop(index)) if index in found else self.work(index)
        finally:
            self.cancel()

    def results(self) -> list[Any]:
        """Every chunk's result, in index order (see :meth:`in_order`)."""
        return list(self.in_order())

    def cancel(self) -> None:
        """Stop and reap any child still running (safe to call twice)."""
        for child in self._children:
            child.cancel()
