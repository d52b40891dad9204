"""Dask execution: the runner's stage functions mapped over batches on a Dask cluster.

Used by :func:`pipeline.run.run` when ``run.backend = "dask"``. With ``run.scheduler`` set it
connects to that scheduler (``tcp://host:8786``); otherwise it starts a
``distributed.LocalCluster`` of ``jobs`` single-threaded worker processes and closes it after.
Workers need this package installed (same version).

Nothing here knows a stage: :class:`DaskExecutor` sends each stage once to every worker
(``scatter``, broadcast), then each batch, and calls the stage's method on it there; results come
back in order and the client writes them onto its records, as the local runner does. So the
output is the local run's, byte for byte:

- parse batches are groups of input files, read on the workers by the real paths resolved on the
  client, recorded under the names the user gave; the parse stage (``remote=True``) then checks
  each file's SHA-256 on the client and parses a file itself where a worker could not read it
  or read other bytes (a note names the worker);
- clean and tag batches are partitions of the articles (the clean stage's spaCy and domain
  lists are built on each worker from the copy sent: lists included, no file needed there);
- the corpus-wide stages (vectorise, cluster) run on the client over the whole corpus.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import ConfigError
from . import split_even

INSTALL_HINT = 'the dask backend needs the [dask] extra: pip install -e ".[dask]"'
# Partitions per worker: enough to balance uneven partitions, few enough to keep overhead small.
PARTS_PER_WORKER = 4
MIN_PARTITION = 1000
CONNECT_TIMEOUT = "20s"


def require_distributed() -> Any:
    """Import ``distributed`` or fail with one line naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(INSTALL_HINT, key="run.backend") from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str, jobs: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a local cluster of ``jobs`` processes."""
    distributed = require_distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}",
                              key="run.scheduler") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@contextlib.contextmanager
def dask_executor(scheduler: str, jobs: int) -> Iterator[DaskExecutor]:
    """A :class:`DaskExecutor` on the cluster at ``scheduler`` (or a local one), closed after."""
    with dask_client(scheduler, jobs) as client:
        yield DaskExecutor(client, scheduler or "local cluster", jobs)


def _n_parts(n_items: int, workers: int) -> int:
    return max(1, min(workers * PARTS_PER_WORKER, -(-n_items // MIN_PARTITION)))


def call_method(stage: Any, method: str, batch: Any) -> Any:
    """On a worker: ``stage.<method>(batch)`` (module-level, so Dask pickles it by reference)."""
    return getattr(stage, method)(batch)


class DaskExecutor:
    """Batches of the stage functions run on the workers; results in order, on the client."""

    name = "dask"
    remote = True

    def __init__(self, client: Any, address: str, jobs: int) -> None:
        self.client = client
        self.address = address
        self.workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})) or jobs)
        self.jobs = jobs
        self.notes: list[str] = []
        self._sent: dict[int, tuple[Any, Any]] = {}  # id(stage) -> (stage, its future)

    def split(self, stage: Any, items: Sequence[Any]) -> list[Sequence[Any]]:
        if stage.corpus_wide or not items:
            return [items]
        parts = _n_parts(len(items), self.workers) if stage.name != "parse" or len(items) > 1 else 1
        return split_even(items, parts)

    def _on_workers(self, stage: Any) -> Any:
        """The stage, sent to every worker once (its fitted state included)."""
        sent = self._sent.get(id(stage))
        if sent is None or sent[0] is not stage:
            sent = self._sent[id(stage)] = (stage, self.client.scatter(stage, broadcast=True))
        return sent[1]

    def map(self, stage: Any, fn: Callable[[Any], Any], batches: Sequence[Any]) -> Iterator[Any]:
        if stage.corpus_wide:
            return map(fn, batches)
        remote = self._on_workers(stage)
        futures = [self.client.submit(call_method, remote, fn.__name__, batch, pure=False)
                   for batch in self.client.scatter(list(batches))]
        return self._in_order(futures)

    @staticmethod
    def _in_order(futures: list[Any]) -> Iterator[Any]:
        """Results in submission order, each released once read (memory stays one batch deep)."""
        for future in futures:
            value = future.result()
            future.release()
            yield value

    def describe(self) -> dict[str, Any]:
        return {"name": "dask", "scheduler": self.address, "workers": self.workers}

    def libraries(self) -> dict[str, str | None]:
        return _dask_versions()


def _dask_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("dask", "distributed"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
