"""Vectorise stage: TF-IDF over cleaned tokens, with the headline weighted above the standfirst.

The input is already tokenised by the clean stage. Counting follows scikit-learn's
``CountVectorizer`` with :class:`TokenNgrams` as its analyzer (a small module-level class, not a
lambda, so the fitted vectoriser pickles and the run can ``joblib.dump`` it beside its outputs),
but builds the count matrix directly with numpy: the analyzer call, the per-document dict and
the per-token Python work of ``CountVectorizer`` were most of the stage. The matrix is the one
scikit-learn builds, to the bit: same vocabulary (dict order too), same columns, same stored
order of the entries in each row (the L2 norm sums them in that order), same dtypes; tested
against ``CountVectorizer`` in tests/test_vectorise.py. idf and normalisation are still
scikit-learn's ``TfidfTransformer``.

Saving: the fitted vectoriser pickles as plain values (config fields, terms, columns, idf, df
limits) and rebuilds its scikit-learn parts on load, so ``vectoriser.joblib`` is the same bytes
whatever ran before in the process (see :meth:`Vectoriser.__getstate__`).

Weighting: n-grams are counted per field (never across the headline/standfirst boundary), then
``count = headline_weight * headline_count + standfirst_count`` before sublinear tf, idf and L2
normalisation. Document frequencies count an article once, whichever field a term came from.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from numbers import Integral
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
    if isinstance(doc, Article):  # the split is the clean stage's (CleanStage.split)
        return list(doc.tokens or []), []
    if isinstance(doc, tuple) and len(doc) == 2:
        return list(doc[0] or []), list(doc[1] or [])
    if doc is None:
        return [], []
    if isinstance(doc, str):
        raise TypeError("Vectoriser takes token lists, (headline, standfirst) pairs or Articles, "
                        "not raw strings: run the clean stage first")
    return [], list(doc)


def split_fields(docs: Any) -> tuple[list[Sequence[str]], list[Sequence[str]]]:
    """(headline tokens per document, standfirst tokens per document). A
    :class:`~pipeline.clean.CleanResult` hands over its lists as they are (not copied)."""
    heads = getattr(docs, "headline_tokens", None)
    stands = getattr(docs, "standfirst_tokens", None)
    if isinstance(heads, list) and isinstance(stands, list) and len(heads) == len(stands):
        return heads, stands
    docs = getattr(docs, "docs", docs)
    fields = [as_fields(d) for d in docs]
    return [h for h, _ in fields], [s for _, s in fields]


@dataclass
class _Pairs:
    """The distinct (document, term) pairs of a corpus, ordered by document, then by the term's
    first appearance in the corpus (the order ``CountVectorizer`` leaves its rows in), with how
    often the term occurs in the document and in its headline."""

    rows: np.ndarray  # int64 document of each pair
    terms: np.ndarray  # int64 term id (ids number terms by first appearance)
    both: np.ndarray  # float64 count in headline + standfirst
    head: np.ndarray  # float64 count in the headline


def _grams(fields: Sequence[Sequence[str]], ngram_min: int, ngram_max: int) -> Sequence[Sequence[str]]:
    """Each field's n-grams, as :class:`TokenNgrams` lists them (unigrams: the tokens as they are)."""
    if ngram_min == ngram_max == 1:
        return fields
    analyzer = TokenNgrams(ngram_min, ngram_max)
    return [analyzer((list(f),)) for f in fields]


def _interleave(heads: Sequence[Sequence[str]], stands: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """[head 0, standfirst 0, head 1, ...]: the order the analyzer reads a corpus in."""
    fields: list[Sequence[str]] = [()] * (2 * len(heads))
    fields[0::2] = heads
    fields[1::2] = stands
    return fields


def _pairs(fields: list[Sequence[str]], codes: np.ndarray, n_terms: int) -> _Pairs:
    """Group token term ids (``codes``, -1 = skip) of the interleaved ``fields`` into pairs."""
    lengths = np.fromiter(map(len, fields), dtype=np.int64, count=len(fields))
    field = np.repeat(np.arange(len(fields), dtype=np.int64), lengths)
    keep = codes >= 0
    if not keep.all():
        field, codes = field[keep], codes[keep]
    rows = field >> 1
    key = rows * max(n_terms, 1) + codes
    order = np.argsort(key, kind="stable")
    key = key[order]
    is_head = (field[order] & 1) == 0
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    both = np.diff(np.r_[first, len(key)]).astype(np.float64)
    head = np.add.reduceat(is_head.astype(np.int64), first).astype(np.float64) if len(key) else np.zeros(0)
    pair_keys = key[first]
    n = max(n_terms, 1)
    return _Pairs(rows=pair_keys // n, terms=pair_keys % n, both=both, head=head)


def _fit_pairs(fields: list[Sequence[str]]) -> tuple[_Pairs, list[str]]:
    """Pairs of a corpus and its terms in order of first appearance."""
    ids: dict[str, int] = {}
    # one C-level pass: each gram's id, a new gram getting the next one (len(ids) is read
    # just before setdefault inserts it)
    codes = np.fromiter(map(ids.setdefault, chain.from_iterable(fields), map(len, repeat(ids))),
                        dtype=np.int64, count=sum(map(len, fields)))
    return _pairs(fields, codes, len(ids)), list(ids)


def _csr(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, data: np.ndarray) -> sp.csr_matrix:
    """CSR matrix from entries already in row order (stored as given), int32 indices as
    ``CountVectorizer`` makes them."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    index_dtype = np.int32 if len(data) <= np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((data, cols.astype(index_dtype), indptr.astype(index_dtype)),
                         shape=(n_rows, n_cols))


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
        heads, stands = split_fields(docs)
        n_docs = len(heads)
        min_df, max_df, notes = self._df_bounds(config, n_docs)
        self.notes_ = notes
        fields = _interleave(_grams(heads, config.ngram_min, config.ngram_max),
                             _grams(stands, config.ngram_min, config.ngram_max))
        pairs, terms = _fit_pairs(fields)
        analyzer = TokenNgrams(config.ngram_min, config.ngram_max)
        kept = self._kept_terms(pairs, len(terms), n_docs, min_df, max_df) if terms else None
        if kept is None and terms:  # df limits pruned every term (e.g. all articles identical)
            kept = np.ones(len(terms), dtype=bool)
            min_df, max_df = 1, 1.0
            self.notes_.append("min_df/max_df pruned every term; kept all terms instead")
        if not terms:  # empty vocabulary: every text was stop words, numbers or nothing
            self.notes_.append("empty vocabulary: no text had a content word")
            self._set_fitted([], np.zeros(0, dtype=np.int64), np.zeros(0), min_df, max_df)
            return sp.csr_matrix((n_docs, 0), dtype=np.float64)
        self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df, dtype=np.float64)
        self.counter_.fixed_vocabulary_ = False
        column = self._set_vocabulary(terms, kept)
        weighted = self._fitted_counts(pairs, kept, column, n_docs)
        self.tfidf_ = TfidfTransformer(sublinear_tf=config.sublinear_tf)
        return self.tfidf_.fit_transform(weighted).tocsr()

    @staticmethod
    def _kept_terms(pairs: _Pairs, n_terms: int, n_docs: int, min_df: int | float,
                    max_df: int | float) -> np.ndarray | None:
        """``CountVectorizer``'s df pruning: a mask over terms, or None where it would raise."""
        high = max_df if isinstance(max_df, Integral) else max_df * n_docs
        low = min_df if isinstance(min_df, Integral) else min_df * n_docs
        if high < low:
            return None
        df = np.bincount(pairs.terms, minlength=n_terms)
        kept = (df <= high) & (df >= low)
        return kept if kept.any() else None

    def _set_vocabulary(self, terms: list[str], kept: np.ndarray) -> np.ndarray:
        """``vocabulary_`` as ``CountVectorizer`` leaves it (kept terms in order of first
        appearance, each mapped to its alphabetical column); returns term id -> column (-1 pruned)."""
        ids = np.flatnonzero(kept)
        names = [terms[i] for i in ids.tolist()]
        rank = np.empty(len(names), dtype=np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        self.counter_.vocabulary_ = dict(zip(names, rank.tolist()))
        column = np.full(len(terms), -1, dtype=np.int64)
        column[ids] = rank
        return column

    def _fitted_counts(self, pairs: _Pairs, kept: np.ndarray, column: np.ndarray,
                       n_docs: int) -> sp.csr_matrix:
        """The weighted count matrix of ``fit_transform``, entries stored in scikit-learn's order:
        ``CountVectorizer`` leaves each row in order of first appearance (columns then remapped
        alphabetically); adding the headline counts (sorted rows) goes through scipy's general
        sparse sum, which stores each row reversed -- unless every row happens to be sorted,
        when its canonical merge keeps them sorted."""
        weight = float(self._config.headline_weight)
        keep = kept[pairs.terms]
        rows, cols = pairs.rows[keep], column[pairs.terms[keep]]
        both, head = pairs.both[keep], pairs.head[keep]
        if weight == 1.0:
            return _csr(n_docs, len(self.counter_.vocabulary_), rows, cols, both)
        data = both + (weight - 1.0) * head
        if not _rows_sorted(rows, cols):
            order = _reversed_within_rows(rows)
            rows, cols, data = rows[order], cols[order], data[order]
        nonzero = data != 0
        if not nonzero.all():
            rows, cols, data = rows[nonzero], cols[nonzero], data[nonzero]
        return _csr(n_docs, len(self.counter_.vocabulary_), rows, cols, data)

    # ---- fitted state from values, and the saved form -------------------------------------------

    @classmethod
    def from_fitted(cls, config: VectoriseConfig | None, terms: Sequence[str], columns: np.ndarray,
                    idf: np.ndarray, min_df: int | float, max_df: int | float,
                    notes: Sequence[str] = ()) -> Vectoriser:
        """A fitted vectoriser from its values: ``terms`` in vocabulary order with their
        ``columns``, the ``idf`` per column and the effective df limits. How a saved vectoriser
        is loaded, and how the Dask backend builds the one it fitted from summed frequencies."""
        vectoriser = cls(config)
        vectoriser.notes_ = list(notes)
        vectoriser._set_fitted(terms, columns, idf, min_df, max_df)
        return vectoriser

    def _set_fitted(self, terms: Sequence[str], columns: np.ndarray, idf: np.ndarray,
                    min_df: int | float, max_df: int | float) -> None:
        """``counter_`` and ``tfidf_`` as ``fit_transform`` leaves them (an empty vocabulary is a
        fixed empty one, as ``CountVectorizer`` would refuse to fit it)."""
        config = self._config
        analyzer = TokenNgrams(config.ngram_min, config.ngram_max)
        if len(terms):
            self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df, dtype=np.float64)
        else:
            self.counter_ = CountVectorizer(analyzer=analyzer, vocabulary=[], dtype=np.float64)
        self.counter_.vocabulary_ = dict(zip(terms, np.asarray(columns).tolist()))
        self.counter_.fixed_vocabulary_ = not len(terms)
        self.tfidf_ = TfidfTransformer(sublinear_tf=config.sublinear_tf)
        self.tfidf_.idf_ = np.ascontiguousarray(idf, dtype=np.float64)
        if len(terms):
            self.tfidf_.n_features_in_ = len(terms)

    def __getstate__(self) -> dict[str, Any]:
        """The saved form: plain values (config fields, notes, terms in vocabulary order, their
        columns, idf, df limits), so ``vectoriser.joblib`` is a function of the fitted values.

        Why not the scikit-learn objects: pickle writes a string object once and refers back to
        it, by identity, and their attribute names are not the same objects in every process
        (Python shares one table of attribute names per class, taken from its first instance;
        when that was unpickled -- the classifier, loaded before vectorising with --jobs 2 -- the
        names are other objects than the interned ones). The bytes then depended on the job count.
        """
        state: dict[str, Any] = {"config": None if self.config is None else dataclasses.asdict(self.config)}
        if hasattr(self, "counter_"):
            vocabulary = self.counter_.vocabulary_
            state.update(
                notes=[str(n) for n in getattr(self, "notes_", [])],
                terms=[str(t) for t in vocabulary],
                columns=np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary)),
                idf=np.ascontiguousarray(self.tfidf_.idf_, dtype=np.float64),
                min_df=self.counter_.min_df, max_df=self.counter_.max_df)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from :meth:`__getstate__`'s values (the scikit-learn parts made afresh)."""
        values = state.get("config")
        self.config = None if values is None else VectoriseConfig(**values)
        if "terms" in state:
            self.notes_ = list(state["notes"])
            self._set_fitted(state["terms"], state["columns"], state["idf"], state["min_df"], state["max_df"])

    def transform(self, docs: Any) -> sp.csr_matrix:
        """TF-IDF of new documents with the fitted vocabulary and idf."""
        if not hasattr(self, "counter_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("Vectoriser is not fitted yet; call fit or fit_transform")
        config = self._config
        heads, stands = split_fields(docs)
        vocabulary = self.counter_.vocabulary_
        if not vocabulary:
            return sp.csr_matrix((len(heads), 0), dtype=np.float64)
        ngram_min, ngram_max = self.counter_.analyzer.ngram_min, self.counter_.analyzer.ngram_max
        fields = _interleave(_grams(heads, ngram_min, ngram_max), _grams(stands, ngram_min, ngram_max))
        flat = chain.from_iterable(fields)
        n_flat = sum(map(len, fields))
        codes = np.fromiter(map(vocabulary.get, flat, repeat(-1)), dtype=np.int64, count=n_flat)
        pairs = _pairs(fields, codes, len(vocabulary))  # in-vocabulary terms, by column
        weight = float(config.headline_weight)
        data = pairs.both if weight == 1.0 else pairs.both + (weight - 1.0) * pairs.head
        rows, cols = pairs.rows, pairs.terms
        nonzero = data != 0
        if weight != 1.0 and not nonzero.all():
            rows, cols, data = rows[nonzero], cols[nonzero], data[nonzero]
        counts = _csr(len(heads), len(vocabulary), rows, cols, data)
        return self.tfidf_.transform(counts).tocsr()

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Feature names (unigrams and space-joined n-grams), in column order."""
        vocabulary = getattr(self.counter_, "vocabulary_", {})
        names = np.empty(len(vocabulary), dtype=object)
        for term, column in vocabulary.items():
            names[column] = term
        return names


def _rows_sorted(rows: np.ndarray, cols: np.ndarray) -> bool:
    """Whether the columns strictly increase within every row (scipy's canonical format)."""
    if len(cols) < 2:
        return True
    same_row = rows[1:] == rows[:-1]
    return bool(np.all(cols[1:][same_row] > cols[:-1][same_row]))


def _reversed_within_rows(rows: np.ndarray) -> np.ndarray:
    """Permutation reversing the entries of each row (``rows`` non-decreasing)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(rows[1:] != rows[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, n]
    lengths = ends - starts
    row_start = np.repeat(starts, lengths)
    row_end = np.repeat(ends, lengths)
    return row_start + row_end - 1 - np.arange(n)


class VectoriseStage:
    """The vectorise stage as a component (:mod:`pipeline.stages`): TF-IDF of the cleaned
    articles, the headline weighted (the clean stage knows which tokens came from it).

    Corpus-wide (the vocabulary and idf are the corpus's): ``fit_predict`` of all articles is
    the matrix. It writes no field; the matrix and the fitted vectoriser are its products.
    """

    name = "vectorise"
    corpus_wide = True
    reads: tuple[str, ...] = ("clean",)
    uses = ("clean",)

    def __init__(self, config: VectoriseConfig | None = None, clean: Any = None) -> None:
        self.config = config or VectoriseConfig()
        self.clean = clean
        self.vectoriser = Vectoriser(self.config)
        self.notes: list[str] = []
        self.matrix: sp.csr_matrix | None = None

    @classmethod
    def from_config(cls, section: VectoriseConfig, clean: Any = None) -> VectoriseStage:
        return cls(section, clean)

    def docs(self, articles: Sequence[Article]) -> tuple[list[list[str]], list[list[str]]]:
        """(headline tokens, standfirst tokens) per article."""
        split = self.clean.split if self.clean is not None else as_fields
        pairs = [split(a) for a in articles]
        return [h for h, _ in pairs], [s for _, s in pairs]

    def fit_predict(self, articles: Sequence[Article]) -> sp.csr_matrix:
        """Learn the vocabulary and idf of ``articles``; their TF-IDF rows."""
        heads, stands = self.docs(articles)
        X = self.vectoriser.fit_transform(_Fields(heads, stands))
        self.notes = list(getattr(self.vectoriser, "notes_", []))
        return X

    def predict(self, articles: Sequence[Article]) -> sp.csr_matrix:
        """TF-IDF rows of ``articles`` with the fitted vocabulary and idf."""
        heads, stands = self.docs(articles)
        return self.vectoriser.transform(_Fields(heads, stands))

    def set_annotations(self, articles: Sequence[Article], X: sp.csr_matrix) -> dict[str, int]:
        """No field: the rows are kept (:meth:`products`)."""
        self.matrix = X if self.matrix is None else sp.vstack([self.matrix, X], format="csr")
        return {}

    def summary(self) -> dict[str, int]:
        """The matrix's columns and non-zeros."""
        X = self.matrix if self.matrix is not None else sp.csr_matrix((0, 0))
        return {"features": int(X.shape[1]), "nonzeros": int(X.nnz)}

    def products(self) -> dict[str, Any]:
        return {"matrix": self.matrix, "vectoriser": self.vectoriser}


@dataclass
class _Fields:
    """Headline and standfirst token lists handed to the vectoriser as they are (not copied)."""

    headline_tokens: list[list[str]]
    standfirst_tokens: list[list[str]]
