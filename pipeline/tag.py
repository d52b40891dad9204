"""Tag stage: one category per article from the taxonomy, with calibrated scores for all of them.

:class:`CategoryClassifier` is a scikit-learn estimator over raw text (headline strings or
mappings with ``headline``/``standfirst``/``series``), so training and prediction share one
preprocessing path. Inside: the clean stage's lemma tokens (headline and standfirst cleaned
separately, so a run can hand over the tokens its clean stage already made, see
:func:`known_from_clean`) -> word TF-IDF (1-2 grams), normalised text -> character n-gram TF-IDF
(n-grams generated once per distinct word), lemma-matched lexicon counts per category from
``configs/categories.toml``, and a class-balanced linear SVM whose scores are calibrated into
probabilities (temperature scaling). Every feature is computed per text, so a headline gets the
same scores alone as in a batch of thousands.

Loading and saving live in :mod:`pipeline.model_store` and are re-exported here.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from itertools import chain
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, \
    precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from .clean import TextCleaner
from .config import CleanConfig, TagConfig
from .records import Article
from .tag_features import DEFAULT_KICKERS, DEFAULT_SERIES, CharNgramTfidf, ItemTypeError, \
    LabelSetError, LexiconMatcher, TextInputError, TokenIds, WordTfidf, char_text, item_parts

__all__ = ["CategoryClassifier", "tag_articles", "tag_items", "article_item", "known_tokens",
           "known_from_clean", "same_cleaner", "cross_validate_classifier",
           "evaluate_predictions", "load_classifier", "save_classifier", "TextInputError",
           "ItemTypeError", "LabelSetError"]


class CategoryClassifier(ClassifierMixin, BaseEstimator):
    """Text classifier for news headlines (+ standfirst) with calibrated class probabilities.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the linear SVM.
    word_ngram_range : tuple
        N-gram range of the word TF-IDF over the clean stage's lemma tokens.
    char_ngram_range : tuple
        N-gram range of the ``char_wb`` TF-IDF over lower-cased normalised text; it carries
        wording the labelled examples never used (inflections, compounds, acronyms).
    char_min_df, char_max_features : int
        Keep the character vocabulary (and the saved model) small.
    lexicon : "auto", None or mapping
        ``"auto"``: the lexicons in ``configs/categories.toml`` when every training label is a
        category there (otherwise none, e.g. for benchmark corpora); ``None``: no lexicon
        features; a mapping ``category -> [terms]`` is used as given. The terms are cleaned like
        the text at fit time and stored in the model, so editing the file later changes nothing
        until retraining.
    lexicon_weight : float
        Scale of the lexicon features against the TF-IDF ones (each TF-IDF block has unit norm);
        0.25 was best by cross-validation on the written examples (1.0 over-relies on it).
    calibration : "temperature", "sigmoid" or "isotonic"
        Calibration method of :class:`~sklearn.calibration.CalibratedClassifierCV`. Temperature
        scaling (one parameter for all classes) keeps the SVM's ranking and gave the lowest
        cross-validated log-loss on the written examples (0.29 against 0.34 for sigmoid).
    calibration_cv : int
        Folds used to fit the calibration; lowered to the smallest class count when a class is
        tiny, and replaced by a class-balanced logistic regression (its own probabilities) when
        a class has a single example.
    clean_config : CleanConfig or None
        Options of the clean stage's :class:`~pipeline.clean.TextCleaner`.
    random_state : int
        Seed of the calibration folds and the SVM.
    """

    def __init__(self, *, C: float = 0.5, word_ngram_range: tuple[int, int] = (1, 2),
                 char_ngram_range: tuple[int, int] = (2, 5), char_min_df: int = 2,
                 char_max_features: int | None = 50000, lexicon: Any = "auto",
                 lexicon_weight: float = 0.25, calibration: str = "temperature",
                 calibration_cv: int = 3, clean_config: CleanConfig | None = None,
                 random_state: int = 0) -> None:
        self.C = C
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.char_min_df = char_min_df
        self.char_max_features = char_max_features
        self.lexicon = lexicon
        self.lexicon_weight = lexicon_weight
        self.calibration = calibration
        self.calibration_cv = calibration_cv
        self.clean_config = clean_config
        self.random_state = random_state

    # -- pickling -----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the frozen cleaner's sets as sorted lists, so the artefact's bytes (and hash) do
        not depend on the process's string-hash seed; the fast path's tables are not saved."""
        state = super().__getstate__()
        if "_fast" in state:
            state = {k: v for k, v in state.items() if k != "_fast"}
        lists = getattr(state.get("cleaner_"), "lists", None)
        if dataclasses.is_dataclass(lists):
            state = dict(state)
            state["cleaner_"] = TextCleaner(state["cleaner_"].config)
            state["_cleaner_lists"] = (type(lists), {
                f.name: ("frozenset", sorted(v)) if isinstance(v, frozenset) else ("value", v)
                for f in dataclasses.fields(lists) for v in [getattr(lists, f.name)]})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        frozen = state.pop("_cleaner_lists", None)
        super().__setstate__(state)
        if frozen is not None:
            cls, fields = frozen
            self.cleaner_.lists = cls(**{name: frozenset(v) if kind == "frozenset" else v
                                         for name, (kind, v) in fields.items()})

    # -- features ---------------------------------------------------------------------------

    def _resolve_lexicon(self, classes: Sequence[str]) -> dict[str, list[str]] | None:
        if self.lexicon is None or self.lexicon is False:
            return None
        if isinstance(self.lexicon, Mapping):
            return {str(k): list(v) for k, v in self.lexicon.items()}
        if self.lexicon == "auto":
            from .model_store import load_categories

            categories = load_categories()
            if not set(map(str, classes)) <= set(categories):
                return None
            return {name: list(cat["lexicon"]) for name, cat in categories.items()}
        raise ValueError(f"lexicon must be 'auto', None or a mapping, got {self.lexicon!r}")

    def word_tokens(self, parts: Sequence[tuple[str, str]],
                    known: Mapping[str, list[str]] | None = None) -> list[list[str]]:
        """Lemma tokens per item: the headline's then the standfirst's, each cleaned on its own.

        ``known`` maps texts to tokens already computed by *this model's* cleaner (see
        :func:`known_tokens`); texts missing from it are cleaned here.
        """
        if known:
            todo = [t for h, s in parts for t in ((h, s) if s else (h,)) if t not in known]
            fresh = dict(zip(todo, self.cleaner_.tokens(todo))) if todo else {}
            table = {**known, **fresh} if fresh else known  # disjoint keys
            return [table[h] + table[s] if s else list(table[h]) for h, s in parts]
        heads = self.cleaner_.tokens([h for h, _ in parts])
        stands = self.cleaner_.tokens([s for _, s in parts if s])
        it = iter(stands)
        return [h + next(it) if s else h for h, (_, s) in zip(heads, parts)]

    def _features(self, X: Any, *, fit: bool,
                  known: Mapping[str, list[str]] | None = None) -> sp.csr_matrix:
        parts = item_parts(X, series_names=DEFAULT_SERIES, kickers=DEFAULT_KICKERS)
        return self._features_of(parts, fit=fit, known=known)

    def _features_of(self, parts: list[tuple[str, str]], *, fit: bool,
                     known: Mapping[str, list[str]] | None = None) -> sp.csr_matrix:
        tokens = self.word_tokens(parts, known)
        if fit:  # kept so a loader can check the clean stage still gives the same tokens
            distinct = sorted({t for pair in parts for t in pair if t})
            self.clean_sample_ = distinct[::max(1, len(distinct) // 200)][:200]
        if fit:
            blocks = [self.word_vectorizer_.fit_transform(tokens),
                      self.char_vectorizer_.fit_transform(
                          [char_text(f"{h}\n{s}" if s else h) for h, s in parts])]
        else:
            blocks = [self.word_vectorizer_.transform(tokens),
                      self.char_vectorizer_.transform([f"{h}\n{s}" if s else h for h, s in parts],
                                                      normalise=char_text)]
        if self.lexicon_matcher_ is not None:
            blocks.append(self.lexicon_matcher_.transform(tokens, self.lexicon_weight))
        return sp.hstack(blocks, format="csr")

    # -- estimator API -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> "CategoryClassifier":
        """Learn the vocabularies, lexicon and calibrated classifier from texts and labels.

        Any label set is accepted (labels are compared as strings).
        """
        y = np.asarray([str(v) for v in y], dtype=object)
        n = len(y)
        if not hasattr(X, "__len__"):
            X = list(X)  # a generator: read it once
        n_items = len(X)
        if n_items != n:
            raise LabelSetError(f"got {n_items} items but {n} labels")
        counts = Counter(y.tolist())
        if len(counts) < 2:
            raise LabelSetError(f"need at least two classes to train, got {sorted(counts)}")
        self.__dict__.pop("_fast", None)  # tables of a previous fit
        # frozen: the model keeps the clean stage's domain lists it was trained with
        self.cleaner_ = TextCleaner(self.clean_config).freeze()
        lexicon = self._resolve_lexicon(sorted(counts))
        if lexicon is not None:
            terms = [term for entries in lexicon.values() for term in entries]
            cleaned = dict(zip(terms, self.cleaner_.tokens(terms)))
            self.lexicon_ = {cat: [tuple(cleaned[t]) for t in entries if cleaned[t]]
                             for cat, entries in lexicon.items()}
            self.lexicon_matcher_ = LexiconMatcher(self.lexicon_)
        else:
            self.lexicon_ = None
            self.lexicon_matcher_ = None
        self.word_vectorizer_ = WordTfidf(tuple(self.word_ngram_range), dtype=np.float32)
        self.char_vectorizer_ = CharNgramTfidf(tuple(self.char_ngram_range),
                                               min_df=self.char_min_df,
                                               max_features=self.char_max_features,
                                               dtype=np.float32)
        features = self._features(X, fit=True)
        self.estimator_, self.calibrated_ = self._make_estimator(min(counts.values()))
        self.estimator_.fit(features, y)
        self.classes_ = self.estimator_.classes_
        self.n_features_ = features.shape[1]
        return self

    def _make_estimator(self, smallest: int) -> tuple[Any, bool]:
        """Calibrated balanced LinearSVC; fewer calibration folds for tiny classes, LR for singletons."""
        folds = min(self.calibration_cv, smallest)
        if folds >= 2:
            base = LinearSVC(C=self.C, class_weight="balanced", random_state=self.random_state)
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            return CalibratedClassifierCV(base, method=self.calibration, cv=cv, ensemble=False), True
        # a class with one example: no calibration folds possible; use LR's own probabilities
        return LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000,
                                  random_state=self.random_state), False

    def predict_proba(self, X: Any, *, known: Mapping[str, list[str]] | None = None) -> np.ndarray:
        """Calibrated probability of every class (columns in ``classes_`` order).

        ``known``: optional text -> tokens from this model's own cleaner (:func:`known_tokens`).
        """
        check_is_fitted(self, "estimator_")
        parts = item_parts(X, series_names=DEFAULT_SERIES, kickers=DEFAULT_KICKERS)
        fast = self._fast_path() if parts else None  # no items: the estimator's own error
        if fast is not None:
            return fast.predict_proba(self, parts, known)
        return self.estimator_.predict_proba(self._features_of(parts, fit=False, known=known))

    def _fast_path(self) -> "_LinearPath | None":
        """The block-wise prediction path for this fitted model, built on first use (not saved);
        None when the estimator is not the calibrated linear SVM it knows how to evaluate."""
        if "_fast" not in self.__dict__:
            self._fast = _LinearPath.build(self)
        return self._fast

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each item."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def decision_scores(self, X: Any) -> list[dict[str, float]]:
        """Per item, every class's probability as a dict in ``classes_`` order."""
        proba = self.predict_proba(X)
        return [dict(zip(self.classes_.tolist(), map(float, row))) for row in proba]


class _LinearPath:
    """Prediction of a fitted :class:`CategoryClassifier` without building its feature matrix.

    Why: the decision function is linear, so it is the sum of each feature block's product with
    its slice of the SVM's weights; the blocks never need stacking (stacking 100k rows of ~450
    character n-grams cost as much as computing them). Word n-grams and lexicon matches are
    computed on token ids for the whole batch at once, and character n-grams from raw words
    (see :meth:`CharNgramTfidf.counts`). Every feature value is computed exactly as in
    :meth:`CategoryClassifier._features`; only the order in which the float64 products are
    summed differs (last-bit differences, far below the 4 decimals written).
    """

    def __init__(self, token_ids: TokenIds, word_tables: Any, lexicon_tables: Any,
                 weights: list[np.ndarray], intercept: np.ndarray, calibrator: Any) -> None:
        self.token_ids = token_ids
        self.word_tables = word_tables
        self.lexicon_tables = lexicon_tables
        self.weights = weights  # (features x classes) per block: word, char[, lexicon]
        self.intercept = intercept
        self.calibrator = calibrator

    @classmethod
    def build(cls, clf: CategoryClassifier) -> "_LinearPath | None":
        """The path for ``clf``, or None for any estimator but a temperature-calibrated linear
        model (ensemble=False), which is what ``fit`` makes unless a class has one example."""
        est = clf.estimator_
        if not (isinstance(est, CalibratedClassifierCV) and est.method == "temperature"
                and len(getattr(est, "calibrated_classifiers_", ())) == 1):
            return None
        calibrated = est.calibrated_classifiers_[0]
        svm = getattr(calibrated, "estimator", None)
        coef, intercept = getattr(svm, "coef_", None), getattr(svm, "intercept_", None)
        calibrators = getattr(calibrated, "calibrators", ())
        sizes = [len(clf.word_vectorizer_.vocabulary_), len(clf.char_vectorizer_.vocabulary_)]
        matcher = clf.lexicon_matcher_
        if matcher is not None:
            sizes.append(len(matcher.categories))
        if coef is None or intercept is None or len(calibrators) != 1 \
                or coef.shape[1] != sum(sizes) or not clf.word_vectorizer_.supports_ids():
            return None
        bounds = np.cumsum([0] + sizes)
        weights = [np.ascontiguousarray(coef[:, a:b].T, dtype=np.float64)
                   for a, b in zip(bounds[:-1], bounds[1:])]
        token_ids = TokenIds(chain(clf.word_vectorizer_.id_tokens(),
                                   matcher.id_tokens() if matcher is not None else ()))
        return cls(token_ids, clf.word_vectorizer_.id_tables(token_ids),
                   matcher.id_tables(token_ids) if matcher is not None else None,
                   weights, np.asarray(intercept, dtype=np.float64), calibrators[0])

    def token_ids_of(self, clf: CategoryClassifier, parts: Sequence[tuple[str, str]],
                     known: Mapping[str, list[str]] | None) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of every item's headline then standfirst tokens (flat) and the item bounds,
        the same tokens as :meth:`CategoryClassifier.word_tokens`."""
        texts = list(chain.from_iterable(parts))  # headline, standfirst ("": none), ...
        lists: list[Any] = list(map((known or {}).get, texts))
        missing = [k for k, tokens in enumerate(lists) if tokens is None]
        if missing:
            todo = [texts[k] for k in missing if texts[k] or k % 2 == 0]  # no standfirst: none
            fresh = dict(zip(todo, clf.cleaner_.tokens(todo)))
            for k in missing:
                lists[k] = fresh[texts[k]] if texts[k] or k % 2 == 0 else []
        per_item = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        ends = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(per_item.reshape(-1, 2).sum(axis=1), out=ends[1:])
        return self.token_ids.lookup(list(chain.from_iterable(lists))), ends

    def predict_proba(self, clf: CategoryClassifier, parts: Sequence[tuple[str, str]],
                      known: Mapping[str, list[str]] | None) -> np.ndarray:
        """What ``clf.estimator_.predict_proba`` gives for ``clf``'s features of ``parts``."""
        ids, ends = self.token_ids_of(clf, parts, known)
        decision = clf.word_vectorizer_.transform_ids(ids, ends, self.word_tables) @ self.weights[0]
        chars = clf.char_vectorizer_.transform([f"{h}\n{s}" if s else h for h, s in parts],
                                                normalise=char_text)
        decision += chars @ self.weights[1]
        if self.lexicon_tables is not None:
            decision += clf.lexicon_matcher_.transform_ids(
                ids, ends, self.lexicon_tables, clf.lexicon_weight) @ self.weights[2]
        decision += self.intercept
        proba = self.calibrator.predict(decision)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0  # as CalibratedClassifierCV does
        return proba


# -- the run stage's entry point ------------------------------------------------------------------


def article_item(article: Article) -> dict[str, Any]:
    """What the classifier reads from an article (the same mapping `tag` and `run` use)."""
    return {"headline": article.headline, "standfirst": article.standfirst,
            "series": article.series}


def known_tokens(clf: CategoryClassifier, clean_config: CleanConfig | None,
                 texts: Sequence[str], tokens: Sequence[list[str]]) -> dict[str, list[str]] | None:
    """``{text: tokens}`` from a run's clean stage, for :meth:`CategoryClassifier.predict_proba`,
    or ``None`` when that stage's cleaner is not the model's.

    Why: the run has already cleaned each headline and standfirst; cleaning them again is a
    large share of tagging. The tokens are only reused when they are what the model's own frozen
    cleaner would give: same token-relevant options and the same domain lists (the code is the
    same in one process, and :func:`load_classifier` checked it against the model's fingerprint).
    Texts the classifier reads differently (e.g. a blurb standfirst) are simply absent and get
    cleaned by the model.
    """
    if not same_cleaner(clf, clean_config):
        return None
    return {t: tok for t, tok in zip(texts, tokens) if t}


def known_from_clean(clf: CategoryClassifier, clean_config: CleanConfig | None, cleaned: Any,
                     articles: Sequence[Article], start: int = 0) -> dict[str, list[str]] | None:
    """:func:`known_tokens` for ``articles`` = the run's articles ``start:start+len(articles)``,
    from the clean stage's :class:`~pipeline.clean.CleanResult` (``None`` if it cannot be reused).

    The clean stage's texts are rebuilt with its own public helpers (``headline_text``; blurb
    standfirsts contributed no tokens and are left out). As a guard against the two drifting
    apart, the first headline and standfirst of the chunk are cleaned again by the model and
    must match, else nothing is reused.
    """
    from .clean import headline_text, is_blurb

    heads_tokens = getattr(cleaned, "headline_tokens", None)
    stands_tokens = getattr(cleaned, "standfirst_tokens", None)
    if heads_tokens is None or stands_tokens is None or not same_cleaner(clf, clean_config):
        return None
    blurbs = getattr(cleaned, "blurbs", frozenset())
    known: dict[str, list[str]] = {}
    probes: list[tuple[str, list[str]]] = []  # the first headline and the first standfirst
    for article, head, stand in zip(articles, heads_tokens[start:start + len(articles)],
                                    stands_tokens[start:start + len(articles)]):
        text = headline_text(article) if article.kicker or article.series else article.headline
        if text:
            known[text] = head
        if not probes:
            probes.append((text or "", head))
        # a standfirst with tokens was cleaned, so it is no blurb: is_blurb only for the others
        if article.standfirst and (stand or not is_blurb(article, blurbs)):
            if len(probes) == 1:
                probes.append((article.standfirst, stand))
            known[article.standfirst] = stand
    if probes and [tokens for _, tokens in probes] != clf.cleaner_.tokens([t for t, _ in probes]):
        return None
    return known


def same_cleaner(clf: CategoryClassifier, clean_config: CleanConfig | None) -> bool:
    """Whether a cleaner built from ``clean_config`` gives exactly the tokens of ``clf.cleaner_``."""
    from .clean import load_domain_lists

    ours = clf.cleaner_.config
    theirs = clean_config or CleanConfig()
    fields = ("extra_stop_words", "phrases", "normalise_file", "repair", "min_token_length")
    if any(getattr(ours, f) != getattr(theirs, f) for f in fields):
        return False
    frozen = getattr(clf.cleaner_, "lists", None)
    if frozen is None:
        return False
    try:
        return load_domain_lists(theirs) == frozen
    except Exception:  # noqa: BLE001 - an unreadable list file: just do not share
        return False


PREDICT_CHUNK = 10000  # items per prediction call in tag_items (bounds the feature matrices)


def round4(values: np.ndarray) -> np.ndarray:
    """``round(v, 4)`` of every value, exactly as Python's ``round`` gives it, vectorised.

    ``np.round(v * 1e4) / 1e4`` agrees with ``round`` except where ``v * 1e4`` lies within its
    own rounding error of a half (``round`` works on the exact decimal value); those few values
    (none to a handful per 100k) are rounded by ``round`` itself.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    scaled = values * 1e4
    out = np.round(scaled) / 1e4
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6):
        out.flat[i] = round(float(values.flat[i]), 4)
    return out


def tag_arrays(items: Sequence[Any], clf: CategoryClassifier, config: TagConfig | None = None, *,
               known: Mapping[str, list[str]] | None = None) -> tuple[list[Any], ...]:
    """(categories, confidences, uncertain flags, rounded probabilities) of ``items``: the first
    three as lists, the last as one array (items x ``classes_``), which :func:`score_dicts`
    turns into the ``scores`` mappings. Why apart: a forked tagger sends the array back; 100k
    score dicts cost more to build and pickle there than to build from it here."""
    config = config or TagConfig()
    names = np.asarray([str(c) for c in clf.classes_], dtype=object)
    categories: list[Any] = []
    confidences: list[Any] = []
    uncertain: list[Any] = []
    rounded_parts: list[np.ndarray] = []
    for begin in range(0, len(items), PREDICT_CHUNK):  # bounds the feature matrices' memory
        proba = clf.predict_proba(items[begin:begin + PREDICT_CHUNK], known=known)
        best = np.argmax(proba, axis=1)
        rounded = round4(proba)
        confidence = rounded[np.arange(len(best)), best]
        categories.extend(names[best].tolist())
        confidences.extend(confidence.tolist())
        uncertain.extend((confidence < config.min_confidence).tolist())
        rounded_parts.append(rounded)
    rounded_all = np.concatenate(rounded_parts) if rounded_parts else np.zeros((0, len(names)))
    return categories, confidences, uncertain, rounded_all


def score_dicts(rounded: np.ndarray, classes: Sequence[Any]) -> list[dict[str, float]]:
    """``{class: probability}`` per row of :func:`tag_arrays`'s rounded probabilities."""
    names = [str(c) for c in classes]
    return [dict(zip(names, row)) for row in rounded.tolist()]


def _tag_columns(items: Sequence[Any], clf: CategoryClassifier, config: TagConfig | None,
                 known: Mapping[str, list[str]] | None) -> tuple[list[Any], ...]:
    """(categories, confidences, uncertain flags, score dicts) of ``items``, one list each."""
    categories, confidences, uncertain, rounded = tag_arrays(items, clf, config, known=known)
    return categories, confidences, uncertain, score_dicts(rounded, clf.classes_)


def tag_items(items: Sequence[Any], clf: CategoryClassifier, config: TagConfig | None = None, *,
              known: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Per item: ``category``, ``confidence`` (max probability), ``uncertain``, ``scores``.

    Probabilities are rounded to 4 decimals; ``scores`` has every class in ``classes_`` order.
    Below ``config.min_confidence`` an item keeps its best category but is flagged ``uncertain``.
    ``known``: texts already cleaned by the model's cleaner (:func:`known_tokens`).
    """
    if len(items) == 0:
        return []
    return [{"category": c, "confidence": p, "uncertain": u, "scores": d}
            for c, p, u, d in zip(*_tag_columns(items, clf, config, known))]


def tag_articles(articles: list[Article], clf: CategoryClassifier,
                 config: TagConfig | None = None, *,
                 known: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """Fill ``category``, ``confidence``, ``uncertain`` and ``scores`` on each article.

    Returns counts: ``{"categories": {name: n, ...}, "uncertain": n, "tagged": n}``.
    """
    if not articles:
        return fill_tags(articles, ([], [], [], []), clf.classes_)
    columns = _tag_columns([article_item(a) for a in articles], clf, config, known)
    return fill_tags(articles, columns, clf.classes_)


def apply_tags(articles: Sequence[Article], tags: Sequence[dict[str, Any]],
               classes: Sequence[Any]) -> dict[str, Any]:
    """Fill the tag fields of ``articles`` from ``tag_items`` results (same order); return counts.

    Shared by the in-process, worker-process and Dask paths so they cannot drift apart.
    """
    columns = tuple([tag[key] for tag in tags]
                    for key in ("category", "confidence", "uncertain", "scores"))
    return fill_tags(articles, columns, classes)


def fill_tags(articles: Sequence[Article], columns: tuple[list[Any], ...],
              classes: Sequence[Any]) -> dict[str, Any]:
    """The one place tag fields are written onto articles, from (categories, confidences,
    uncertain flags, score dicts); returns the counts (see :func:`tag_articles`)."""
    categories, confidences, uncertain, scores = columns
    for article, category, confidence, flag, score in zip(articles, categories, confidences,
                                                           uncertain, scores, strict=True):
        article.category = category
        article.confidence = confidence
        article.uncertain = flag
        article.scores = score
    per_category = {str(c): 0 for c in classes}
    for category, n in Counter(categories).items():
        per_category[category] += n
    return {"categories": per_category, "uncertain": sum(uncertain), "tagged": len(articles)}


# -- evaluation ----------------------------------------------------------------------------------


def evaluate_predictions(y_true: Sequence[str], y_pred: Sequence[str],
                         labels: Sequence[str] | None = None,
                         proba: np.ndarray | None = None) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1, accuracy, confusion matrix (rows = truth)."""
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
    # Own fold loop: cross_val_predict(method="predict_proba") integer-encodes the labels, which
    # would hide the taxonomy from lexicon="auto".
    proba = np.zeros((len(y), len(labels)))
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = clone(clf).fit([X[i] for i in train], y[train])
        columns = [labels.index(str(c)) for c in model.classes_]
        proba[np.ix_(test, columns)] = model.predict_proba([X[i] for i in test])
    pred = np.asarray(labels, dtype=object)[np.argmax(proba, axis=1)]
    result = evaluate_predictions(y, pred, labels, proba)
    fold_f1 = [f1_score(y[test], pred[test], labels=labels, average="macro", zero_division=0)
               for _, test in splitter.split(np.zeros(len(y)), y)]
    fold_acc = [accuracy_score(y[test], pred[test]) for _, test in splitter.split(np.zeros(len(y)), y)]
    result.update(folds=folds, random_state=random_state,
                  macro_f1_folds=[round(float(v), 4) for v in fold_f1],
                  macro_f1_std=round(float(np.std(fold_f1)), 4),
                  accuracy_std=round(float(np.std(fold_acc)), 4))
    return result


from .model_store import load_classifier, save_classifier  # noqa: E402  (re-export)
