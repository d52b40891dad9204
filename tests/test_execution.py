"""The execution layer: executors cut and map batches in order; the collector device restores
the collector as it found it; device switches never change what comes out."""
from __future__ import annotations

import gc
import os
import time
from types import SimpleNamespace

import pytest

from pipeline.execution import Forked, Local, chunks, forked_minimums, split_even
from pipeline.execution.collector import QuietCollector, paused_gc
from pipeline.execution.forked import can_fork

WHOLE = SimpleNamespace(name="vectorise", corpus_wide=True)
BATCHED = SimpleNamespace(name="clean", corpus_wide=False)


def test_paused_gc_restores_the_collector() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with paused_gc():
            assert not gc.isenabled()
            raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_quiet_collector_freezes_only_what_it_may_and_unfreezes_on_exit() -> None:
    assert gc.get_freeze_count() == 0
    with QuietCollector() as collector:
        with collector.stage():
            assert not gc.isenabled()
        assert gc.isenabled()
        collector.freeze()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with QuietCollector(enabled=False) as off:
        with off.stage():
            assert gc.isenabled()
        off.freeze()
        assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze is left alone
    try:
        with QuietCollector() as collector:
            collector.freeze()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_split_even_and_chunks_keep_order_and_cover_everything() -> None:
    items = list(range(23))
    for n in (1, 2, 5, 23, 40):
        parts = split_even(items, n)
        assert [x for p in parts for x in p] == items and all(parts)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [x for c in chunks(items, 5) for x in c] == items and len(chunks(items, 5)) == 5
    assert chunks([], 5) == [[]]


def test_local_executor_gives_corpus_wide_stages_one_batch() -> None:
    local = Local()
    items = list(range(25_000))
    assert local.split(WHOLE, items) == [items]
    batches = local.split(BATCHED, items)
    assert len(batches) == 3 and [x for b in batches for x in b] == items
    assert list(local.map(BATCHED, sum, batches)) == [sum(b) for b in batches]


@pytest.mark.skipif(not can_fork(), reason="fork is Linux-only here")
def test_forked_executor_shares_only_named_stages_above_their_minimum() -> None:
    forked = Forked(2, {"clean": 100})
    small, big = list(range(50)), list(range(1000))
    assert forked.split(BATCHED, small) == [small]  # below the minimum: one local batch
    batches = forked.split(BATCHED, big)
    assert len(batches) == 255 and [x for b in batches for x in b] == big
    assert list(forked.map(BATCHED, sum, batches)) == [sum(b) for b in batches]
    other = SimpleNamespace(name="tag", corpus_wide=False)  # not named: never forked
    assert forked.split(other, big) == [big]
    assert set(forked.map(other, lambda b: os.getpid(), forked.split(other, big))) == {os.getpid()}
    assert forked.split(WHOLE, big) == [big]
    pids = set(forked.map(BATCHED, lambda b: time.sleep(0.004) or os.getpid(), batches))
    assert os.getpid() in pids and len(pids) == 2  # shared: this process and one child


def test_forked_minimums_follow_the_config_and_the_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.execution as execution

    assert forked_minimums(20_000, 30_000) == {"parse": 200, "clean": 10_000, "tag": 30_000}
    monkeypatch.setattr(execution, "DEVICES_OFF", frozenset({"fork:clean"}))
    assert "clean" not in forked_minimums(20_000, 30_000)
