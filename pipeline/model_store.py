"""Files of the tag stage: the category taxonomy, labelled examples, the model artefact and its card.

Trust model: the model is saved with skops (``.skops``), a format that cannot run code when it
is loaded: :func:`load_classifier` lists the types the file would build and refuses any that is
not in :data:`TRUSTED_TYPES` (the project's two classes; NumPy arrays and Python values need no
trust). A joblib pickle (``.joblib``) runs code as it loads, so it is loaded only on explicit
request (``trust_pickle=True``, ``--trust-pickle``). Either way the file must be a regular file
(not a symlink) whose model card (the ``.json`` beside it) names it and records its SHA-256; the
bytes are hashed and then loaded from memory, so what was checked is what is loaded.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import CATEGORIES_FILE, DEFAULT_MODEL, MODELS_DIR
from .errors import ConfigError, InputError, ModelError, OutputError
from .io import atomic_writer, json_objects, read_text, sha256_file, write_text_atomic

if TYPE_CHECKING:
    from .tag import CategoryClassifier

CARD_FORMAT = 2
SAFE_SUFFIX = ".skops"
PICKLE_SUFFIX = ".joblib"
# What a saved classifier is built from besides arrays and plain values; nothing else is trusted.
TRUSTED_TYPES = ("pipeline.tag.CategoryClassifier", "pipeline.tag_features.NgramTfidf")
# Every type a model file may name at all (skops would also build other scikit-learn types it
# trusts by default; a model file has no business holding them).
ALLOWED_TYPES = frozenset(TRUSTED_TYPES) | {f"builtins.{name}" for name in (
    "dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")} | {"numpy.ndarray"}
# Texts whose scores fingerprint the feature code: if an upgrade changes how text becomes
# features, loading refuses rather than predicting from silently different features.
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
_VERSIONED = ("scikit-learn", "numpy", "scipy", "skops", "hsj-pipeline")


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
    corrections: int = 0  # labels replaced by a correction in a later file
    unlabelled: int = 0  # correction rows whose label is still empty

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


def read_labels(paths: list[Path], *, label_field: str | None = "category",
                categories: list[str] | None = None) -> LabelledData:
    """Read JSONL labels files (``headline``, optional ``standfirst``/``series``, a label field).

    With ``categories`` given, a label outside it is an error naming the file, line and label.
    The same text (the key of :func:`pipeline.tag.gold_key`) twice with the same label is kept
    once; with different labels it is an error, except that a correction (a row with an ``id``
    field, as the report and ``hsj-pipeline review`` write them) in a later file replaces the
    earlier label (counted in ``corrections``). A correction row with an empty label is not
    labelled yet and is skipped (counted in ``unlabelled``). Other extra fields are ignored.
    With ``label_field`` None the items carry no label (off-topic examples): labels are "".
    """
    from .tag import gold_key

    data = LabelledData()
    seen: dict[int, tuple[str, str, int, int]] = {}  # key -> (label, file, line, index in data)
    for path in paths:
        path = Path(path)
        n = 0
        for lineno, record in json_objects(path):
            headline = record.get("headline")
            if not isinstance(headline, str) or not headline.strip():
                raise InputError("missing or empty 'headline'", file=str(path), line=lineno)
            standfirst = record.get("standfirst")
            if standfirst is not None and not isinstance(standfirst, str):
                raise InputError("'standfirst' must be a string or null", file=str(path), line=lineno)
            label = record.get(label_field) if label_field is not None else ""
            correction = "id" in record
            if correction and label_field is not None and label in ("", None):
                data.unlabelled += 1
                continue
            if label_field is not None and (not isinstance(label, str) or not label.strip()):
                raise InputError(f"missing or empty '{label_field}'", file=str(path), line=lineno)
            if categories is not None and label not in categories:
                raise InputError(f"unknown category {label!r} (valid: {', '.join(categories)})",
                                 file=str(path), line=lineno)
            key = gold_key(headline, standfirst or "")
            if key in seen:
                first_label, first_file, first_line, index = seen[key]
                if first_label != label and correction and first_file != str(path):
                    data.labels[index] = label
                    seen[key] = (label, str(path), lineno, index)
                    data.corrections += 1
                    n += 1
                    continue
                if first_label != label:
                    raise InputError(f"same text labelled {label!r} here and {first_label!r} at "
                                     f"{first_file}:{first_line}", file=str(path), line=lineno)
                data.duplicates += 1
                continue
            seen[key] = (label, str(path), lineno, len(data.labels))
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


def train_classifier(labels: list[Path], *, calibration: list[Path] | None = None,
                     outside: list[Path] | None = None, folds: int = 0,
                     random_state: int = 0) -> tuple["CategoryClassifier", dict[str, Any]]:
    """Train the classifier from files: the labels, held-out labelled text its temperature and
    ``min_confidence_`` are fitted on, off-topic text for its scope model; optionally
    cross-validate it first (``folds`` >= 2). Returns the model and what its card should say
    (``save_classifier(clf, path, **card)``)."""
    from .tag import CategoryClassifier, cross_validate_classifier

    categories = list(load_categories())
    data = read_labels(labels, categories=categories)
    held = read_labels(calibration, categories=categories) if calibration else None
    other = read_labels(outside, label_field=None) if outside else None
    clf = CategoryClassifier(random_state=random_state)
    metrics = (cross_validate_classifier(clf, data.items, data.labels, folds=folds,
                                         random_state=random_state) if folds >= 2 else {})
    clf.fit(data.items, data.labels,
            X_calibration=held.items if held else None, y_calibration=held.labels if held else None,
            X_outside=other.items if other else None)
    extra = {
        "calibration": {"files": held.files if held else [], "examples": len(held.labels) if held else 0,
                        "method": "temperature scaling of the SVM margins (log-loss)",
                        "temperature": clf.temperature_, "min_confidence": clf.min_confidence_,
                        "flag_errors": clf.flag_errors},
        "scope": {"files": other.files if other else [], "examples": len(other.items) if other else 0,
                  "threshold": clf.scope_threshold},
    }
    return clf, {"training_files": data.files, "metrics": metrics, "counts": data.counts(),
                 "extra": extra, "duplicates": data.duplicates, "corrections": data.corrections,
                 "unlabelled": data.unlabelled}


# -- model artefact and card ----------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of Python and every library whose change could alter a saved model."""
    from .manifest import library_versions as versions_of

    return versions_of(_VERSIONED, missing="not installed")  # type: ignore[return-value] - never None


def probe_margins(clf: "CategoryClassifier") -> list[list[float]]:
    """The classifier's margins on :data:`PROBE_TEXTS`, to 6 decimals (kept in the card)."""
    return [[round(float(v), 6) for v in row] for row in clf.decision_function(list(PROBE_TEXTS))]


def same_probe_margins(clf: "CategoryClassifier", recorded: Any) -> bool:
    """Whether the classifier still gives the card's probe margins (to 1e-4: float summation
    order may differ between machines, a change of features does not stay that close)."""
    import numpy as np

    try:
        return bool(np.allclose(np.asarray(recorded, dtype=float), probe_margins(clf), rtol=0, atol=1e-4))
    except (TypeError, ValueError):
        return False


def card_path(path: Path) -> Path:
    """The model card beside an artefact: ``x.skops`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


def model_bytes(clf: "CategoryClassifier", suffix: str) -> bytes:
    """The artefact's bytes: skops (zip, deflated) or, for ``.joblib``, a pickle."""
    if suffix == SAFE_SUFFIX:
        import zipfile

        import skops.io as sio

        return stable_zip(sio.dumps(clf, compression=zipfile.ZIP_STORED))
    if suffix == PICKLE_SUFFIX:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(clf, buffer, compress=3)
        return buffer.getvalue()
    raise ModelError(f"the model file name must end in {SAFE_SUFFIX} (or {PICKLE_SUFFIX} for a "
                     f"pickle, which runs code when loaded)")


def stable_zip(blob: bytes) -> bytes:
    """A skops archive rewritten so its bytes depend only on the model: skops names each array
    file and numbers each node after ``id()`` of the object and stamps entries with the time;
    here both are numbered in order of first appearance in the schema, entries are dated
    1980-01-01 and deflated. (Ids only pair up references within the file.)"""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(entries.pop("schema.json"))
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str) and value in entries:
                    out[key] = files.setdefault(value, f"{len(files)}.npy")
                else:
                    out[key] = renumber(value)
            return out
        if isinstance(node, list):
            return [renumber(v) for v in node]
        return node

    schema = renumber(schema)
    if set(files) != set(entries):
        raise ModelError("unexpected skops archive layout (a skops upgrade?)")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in [("schema.json", json.dumps(schema, indent=2).encode("utf-8")),
                           *((new, entries[old]) for old, new in files.items())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return out.getvalue()


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
                    counts: dict[str, int] | None = None,
                    extra: dict[str, Any] | None = None, duplicates: int = 0,
                    corrections: int = 0, unlabelled: int = 0) -> dict[str, Any]:
    """Write the artefact and its model card atomically; return the card.

    The artefact's bytes depend only on the fitted model (no date inside), so retraining on the
    same data with the same versions gives the same SHA-256; the card carries the date.
    ``extra``: more card sections (calibration, scope and held-out figures).
    """
    path = Path(path)
    try:
        blob = model_bytes(clf, path.suffix)
    except ModelError as exc:
        raise ModelError(exc.message, file=str(path)) from None
    files = training_files or []
    combined = hashlib.sha256()
    for f in files:
        combined.update(f"{f['name']}\0{f['sha256']}\n".encode())
    card = {
        "format_version": CARD_FORMAT,
        "artefact": path.name,
        "artefact_format": "skops" if path.suffix == SAFE_SUFFIX else "joblib pickle",
        "artefact_sha256": hashlib.sha256(blob).hexdigest(),
        "artefact_bytes": len(blob),
        "estimator": type(clf).__name__,
        "labels": [str(c) for c in clf.classes_],
        "examples_per_class": counts or {},
        "training_data": {"files": files, "combined_sha256": combined.hexdigest(),
                          "duplicates_dropped": duplicates, "corrections_applied": corrections,
                          "unlabelled_skipped": unlabelled},
        "params": _jsonable(clf.get_params()),
        "features": int(clf.n_features_),
        "temperature": clf.temperature_,
        "min_confidence": clf.min_confidence_,
        "scope_model": clf.scope_coef_ is not None,
        "gold": {"key": "pipeline.records.article_id of the headline (kicker and series label "
                        "removed) and the standfirst (a column's blurb dropped), as 16 hex digits",
                 "count": int(clf.gold_keys_.size),
                 "keys": [f"{int(k):016x}" for k in clf.gold_keys_]},
        "probe_margins": probe_margins(clf),
        "cross_validation": metrics or {},
        **(extra or {}),
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


def update_card(path: Path | str, section: str, value: Any) -> dict[str, Any]:
    """Set ``section`` of a saved model's card (figures measured after training); return the card.

    Why: held-out figures belong beside the artefact. Only the card changes (the artefact and
    its SHA-256 do not).
    """
    path = Path(path)
    card = read_card(path)
    card[section] = value
    write_text_atomic(card_path(path), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return card


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def load_classifier(path: Path | str | None = None, *,
                    trust_pickle: bool = False) -> "CategoryClassifier":
    """Load a saved :class:`~pipeline.tag.CategoryClassifier` after verifying it against its card.

    Refuses (with :class:`~pipeline.errors.ModelError`) a missing file, a symlink or non-regular
    file, a missing or mismatched card, a SHA-256 mismatch, a model trained with another
    scikit-learn minor version, a skops file that would build any type outside
    :data:`TRUSTED_TYPES`, a ``.joblib`` pickle unless ``trust_pickle`` (a pickle runs code as it
    loads: use it only for files you made), anything that does not load into a classifier with
    the card's labels, and a model whose feature code now scores its probe texts differently.
    """
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
    if path.suffix == PICKLE_SUFFIX and not trust_pickle:
        raise ModelError("is a joblib pickle, which runs code when loaded; refusing it. Load it "
                         "with --trust-pickle (trust_pickle=True) only if you made it yourself, or "
                         f"retrain to a {SAFE_SUFFIX} file", file=str(path))
    if path.suffix not in (SAFE_SUFFIX, PICKLE_SUFFIX):
        raise ModelError(f"expected a {SAFE_SUFFIX} model file", file=str(path))
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
    clf = _load_skops(blob, path) if path.suffix == SAFE_SUFFIX else _load_pickle(blob, path)
    if not isinstance(clf, CategoryClassifier):
        raise ModelError(f"file holds a {type(clf).__name__}, not a CategoryClassifier", file=str(path))
    if [str(c) for c in clf.classes_] != list(card["labels"]):
        raise ModelError("the model's labels differ from its card's; refusing to load", file=str(path))
    if not same_probe_margins(clf, card.get("probe_margins")):
        raise ModelError("this version of hsj-pipeline turns text into different features than "
                         "the one that trained the model, so its predictions would be off; "
                         f"{fix}", file=str(path))
    return clf


def skops_types(blob: bytes) -> set[str]:
    """Every ``module.class`` a skops file would build, read from its schema (nothing is built)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _load_skops(blob: bytes, path: Path) -> Any:
    import skops.io as sio

    try:
        types = skops_types(blob)
    except Exception as exc:  # noqa: BLE001 - not a skops file at all
        raise ModelError(f"not a readable skops file ({type(exc).__name__}: {exc})",
                         file=str(path)) from None
    refused = sorted(types - ALLOWED_TYPES)
    if refused:
        raise ModelError(f"the file would build types that are not trusted: {', '.join(refused)}; "
                         "refusing to load", file=str(path))
    try:
        return sio.loads(blob, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # noqa: BLE001 - any failure means an unusable file
        raise ModelError(f"cannot load the model ({type(exc).__name__}: {exc})", file=str(path)) from None


def _load_pickle(blob: bytes, path: Path) -> Any:
    import joblib

    try:
        return joblib.load(io.BytesIO(blob))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ModelError(f"cannot load the model ({type(exc).__name__}: {exc})", file=str(path)) from None
