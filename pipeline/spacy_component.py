"""spaCy component ``hsj_category``: the category classifier as a step of a spaCy pipeline.

Why: users who already process headlines with spaCy get the same category, scores and
uncertainty flags as ``hsj-pipeline tag`` without leaving ``nlp.pipe``, and the component is
created from config by name, so a pipeline holding it can be printed, saved and reloaded::

    nlp = spacy.blank("en")
    nlp.add_pipe("hsj_category")                     # the shipped model
    doc = nlp("ICB sued over conflict in £40m contract award")
    doc.cats["governance"], doc._.hsj_category, doc._.hsj_uncertain

The factory is registered through the package's ``spacy_factories`` entry point, so spaCy finds
it without this module being imported first. It follows spaCy's split: :meth:`predict` computes
scores without touching the docs, :meth:`set_annotations` writes them. Each doc's text is the
headline; ``doc._.hsj_standfirst`` (a string) adds a standfirst. A doc whose text is empty or
whitespace is left untagged (its extensions stay None), as ``tag`` skips blank lines.

The model is referenced by path in the component's config and loaded (verified against its
card) when the component is created; ``nlp.to_disk`` never copies it: it writes the config and,
in the component's directory, ``model.json`` with the model's SHA-256, so that ``spacy.load``
warns when the file at that path is no longer the model the pipeline was saved with.
"""

import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

from .config import DEFAULT_MODEL, TagConfig
from .errors import ConfigError, ModelError
from .io import write_text_atomic

if TYPE_CHECKING:
    from .tag import CategoryClassifier, TagColumns

# Kept light on purpose: spaCy imports every ``spacy_factories`` entry point when a pipeline is
# built (``spacy.blank`` included), so the classifier's modules (scikit-learn, SciPy) are imported
# only when the component is created or used.

__all__ = ["FACTORY_NAME", "EXTENSIONS", "HsjCategory", "CategoryScores", "make_hsj_category",
           "doc_item", "register_extensions"]

FACTORY_NAME = "hsj_category"
# Doc extensions the component reads (hsj_standfirst) or writes (the rest); None = not tagged.
EXTENSIONS = ("hsj_standfirst", "hsj_category", "hsj_confidence", "hsj_uncertain",
              "hsj_uncertain_reason", "hsj_label_source")


def register_extensions() -> None:
    """Register the Doc extensions once; re-importing (or calling this again) changes nothing."""
    for name in EXTENSIONS:
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


register_extensions()


def doc_item(doc: Doc) -> str | dict[str, Any] | None:
    """What the classifier reads from a doc (as ``tag`` reads a line or record); None if blank.

    The text is the headline; a string in ``doc._.hsj_standfirst`` is its standfirst.
    """
    if not doc.text.strip():
        return None
    standfirst = doc._.hsj_standfirst
    if standfirst is None:
        return doc.text
    if not isinstance(standfirst, str):
        from .tag_features import TextInputError

        raise TextInputError(f"must be a string or None, got {type(standfirst).__name__}",
                             key="doc._.hsj_standfirst")
    return {"headline": doc.text, "standfirst": standfirst}


@dataclass
class CategoryScores:
    """What :meth:`HsjCategory.predict` returns: the tag columns of the non-blank docs of a
    batch and each one's position in the batch (blank docs have no row)."""

    columns: "TagColumns"
    rows: list[int]


class HsjCategory(Pipe):
    """Sets ``doc.cats`` (every category's calibrated probability, rounded as ``tag`` gives
    them) and the ``doc._.hsj_*`` extensions from a :class:`~pipeline.tag.CategoryClassifier`.

    Parameters
    ----------
    nlp, name : the pipeline and this component's name in it.
    classifier : a fitted classifier (the factory loads it from ``model``).
    min_confidence : below this a model label is uncertain; None = the model's own threshold.
    model : the path the classifier came from ("" = the shipped one); kept for display.
    model_sha256 : the SHA-256 of that file (from its card), saved by :meth:`to_disk`.
    """

    def __init__(self, nlp: Language, name: str, classifier: "CategoryClassifier", *,
                 min_confidence: float | None = None, model: str = "",
                 model_sha256: str | None = None) -> None:
        from .tag import min_confidence_of

        self.vocab = nlp.vocab
        self.name = name
        self.classifier = classifier
        self.model = model
        self.model_sha256 = model_sha256
        self.tag_config = TagConfig(min_confidence=min_confidence, model=model)
        self.min_confidence = min_confidence_of(classifier, self.tag_config)  # the one in effect

    @property
    def labels(self) -> tuple[str, ...]:
        """The categories, in the model's order."""
        return tuple(str(c) for c in self.classifier.classes_)

    def __call__(self, doc: Doc) -> Doc:
        """Tag one doc (the same scores it gets inside any batch)."""
        error_handler = self.get_error_handler()
        try:
            self.set_annotations([doc], self.predict([doc]))
            return doc
        except Exception as exc:  # noqa: BLE001 - spaCy's error-handler convention
            error_handler(self.name, self, [doc], exc)
            return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Tag docs in batches of ``batch_size``: one classifier call per batch."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as exc:  # noqa: BLE001 - spaCy's error-handler convention
                error_handler(self.name, self, docs, exc)

    def predict(self, docs: Iterable[Doc]) -> CategoryScores:
        """Scores of the docs' texts from one classifier call; the docs are not changed."""
        from .tag import tag_columns

        items: list[Any] = []
        rows: list[int] = []
        for i, doc in enumerate(docs):
            item = doc_item(doc)
            if item is not None:
                items.append(item)
                rows.append(i)
        return CategoryScores(tag_columns(items, self.classifier, self.tag_config), rows)

    def set_annotations(self, docs: Iterable[Doc], scores: CategoryScores) -> None:
        """Write :meth:`predict`'s scores: ``doc.cats`` (updated, so other components' cats
        stay) and the ``doc._.hsj_*`` extensions."""
        docs = list(docs)
        columns = scores.columns
        cats = columns.score_dicts()
        for k, i in enumerate(scores.rows):
            doc = docs[i]
            doc.cats.update(cats[k])
            doc._.hsj_category = columns.categories[k]
            doc._.hsj_confidence = columns.confidences[k]
            doc._.hsj_uncertain = columns.uncertain[k]
            doc._.hsj_uncertain_reason = columns.reasons[k]
            doc._.hsj_label_source = columns.sources[k]

    def initialize(self, get_examples: Callable[[], Iterable[Example]] | None = None, *,
                   nlp: Language | None = None) -> None:
        """Nothing to do: the classifier is trained with ``hsj-pipeline train``, not by spaCy."""

    # -- serialisation: the model's identity only (the model stays where its path says) ---------

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """The model's path and SHA-256 as JSON."""
        return json.dumps({"model": self.model, "model_sha256": self.model_sha256},
                          sort_keys=True).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> "HsjCategory":
        """Warn when the model loaded now is not the one :meth:`to_bytes` recorded."""
        recorded = json.loads(data.decode("utf-8")).get("model_sha256")
        if recorded and self.model_sha256 and recorded != self.model_sha256:
            where = self.model or "the shipped model"
            warnings.warn(f"{self.name}: {where} is not the model this pipeline was saved with "
                          f"(SHA-256 {self.model_sha256[:12]}... now, {recorded[:12]}... then), so "
                          "its scores may differ; save the pipeline again to accept it, or put "
                          "the old model file back", UserWarning, stacklevel=2)
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write ``model.json`` (path and SHA-256; never the model itself)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / "model.json", self.to_bytes().decode("utf-8") + "\n")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "HsjCategory":
        """Check ``model.json`` if there is one (see :meth:`from_bytes`)."""
        record = Path(path) / "model.json"
        if record.is_file():
            try:
                self.from_bytes(record.read_bytes())
            except (ValueError, AttributeError) as exc:  # not JSON, not UTF-8, not an object
                raise ModelError(f"not the model record this component writes ({exc})",
                                 file=str(record)) from None
        return self

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        """spaCy's single-label category scores (``nlp.evaluate``) against the examples' cats."""
        return Scorer.score_cats(examples, "cats", labels=self.labels, multi_label=False,
                                 **kwargs)


@Language.factory(FACTORY_NAME,
                  default_config={"model": "", "min_confidence": None, "trust_pickle": False},
                  assigns=["doc.cats", *(f"doc._.{n}" for n in EXTENSIONS[1:])],
                  default_score_weights={"cats_score": 1.0})
def make_hsj_category(nlp: Language, name: str, model: str, min_confidence: float | None,
                      trust_pickle: bool) -> HsjCategory:
    """Create the component from its config: ``model`` path ("" = the shipped
    ``models/category_classifier.skops``), ``min_confidence`` (null = the model's own) and
    ``trust_pickle`` (load a ``.joblib`` pickle; only for files you made)."""
    if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
        raise ConfigError(f"must be between 0 and 1, got {min_confidence}",
                          key=f"components.{name}.min_confidence")
    from .model_store import load_classifier, read_card

    path = Path(model) if model else DEFAULT_MODEL
    classifier = load_classifier(path, trust_pickle=trust_pickle)
    return HsjCategory(nlp, name, classifier, min_confidence=min_confidence, model=model,
                       model_sha256=str(read_card(path)["artefact_sha256"]))
