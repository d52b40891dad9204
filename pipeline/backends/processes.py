"""Local process parallelism for the parse and tag stages (``--jobs N``), used by ``run``.

Why here and not inside the stages: both stages are per-file / per-text pure functions, so they
split into contiguous chunks whose results, concatenated in order, equal the one-process result.
Workers (joblib's loky processes, reused across calls) receive paths or plain dicts and return
plain records -- never spaCy Docs -- and load the classifier once per process from its file.
Below the thresholds the work runs in-process: starting workers costs more than it saves.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import ParseConfig, TagConfig
from ..records import Article
from . import split_even

PARSE_MIN_FILES = 200  # about 4,000 page slots
TAG_MIN_ARTICLES = 20000
CHUNKS_PER_WORKER = 4


def _parse_files(paths: list[str], config: ParseConfig) -> list[Any]:
    from ..parse import parse_file, with_derived_ids

    return [with_derived_ids(parse_file(path, config)) for path in paths]


def parse_paths_parallel(paths: Sequence[str | Path], config: ParseConfig, n_jobs: int,
                         meanwhile: Callable[[], Any] | None = None) -> Any:
    """``parse.parse_paths`` with files parsed in ``n_jobs`` processes and merged in file order.

    Where ``fork`` exists, ``n_jobs - 1`` forked children start on chunks of files at once (no
    interpreter start-up, unlike a process pool: at 100k articles that start-up made two
    workers slower than one process); this process first calls ``meanwhile`` (``run`` loads
    spaCy, scikit-learn and the classifier then; never before a fork, so no thread is ever
    forked), then merges the children's files in order as they arrive and parses chunks from
    the back in between (:class:`SharedChunks`): a slow load and the parsing overlap without
    either waiting for the other. A chunk whose child failed is parsed again here, and errors
    raise in file order, so a bad file raises its usual InputError, the first one in file order.
    """
    from ..collector import paused_gc
    from ..parse import ArticleMerger, parse_paths
    from .forked import SharedChunks, can_fork

    if n_jobs <= 1 or len(paths) < PARSE_MIN_FILES:
        if meanwhile is not None:
            meanwhile()
        return parse_paths(paths, config)
    merger = ArticleMerger()
    if can_fork():
        names = [str(p) for p in paths]
        size = -(-len(names) // SharedChunks.MAX_CHUNKS)
        starts = range(0, len(names), size)
        with paused_gc():  # as in parse_paths: the merged records pile up and form no cycles
            shared = SharedChunks(len(starts), lambda i: _parse_files(names[starts[i]:starts[i] + size], config),
                                  children=n_jobs - 1)
            try:
                if meanwhile is not None:
                    meanwhile()
            except BaseException:
                shared.cancel()
                raise
            for parsed_files in shared.in_order():  # in file order, ours merged as we go
                for parsed in parsed_files:
                    merger.add_file(parsed)
        return merger.result()
    from joblib import Parallel, delayed

    groups = split_even([str(p) for p in paths], n_jobs * CHUNKS_PER_WORKER)
    results = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")(
        delayed(_parse_files)(group, config) for group in groups)
    if meanwhile is not None:
        meanwhile()
    with paused_gc():
        for parsed_files in results:  # in order; a bad file raises its InputError here
            for parsed in parsed_files:
                merger.add_file(parsed)
    return merger.result()


def tag_articles_parallel(articles: list[Article], classifier: Any, config: TagConfig,
                          n_jobs: int) -> dict[str, Any]:
    """``tag.tag_articles`` with chunks of articles tagged in ``n_jobs`` processes.

    Features are computed per text, so a chunk's tags equal the whole batch's (tested). The
    classifier travels to the workers with the chunks (it is a few MB of arrays).
    """
    from ..tag import TagColumns, article_item, fill_tags, tag_articles, tag_columns

    if n_jobs <= 1 or len(articles) < TAG_MIN_ARTICLES:
        return tag_articles(articles, classifier, config)
    from joblib import Parallel, delayed

    chunks = split_even([article_item(a) for a in articles], n_jobs * CHUNKS_PER_WORKER)
    results = Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(tag_columns)(chunk, classifier, config) for chunk in chunks)
    return fill_tags(articles, TagColumns.join(results))
