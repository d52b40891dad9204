"""Vectorise stage: TF-IDF over cleaned tokens, with the headline weighted above the standfirst.

The input is already tokenised by the clean stage, so scikit-learn's analyzer is replaced by
:class:`TokenNgrams`, a small module-level class (not a lambda) so the fitted vectoriser pickles
and the run can ``joblib.dump`` it beside its outputs.

Weighting: n-grams are counted per field (never across the headline/standfirst boundary), then
``count = headline_weight * headline_count + standfirst_count`` before sublinear tf, idf and L2
normalisation. Document frequencies count an article once, whichever field a term came from.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from .config import VectoriseConfig
from .records import Article

Parts = tuple[list[str], ...]


class TokenNgrams:
    """Analyzer over pre-tokenised fields: word n-grams within each field, joined by a space."""

    def __init__(self, ngram_min: int = 1, ngram_max: int = 1) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max

    def __call__(self, parts: Parts) -> list[str]:
        grams: list[str] = []
        for tokens in parts:
            n_tokens = len(tokens)
            for n in range(self.ngram_min, self.ngram_max + 1):
                if n == 1:
                    grams.extend(tokens)
                else:
                    grams.extend(" ".join(tokens[i:i + n]) for i in range(n_tokens - n + 1))
        return grams


def as_fields(doc: Any) -> tuple[list[str], list[str]]:
    """(headline tokens, standfirst tokens) from an Article, a (headline, standfirst) pair, or
    a plain token list (which counts as one field of weight 1)."""
    if isinstance(doc, Article):
        from .clean import split_tokens

        return split_tokens(doc)
    if isinstance(doc, tuple) and len(doc) == 2:
        return list(doc[0] or []), list(doc[1] or [])
    if doc is None:
        return [], []
    if isinstance(doc, str):
        raise TypeError("Vectoriser takes token lists, (headline, standfirst) pairs or Articles, "
                        "not raw strings: run the clean stage first")
    return [], list(doc)


class Vectoriser(TransformerMixin, BaseEstimator):
    """TF-IDF over cleaned tokens (a scikit-learn transformer).

    Parameters
    ----------
    config:
        The ``[vectorise]`` section (n-grams, min_df/max_df, sublinear tf, headline weight).

    Attributes
    ----------
    counter_ : CountVectorizer with the fitted vocabulary.
    tfidf_ : TfidfTransformer with the fitted idf.
    notes_ : list of adjustments made for tiny corpora (e.g. max_df relaxed).
    """

    def __init__(self, config: VectoriseConfig | None = None) -> None:
        self.config = config

    @property
    def _config(self) -> VectoriseConfig:
        return self.config if self.config is not None else VectoriseConfig()

    def _split(self, docs: Any) -> tuple[list[Parts], list[Parts]]:
        docs = getattr(docs, "docs", docs)  # a CleanResult
        fields = [as_fields(d) for d in docs]
        both = [(h, s) for h, s in fields]
        heads = [(h,) for h, _ in fields]
        return both, heads

    @staticmethod
    def _df_bounds(config: VectoriseConfig, n_docs: int) -> tuple[int | float, int | float, list[str]]:
        """sklearn reads 1.0 as "100% of documents": map whole numbers to counts, and relax
        max_df when a tiny corpus would otherwise prune everything."""
        notes: list[str] = []
        if n_docs == 0:
            return 1, 1.0, notes
        min_df: int | float = int(config.min_df) if config.min_df >= 1 else float(config.min_df)
        max_df: int | float = int(config.max_df) if config.max_df > 1 else float(config.max_df)
        min_count = min_df if isinstance(min_df, int) else int(np.ceil(min_df * n_docs))
        max_count = max_df if isinstance(max_df, int) else int(max_df * n_docs)
        if min_count > n_docs:
            notes.append(f"min_df={config.min_df} exceeds the {n_docs} documents; using 1")
            min_df, min_count = 1, 1
        if max_count < max(min_count, 1):
            notes.append(f"max_df={config.max_df} keeps no term in {n_docs} documents; using 1.0")
            max_df = 1.0
        return min_df, max_df, notes

    def fit(self, docs: Any, y: Any = None) -> Vectoriser:
        """Learn the vocabulary and idf."""
        self.fit_transform(docs)
        return self

    def fit_transform(self, docs: Any, y: Any = None, **_: Any) -> sp.csr_matrix:
        """Learn vocabulary and idf, return the L2-normalised TF-IDF matrix (sparse)."""
        config = self._config
        both, heads = self._split(docs)
        min_df, max_df, notes = self._df_bounds(config, len(both))
        self.notes_ = notes
        analyzer = TokenNgrams(config.ngram_min, config.ngram_max)
        try:
            try:
                self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df,
                                                dtype=np.float64)
                counts = self.counter_.fit_transform(both)
            except ValueError:  # df limits pruned every term (e.g. all articles identical)
                self.counter_ = CountVectorizer(analyzer=analyzer, dtype=np.float64)
                counts = self.counter_.fit_transform(both)
                self.notes_.append("min_df/max_df pruned every term; kept all terms instead")
        except ValueError:  # empty vocabulary: every text was stop words, numbers or nothing
            self.counter_ = CountVectorizer(analyzer=TokenNgrams(config.ngram_min, config.ngram_max),
                                            vocabulary=[], dtype=np.float64)
            self.notes_.append("empty vocabulary: no text had a content word")
            self.counter_.vocabulary_ = {}
            self.counter_.fixed_vocabulary_ = True
            counts = sp.csr_matrix((len(both), 0), dtype=np.float64)
        self.tfidf_ = TfidfTransformer(sublinear_tf=config.sublinear_tf)
        weighted = self._weighted(counts, heads)
        if weighted.shape[1] == 0:
            self.tfidf_.idf_ = np.zeros(0)
            return weighted.tocsr()
        return self.tfidf_.fit_transform(weighted).tocsr()

    def _weighted(self, counts: sp.csr_matrix, heads: list[Parts]) -> sp.csr_matrix:
        weight = float(self._config.headline_weight)
        if weight == 1.0 or counts.shape[1] == 0:
            return counts
        return (counts + (weight - 1.0) * self.counter_.transform(heads)).tocsr()

    def transform(self, docs: Any) -> sp.csr_matrix:
        """TF-IDF of new documents with the fitted vocabulary and idf."""
        if not hasattr(self, "counter_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("Vectoriser is not fitted yet; call fit or fit_transform")
        both, heads = self._split(docs)
        if not self.counter_.vocabulary_:
            return sp.csr_matrix((len(both), 0), dtype=np.float64)
        weighted = self._weighted(self.counter_.transform(both), heads)
        return self.tfidf_.transform(weighted).tocsr()

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Feature names (unigrams and space-joined n-grams), in column order."""
        vocabulary = getattr(self.counter_, "vocabulary_", {})
        names = np.empty(len(vocabulary), dtype=object)
        for term, column in vocabulary.items():
            names[column] = term
        return names
