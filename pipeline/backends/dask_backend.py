"""Dask backend: the local run's stages, partition by partition on a Dask cluster.

Used by :func:`pipeline.run.run` when ``run.backend = "dask"``. With ``run.scheduler`` set it
connects to that scheduler (``tcp://host:8786``); otherwise it starts a
``distributed.LocalCluster`` of ``jobs`` single-threaded worker processes and closes it after.
Workers need this package installed (same version).

How each stage is distributed, and why the output equals the local backend's:

- parse: partitions are contiguous groups of input files, sent as real absolute paths resolved
  on the client (a worker's working directory is not the client's) with the names the user gave,
  which the records keep. The client merges the slots by article id in file order with the same
  :class:`~pipeline.parse.ArticleMerger`, so articles, rejects and counts are the local ones; it
  checks each file's SHA-256 against its own copy and parses a file itself where a worker could
  not read it or read other bytes (a note names the worker).
- clean: blurbs need the whole corpus, so the client finds them (cheap string work), then workers
  turn partitions of (headline, standfirst) texts into tokens with a per-worker cached
  :class:`~pipeline.clean.TextCleaner`. Tokens do not depend on the batch, so they are the local
  ones. The token partitions stay on the workers for vectorising.
- vectorise: workers count document frequencies of their partition's n-grams; the client sums
  them (terms in order of first appearance) and applies ``min_df``/``max_df`` exactly as
  scikit-learn does, which gives the local vocabulary, its order and idf (not an approximation;
  the saved ``vectoriser.joblib`` is the local bytes); workers then transform their partitions.
- cluster: the TF-IDF blocks stay on the workers. Above ``NATIVE_CLUSTER_MIN`` distinct articles
  k-means is Dask-native (:mod:`pipeline.backends.dask_cluster`): the local stage's steps on the
  same seeded samples, with full-batch k-means and the naive Bayes refinement computed from
  per-block sums (:mod:`pipeline.cluster_blocks`), so the matrix is never gathered; labels equal
  the local ones up to floating-point ties (ARI >= 0.9 tested). Smaller corpora, and the
  sample-based agglomerative/hdbscan methods, gather the matrix and run the local code.
- tag: the classifier is sent to every worker once; workers tag the clean stage's partitions,
  reusing the tokens still held there (when the run's cleaner is the model's, as locally).
  Features are computed per text, so categories and scores are the local ones.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import CleanConfig, Config, ParseConfig, TagConfig, VectoriseConfig
from ..errors import ConfigError
from ..records import Article, Reject
from . import split_even

INSTALL_HINT = 'the dask backend needs the [dask] extra: pip install -e ".[dask]"'
# Partitions per worker: enough to balance uneven partitions, few enough to keep overhead small.
PARTS_PER_WORKER = 4
MIN_PARTITION = 1000
# Up to this many distinct articles (and up to cluster.minibatch_threshold) the matrix is gathered
# and clustered by the local code: the LSA basis and k are fitted on every row anyway. Above it,
# k-means runs on the workers and the matrix is never gathered.
NATIVE_CLUSTER_MIN = 20000
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


def _n_parts(n_items: int, workers: int) -> int:
    return max(1, min(workers * PARTS_PER_WORKER, -(-n_items // MIN_PARTITION)))


# ---- work done on the workers (module-level so Dask pickles them by reference) -------------------


@dataclass(frozen=True)
class NotReadOnWorker:
    """An input a worker could not read (not there, no permission...): the client parses it."""

    name: str
    reason: str


def parse_partition(files: list[tuple[str, str]], config: ParseConfig) -> tuple[str, list[Any]]:
    """Parse a group of files, each given as (real path on the client, name the user gave): read
    by the real path, recorded under the name. A file this worker cannot read comes back as a
    :class:`NotReadOnWorker`. Returns this worker's address and the results, in order."""
    from ..errors import InputError
    from ..io import read_bytes
    from ..parse import parse_bytes

    parsed: list[Any] = []
    for real, name in files:
        try:
            data = read_bytes(Path(real))
        except InputError as exc:
            parsed.append(NotReadOnWorker(name, exc.message))
            continue
        parsed.append(parse_bytes(data, name, config))
    return _worker_address(), parsed


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not in a worker (a direct call)
        return "(not a worker)"


@lru_cache(maxsize=4)
def _cleaner(config_json: str) -> Any:
    """One cleaner per worker process and config, so its cache of distinct texts is reused."""
    from ..clean import TextCleaner

    return TextCleaner(CleanConfig(**json.loads(config_json)))


def clean_partition(config_json: str, heads: list[str], stands: list[str]
                    ) -> tuple[list[list[str]], list[list[str]], list[list[float]]]:
    """Headline tokens, standfirst tokens and pound amounts of each article of a partition."""
    from ..clean import parse_amounts

    try:
        tokens = _cleaner(config_json).tokens(heads + stands)
    except ConfigError as exc:  # e.g. clean.normalise_file is not on this worker's filesystem
        raise ConfigError(f"{exc.message} (on worker {_worker_address()})", key=exc.key) from None
    amounts = [list(dict.fromkeys(parse_amounts(h) + parse_amounts(s))) for h, s in zip(heads, stands)]
    return tokens[:len(heads)], tokens[len(heads):], amounts


def stats_partition(part: tuple[list[list[str]], list[list[str]], Any], vectoriser: Any) -> Any:
    """Document frequencies of a partition (:meth:`~pipeline.vectorise.Vectoriser.partial`)."""
    return vectoriser.partial(list(zip(part[0], part[1])))


def transform_partition(vectoriser: Any, part: tuple[list[list[str]], list[list[str]], Any]) -> Any:
    """TF-IDF rows of a partition with the globally fitted vocabulary and idf."""
    return vectoriser.transform(list(zip(part[0], part[1])))


def tag_partition(classifier: Any, items: list[dict[str, Any]], config: TagConfig) -> Any:
    """The tag columns (:class:`~pipeline.tag.TagColumns`) of a partition's items."""
    from ..tag import tag_columns

    return tag_columns(items, classifier, config)


# ---- the client side of each stage -----------------------------------------------------------------


def _in_order(client: Any, futures: list[Any]) -> Iterator[Any]:
    """Results in submission order, each released once read (memory stays one partition deep)."""
    for future in futures:
        value = future.result()
        future.release()
        yield value


def _parse(client: Any, inputs: list[Path], config: ParseConfig, workers: int, notes: list[str]) -> Any:
    """Parse on the workers, merged in input order. Workers get each input's real path, resolved
    here (their working directory is not the client's), and record the name the user gave, so
    sources are the local run's. The client checks each file's bytes against the worker's
    checksum as results come in, and parses an input itself (with a note naming the worker)
    when the worker could not read it or read other bytes (its filesystem is not the client's)."""
    from ..io import real_paths
    from ..parse import ArticleMerger

    files = list(zip(real_paths(inputs), (str(p) for p in inputs)))
    groups = split_even(files, _n_parts(len(inputs), workers) if len(inputs) > 1 else 1)
    futures = client.map(parse_partition, groups, config=config, pure=False)
    merger = ArticleMerger()
    for group, (worker, parsed_files) in zip(groups, _in_order(client, futures)):
        for (real, name), parsed in zip(group, parsed_files, strict=True):
            merger.add_file(_as_the_client_reads(parsed, worker, real, name, config, notes))
    return merger.result()


def _as_the_client_reads(parsed: Any, worker: str, real: str, name: str, config: ParseConfig,
                         notes: list[str]) -> Any:
    """The worker's parse of input ``name`` if it read the bytes the client reads; else the
    client's own parse (which names the file as the local run does if it cannot read it either)."""
    from ..io import sha256_file
    from ..parse import parse_file

    if isinstance(parsed, NotReadOnWorker):
        notes.append(f"parse: worker {worker} cannot read {name} ({parsed.reason}); parsed on the client")
        return parse_file(name, config)
    try:
        same = sha256_file(Path(real)) == parsed.sha256
    except OSError:
        return parse_file(name, config)  # the client cannot read it: the local run's error
    if not same:
        notes.append(f"parse: worker {worker} read other bytes than the client at {real} ({name}); "
                     "parsed on the client")
        return parse_file(name, config)
    return parsed


def _clean(client: Any, articles: list[Article], config: CleanConfig, workers: int
           ) -> tuple[Any, list[Any], list[int], list[tuple[Any, Any]]]:
    """Fill tokens and amounts like ``clean_articles``; return its result, the token partitions
    (futures, still on the workers), the partition sizes and the partitions' (headline texts,
    standfirst texts) futures, kept for the tag stage."""
    from ..clean import CleanResult, find_blurbs, headline_text, is_blurb

    blurbs = find_blurbs(articles, config.blurb_min_headlines)
    heads = [headline_text(a) for a in articles]
    stands = ["" if is_blurb(a, blurbs) else (a.standfirst or "") for a in articles]
    bounds = [len(p) for p in split_even(range(len(articles)), _n_parts(len(articles), workers))]
    values = asdict(config)
    if values.get("normalise_file"):  # read on the workers, whose working directory is not ours
        values["normalise_file"] = os.path.realpath(values["normalise_file"])
    config_json = json.dumps(values, sort_keys=True)
    futures, texts_parts, start = [], [], 0
    for size in bounds:
        h, s = client.scatter([heads[start:start + size], stands[start:start + size]])
        futures.append(client.submit(clean_partition, config_json, h, s, pure=False))
        texts_parts.append((h, s))
        start += size
    head_tokens: list[list[str]] = []
    stand_tokens: list[list[str]] = []
    empty = 0
    position = 0
    for future in futures:
        part_heads, part_stands, part_amounts = future.result()
        for head, stand, amounts in zip(part_heads, part_stands, part_amounts):
            article = articles[position]
            article.tokens = head + stand
            article.amounts = amounts
            empty += not article.tokens
            position += 1
        head_tokens.extend(part_heads)
        stand_tokens.extend(part_stands)
    texts = [t for t in heads + stands if t.strip()]
    counts = {"texts": len(texts), "distinct_texts": len(set(texts)), "blurbs": len(blurbs),
              "blurb_articles": sum(1 for a in articles if is_blurb(a, blurbs)), "empty": empty}
    return CleanResult(head_tokens, stand_tokens, blurbs, counts), futures, bounds, texts_parts


def block_shape(X: Any) -> tuple[int, int, int]:
    """Rows, columns and non-zeros of a TF-IDF block (on the worker)."""
    return int(X.shape[0]), int(X.shape[1]), int(X.nnz)


def _vectorise(client: Any, parts: list[Any], config: VectoriseConfig
               ) -> tuple[Any, list[Any], tuple[int, int, int]]:
    """The fitted vectoriser, the TF-IDF blocks (futures, left on the workers) and the matrix's
    (rows, columns, non-zeros)."""
    from ..vectorise import Vectoriser

    vectoriser = Vectoriser.from_config(config)
    # the partitions' statistics summed in order as they arrive (memory stays one partition deep)
    stats = vectoriser.combine(_in_order(client, client.map(stats_partition, parts, vectoriser=vectoriser,
                                                            pure=False)))
    vectoriser.fit_stats(stats)
    shared = client.scatter(vectoriser, broadcast=True)
    blocks = [client.submit(transform_partition, shared, p, pure=False) for p in parts]
    shapes = client.gather([client.submit(block_shape, b, pure=False) for b in blocks])
    n_features = shapes[0][1] if shapes else 0
    return vectoriser, blocks, (sum(r for r, _, _ in shapes), n_features, sum(z for _, _, z in shapes))


def gather_matrix(client: Any, blocks: list[Any]) -> Any:
    """The whole TF-IDF matrix on the client (rows in order)."""
    import scipy.sparse as sp

    parts = list(_in_order(client, blocks))
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, 0))


def _cluster(client: Any, blocks: list[Any], articles: list[Article], config: Config,
             vectoriser: Any) -> Any:
    """k-means on the workers when there are enough distinct articles; otherwise (small corpora,
    and the sample-based agglomerative/hdbscan methods) the gathered matrix, clustered locally."""
    from ..cluster import cluster_articles

    if config.cluster.method == "kmeans" and len(articles) > NATIVE_CLUSTER_MIN:
        from .dask_cluster import cluster_blocks_native

        result = cluster_blocks_native(client, blocks, articles, config.cluster, vectoriser,
                                       max(NATIVE_CLUSTER_MIN, config.cluster.minibatch_threshold))
        if result is not None:
            return result
    return cluster_articles(gather_matrix(client, blocks), articles, config.cluster, vectoriser)


def _tag(client: Any, articles: list[Article], classifier: Any, config: Config,
         bounds: list[int]) -> dict[str, Any]:
    """Tag the articles partition by partition on the workers; the counts."""
    from ..tag import TagColumns, article_item, fill_tags

    shared = client.scatter(classifier, broadcast=True)
    futures, start = [], 0
    for size in bounds:
        items = client.scatter([[article_item(a) for a in articles[start:start + size]]])[0]
        futures.append(client.submit(tag_partition, shared, items, config.tag, pure=False))
        start += size
    return fill_tags(articles, TagColumns.join(list(_in_order(client, futures))))


def run_stages(inputs: list[Path], config: Config, model_path: Path, classifier: Any, progress: Any,
               jobs: int, freeze: Any = None) -> Any:
    """The Dask counterpart of ``pipeline.run._run_stages``: same RunResult, counts and manifest.
    (``freeze`` is accepted for the same call; the records live on the workers here.)"""
    from ..manifest import cluster_stage, describe_parsed_inputs, finish_run
    from ..outputs import utc_now

    require_distributed()
    started = utc_now()
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {}
    notes: list[str] = []
    clusters: list[Any] = []
    coords = None
    vectoriser = None
    with dask_client(config.run.scheduler, jobs) as client:
        workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})) or jobs)
        address = config.run.scheduler or "local cluster"

        t0 = time.perf_counter()
        progress.start("parse", len(inputs))
        parsed = _parse(client, inputs, config.parse, workers, notes)
        articles: list[Article] = list(parsed.articles)
        rejects: list[Reject] = list(parsed.rejects)
        counts["parse"] = dict(parsed.counts)
        progress.advance("parse", len(inputs))
        timings["parse"] = time.perf_counter() - t0
        progress.finish("parse", timings["parse"])
        described = describe_parsed_inputs(parsed, inputs)  # the workers' checksums

        if articles:
            t0 = time.perf_counter()
            progress.start("clean", len(articles))
            cleaned, parts, bounds, texts_parts = _clean(client, articles, config.clean, workers)
            counts["clean"] = {"articles": len(articles), **cleaned.counts}
            progress.advance("clean", len(articles))
            timings["clean"] = time.perf_counter() - t0
            progress.finish("clean", timings["clean"])

            t0 = time.perf_counter()
            progress.start("vectorise", len(articles))
            vectoriser, blocks, (n_rows, n_features, nnz) = _vectorise(client, parts, config.vectorise)
            counts["vectorise"] = {"articles": n_rows, "features": n_features, "nonzeros": nnz}
            notes.extend(f"vectorise: {n}" for n in vectoriser.notes_)
            progress.advance("vectorise", len(articles))
            timings["vectorise"] = time.perf_counter() - t0
            progress.finish("vectorise", timings["vectorise"])

            clustered = cluster_stage(
                None, articles, config, vectoriser, progress, counts, notes, timings,
                clusterer=lambda: _cluster(client, blocks, articles, config, vectoriser))
            for future in blocks:
                future.release()
            clusters, coords = list(clustered.clusters), clustered.coords

            t0 = time.perf_counter()
            progress.start("tag", len(articles))
            counts["tag"] = {"articles": len(articles),
                             **_tag(client, articles, classifier, config, bounds)}
            for future in [*parts, *(f for pair in texts_parts for f in pair)]:
                future.release()
            progress.advance("tag", len(articles))
            timings["tag"] = time.perf_counter() - t0
            progress.finish("tag", timings["tag"])

    return finish_run(started, described, config, model_path, jobs, inputs, articles, rejects, clusters,
                      counts, timings, notes, coords=coords, vectoriser=vectoriser,
                      extra_libraries=_dask_versions(),
                      backend={"name": "dask", "scheduler": address, "workers": workers})


def _dask_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("dask", "distributed"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
