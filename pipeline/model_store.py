"""Files of the tag stage: the category taxonomy, labelled examples, the model artefact and its card.

Trust model: a ``.joblib`` file is a pickle, and loading a pickle runs code. :func:`load_classifier`
therefore only loads a regular file (not a symlink) ending in ``.joblib`` whose model card (the
``.json`` beside it) names that file and records its SHA-256; the bytes are hashed and then
loaded from memory, so what was checked is what is loaded. The hash catches corruption, a
half-copied file and an artefact swapped without its card; it cannot stop someone who can write
both files, so keep model directories writable only by people you trust, as with any code.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import CATEGORIES_FILE, DEFAULT_MODEL, MODELS_DIR
from .errors import ConfigError, InputError, ModelError, OutputError
from .io import atomic_writer, read_text, sha256_file, write_text_atomic

if TYPE_CHECKING:
    from .tag import CategoryClassifier

CARD_FORMAT = 1
# Texts whose cleaned tokens fingerprint the clean stage (phrases, money, acronyms, quotes, case),
# together with ~200 of the model's own training texts (``clean_sample_``): if the clean code
# changes what a saved model's vocabulary was built from, loading refuses rather than predicting
# from silently different tokens. (Edits to configs/normalise.toml do not matter: a trained model
# keeps a frozen copy of the clean stage's domain lists.)
PROBE_TEXTS = (
    "Exclusive: NHS England claws back £20m from ICBs as waiting lists grow",
    "Trusts\u2019 \u2018significant concern\u2019 over A&E four-hour target and 52-week waits",
    "ICSs and ICBs face 3.5% efficiency savings; CQC rates maternity unit inadequate",
    "Chief executive steps down as the integrated care board appoints interim chair",
    "BMA resident doctors strike over pay; electronic patient record go-live delayed",
    "Secretary of state announces ten-year plan and abolition of NHS England",
    "Provider collaborative takes over community services contract from private sector",
    "Judicial review of procurement decision; conflict of interest at board meeting",
    "Record numbers of GPs unemployed as practices freeze recruitment",
    "The best and worst performers: latest figures show likely, healthier, better, fewer, more",
)
_VERSIONED = ("scikit-learn", "spacy", "spacy-lookups-data", "numpy", "scipy", "joblib",
              "hsj-pipeline")


# -- taxonomy ------------------------------------------------------------------------------------


def load_categories(path: Path | str = CATEGORIES_FILE) -> dict[str, dict[str, Any]]:
    """Read ``categories.toml``: ``{name: {"description": str, "lexicon": [str, ...]}}`` in file order."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path))
    except InputError as exc:
        raise ConfigError(exc.message, key=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=str(path)) from None
    categories = data.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise ConfigError("expected [categories.<name>] tables", key=f"{path}: categories")
    out: dict[str, dict[str, Any]] = {}
    for name, table in categories.items():
        key = f"{path}: categories.{name}"
        if not isinstance(table, dict):
            raise ConfigError("expected a table with description and lexicon", key=key)
        unknown = set(table) - {"description", "lexicon"}
        if unknown:
            raise ConfigError(f"unknown key(s) {sorted(unknown)} (known: description, lexicon)", key=key)
        lexicon = table.get("lexicon", [])
        if not isinstance(lexicon, list) or not all(isinstance(t, str) and t.strip() for t in lexicon):
            raise ConfigError("lexicon must be a list of non-empty strings", key=f"{key}.lexicon")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ConfigError("description must be a string", key=f"{key}.description")
        out[name] = {"description": description, "lexicon": lexicon}
    return out


# -- labelled examples -----------------------------------------------------------------------------


@dataclass
class LabelledData:
    """Examples read from labels files: items for the classifier, their labels, and provenance."""

    items: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


def read_labels(paths: list[Path], *, label_field: str = "category",
                categories: list[str] | None = None) -> LabelledData:
    """Read JSONL labels files (``headline``, optional ``standfirst``/``series``, a label field).

    With ``categories`` given, a label outside it is an error naming the file, line and label.
    The same text twice with the same label is kept once; with different labels it is an error.
    """
    data = LabelledData()
    seen: dict[tuple[str, str], tuple[str, str, int]] = {}
    for path in paths:
        path = Path(path)
        text = read_text(path)
        n = 0
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg}", file=str(path), line=lineno) from None
            if not isinstance(record, dict):
                raise InputError("expected a JSON object per line", file=str(path), line=lineno)
            headline = record.get("headline")
            if not isinstance(headline, str) or not headline.strip():
                raise InputError("missing or empty 'headline'", file=str(path), line=lineno)
            standfirst = record.get("standfirst")
            if standfirst is not None and not isinstance(standfirst, str):
                raise InputError("'standfirst' must be a string or null", file=str(path), line=lineno)
            label = record.get(label_field)
            if not isinstance(label, str) or not label.strip():
                raise InputError(f"missing or empty '{label_field}'", file=str(path), line=lineno)
            if categories is not None and label not in categories:
                raise InputError(f"unknown category {label!r} (valid: {', '.join(categories)})",
                                 file=str(path), line=lineno)
            key = (" ".join(headline.split()).casefold(), " ".join((standfirst or "").split()).casefold())
            if key in seen:
                first_label, first_file, first_line = seen[key]
                if first_label != label:
                    raise InputError(f"same text labelled {label!r} here and {first_label!r} at "
                                     f"{first_file}:{first_line}", file=str(path), line=lineno)
                data.duplicates += 1
                continue
            seen[key] = (label, str(path), lineno)
            item = {"headline": headline, "standfirst": standfirst}
            if record.get("series"):
                item["series"] = record["series"]
            data.items.append(item)
            data.labels.append(label)
            n += 1
        data.files.append({"name": path.name, "sha256": sha256_file(path), "examples": n})
    if not data.items:
        where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} labels files"
        raise InputError(f"no labelled examples in {where}")
    return data


def has_field(path: Path, name: str) -> bool:
    """Whether the first record of a JSONL file has field ``name`` (to tell test sets apart)."""
    for line in read_text(Path(path)).splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                return False
            return isinstance(record, dict) and name in record
    return False


# -- model artefact and card ----------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of Python and every library whose change could alter a saved model."""
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def clean_fingerprint(clf: "CategoryClassifier") -> str:
    """SHA-256 of the classifier's cleaner output on :data:`PROBE_TEXTS` and a sample of its training texts."""
    tokens = clf.cleaner_.tokens(list(PROBE_TEXTS) + list(getattr(clf, "clean_sample_", [])))
    return hashlib.sha256(json.dumps(tokens, ensure_ascii=False).encode("utf-8")).hexdigest()


def card_path(path: Path) -> Path:
    """The model card beside an artefact: ``x.joblib`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


# File name ``hsj-pipeline train`` writes in the current directory when no --out is given.
TRAINED_MODEL_NAME = DEFAULT_MODEL.name


def check_model_target(path: Path, *, force: bool, named: bool) -> None:
    """Refuse (before training) to replace a model file or its card without ``force``, and to
    write into the shipped models directory unless the user named the path (``named``) and forced.

    Training without --out once overwrote the shipped model and dropped its card's held-out
    metrics; a trained model now only replaces another on request.
    """
    path = Path(path)
    shipped = path.parent.resolve() == MODELS_DIR.resolve()
    if shipped and not (named and force):
        raise OutputError("refusing to write into the shipped models directory; name the file "
                          "with --out and add --force to replace the shipped model", file=str(path))
    for target in (path, card_path(path)):
        if os.path.lexists(target) and not force:
            raise OutputError("already exists; pass --force to replace it, or choose another --out",
                              file=str(target))


def save_classifier(clf: "CategoryClassifier", path: Path | str = DEFAULT_MODEL, *,
                    training_files: list[dict[str, Any]] | None = None,
                    metrics: dict[str, Any] | None = None,
                    counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Write the artefact and its model card atomically; return the card.

    The artefact's bytes depend only on the fitted model (no date inside), so retraining on the
    same data with the same versions gives the same SHA-256; the card carries the date.
    """
    import joblib

    path = Path(path)
    if path.suffix != ".joblib":
        raise ModelError("the model file name must end in .joblib", file=str(path))
    buffer = io.BytesIO()
    joblib.dump(clf, buffer, compress=3)
    blob = buffer.getvalue()
    files = training_files or []
    combined = hashlib.sha256()
    for f in files:
        combined.update(f"{f['name']}\0{f['sha256']}\n".encode())
    card = {
        "format_version": CARD_FORMAT,
        "artefact": path.name,
        "artefact_sha256": hashlib.sha256(blob).hexdigest(),
        "artefact_bytes": len(blob),
        "estimator": type(clf).__name__,
        "labels": [str(c) for c in clf.classes_],
        "examples_per_class": counts or {},
        "training_data": {"files": files, "combined_sha256": combined.hexdigest()},
        "params": _jsonable(clf.get_params()),
        "lexicon_terms": {c: len(v) for c, v in (clf.lexicon_ or {}).items()},
        "clean_fingerprint": clean_fingerprint(clf),
        "cross_validation": metrics or {},
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with atomic_writer(path, "wb") as handle:
        handle.write(blob)
    write_text_atomic(card_path(path), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def read_card(path: Path | str) -> dict[str, Any]:
    """Read and check the model card of an artefact (ModelError naming what is wrong)."""
    path = Path(path)
    card_file = card_path(path)
    fix = "retrain with `hsj-pipeline train`"
    if card_file.is_symlink() or not card_file.is_file():
        raise ModelError(f"model card {card_file.name} not found beside the model (or not a regular "
                         f"file); refusing to load an unverified model; {fix}", file=str(path))
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model card is not readable JSON ({exc}); {fix}", file=str(card_file)) from None
    if not isinstance(card, dict) or card.get("format_version") != CARD_FORMAT:
        found = card.get("format_version") if isinstance(card, dict) else None
        raise ModelError(f"model card format {found!r} is not the supported {CARD_FORMAT}; {fix}",
                         file=str(card_file))
    for key in ("artefact", "artefact_sha256", "labels", "versions"):
        if key not in card:
            raise ModelError(f"model card lacks {key!r}; {fix}", file=str(card_file))
    if card["artefact"] != path.name:
        raise ModelError(f"model card is for {card['artefact']!r}, not {path.name!r}; refusing to load",
                         file=str(card_file))
    return card


def trained_on(card: dict[str, Any], paths: list[Path]) -> bool:
    """Whether the card's model was trained on exactly these labels files (names and contents):
    a labels file added or edited since means the model is stale for it (retrain)."""
    files = card.get("training_data", {}).get("files", [])
    return {f["name"]: f["sha256"] for f in files} == {Path(p).name: sha256_file(Path(p)) for p in paths}


def record_heldout(path: Path | str, name: str, metrics: dict[str, Any],
                   test_file: Path | str | None = None) -> dict[str, Any]:
    """Add held-out scores of the saved model to its card under ``heldout.<name>``; return the card.

    Why: cross-validation on the training labels flatters a model whose labels share authors and
    wording; a separately written set it never saw is the honest figure, and it belongs beside
    the artefact. Only the card changes (the artefact and its SHA-256 do not).
    """
    path = Path(path)
    card = read_card(path)
    entry: dict[str, Any] = {k: metrics[k] for k in ("n", "macro_f1", "accuracy", "log_loss")
                             if k in metrics}
    if "per_class" in metrics:
        entry["f1_per_class"] = {c: v["f1"] for c, v in metrics["per_class"].items()}
    if test_file is not None:
        entry["file"] = Path(test_file).name
        entry["sha256"] = sha256_file(Path(test_file))
    card.setdefault("heldout", {})[name] = entry
    write_text_atomic(card_path(path), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def load_classifier(path: Path | str | None = None) -> "CategoryClassifier":
    """Load a saved :class:`~pipeline.tag.CategoryClassifier` after verifying it against its card.

    Refuses (with :class:`~pipeline.errors.ModelError`) a missing file, a symlink or non-regular
    file, a name not ending in ``.joblib``, a missing or mismatched card, a SHA-256 mismatch, a
    model trained with another scikit-learn minor version, anything that does not unpickle into a
    classifier with the card's labels, and a model whose clean code now gives other tokens.
    """
    import joblib

    from .tag import CategoryClassifier

    path = Path(path) if path else DEFAULT_MODEL
    fix = "retrain with `hsj-pipeline train`"
    if path.is_symlink():
        raise ModelError("is a symlink; load the model file itself (symlinks are refused so the "
                         "verified card and file cannot point to different places)", file=str(path))
    if not path.exists():
        raise ModelError(f"model file not found; {fix} or pass a model path", file=str(path))
    if not path.is_file():
        raise ModelError("not a regular file", file=str(path))
    if path.suffix != ".joblib":
        raise ModelError("expected a .joblib model file", file=str(path))
    card = read_card(path)
    trained = str(card["versions"].get("scikit-learn", "unknown"))
    installed = metadata.version("scikit-learn")
    if _minor(trained) != _minor(installed):
        raise ModelError(f"model was trained with scikit-learn {trained}, but {installed} is "
                         f"installed; {fix} (or install scikit-learn {trained})", file=str(path))
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card["artefact_sha256"]:
        raise ModelError(f"SHA-256 {digest[:12]}... does not match the model card "
                         f"({str(card['artefact_sha256'])[:12]}...); the file is corrupt or was "
                         f"replaced; refusing to load; {fix}", file=str(path))
    try:
        clf = joblib.load(io.BytesIO(blob))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ModelError(f"cannot load the model ({type(exc).__name__}: {exc}); {fix}",
                         file=str(path)) from None
    if not isinstance(clf, CategoryClassifier):
        raise ModelError(f"file holds a {type(clf).__name__}, not a CategoryClassifier", file=str(path))
    if [str(c) for c in clf.classes_] != list(card["labels"]):
        raise ModelError("the model's labels differ from its card's; refusing to load", file=str(path))
    if card.get("clean_fingerprint") != clean_fingerprint(clf):
        raise ModelError("the clean stage's code now turns text into different tokens than when "
                         "this model was trained, so its predictions would be off (e.g. after an "
                         f"upgrade of hsj-pipeline or spaCy); {fix}", file=str(path))
    return clf
