"""SharedChunks: forked children and this process share a job's chunks; results in order; a failed child's
chunks are redone here."""
from __future__ import annotations

import os
import signal

import pytest

from pipeline.execution.forked import SharedChunks, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="fork is Linux-only here")


# ---- SharedChunks --------------------------------------------------------------------------------



@pytest.mark.parametrize("children", [0, 1, 3])
def test_shared_chunks_give_every_result_in_order(children: int) -> None:
    shared = SharedChunks(40, lambda i: (i * i, os.getpid()), children=children)
    results = shared.results()
    assert [value for value, _ in results] == [i * i for i in range(40)]
    if children == 0:
        assert {pid for _, pid in results} == {os.getpid()}


def test_shared_chunks_are_shared_between_processes() -> None:
    import time

    def slow(i: int) -> int:
        time.sleep(0.02)
        return os.getpid()

    shared = SharedChunks(60, slow, children=1)
    time.sleep(0.2)  # the child starts first; this process then takes the rest
    pids = shared.results()
    assert len(set(pids)) == 2 and os.getpid() in pids


def test_shared_chunks_redo_the_chunks_of_a_failed_child() -> None:
    parent = os.getpid()

    def work(i: int) -> int:
        if os.getpid() != parent and i == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # the child dies holding chunk 3 (and others)
        return i + 100

    assert SharedChunks(30, work, children=2).results() == [i + 100 for i in range(30)]


def test_shared_chunks_raise_a_real_error_here_and_leave_no_child() -> None:
    import time

    def work(i: int) -> int:
        if i == 5:
            raise ValueError("bad chunk 5")
        time.sleep(0.01)
        return i

    shared = SharedChunks(20, work, children=1)
    with pytest.raises(ValueError, match="bad chunk 5"):
        shared.results()
    for child in shared._children:
        with pytest.raises(ProcessLookupError):
            os.kill(child.pid, 0)


def test_shared_chunks_limits() -> None:
    assert SharedChunks(0, lambda i: i, children=2).results() == []
    assert SharedChunks(1, lambda i: i, children=2).results() == [0]
    with pytest.raises(ValueError):
        SharedChunks(256, lambda i: i)


def test_shared_chunks_children_take_the_front_and_this_process_the_back() -> None:
    import time

    parent = os.getpid()

    def work(i: int) -> tuple[int, int]:
        time.sleep(0.01)
        return i, os.getpid()

    shared = SharedChunks(50, work, children=1)
    time.sleep(0.1)  # the child has started from the front
    seen = []
    for value in shared.in_order():
        seen.append(value)
    assert [i for i, _ in seen] == list(range(50))
    owners = [pid == parent for _, pid in seen]
    assert not owners[0] and owners[-1]
    assert owners == sorted(owners)  # the child's front run, then this process's back run


def test_shared_chunks_take_in_results_while_the_children_work() -> None:
    """The children's results are handed over as each is made: this process yields the first
    ones long before the children have finished."""
    import time

    shared = SharedChunks(40, lambda i: time.sleep(0.05) or (i, time.monotonic()), children=1)
    iterator = shared.in_order()
    first, made = next(iterator)
    taken = time.monotonic()
    rest = list(iterator)
    assert first == 0 and [i for i, _ in rest] == list(range(1, 40))
    assert taken < max(m for _, m in rest)  # taken in before the last chunk was even made


def test_shared_chunks_report_a_child_that_raises_and_redo_its_chunk() -> None:
    import time

    parent = os.getpid()

    def work(i: int) -> int:
        time.sleep(0.005)
        if os.getpid() != parent and i == 2:
            raise ValueError("only in the child")
        return i

    shared = SharedChunks(30, work, children=1)
    assert shared.results() == list(range(30))
    assert len(shared.failures) == 1 and "ValueError: only in the child" in shared.failures[0]


def test_shared_chunks_stopped_early_leave_no_child() -> None:
    import time

    shared = SharedChunks(50, lambda i: time.sleep(0.01) or i, children=2)
    iterator = shared.in_order()
    assert next(iterator) == 0
    iterator.close()  # the consumer gives up: children are stopped and reaped
    for child in shared._children:
        with pytest.raises(ProcessLookupError):
            os.kill(child.pid, 0)


def test_children_die_with_their_parent() -> None:
    """A killed run's children stop at once: they hold its open files (the output lock) too."""
    import subprocess
    import sys
    import textwrap
    import time

    script = textwrap.dedent("""
        import time
        from pipeline.execution.forked import SharedChunks
        shared = SharedChunks(200, lambda i: time.sleep(0.5) or i, children=2)
        print(" ".join(str(c.pid) for c in shared._children), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    children = [int(pid) for pid in proc.stdout.readline().split()]
    assert len(children) == 2
    proc.kill()
    proc.wait(timeout=30)

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                return handle.read().split(") ")[1].startswith("Z")  # a zombie awaiting init
        except OSError:
            return True

    deadline = time.monotonic() + 10
    while not all(map(gone, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(gone, children))


def test_shared_chunks_raise_the_first_error_in_chunk_order() -> None:
    """This process works from the back, so it may meet a later bad chunk first: the error of
    the earliest bad chunk is the one raised, as in one process."""
    import time

    def work(i: int) -> int:
        time.sleep(0.01)
        if i in (5, 18):
            raise ValueError(f"bad chunk {i}")
        return i

    with pytest.raises(ValueError, match="bad chunk 5"):
        SharedChunks(20, work, children=1).results()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_shared_chunks_leave_no_descriptor_open() -> None:
    before = _open_fds()
    for children in (1, 2):
        assert SharedChunks(20, lambda i: i, children=children).results() == list(range(20))
    iterator = SharedChunks(20, lambda i: i, children=2).in_order()
    next(iterator)
    iterator.close()  # given up early
    assert _open_fds() <= before  # (the listing's own descriptor comes and goes)


def test_shared_chunks_redo_a_result_that_cannot_be_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.execution import forked

    monkeypatch.setattr(forked._Feed, "read", lambda self, offset, length: b"\x80 truncated")
    assert SharedChunks(30, lambda i: [i] * 3, children=2).results() == [[i] * 3 for i in range(30)]


def test_shared_chunks_work_without_memfd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where memfd_create is missing or refused, an unlinked temporary file carries the results."""
    def refused(*args: object) -> int:
        raise OSError("memfd_create refused")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    assert SharedChunks(25, lambda i: {"i": i}, children=2).results() == [{"i": i} for i in range(25)]


def test_cancelling_twice_closes_nothing_opened_since() -> None:
    shared = SharedChunks(10, lambda i: i, children=1)
    assert shared.results() == list(range(10))  # cancels (and closes) once
    read_end, write_end = os.pipe()  # may reuse the numbers the feed had
    try:
        shared.cancel()
        os.fstat(read_end)
        os.fstat(write_end)  # still open
    finally:
        os.close(read_end)
        os.close(write_end)
