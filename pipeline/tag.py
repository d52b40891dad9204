"""Tag stage: one category per article from the taxonomy, with calibrated scores for all of them.

:class:`CategoryClassifier` is a scikit-learn estimator over raw text (headline strings or
mappings with ``headline``/``standfirst``/``series``), so training and prediction share one
preprocessing path. Each block below earned its place in the ablation of
``benchmarks/tag_ablation.py`` on held-out real-style headlines (the figures are in README):

- word 1-2 gram TF-IDF over the headline and standfirst (the plain baseline);
- ``char_wb`` 2-5 gram TF-IDF (wording the examples never used: inflections, compounds);
- the headline again, on its own and weighted, so the headline outweighs the standfirst
  (taxonomy: headline first);
- a class-balanced linear SVM whose margins become probabilities by temperature scaling, fitted
  on held-out real-style text rather than on the training examples' folds;
- a scope model (logistic regression on the same features) that tells NHS and health-system
  news from anything else, trained on the labels and on written off-topic examples.

Every feature is computed per text, so a headline gets the same scores alone as in a batch.
Articles that are in the training data get their training label (``label_source: "gold"``).
Loading and saving live in :mod:`pipeline.model_store`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, \
    precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from .config import TagConfig
from .records import Article, article_id
from .tag_features import ItemTypeError, LabelSetError, NgramTfidf, TextBatch, TextInputError, \
    char_text, item_parts

__all__ = ["CategoryClassifier", "TagColumns", "tag_articles", "tag_items", "tag_columns",
           "article_item", "cross_validate_classifier", "evaluate_predictions",
           "expected_calibration_error", "reliability_table", "TextInputError", "ItemTypeError",
           "LabelSetError", "OUT_OF_SCOPE", "LOW_CONFIDENCE"]

OUT_OF_SCOPE = "out_of_scope"  # the text is not NHS or health-system news
LOW_CONFIDENCE = "low_confidence"  # the best category's probability is below min_confidence


# feature rows made at a time when predicting: arrays of a few MB are reused once freed, while
# a PREDICT_CHUNK of rows (75 MB of features) takes fresh pages each time (system time per 20k
# items 0.2-0.5 s -> 0.1 s); every row is the same whatever the block (tested)
FEATURE_BLOCK = 2000


class CategoryClassifier(ClassifierMixin, BaseEstimator):
    """Text classifier for news headlines (+ standfirst) with calibrated class probabilities.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the linear SVM.
    word_ngram_range, char_ngram_range : tuple
        N-gram ranges of the word and ``char_wb`` TF-IDF blocks; ``char_ngram_range=None``
        leaves the character block out (for the ablation).
    char_min_df : int
        Character n-grams in fewer training texts are dropped (keeps the model small).
    headline_weight : float
        Weight of the headline-only blocks added to the whole-text blocks; 0 turns them off.
    scope_C : float
        Inverse regularisation strength of the scope model's logistic regression.
    scope_threshold : float
        An item whose in-scope probability is below this is out of scope.
    flag_errors : float
        Sets the learned ``min_confidence_``: the lowest threshold below which at least this
        share of the calibration items' errors fall; below it an item is ``uncertain``
        (``[tag] min_confidence`` overrides it in a run).
    random_state : int
        Seed of the SVM and of the internal calibration folds.

    Fit parameters (see :meth:`fit`): ``X_calibration``/``y_calibration`` (held-out text the
    temperature is fitted on) and ``X_outside`` (off-topic text for the scope model).
    """

    def __init__(self, *, C: float = 0.5, word_ngram_range: tuple[int, int] = (1, 2),
                 char_ngram_range: tuple[int, int] | None = (2, 5), char_min_df: int = 2,
                 headline_weight: float = 0.7, scope_C: float = 4.0,
                 scope_threshold: float = 0.5, flag_errors: float = 0.5,
                 random_state: int = 0) -> None:
        self.C = C
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.char_min_df = char_min_df
        self.headline_weight = headline_weight
        self.scope_C = scope_C
        self.scope_threshold = scope_threshold
        self.flag_errors = flag_errors
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        return tags

    # -- features ---------------------------------------------------------------------------

    def _texts(self, parts: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
        """(whole texts, headlines), normalised as the n-grams read them."""
        heads = [char_text(h) for h, _ in parts]
        whole = [f"{h} {char_text(s)}" if s else h for h, (_, s) in zip(heads, parts)]
        return whole, heads

    def _features_of(self, parts: Sequence[tuple[str, str]], *, fit: bool = False) -> sp.csr_matrix:
        vectorisers = [v for v in (self.word_vectoriser_, self.char_vectoriser_) if v is not None]
        if fit:
            whole, heads = self._texts(parts)
            blocks = [vec.fit_transform(whole) for vec in vectorisers]
            if self.headline_weight:
                blocks += [self.headline_weight * vec.transform(heads) for vec in vectorisers]
            return sp.hstack(blocks, format="csr")
        return next(self._feature_rows(parts, max(1, len(parts))))

    def _feature_rows(self, parts: Sequence[tuple[str, str]], block: int) -> Iterator[sp.csr_matrix]:
        """The feature rows of ``parts``, ``block`` rows at a time (each row exactly as in the
        whole matrix); small blocks keep every array small enough to reuse freed memory."""
        vectorisers = [v for v in (self.word_vectoriser_, self.char_vectoriser_) if v is not None]
        # the texts split into words once for all four blocks (a head's words begin its text's)
        batch = TextBatch([char_text(h) for h, _ in parts],
                          [char_text(s) if s else "" for _, s in parts])
        heads = bool(self.headline_weight)
        counts = [(vec, vec.batch_counts(batch, heads=heads)) for vec in vectorisers]
        for start in range(0, max(1, len(parts)), block):  # (an empty batch: one empty block)
            stop = min(start + block, len(parts))
            blocks = [vec.tfidf_of_reversed(c[0].reversed_rows(start, stop)) for vec, c in counts]
            if heads:
                for vec, c in counts:
                    head = vec.tfidf_of_reversed(c[1].reversed_rows(start, stop))
                    head.data *= self.headline_weight
                    blocks.append(head)
            yield sp.hstack(blocks, format="csr")

    # -- estimator API -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, X_calibration: Any = None, y_calibration: Any = None,
            X_outside: Any = None) -> "CategoryClassifier":
        """Learn the vocabularies, the SVM, its temperature and (with ``X_outside``) the scope model.

        ``X_calibration``/``y_calibration``: held-out labelled text the temperature is fitted
        on; without them it is fitted on 3-fold out-of-fold margins of the training data (which
        overstates confidence on text unlike the examples). ``X_outside``: off-topic text; without
        it there is no scope model and nothing is flagged as out of scope.
        """
        if y is None:
            raise LabelSetError("y is required: one label per item")
        y = np.asarray(y)
        if y.ndim != 1:
            raise LabelSetError(f"y must be one label per item, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
            raise LabelSetError("y holds continuous values; expected category labels")
        parts = item_parts(X)
        if len(parts) != len(y):
            raise LabelSetError(f"got {len(parts)} items but {len(y)} labels")
        labels = np.asarray([str(v) for v in y])
        counts = Counter(labels.tolist())
        if len(counts) < 2:
            raise LabelSetError(f"need at least two classes to train, got {sorted(counts)}")
        self._new_vectorisers()
        features = self._features_of(parts, fit=True)
        svm = self._svm().fit(features, labels)
        self.classes_ = svm.classes_.astype(str)
        # float32 weights: half the file; the same arrays predict before and after saving
        coef, intercept = svm.coef_, svm.intercept_
        if len(self.classes_) == 2:  # one margin for the second class: give each class its own
            coef, intercept = np.vstack([-coef, coef]), np.r_[-intercept, intercept]
        self.coef_ = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)
        self.n_features_ = features.shape[1]
        if X_calibration is not None:
            cal_margins = self._margins(self._features_of(item_parts(X_calibration)))
            cal_labels = np.asarray([str(v) for v in y_calibration])
        else:
            cal_margins, cal_labels = self._out_of_fold_margins(parts, labels, min(counts.values()))
        self.temperature_ = fit_temperature(cal_margins, cal_labels, self.classes_)
        cal_proba = softmax(cal_margins / self.temperature_, axis=1)
        self.min_confidence_ = confidence_threshold(
            cal_proba.max(axis=1) if len(cal_labels) else np.zeros(0),
            self.classes_[cal_proba.argmax(axis=1)] == cal_labels if len(cal_labels) else np.zeros(0, bool),
            self.flag_errors)
        self._fit_scope(features, parts, X_outside)
        self.gold_keys_, self.gold_labels_ = gold_table(parts, labels, self.classes_)
        return self

    def _new_vectorisers(self) -> None:
        self.word_vectoriser_ = NgramTfidf("word", tuple(self.word_ngram_range))
        self.char_vectoriser_ = (None if self.char_ngram_range is None else
                                 NgramTfidf("char_wb", tuple(self.char_ngram_range),
                                            min_df=self.char_min_df))

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.C, class_weight="balanced", random_state=self.random_state)

    def _out_of_fold_margins(self, parts: list[tuple[str, str]], labels: np.ndarray,
                             smallest: int) -> tuple[np.ndarray, np.ndarray]:
        folds = min(3, smallest)
        if folds < 2:  # a class with one example: no folds; leave the margins as they are
            return np.zeros((0, len(self.classes_))), labels[:0]
        margins = np.zeros((len(labels), len(self.classes_)))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        for train, test in splitter.split(np.zeros(len(labels)), labels):
            sub = clone(self)
            sub._new_vectorisers()
            svm = sub._svm().fit(sub._features_of([parts[i] for i in train], fit=True), labels[train])
            columns = np.searchsorted(self.classes_, svm.classes_.astype(str))
            margins[np.ix_(test, columns)] = svm_margins(svm, sub._features_of([parts[i] for i in test]))
        return margins, labels

    def _fit_scope(self, features: sp.csr_matrix, parts: list[tuple[str, str]], outside: Any) -> None:
        """In-scope logistic regression: the training items against ``outside`` (or none)."""
        if outside is None:
            self.scope_coef_ = None
            self.scope_intercept_ = None
            return
        other = self._features_of(item_parts(outside))
        X = sp.vstack([features, other], format="csr")
        y = np.r_[np.ones(features.shape[0]), np.zeros(other.shape[0])]
        model = LogisticRegression(C=self.scope_C, class_weight="balanced", max_iter=5000)
        model.fit(X, y)
        self.scope_coef_ = np.ascontiguousarray(model.coef_[0], dtype=np.float32)
        self.scope_intercept_ = float(model.intercept_[0])

    def _margins(self, features: sp.csr_matrix, weights: np.ndarray | None = None) -> np.ndarray:
        """``weights``: ``coef_.T`` as float64 made once by the caller (the same values scipy
        converts it to on every product)."""
        weights = self.coef_.T if weights is None else weights
        return np.asarray(features @ weights, dtype=np.float64) + self.intercept_

    def decision_function(self, X: Any) -> np.ndarray:
        """The SVM's margin for every class (columns in ``classes_`` order)."""
        check_is_fitted(self, "coef_")
        return self._margins(self._features_of(item_parts(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probability of every class (columns in ``classes_`` order)."""
        return softmax(self.decision_function(X) / self.temperature_, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each item."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def scope_proba(self, X: Any) -> np.ndarray | None:
        """Probability that each item is NHS or health-system news (None: no scope model)."""
        check_is_fitted(self, "coef_")
        if self.scope_coef_ is None:
            return None
        features = self._features_of(item_parts(X))
        return _scope_of(features, self.scope_coef_, self.scope_intercept_)

    def analyse(self, X: Any) -> tuple[np.ndarray, np.ndarray | None, list[str | None]]:
        """(probabilities, in-scope probabilities or None, gold label or None) of each item,
        from one pass over the features (what :func:`tag_columns` needs)."""
        check_is_fitted(self, "coef_")
        parts = item_parts(X)
        margins, scopes = [], []
        weights = np.ascontiguousarray(self.coef_.T, dtype=np.float64)
        for features in self._feature_rows(parts, FEATURE_BLOCK):
            margins.append(self._margins(features, weights))
            if self.scope_coef_ is not None:
                scopes.append(_scope_of(features, self.scope_coef_, self.scope_intercept_))
        proba = softmax(np.concatenate(margins) / self.temperature_, axis=1)
        scope = None if self.scope_coef_ is None else np.concatenate(scopes)
        return proba, scope, gold_labels(parts, self.gold_keys_, self.gold_labels_, self.classes_)


def svm_margins(svm: LinearSVC, features: sp.csr_matrix) -> np.ndarray:
    """Margins of a fitted LinearSVC, one column per class (two for a binary problem)."""
    margins = svm.decision_function(features)
    return np.c_[-margins, margins] if margins.ndim == 1 else margins


def _scope_of(features: sp.csr_matrix, coef: np.ndarray, intercept: float) -> np.ndarray:
    z = np.asarray(features @ coef, dtype=np.float64) + intercept
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(margins: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """The temperature T minimising the log-loss of ``softmax(margins / T)`` (1.0 without data)."""
    if len(labels) == 0:
        return 1.0
    index = {c: i for i, c in enumerate(classes.tolist())}
    known = np.asarray([str(c) in index for c in labels])
    if not known.any():
        return 1.0
    rows = margins[known]
    truth = np.asarray([index[str(c)] for c in labels[known]])

    def loss(log_t: float) -> float:
        return float(-log_softmax(rows / np.exp(log_t), axis=1)[np.arange(len(truth)), truth].mean())

    result = minimize_scalar(loss, bounds=(np.log(0.01), np.log(100.0)), method="bounded",
                             options={"xatol": 1e-6})
    return round(float(np.exp(result.x)), 6)


def confidence_threshold(confidence: np.ndarray, correct: np.ndarray, share: float) -> float:
    """The lowest threshold t (2 decimals) such that at least ``share`` of the wrong items have
    confidence below t (0.5 when there are no wrong items to learn from)."""
    wrong = np.sort(np.asarray(confidence)[~np.asarray(correct, dtype=bool)])
    if wrong.size == 0:
        return 0.5
    need = int(np.ceil(share * wrong.size))
    if need == 0:
        return 0.0
    # errors below t: the need-th smallest error confidence must be < t
    return float(min(1.0, np.floor(wrong[need - 1] * 100) / 100 + 0.01))


# -- gold labels -----------------------------------------------------------------------------------


def gold_key(headline: str, standfirst: str) -> int:
    """64-bit key of an item as the classifier reads it: :func:`~pipeline.records.article_id`
    of its headline (kicker and series label removed) and standfirst (a column's blurb dropped)."""
    return int(article_id(headline, standfirst or None), 16)


def gold_table(parts: Sequence[tuple[str, str]], labels: np.ndarray,
               classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys of the training items and the index of each one's label in ``classes``."""
    index = {c: i for i, c in enumerate(classes.tolist())}
    table = {gold_key(h, s): index[str(label)] for (h, s), label in zip(parts, labels)}
    keys = np.asarray(sorted(table), dtype=np.uint64)
    return keys, np.asarray([table[int(k)] for k in keys], dtype=np.int16)


def gold_labels(parts: Sequence[tuple[str, str]], keys: np.ndarray, label_index: np.ndarray,
                classes: np.ndarray) -> list[str | None]:
    """The training label of each item that is in the training data, else None."""
    if keys.size == 0:
        return [None] * len(parts)
    wanted = np.asarray([gold_key(h, s) for h, s in parts], dtype=np.uint64)
    at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    found = keys[at] == wanted
    return [str(classes[label_index[a]]) if f else None for a, f in zip(at.tolist(), found.tolist())]


# -- the run stage's entry point ------------------------------------------------------------------


def article_item(article: Article) -> dict[str, Any]:
    """What the classifier reads from an article (the same mapping `tag` and `run` use)."""
    return {"headline": article.headline, "standfirst": article.standfirst,
            "series": article.series}


PREDICT_CHUNK = 10000  # items per prediction call (bounds the feature matrices' memory)


def round4(values: np.ndarray) -> np.ndarray:
    """``round(v, 4)`` of every value, exactly as Python's ``round`` gives it, vectorised.

    ``np.round(v * 1e4) / 1e4`` agrees with ``round`` except where ``v * 1e4`` lies within its
    own rounding error of a half; those few values are rounded by ``round`` itself.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    scaled = values * 1e4
    out = np.round(scaled) / 1e4
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6):
        out.flat[i] = round(float(values.flat[i]), 4)
    return out


@dataclass
class TagColumns:
    """The tag fields of a run of items, one list (or array) per field.

    Why columns: a forked tagger sends these back; 100k score dicts cost more to build and
    pickle there than to build where the articles live (:meth:`score_dicts`).
    """

    categories: list[str]
    confidences: list[float]
    uncertain: list[bool]
    reasons: list[str | None]
    sources: list[str]
    rounded: np.ndarray  # items x classes, rounded to 4 decimals
    classes: list[str]

    @classmethod
    def join(cls, parts: Sequence["TagColumns"]) -> "TagColumns":
        """The columns of consecutive runs of items, in order."""
        classes = parts[0].classes if parts else []
        return cls([c for p in parts for c in p.categories], [c for p in parts for c in p.confidences],
                   [u for p in parts for u in p.uncertain], [r for p in parts for r in p.reasons],
                   [s for p in parts for s in p.sources],
                   np.concatenate([p.rounded for p in parts]) if parts else np.zeros((0, 0)), classes)

    def score_dicts(self) -> list[dict[str, float]]:
        """``{class: probability}`` per item."""
        return [dict(zip(self.classes, row)) for row in self.rounded.tolist()]


def min_confidence_of(clf: CategoryClassifier, config: TagConfig | None) -> float:
    """The ``uncertain`` threshold: ``[tag] min_confidence`` when set, else the model's own."""
    value = getattr(config, "min_confidence", None) if config is not None else None
    return float(clf.min_confidence_ if value is None else value)


def tag_columns(items: Sequence[Any], clf: CategoryClassifier,
                config: TagConfig | None = None) -> TagColumns:
    """Category, confidence, uncertain flag and reason, label source and scores of ``items``.

    An item in the model's training data keeps its training label (``gold``, confidence 1.0,
    never uncertain); any other gets the most probable category (``model``). It is uncertain
    when out of scope (in-scope probability below the model's ``scope_threshold``) or when its
    confidence is below ``min_confidence``.
    """
    threshold = min_confidence_of(clf, config)
    classes = [str(c) for c in clf.classes_]
    names = np.asarray(classes, dtype=object)
    out = TagColumns([], [], [], [], [], np.zeros((0, len(classes))), classes)
    parts_rounded = []
    for begin in range(0, len(items), PREDICT_CHUNK):  # bounds the feature matrices' memory
        proba, scope, gold = clf.analyse(items[begin:begin + PREDICT_CHUNK])
        best = np.argmax(proba, axis=1)
        rounded = round4(proba)
        confidence = rounded[np.arange(len(best)), best].tolist()
        outside = (scope < clf.scope_threshold).tolist() if scope is not None else [False] * len(best)
        for k, label in enumerate(gold):
            if label is not None:
                out.categories.append(label)
                out.confidences.append(1.0)
                out.uncertain.append(False)
                out.reasons.append(None)
                out.sources.append("gold")
                continue
            reason = OUT_OF_SCOPE if outside[k] else LOW_CONFIDENCE if confidence[k] < threshold else None
            out.categories.append(str(names[best[k]]))
            out.confidences.append(confidence[k])
            out.uncertain.append(reason is not None)
            out.reasons.append(reason)
            out.sources.append("model")
        parts_rounded.append(rounded)
    if parts_rounded:
        out.rounded = np.concatenate(parts_rounded)
    return out


def tag_items(items: Sequence[Any], clf: CategoryClassifier,
              config: TagConfig | None = None) -> list[dict[str, Any]]:
    """Per item: ``category``, ``confidence``, ``uncertain``, ``uncertain_reason``,
    ``label_source`` and ``scores`` (every class, rounded to 4 decimals)."""
    if len(items) == 0:
        return []
    columns = tag_columns(items, clf, config)
    return [{"category": c, "confidence": p, "uncertain": u, "uncertain_reason": r,
             "label_source": s, "scores": d}
            for c, p, u, r, s, d in zip(columns.categories, columns.confidences, columns.uncertain,
                                        columns.reasons, columns.sources, columns.score_dicts())]


def tag_articles(articles: list[Article], clf: CategoryClassifier,
                 config: TagConfig | None = None) -> dict[str, Any]:
    """Fill the tag fields of each article; return the counts (see :func:`fill_tags`)."""
    return fill_tags(articles, tag_columns([article_item(a) for a in articles], clf, config))


def fill_tags(articles: Sequence[Article], columns: TagColumns) -> dict[str, Any]:
    """The one place tag fields are written onto articles; returns the counts:
    ``{"categories": {name: n}, "uncertain": n, "out_of_scope": n, "gold": n, "tagged": n}``."""
    scores = columns.score_dicts()
    for k, article in enumerate(articles):
        article.category = columns.categories[k]
        article.confidence = columns.confidences[k]
        article.uncertain = columns.uncertain[k]
        article.uncertain_reason = columns.reasons[k]
        article.label_source = columns.sources[k]
        article.scores = scores[k]
    if len(articles) != len(columns.categories):
        raise ValueError(f"{len(articles)} articles but {len(columns.categories)} tags")
    per_category = {c: 0 for c in columns.classes}
    for category, n in Counter(columns.categories).items():
        per_category[category] += n
    return {"categories": per_category, "uncertain": sum(columns.uncertain),
            "out_of_scope": columns.reasons.count(OUT_OF_SCOPE),
            "gold": columns.sources.count("gold"), "tagged": len(articles)}


class TagStage:
    """The tag stage as a component (:mod:`pipeline.stages`): the category classifier over each
    article's headline and standfirst (it reads only what parse made)."""

    name = "tag"
    corpus_wide = False
    uses = ("classifier",)

    def __init__(self, config: TagConfig | None = None, classifier: Any = None) -> None:
        self.config = config or TagConfig()
        self.classifier = classifier
        self.notes: list[str] = []

    @classmethod
    def from_config(cls, section: TagConfig, classifier: Any = None) -> TagStage:
        return cls(section, classifier)

    def predict(self, articles: Sequence[Article]) -> TagColumns:
        return tag_columns([article_item(a) for a in articles], self.classifier, self.config)

    def set_annotations(self, articles: Sequence[Article], columns: TagColumns) -> dict[str, Any]:
        return fill_tags(articles, columns)


# -- evaluation ----------------------------------------------------------------------------------


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width confidence bins: sum of |accuracy - confidence| by bin share."""
    return float(sum(row["n"] * abs(row["accuracy"] - row["confidence"])
                     for row in reliability_table(confidence, correct, bins)) / max(1, len(confidence)))


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Per non-empty confidence bin: its range, item count, mean confidence and accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append({"low": round(float(edges[b]), 2), "high": round(float(edges[b + 1]), 2),
                         "n": int(mask.sum()), "confidence": float(confidence[mask].mean()),
                         "accuracy": float(correct[mask].mean())})
    return rows


def evaluate_predictions(y_true: Sequence[str], y_pred: Sequence[str],
                         labels: Sequence[str] | None = None,
                         proba: np.ndarray | None = None) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1, accuracy, confusion matrix (rows = truth);
    with ``proba`` (columns in ``labels`` order) also log-loss and expected calibration error."""
    y_true = [str(v) for v in y_true]
    y_pred = [str(v) for v in y_pred]
    labels = [str(v) for v in labels] if labels is not None else sorted(set(y_true) | set(y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    result: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                         zero_division=0)), 4),
        "per_class": {c: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                          "f1": round(float(f[i]), 4), "support": int(s[i])}
                      for i, c in enumerate(labels)},
        "labels": labels,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if proba is not None:
        result["log_loss"] = round(float(log_loss(y_true, proba, labels=labels)), 4)
        confidence = np.asarray(proba).max(axis=1)
        correct = np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)
        result["ece"] = round(expected_calibration_error(confidence, correct), 4)
        result["mean_confidence"] = round(float(confidence.mean()), 4) if len(confidence) else 0.0
    return result


def cross_validate_classifier(clf: CategoryClassifier, X: Sequence[Any], y: Sequence[str], *,
                              folds: int = 5, random_state: int = 0) -> dict[str, Any]:
    """Stratified k-fold CV: pooled out-of-fold metrics plus the per-fold macro-F1 spread."""
    y = np.asarray([str(v) for v in y], dtype=object)
    smallest = min(Counter(y.tolist()).values())
    if smallest < folds:
        raise LabelSetError(f"the smallest class has {smallest} examples; need at least {folds} "
                            f"for {folds}-fold cross-validation (use fewer --folds)")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    X = list(X)
    labels = sorted(set(y.tolist()))
    proba = np.zeros((len(y), len(labels)))
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = clone(clf).fit([X[i] for i in train], y[train])
        columns = [labels.index(str(c)) for c in model.classes_]
        proba[np.ix_(test, columns)] = model.predict_proba([X[i] for i in test])
    pred = np.asarray(labels, dtype=object)[np.argmax(proba, axis=1)]
    result = evaluate_predictions(y, pred, labels, proba)
    tests = [test for _, test in splitter.split(np.zeros(len(y)), y)]
    fold_f1 = [f1_score(y[t], pred[t], labels=labels, average="macro", zero_division=0) for t in tests]
    fold_acc = [accuracy_score(y[t], pred[t]) for t in tests]
    result.update(folds=folds, random_state=random_state,
                  macro_f1_folds=[round(float(v), 4) for v in fold_f1],
                  macro_f1_std=round(float(np.std(fold_f1)), 4),
                  accuracy_std=round(float(np.std(fold_acc)), 4))
    return result
