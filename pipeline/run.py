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

The stages run in :mod:`pipeline.runner`'s one loop, mapped over batches by an executor from
:mod:`pipeline.execution` (this process, forked children, or Dask). Heavy libraries (spaCy,
scikit-learn) are imported inside functions so ``import pipeline`` stays cheap; the stages
themselves never print or touch files.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .compare import carry_forward, read_run, same_directory
from .config import DEFAULT_MODEL, SAMPLES_DIR, Config, load_config
from .errors import InputError, ModelError
from .execution import Executor, Forked, Local, forked_minimums, resolve_jobs
from .io import real_paths
from .parse import InputFile
from .manifest import (STAGES, RunResult, build_manifest,  # noqa: F401 - RunResult and
                       library_versions, reconcile)  # others re-exported for callers of pipeline.run
from .outputs import (COMPLETE_MARKER, LOCK_NAME, OUTPUT_FILES,  # noqa: F401 - re-exported for callers
                      OUTPUT_FORMAT, STAGING_PREFIX, OutputLock, check_output_dir, remove_leftovers,
                      write_outputs)
from .runner import Progress, run_stages

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv")


# ---- inputs --------------------------------------------------------------------------------------


def resolve_inputs(paths: Sequence[str | Path] | None) -> list[Path]:
    """The input files in order: the bundled samples when ``paths`` is empty (see
    :func:`resolve_input_files`)."""
    return [Path(f.name) for f in resolve_input_files(paths)]


def resolve_input_files(paths: Sequence[str | Path] | None) -> list[InputFile]:
    """The input files in order, each with its real path (resolved once, here: the same file
    named twice is read once, and the parse stage reads by the real path).

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
        paths = [p.relative_to(cwd) if p.resolve().is_relative_to(cwd) else p for p in samples]
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
            unique.append(InputFile(str(path), key))
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


@contextlib.contextmanager
def executor_for(config: Config, jobs: int) -> Iterator[Executor]:
    """The executor ``run.backend`` and the job count ask for: Dask, forked children, or this
    process alone."""
    if config.run.backend == "dask":  # one-line ConfigError when the [dask] extra is missing
        from .execution.dask import dask_executor

        with dask_executor(config.run.scheduler, jobs) as executor:
            yield executor
        return
    if jobs > 1:
        yield Forked(jobs, forked_minimums(config.clean.parallel_threshold, config.tag.parallel_threshold))
    else:
        yield Local()


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
    if config.run.backend == "dask":
        from .execution.dask import require_distributed

        require_distributed()  # before any work
    began = time.perf_counter()
    files = resolve_input_files(paths)
    inputs = [Path(f.name) for f in files]
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
        with executor_for(config, resolve_jobs(config.run.jobs if n_jobs is None else n_jobs)) as executor:
            result = run_stages(files, config, model_path, classifier, executor, progress)
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
