"""Share one job's chunks between forked children and this process (:class:`SharedChunks`).

Why fork: a stage's batches are large Python objects (articles, token lists), and pickling them
to a process pool costs about what the work does. A forked child inherits this process's memory
as it is at the fork -- the articles, the fitted stage, spaCy, the classifier -- for free
(copy-on-write), so only each *result* crosses over, through an in-memory file and a pipe
(:class:`_Feed`), the moment it is made.

Failure is never silent and never fatal by itself: if a child raises, dies or is killed, a line
lands in ``SharedChunks.failures`` and its chunks are done in this process, where any real error
surfaces with its usual one-line message. Only Linux-style ``fork`` is used; elsewhere
:func:`can_fork` is False and everything runs in this process.
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import select
import struct
import traceback
from collections.abc import Callable, Iterator
from typing import Any


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


def _start_child(parent: int) -> None:
    """What every forked child does first: die with its parent, and switch the collector off
    (short-lived: a collection would find nothing and copy every inherited page it walks)."""
    die_with_parent(parent)
    gc.disable()


class _Feed:
    """One forked child's channel: its results go into an anonymous in-memory file (``data``),
    and a 24-byte record ``(index, offset, length)`` per result into a pipe, so the child never
    waits for this process to read (a record is far smaller than the pipe's buffer) and this
    process can see what is done without blocking. Index -1 marks the child's error report."""

    RECORD = struct.Struct("qqq")

    def __init__(self) -> None:
        try:
            self.data = os.memfd_create("hsj-chunks", os.MFD_CLOEXEC)
        except (AttributeError, OSError):  # no memfd: an unlinked temporary file does the same
            import tempfile

            handle = tempfile.TemporaryFile()
            self.data = os.dup(handle.fileno())
            handle.close()
        self.read_fd, self.write_fd = os.pipe()
        self.pid = 0
        self.size = 0  # the child's side: bytes written to ``data`` so far
        self.pending = b""
        self.open = True  # this process's side: until the pipe reports end of file
        self.failed = False  # ... and whether the child's failure is already on record

    # -- the child's side
    def send(self, index: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.data, view):]
        os.write(self.write_fd, self.RECORD.pack(index, self.size, len(data)))
        self.size += len(data)

    # -- this process's side
    def records(self) -> list[tuple[int, int, int]]:
        """The records the child has written since the last call (none: it is still working);
        at end of file the feed is closed (the child has exited or died)."""
        try:
            chunk = os.read(self.read_fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            self.open = False
            return []
        data = self.pending + chunk
        whole = len(data) - len(data) % self.RECORD.size
        self.pending = data[whole:]
        return list(self.RECORD.iter_unpack(data[:whole]))

    def read(self, offset: int, length: int) -> bytes:
        """A result's bytes (fewer if the file lost them), then their memory is given back."""
        data = os.pread(self.data, length, offset)
        _punch_hole(self.data, offset, length)
        return data

    def close(self) -> None:
        """Close this process's ends, once: a second close could hit a number reused since."""
        for name in ("data", "read_fd"):
            fd, fd_closed = getattr(self, name), -1
            setattr(self, name, fd_closed)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Free ``length`` bytes of an in-memory file once read (``fallocate`` PUNCH_HOLE|KEEP_SIZE),
    so a run's results are not held twice; where that is unavailable they stay until closed."""
    global _FALLOCATE
    if _FALLOCATE is None:
        try:
            import ctypes

            _FALLOCATE = ctypes.CDLL(None, use_errno=True).fallocate
            _FALLOCATE.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        except (OSError, AttributeError):
            _FALLOCATE = False
    if _FALLOCATE and length:
        _FALLOCATE(fd, 3, offset, length)  # a failure only keeps the memory


_FALLOCATE: Any = None


class _Raised:
    """A chunk computed here out of order that raised: the error waits for the chunk's turn."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class SharedChunks:
    """Chunks ``0..n-1`` of one job, shared out on demand between forked children and this process.

    Why: a fixed split leaves a core idle whenever the shares take unequal time (texts differ in
    length; a child competes with imports or another stage). Here the children take chunks from
    the front as soon as they are forked and hand each result over the moment it is made
    (:class:`_Feed`); this process, once free (:meth:`in_order`), takes in the children's results
    in order as they arrive and, whenever the next one is not there yet, works on a chunk from
    the back. So taking in the results (unpickling, merging, writing) overlaps the children's
    work, and what is left when they finish is only this process's own few chunks, which never
    cross a pipe: both processes finish within a chunk of each other.

    A claim moves one of two shared counters under a lock held for a few instructions; a claim
    that cannot get the lock within a timeout is treated as "no chunks left" (the work is then
    done here), so even a child killed while holding it cannot hang the run. A child that fails
    loses nothing: the chunks it did not deliver are done here, where a real error then raises
    as usual.
    """

    MAX_CHUNKS = 255  # enough for balance; more only adds per-chunk overhead
    LOCK_TIMEOUT = 10.0

    def __init__(self, n_chunks: int, work: Callable[[int], Any], children: int = 1) -> None:
        """``work(i)``: chunk ``i``'s result (pickled to cross from a child)."""
        if not 0 <= n_chunks <= self.MAX_CHUNKS:
            raise ValueError(f"n_chunks must be 0..{self.MAX_CHUNKS}, got {n_chunks}")
        self.n_chunks = n_chunks
        self.work = work
        self.failures: list[str] = []  # one line per failed child (its chunks were redone here)
        self._children: list[_Feed] = []
        self._lock: Any = None
        self._bounds: Any = None
        self._next = 0  # the next index :meth:`in_order` yields
        self._own: dict[int, Any] = {}  # results computed here, not yet yielded
        self._delivered: dict[int, tuple[_Feed, int, int]] = {}  # index -> feed, offset, length
        if not (children > 0 and n_chunks > 1 and can_fork()):
            return
        try:
            context = multiprocessing.get_context("fork")
            self._lock = context.Lock()
            self._bounds = context.RawArray("q", [0, n_chunks])  # next front chunk, end of the rest
        except (OSError, ImportError):  # no POSIX semaphores (e.g. no /dev/shm): all done here
            return
        try:
            for _ in range(children):
                self._children.append(self._fork())
        except BaseException:
            self.cancel()
            raise

    def _fork(self) -> _Feed:
        feed = _Feed()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # child
            self._serve(feed, parent)
        os.close(feed.write_fd)
        os.set_blocking(feed.read_fd, False)
        feed.pid = pid
        return feed

    def _serve(self, feed: _Feed, parent: int) -> None:
        """The child: claim chunks from the front and send each result at once; never returns."""
        status = 0
        try:
            os.close(feed.read_fd)
            for other in self._children:  # the feeds of earlier children are not ours
                other.close()
            _start_child(parent)
            while (index := self._claim(front=True)) is not None:
                result = self.work(index)
                feed.send(index, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:  # noqa: BLE001 - reported to the parent, which redoes the work
            status = 1
            with contextlib.suppress(BaseException):
                feed.send(-1, traceback.format_exc(limit=5).encode("utf-8", "replace"))
        finally:
            os._exit(status)

    def _claim(self, front: bool) -> int | None:
        """The next chunk from the front (children) or the back (this process); None when none
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

    def _poll(self, wait: bool) -> None:
        """Take note of the results the children have delivered; ``wait``: until one has
        delivered something or ended."""
        feeds = [f for f in self._children if f.open]
        if wait and feeds:
            select.select([f.read_fd for f in feeds], [], [])
        for feed in feeds:
            for index, offset, length in feed.records():
                if index >= 0:
                    self._delivered[index] = (feed, offset, length)
                else:
                    self._failed(feed, feed.read(offset, length).decode("utf-8", "replace"))
            if not feed.open:
                _, status = os.waitpid(feed.pid, 0)
                if status and not feed.failed:  # died without a word (killed)
                    self._failed(feed, f"child process {feed.pid} died (wait status {status})")

    def _failed(self, feed: _Feed, text: str) -> None:
        feed.failed = True
        lines = text.strip().splitlines() or ["no detail"]
        if not lines[0].startswith("child process"):
            lines.insert(0, f"child process {feed.pid} failed:")
        self.failures.append(lines[0] + (f" ({lines[-1]})" if len(lines) > 1 else ""))

    def _take(self, index: int) -> Any:
        """The result of chunk ``index`` delivered by a child (computed here if it cannot be read)."""
        feed, offset, length = self._delivered.pop(index)
        data = feed.read(offset, length)
        if len(data) == length:
            with contextlib.suppress(Exception):
                return pickle.loads(data)
        return self.work(index)

    def in_order(self) -> Iterator[Any]:
        """Every chunk's result in index order: the children's as they arrive, in between and
        after them those this process computes itself from the back (and any chunk a failed
        child did not deliver)."""
        try:
            while self._next < self.n_chunks:
                index = self._next
                if index in self._own:
                    result = self._own.pop(index)
                    if isinstance(result, _Raised):  # its turn: the first error in order raises
                        raise result.error
                else:
                    if index not in self._delivered and self._children:
                        self._poll(wait=False)
                    if index in self._delivered:
                        result = self._take(index)
                    elif (mine := self._claim(front=False)) is not None:
                        try:
                            self._own[mine] = self.work(mine)
                        except Exception as error:  # noqa: BLE001 - raised in its turn, after
                            self._own[mine] = _Raised(error)  # any error of an earlier chunk
                        continue
                    elif any(f.open for f in self._children):
                        self._poll(wait=True)  # a child is on it
                        continue
                    else:  # nobody else will deliver it (no child, or it failed)
                        result = self.work(index)
                self._next = index + 1
                yield result
        finally:
            self.cancel()

    def results(self) -> list[Any]:
        """Every chunk's result, in index order (see :meth:`in_order`)."""
        return list(self.in_order())

    def cancel(self) -> None:
        """Stop and reap any child still running and free the feeds (safe to call twice)."""
        import signal

        for feed in self._children:
            if feed.open:
                feed.open = False
                with contextlib.suppress(ProcessLookupError):
                    os.kill(feed.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(feed.pid, 0)
            feed.close()
