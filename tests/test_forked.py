"""The forked-child helper: results come back through the pipe; any failure becomes ForkFailed."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from pipeline.backends.forked import Forked, ForkFailed, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="fork is Linux-only here")


def test_child_sees_parent_memory_and_returns_plain_data() -> None:
    big = list(range(200_000))  # inherited, not pickled
    handle = Forked(lambda: {"sum": sum(big), "array": np.arange(5), "pid": os.getpid()})
    value = handle.result()
    assert value["sum"] == sum(big)
    assert value["array"].tolist() == [0, 1, 2, 3, 4]
    assert value["pid"] != os.getpid()


def test_large_results_do_not_deadlock_on_the_pipe() -> None:
    handle = Forked(lambda: "x" * 5_000_000)  # far beyond a pipe buffer
    assert len(handle.result()) == 5_000_000


def test_exception_in_child_is_reported_with_its_traceback() -> None:
    def boom() -> None:
        raise ValueError("broken in the child")

    with pytest.raises(ForkFailed, match="broken in the child"):
        Forked(boom).result()


def test_child_killed_is_reported() -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ForkFailed, match="died"):
        Forked(die).result()


def test_result_collected_once_and_cancel_reaps_the_child() -> None:
    handle = Forked(lambda: 1)
    assert handle.result() == 1
    with pytest.raises(ForkFailed):
        handle.result()
    import time

    sleeper = Forked(lambda: time.sleep(60))
    sleeper.cancel()
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper.pid, 0)  # reaped: no zombie left behind
