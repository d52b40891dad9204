"""What a run is and what it records, whichever executor ran it: the :class:`RunResult`, the
counts' reconciliation and the ``run.json`` manifest (built by :mod:`pipeline.runner`)."""
from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config
from .errors import InputError
from .outputs import OUTPUT_FORMAT, utc_now
from .records import Article, Reject
from .stages import STAGE_NAMES as STAGES
from .version import __version__

# Libraries whose versions change results; recorded in run.json so a run can be reproduced.
RUN_LIBRARIES = ("spacy", "spacy-lookups-data", "scikit-learn", "numpy", "scipy", "joblib",
                 "pydantic", "typer", "rich")


@dataclass
class RunResult:
    """Everything one run produced, in memory; ``outputs`` is empty unless files were written."""

    articles: list[Article]
    rejects: list[Reject]
    clusters: list[Any]
    counts: dict[str, Any]
    timings: dict[str, float]
    manifest: dict[str, Any]
    config: Config
    inputs: list[Path]
    coords: Any = None  # (n_articles x 2) array from the cluster stage, for the report map
    vectoriser: Any = None
    outputs: dict[str, Path] = field(default_factory=dict)
    comparison: Any = None  # with --previous: pipeline.compare.Comparison, previous run vs this one
    seconds: float = 0.0  # wall time of the whole run, writing included (stages may overlap)

    @property
    def reconciled(self) -> bool:
        """True when every slot read is accounted for and no stage lost an article."""
        return bool(self.counts.get("reconciliation", {}).get("ok", False))


# ---- inputs --------------------------------------------------------------------------------------


def _input_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "page")


def describe_parsed_inputs(parsed: Any, paths: list[Path]) -> list[dict[str, Any]]:
    """The inputs for ``run.json``: path, sha256, bytes, format. The checksums are those the
    parse took of the very bytes it read (every backend parses with ``parse_file``); only if it
    has not got one for every input, in order, are the files read again (:func:`_describe_inputs`;
    the parse accepted them, so they are readable)."""
    digests = getattr(parsed, "digests", None) or []
    if len(digests) != len(paths) or any(file != str(path) or sha256 is None
                                         for (file, sha256, _), path in zip(digests, paths)):
        return _describe_inputs(paths)
    return [{"path": str(path), "sha256": sha256, "bytes": size, "format": _input_format(path)}
            for (_, sha256, size), path in zip(digests, paths)]


def _describe_inputs(paths: list[Path]) -> list[dict[str, Any]]:
    from .io import sha256_file

    described = []
    for path in paths:
        try:
            described.append({"path": str(path), "sha256": sha256_file(path),
                              "bytes": path.stat().st_size, "format": _input_format(path)})
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    return described


# ---- model and libraries -------------------------------------------------------------------------


def _model_reference(path: Path) -> dict[str, Any]:
    import json

    from .io import sha256_file

    card_path = path.with_suffix(".json")
    card: Any = None
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            card = None
    return {"path": str(path), "sha256": sha256_file(path),
            "card_path": str(card_path) if card_path.is_file() else None, "card": card}


def library_versions(names: Sequence[str] = RUN_LIBRARIES,
                     missing: str | None = None) -> dict[str, str | None]:
    """Versions of Python and of the distributions ``names`` (``missing`` for one not installed):
    the one lookup behind ``run.json`` and the model card (:mod:`pipeline.model_store`)."""
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = missing
    return versions


# ---- counts --------------------------------------------------------------------------------------


def counts_of(result: Any) -> dict[str, Any]:
    """A stage result's ``counts`` dict (a copy), or an empty one."""
    counts = getattr(result, "counts", None)
    return dict(counts) if isinstance(counts, dict) else {}


def reconcile(counts: dict[str, Any], n_articles: int) -> dict[str, Any]:
    """Check that every slot read is accounted for and that no stage lost or added an article."""
    parse = counts.get("parse", {})
    slots = int(parse.get("slots", 0))
    written = int(parse.get("written", 0))
    merged = int(parse.get("merged", 0))
    rejected = int(parse.get("rejected", 0))
    stage_sizes = {s: counts.get(s, {}).get("articles") for s in STAGES[1:] if s in counts}
    per_stage_ok = all(v == written for v in stage_sizes.values() if v is not None)
    ok = slots == written + merged + rejected and written == n_articles and per_stage_ok
    return {"slots": slots, "written": written, "merged": merged, "rejected": rejected,
            "slots_equal_written_merged_rejected": slots == written + merged + rejected,
            "articles_out": n_articles, "articles_per_stage": stage_sizes, "ok": ok}


# ---- the manifest --------------------------------------------------------------------------------


def build_manifest(started: str, described: Any, config: Config, model_path: Path, jobs: int,
                   counts: dict[str, Any], timings: dict[str, float], notes: list[str],
                   extra_libraries: dict[str, str | None] | None = None,
                   backend: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run manifest (``run.json``), the same shape for every backend; ``outputs`` filled on write."""
    manifest: dict[str, Any] = {
        "tool": "hsj-pipeline",
        "version": __version__,
        "output_format": OUTPUT_FORMAT,
        "started": started,
        "finished": None,
        "inputs": described,
        "config": config.to_dict(),
        "seeds": {"cluster.random_state": config.cluster.random_state},
        "model": _model_reference(model_path),
        "libraries": {**library_versions(), **(extra_libraries or {})},
        "jobs": jobs,
    }
    if backend is not None:
        manifest["backend"] = backend
    manifest.update({
        "counts": counts,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "notes": notes,
        "outputs": {},
    })
    manifest["finished"] = utc_now()
    return manifest


def finish_run(started: str, described: Any, config: Config, model_path: Path, jobs: int,
               inputs: list[Path], articles: list[Article], rejects: list[Reject], clusters: list[Any],
               counts: dict[str, Any], timings: dict[str, float], notes: list[str], coords: Any = None,
               vectoriser: Any = None, extra_libraries: dict[str, str | None] | None = None,
               backend: dict[str, Any] | None = None) -> RunResult:
    """The end of every backend's run: zero times for the stages skipped when nothing parsed,
    the rejects count, the reconciliation and the manifest, gathered into the RunResult."""
    if not articles:
        for stage in STAGES[1:]:
            timings[stage] = 0.0
    counts["rejects"] = len(rejects)
    counts["reconciliation"] = reconcile(counts, len(articles))
    manifest = build_manifest(started, described, config, model_path, jobs, counts, timings, notes,
                              extra_libraries=extra_libraries, backend=backend)
    return RunResult(articles=articles, rejects=rejects, clusters=clusters, counts=counts,
                     timings=timings, manifest=manifest, config=config, inputs=inputs,
                     coords=coords, vectoriser=vectoriser)
