"""The main job: parse, clean, vectorise, cluster and tag, in that order.

``run()`` is the library entry point (``from pipeline import run``). It returns a
:class:`RunResult` holding the records, clusters, counts and timings and writes nothing unless an
output directory is given. With ``out_dir`` it writes, as one set:

``articles.jsonl``, ``rejects.jsonl``, ``report.html``, ``vectoriser.joblib`` and ``run.json``
(see :mod:`pipeline.outputs`).

Writing is crash-safe: every file is first written whole into a hidden staging directory inside
``out_dir`` and only then renamed into place (``run.json`` last), so a run killed at any moment
leaves the previous outputs intact and no partial file under an output name. Leftovers of a killed
run (its ``.staging-*`` directory, proved to be its own by a token recorded in the lock file) are
completed or removed at the start of the next run; nothing else in ``out_dir`` is touched. The
directory is locked (``out_dir/.lock``, ``flock``) for the whole run: a second run on the same
directory fails at once instead of mixing outputs.

Heavy libraries (spaCy, scikit-learn) are imported inside functions so ``import pipeline`` stays
cheap; the stages themselves never print or touch files.
"""
from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .collector import paused_gc
from .compare import carry_forward, read_run, same_directory
from .config import DEFAULT_MODEL, SAMPLES_DIR, Config, load_config
from .errors import InputError, ModelError
from .io import real_paths
from .manifest import (STAGES, RunResult, build_manifest, cluster_stage,  # noqa: F401 - RunResult and
                       counts_of, describe_parsed_inputs, finish_run, library_versions,  # others
                       reconcile)  # re-exported for callers of pipeline.run
from .outputs import (COMPLETE_MARKER, LOCK_NAME, OUTPUT_FILES,  # noqa: F401 - re-exported for callers
                      OUTPUT_FORMAT, STAGING_PREFIX, OutputLock, check_output_dir, remove_leftovers, utc_now,
                      write_outputs)
from .records import Article, Reject

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv")
TAG_CHUNK = 5000  # articles per tagging call (progress granularity)


class Progress(Protocol):
    """What ``run`` reports while it works; the CLI implements it with rich progress bars."""

    def start(self, stage: str, total: int) -> None:
        """A stage begins with ``total`` units of work (articles, or files for parse)."""

    def advance(self, stage: str, amount: int) -> None:
        """``amount`` more units of the stage are done."""

    def finish(self, stage: str, seconds: float) -> None:
        """The stage is complete."""


class _NoProgress:
    def start(self, stage: str, total: int) -> None:  # noqa: D102 - protocol no-op
        pass

    def advance(self, stage: str, amount: int) -> None:  # noqa: D102
        pass

    def finish(self, stage: str, seconds: float) -> None:  # noqa: D102
        pass


# ---- inputs --------------------------------------------------------------------------------------


def resolve_inputs(paths: Sequence[str | Path] | None) -> list[Path]:
    """The input files in order: the bundled samples when ``paths`` is empty.

    A directory stands for its ``*.txt``, ``*.jsonl`` and ``*.csv`` files (not recursive), sorted
    by name, so a batch user can pass a folder of pages; a directory with none of them is an error.
    Order matters: articles are written in order of first appearance.
    """
    if not paths:
        samples = sorted(SAMPLES_DIR.glob("*.txt"))
        if not samples:
            raise InputError("no bundled sample pages found", file=str(SAMPLES_DIR))
        # relative to the working directory when inside it ("data/samples/…"), so the recorded
        # sources do not depend on where the checkout lives
        cwd = Path.cwd().resolve()
        return [p.relative_to(cwd) if p.resolve().is_relative_to(cwd) else p for p in samples]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
            if not found:
                raise InputError("directory has no .txt, .jsonl or .csv files", file=str(path))
            files.extend(found)
        else:
            files.append(path)  # parse names missing/unreadable files
    seen: set[str] = set()
    unique = []
    for path, key in zip(files, real_paths(files)):
        if key not in seen:  # the same file twice would only produce merges
            seen.add(key)
            unique.append(path)
    return unique


# ---- model ---------------------------------------------------------------------------------------


def resolve_model(model: str | Path | None, config: Config) -> Path:
    """The classifier file to use: argument, then ``tag.model``, then the shipped model."""
    if model:
        path = Path(model)
    elif config.tag.model:
        path = Path(config.tag.model)
    else:
        path = DEFAULT_MODEL
    if not path.is_file():
        raise ModelError("model file not found (train one with `hsj-pipeline train` or pass --model)",
                         file=str(path))
    return path


# ---- the job -------------------------------------------------------------------------------------


def _add_counts(total: dict[str, Any], part: Any) -> None:
    """Sum a stage's counts dict into ``total`` (nested dicts summed key by key)."""
    for key, value in (part if isinstance(part, dict) else counts_of(part)).items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value


def _jobs(n_jobs: int | None, config: Config) -> int:
    jobs = config.run.jobs if n_jobs is None else n_jobs
    return jobs if jobs > 0 else (os.cpu_count() or 1)


@contextlib.contextmanager
def _gc_freezer() -> Iterator[Callable[[], None]]:
    """Yield a function that moves every object alive now out of the collector's reach.

    Why: a run keeps millions of long-lived objects (articles, tokens, arrays); each full
    collection walks all of them (0.5 s at 100k articles, several times per run) to find nothing,
    since the records form no cycles, and in a forked child that walk also copies every page it
    inherited. ``run`` freezes after parse and after clean; everything is unfrozen on exit. A
    caller that froze objects itself is left alone (nothing is frozen or unfrozen then).
    """
    if gc.get_freeze_count():
        yield lambda: None
        return
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _ignore(line: str) -> None:
    """The default ``notice``: the library never prints."""


def run(paths: Sequence[str | Path] | None = None, *, config: Config | None = None,
        out_dir: str | Path | None = None, model: str | Path | None = None,
        progress: Progress | None = None, n_jobs: int | None = None,
        trust_pickle: bool = False, previous: str | Path | None = None,
        notice: Callable[[str], None] | None = None) -> RunResult:
    """Run parse, clean, vectorise, cluster and tag over ``paths`` (default: the bundled samples).

    Parameters
    ----------
    paths: input files or directories (a directory means its .txt/.jsonl/.csv files, sorted).
    config: the resolved configuration; default ``configs/default.toml``.
    out_dir: when given, write the outputs there (atomically, under a lock); otherwise write nothing.
    model: classifier file; default ``tag.model`` from the config, else the shipped model.
    progress: optional :class:`Progress` receiving per-stage updates (the library never prints).
    n_jobs: worker processes for the clean stage; default ``run.jobs`` (0 = all cores).
    trust_pickle: allow a ``.joblib`` (pickle) model, which runs code as it loads.
    notice: called with one line for each leftover of a killed run that was completed or removed
        in ``out_dir`` before the run (the CLI prints them on stderr; also in ``run.json``).
    previous: an earlier run's output directory: topics matching its topics keep their ids,
        the others get ids above any it used; ``RunResult.comparison`` says what changed and
        ``run.json`` records it (``previous``, ``next_topic_id``). It may be ``out_dir`` itself
        (it is read before anything is written).

    Returns
    -------
    RunResult with the articles, rejects, clusters, counts (with their reconciliation), timings
    per stage and the manifest written as ``run.json``.
    """
    config = config if config is not None else load_config()
    stages = _run_stages
    if config.run.backend == "dask":  # one-line ConfigError when the [dask] extra is missing
        from .backends.dask_backend import require_distributed, run_stages

        require_distributed()
        stages = run_stages
    progress = progress or _NoProgress()
    began = time.perf_counter()
    inputs = resolve_inputs(paths)
    model_path = resolve_model(model, config)  # fail before any work if it is missing
    from .model_store import load_classifier

    classifier = load_classifier(model_path, trust_pickle=trust_pickle)  # and if it is unusable
    out = None
    if out_dir is not None:
        input_dirs = [Path(p) for p in paths or () if Path(p).is_dir()]  # those expanded into inputs
        out = check_output_dir(Path(out_dir), inputs, model_path, input_dirs=input_dirs)
    # the previous run is read (and checked) before any work; when it is the output directory
    # itself, under its lock and after the tidy, which may complete its publication
    own = previous is not None and out is not None and same_directory(previous, out)
    prior = read_run(previous) if previous is not None and not own else None
    lock = OutputLock(out) if out is not None else contextlib.nullcontext()
    with lock:
        tidied = remove_leftovers(out) if out is not None else []
        for action in tidied:
            (notice or _ignore)(action)
        if own:
            prior = read_run(previous)
        with _gc_freezer() as freeze:
            result = stages(inputs, config, model_path, classifier, progress, _jobs(n_jobs, config),
                            freeze)
        if prior is not None:
            result.comparison = carry_forward(result.articles, result.clusters, result.manifest,
                                              prior, config.compare)
        if out is not None:
            result.manifest["recovered"] = tidied
            t0 = time.perf_counter()
            result.outputs = write_outputs(result, out)
            result.timings["write"] = time.perf_counter() - t0  # after run.json: not in it
    result.seconds = time.perf_counter() - began
    return result


class Prefetch:
    """Imports the heavy libraries and builds the text cleaner while forked children parse:
    otherwise the main process pays for it later, on the critical path (and forked children of
    later stages inherit what was loaded). It runs in the main thread (no thread is ever
    forked), before this process joins the parsing. A failure is kept quiet here: the stage
    that needs the thing then builds it itself and reports any error."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cleaner: Any = None

    def load(self) -> None:
        """Load everything now (``parse_paths_parallel`` calls it once its children run)."""
        try:
            from . import cluster, cluster_blocks, vectorise  # noqa: F401 - warm imports
            import sklearn.cluster  # noqa: F401 - imported lazily by cluster (0.13 s)
            import sklearn.decomposition  # noqa: F401
            from .clean import TextCleaner

            cleaner = TextCleaner(self.config.clean)
            cleaner._s  # noqa: B018 - spaCy's tokenizer and the lemma and domain tables
            self.cleaner = cleaner
        except BaseException:  # noqa: BLE001 - rebuilt (and reported) by the stage that needs it
            pass


def tag_stage(articles: list[Article], config: Config, classifier: Any, jobs: int,
              progress: Any) -> dict[str, Any]:
    """Tag ``articles`` in place (chunks for progress and bounded memory); return summed counts."""
    from .backends.processes import TAG_MIN_ARTICLES, tag_articles_parallel

    tag_counts: dict[str, Any] = {}
    # tagging is per article (a headline scores the same alone or in a batch), so chunks only
    # give progress and bound memory; with jobs > 1, chunks big enough to split over workers
    step = TAG_CHUNK if jobs <= 1 else max(TAG_CHUNK, TAG_MIN_ARTICLES)
    for begin in range(0, len(articles), step):
        end = min(begin + step, len(articles))
        _add_counts(tag_counts, tag_articles_parallel(articles[begin:end], classifier, config.tag, jobs))
        progress.advance("tag", end - begin)
    return tag_counts


def _start_tagging(articles: list[Article], config: Config, classifier: Any, jobs: int) -> Any:
    """Start tagging in ``jobs - 1`` forked children when that pays (else None): they take chunks
    of articles while this process vectorises and clusters, then this process takes the
    chunks still left (:func:`_finish_tagging`), so neither side waits for the other.

    Children inherit the articles and the classifier (copy-on-write) and send back only the
    tag columns (:class:`~pipeline.tag.TagColumns`).
    """
    from .backends.forked import SharedChunks, can_fork
    from .tag import article_item, tag_columns

    if jobs <= 1 or len(articles) < config.run.overlap_min_articles or not can_fork():
        return None
    size = max(TAG_CHUNK, -(-len(articles) // SharedChunks.MAX_CHUNKS))
    starts = range(0, len(articles), size)
    return SharedChunks(len(starts), lambda i: tag_columns(
        [article_item(a) for a in articles[starts[i]:starts[i] + size]], classifier, config.tag),
        children=jobs - 1)


def _finish_tagging(tagger: Any, articles: list[Article], config: Config, classifier: Any,
                    jobs: int, progress: Any, notes: list[str]) -> dict[str, Any]:
    """Tag the chunks the children have not taken and gather theirs into the articles (or tag
    everything here when no child was started); the summed counts, in chunk order."""
    from .tag import fill_tags

    if tagger is None:
        return tag_stage(articles, config, classifier, jobs, progress)
    tag_counts: dict[str, Any] = {}
    position = 0
    with paused_gc():  # 100k score dicts made: young-generation passes cost 0.05 s, find nothing
        for columns in tagger.in_order():
            chunk = articles[position:position + len(columns.categories)]
            _add_counts(tag_counts, fill_tags(chunk, columns))
            position += len(columns.categories)
    if position != len(articles):
        raise RuntimeError(f"tagged {position} of {len(articles)} articles")  # a bug, not user error
    notes.extend(f"tag: a forked tagger failed, its share was tagged in the main process: {failure}"
                 for failure in tagger.failures)
    progress.advance("tag", len(articles))
    return tag_counts


def _run_stages(inputs: list[Path], config: Config, model_path: Path, classifier: Any,
                progress: Progress, jobs: int, freeze: Callable[[], None] = lambda: None) -> RunResult:
    started = utc_now()
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {}
    # parse --------------------------------------------------------------------------------------
    from .backends.processes import parse_paths_parallel

    t0 = time.perf_counter()
    progress.start("parse", len(inputs))
    # while worker processes parse, this one is idle: load what the later stages need
    prefetch = Prefetch(config)
    # the collector paused during the prefetch too: its imports and unpickling allocate enough
    # to trigger full passes over the parsed records, which made it ~40% slower
    with paused_gc():
        parsed = parse_paths_parallel(inputs, config.parse, jobs,  # in-process below 200 files
                                      meanwhile=prefetch.load if jobs > 1 else None)
        # before the collector is back on: its first pass would walk every record parsed
        # while it was off (they are all still in the youngest generation; 0.25 s at 100k)
        freeze()  # the records and imported libraries stay to the end (see _gc_freezer)
    articles: list[Article] = list(parsed.articles)
    rejects: list[Reject] = list(parsed.rejects)
    counts["parse"] = counts_of(parsed)
    progress.advance("parse", len(inputs))
    timings["parse"] = time.perf_counter() - t0
    progress.finish("parse", timings["parse"])
    described = describe_parsed_inputs(parsed, inputs)

    clusters: list[Any] = []
    notes: list[str] = []
    coords = None
    vectoriser = None
    if articles:
        # clean ----------------------------------------------------------------------------------
        from .clean import clean_articles

        t0 = time.perf_counter()
        progress.start("clean", len(articles))
        with paused_gc():
            cleaned = clean_articles(articles, config.clean, n_jobs=jobs, cleaner=prefetch.cleaner)
            freeze()  # the tokens, before the collector's first pass would walk them all
        counts["clean"] = {"articles": len(articles), **counts_of(cleaned)}
        rejects.extend(getattr(cleaned, "rejects", None) or [])
        progress.advance("clean", len(articles))
        timings["clean"] = time.perf_counter() - t0
        progress.finish("clean", timings["clean"])

        # tag (in a forked child, alongside vectorise and cluster, when that pays) ----------------
        tagger = _start_tagging(articles, config, classifier, jobs)

        # vectorise ------------------------------------------------------------------------------
        from .vectorise import Vectoriser

        try:
            t0 = time.perf_counter()
            progress.start("vectorise", len(articles))
            vectoriser = Vectoriser.from_config(config.vectorise)
            # a CleanResult carries the headline/standfirst split the vectoriser weights by
            X = vectoriser.fit_transform(cleaned if hasattr(cleaned, "docs") else articles)
            counts["vectorise"] = {"articles": int(X.shape[0]), "features": int(X.shape[1]),
                                   "nonzeros": int(X.nnz)}
            notes.extend(f"vectorise: {n}" for n in getattr(vectoriser, "notes_", []) or [])
            progress.advance("vectorise", len(articles))
            timings["vectorise"] = time.perf_counter() - t0
            progress.finish("vectorise", timings["vectorise"])

            # cluster ----------------------------------------------------------------------------
            clustered = cluster_stage(X, articles, config, vectoriser, progress, counts, notes, timings)
            clusters, coords = list(clustered.clusters), clustered.coords
        except BaseException:
            if tagger is not None:
                tagger.cancel()
            raise

        t0 = time.perf_counter()
        progress.start("tag", len(articles))
        tag_counts = _finish_tagging(tagger, articles, config, classifier, jobs, progress, notes)
        counts["tag"] = {"articles": len(articles), **tag_counts}
        # with children, only what is left after clustering: the rest ran alongside it
        timings["tag"] = time.perf_counter() - t0
        if tagger is not None:
            timings["tag_wait"] = timings["tag"]  # marks the overlap (benchmarks/run_scale.py)
        progress.finish("tag", timings["tag"])

    return finish_run(started, described, config, model_path, jobs, inputs, articles, rejects, clusters,
                      counts, timings, notes, coords=coords, vectoriser=vectoriser)
