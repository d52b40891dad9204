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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    if sp.issparse(docs):  # its rows would read as documents of numbers
        raise TypeError("Vectoriser takes token lists, (headline, standfirst) pairs or Articles, "
                        "not a sparse matrix")
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


@dataclass(frozen=True)
class DocFrequencies:
    """Statistics of a batch that combine: how many documents contain each n-gram (an article
    counts once per term, whichever field), the terms in order of first appearance, and the
    number of documents. Summed over batches in order, that is the whole corpus's, vocabulary
    order included (a set would order the terms by string hash, which differs per process).

    ``cancelled`` counts, per term, the documents whose weighted count of it is zero (headline-only
    occurrences when ``headline_weight`` is 0): ``TfidfTransformer`` counts stored entries, so the
    idf leaves them out while the df limits count them. Empty in the usual case."""

    df: dict[str, int]
    n_docs: int
    cancelled: dict[str, int] = field(default_factory=dict)


_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(VectoriseConfig))
_DEFAULTS = VectoriseConfig()  # the hyperparameters' defaults: the config section's, defined once there


def _section_values(values: dict[str, Any]) -> dict[str, Any]:
    """The ``[vectorise]`` section's own form of ``values`` (``dataclasses.asdict`` of the
    validated section, e.g. ``headline_weight=3`` as 3.0): what the saved form writes, as it did
    when the vectoriser held the section itself. Values that are no valid section (reachable only
    through the Python API; ``fit`` refuses them) are kept as given."""
    try:
        return dataclasses.asdict(VectoriseConfig(**values))
    except (TypeError, ValueError):
        return dict(values)


class Vectoriser(TransformerMixin, BaseEstimator):
    """TF-IDF over cleaned tokens (a scikit-learn transformer).

    Parameters
    ----------
    ngram_min, ngram_max, min_df, max_df, sublinear_tf, headline_weight:
        The fields of the ``[vectorise]`` section (:class:`~pipeline.config.VectoriseConfig`,
        whose defaults they take); validated by it in ``fit``. :meth:`from_config` builds one
        from a section.

    Attributes
    ----------
    counter_ : CountVectorizer with the fitted vocabulary.
    tfidf_ : TfidfTransformer with the fitted idf.
    notes_ : list of adjustments made for tiny corpora (e.g. max_df relaxed).

    Fitting also works from statistics that combine, batch by batch: :meth:`partial` over each
    batch, :meth:`combine` in order, :meth:`fit_stats`; that gives the vocabulary, idf and notes
    of ``fit`` on the whole corpus, wherever the batches are (the matrix itself then differs from
    ``fit_transform``'s in the order entries are stored, so the run fits the whole corpus at once).
    """

    def __init__(self, *, ngram_min: int = _DEFAULTS.ngram_min, ngram_max: int = _DEFAULTS.ngram_max,
                 min_df: float = _DEFAULTS.min_df, max_df: float = _DEFAULTS.max_df,
                 sublinear_tf: bool = _DEFAULTS.sublinear_tf,
                 headline_weight: float = _DEFAULTS.headline_weight) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.headline_weight = headline_weight

    @classmethod
    def from_config(cls, section: VectoriseConfig) -> Vectoriser:
        """An unfitted vectoriser with the ``[vectorise]`` section's values as hyperparameters."""
        return cls(**{name: getattr(section, name) for name in _FIELDS})

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # a list of documents, each token lists, not a 2-D array
        tags.input_tags.string = True  # the tokens are strings
        return tags

    def _section(self) -> VectoriseConfig:
        """The hyperparameters validated as a ``[vectorise]`` section (ranges and types; a
        pydantic ``ValidationError`` -- a ValueError -- names a bad one)."""
        return VectoriseConfig(**{name: getattr(self, name) for name in _FIELDS})

    @staticmethod
    def _df_bounds(section: VectoriseConfig, n_docs: int) -> tuple[int | float, int | float, list[str]]:
        """sklearn reads 1.0 as "100% of documents": map whole numbers to counts, and relax
        max_df when a tiny corpus would otherwise prune everything."""
        notes: list[str] = []
        if n_docs == 0:
            return 1, 1.0, notes
        min_df: int | float = int(section.min_df) if section.min_df >= 1 else float(section.min_df)
        max_df: int | float = int(section.max_df) if section.max_df > 1 else float(section.max_df)
        min_count = min_df if isinstance(min_df, int) else int(np.ceil(min_df * n_docs))
        max_count = max_df if isinstance(max_df, int) else int(max_df * n_docs)
        if min_count > n_docs:
            notes.append(f"min_df={section.min_df} exceeds the {n_docs} documents; using 1")
            min_df, min_count = 1, 1
        if max_count < max(min_count, 1):
            notes.append(f"max_df={section.max_df} keeps no term in {n_docs} documents; using 1.0")
            max_df = 1.0
        return min_df, max_df, notes

    @classmethod
    def _prune(cls, section: VectoriseConfig, df: np.ndarray, n_docs: int
               ) -> tuple[np.ndarray, int | float, int | float, list[str]]:
        """Which terms the df limits keep (mask over ``df``, terms in order of first appearance),
        the effective limits and the notes, with the fallbacks: all terms kept where
        ``CountVectorizer`` would refuse the limits, and a note for an empty vocabulary. The one
        place both ways of fitting (documents, statistics) choose the vocabulary."""
        min_df, max_df, notes = cls._df_bounds(section, n_docs)
        if not len(df):  # empty vocabulary: every text was stop words, numbers or nothing
            notes.append("empty vocabulary: no text had a content word")
            return np.zeros(0, dtype=bool), min_df, max_df, notes
        kept = cls._kept_terms(df, n_docs, min_df, max_df)
        if kept is None:  # df limits pruned every term (e.g. all articles identical)
            notes.append("min_df/max_df pruned every term; kept all terms instead")
            return np.ones(len(df), dtype=bool), 1, 1.0, notes
        return kept, min_df, max_df, notes

    def fit(self, docs: Any, y: Any = None) -> Vectoriser:
        """Learn the vocabulary and idf."""
        self.fit_transform(docs)
        return self

    def fit_transform(self, docs: Any, y: Any = None, **_: Any) -> sp.csr_matrix:
        """Learn vocabulary and idf, return the L2-normalised TF-IDF matrix (sparse)."""
        section = self._section()
        heads, stands = split_fields(docs)
        n_docs = len(heads)
        fields = _interleave(_grams(heads, section.ngram_min, section.ngram_max),
                             _grams(stands, section.ngram_min, section.ngram_max))
        pairs, terms = _fit_pairs(fields)
        df = np.bincount(pairs.terms, minlength=len(terms))
        kept, min_df, max_df, notes = self._prune(section, df, n_docs)
        self.notes_ = notes
        if not terms:
            self._set_fitted([], np.zeros(0, dtype=np.int64), np.zeros(0), min_df, max_df)
            return sp.csr_matrix((n_docs, 0), dtype=np.float64)
        analyzer = TokenNgrams(section.ngram_min, section.ngram_max)
        self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df, dtype=np.float64)
        self.counter_.fixed_vocabulary_ = False
        column = self._set_vocabulary(terms, kept)
        weighted = self._fitted_counts(pairs, kept, column, n_docs, float(section.headline_weight))
        self.tfidf_ = TfidfTransformer(sublinear_tf=section.sublinear_tf)
        return self.tfidf_.fit_transform(weighted).tocsr()

    # ---- statistics that combine ----------------------------------------------------------------

    def partial(self, docs: Any) -> DocFrequencies:
        """Document frequencies of a batch (the input ``fit`` takes), to :meth:`combine` with other
        batches' in order and :meth:`fit_stats` on. Changes nothing on the vectoriser."""
        section = self._section()
        heads, stands = split_fields(docs)
        fields = _interleave(_grams(heads, section.ngram_min, section.ngram_max),
                             _grams(stands, section.ngram_min, section.ngram_max))
        pairs, terms = _fit_pairs(fields)
        df = np.bincount(pairs.terms, minlength=len(terms))
        cancelled: dict[str, int] = {}
        weight = float(section.headline_weight)
        if weight != 1.0 and len(pairs.terms):
            zero = (pairs.both + (weight - 1.0) * pairs.head) == 0  # as _fitted_counts weighs them
            if zero.any():
                zeros = np.bincount(pairs.terms[zero], minlength=len(terms))
                cancelled = {terms[i]: int(zeros[i]) for i in np.flatnonzero(zeros).tolist()}
        return DocFrequencies(df=dict(zip(terms, df.tolist())), n_docs=len(heads), cancelled=cancelled)

    def combine(self, parts: Iterable[DocFrequencies]) -> DocFrequencies:
        """The statistics of the batches together (summed in the order given: terms new in a later
        batch follow, so the order is the concatenated corpus's first appearance)."""
        df: dict[str, int] = {}
        cancelled: dict[str, int] = {}
        n_docs = 0
        for part in parts:
            for term, count in part.df.items():
                df[term] = df.get(term, 0) + count
            for term, count in part.cancelled.items():
                cancelled[term] = cancelled.get(term, 0) + count
            n_docs += part.n_docs
        return DocFrequencies(df=df, n_docs=n_docs, cancelled=cancelled)

    def fit_stats(self, stats: DocFrequencies) -> Vectoriser:
        """Fit from combined statistics: the vocabulary (order included), idf, df limits and notes
        that ``fit`` gives on the same documents. The idf is ``TfidfTransformer``'s smoothed
        ``ln((1 + n) / (1 + df)) + 1`` in the same float64 operations."""
        section = self._section()
        terms = list(stats.df)
        df = np.fromiter(stats.df.values(), dtype=np.int64, count=len(terms))
        kept, min_df, max_df, notes = self._prune(section, df, stats.n_docs)
        ids = np.flatnonzero(kept)
        names = [terms[i] for i in ids.tolist()]
        columns = _alphabetical_columns(names)
        counted = df[ids]
        if stats.cancelled:
            counted = counted - np.fromiter((stats.cancelled.get(t, 0) for t in names), dtype=np.int64,
                                            count=len(names))
        doc_freq = np.empty(len(names), dtype=np.int64)
        doc_freq[columns] = counted
        doc_freq += 1  # smooth_idf, as TfidfTransformer.fit
        idf = np.full_like(doc_freq, fill_value=stats.n_docs + 1, dtype=np.float64)
        idf /= doc_freq
        np.log(idf, out=idf)
        idf += 1.0
        self.notes_ = notes
        self._set_fitted(names, columns, idf, min_df, max_df)
        return self

    # ---- pieces of fitting ----------------------------------------------------------------------

    @staticmethod
    def _kept_terms(df: np.ndarray, n_docs: int, min_df: int | float, max_df: int | float) -> np.ndarray | None:
        """``CountVectorizer``'s df pruning: a mask over terms, or None where it would raise."""
        high = max_df if isinstance(max_df, Integral) else max_df * n_docs
        low = min_df if isinstance(min_df, Integral) else min_df * n_docs
        if high < low:
            return None
        kept = (df <= high) & (df >= low)
        return kept if kept.any() else None

    def _set_vocabulary(self, terms: list[str], kept: np.ndarray) -> np.ndarray:
        """``vocabulary_`` as ``CountVectorizer`` leaves it (kept terms in order of first
        appearance, each mapped to its alphabetical column); returns term id -> column (-1 pruned)."""
        ids = np.flatnonzero(kept)
        names = [terms[i] for i in ids.tolist()]
        rank = _alphabetical_columns(names)
        self.counter_.vocabulary_ = dict(zip(names, rank.tolist()))
        column = np.full(len(terms), -1, dtype=np.int64)
        column[ids] = rank
        return column

    def _fitted_counts(self, pairs: _Pairs, kept: np.ndarray, column: np.ndarray,
                       n_docs: int, weight: float) -> sp.csr_matrix:
        """The weighted count matrix of ``fit_transform``, entries stored in scikit-learn's order:
        ``CountVectorizer`` leaves each row in order of first appearance (columns then remapped
        alphabetically); adding the headline counts (sorted rows) goes through scipy's general
        sparse sum, which stores each row reversed -- unless every row happens to be sorted,
        when its canonical merge keeps them sorted."""
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

    def _set_fitted(self, terms: Sequence[str], columns: np.ndarray, idf: np.ndarray,
                    min_df: int | float, max_df: int | float) -> None:
        """``counter_`` and ``tfidf_`` as ``fit_transform`` leaves them (an empty vocabulary is a
        fixed empty one, as ``CountVectorizer`` would refuse to fit it)."""
        analyzer = TokenNgrams(self.ngram_min, self.ngram_max)
        if len(terms):
            self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df, dtype=np.float64)
        else:
            self.counter_ = CountVectorizer(analyzer=analyzer, vocabulary=[], dtype=np.float64)
        self.counter_.vocabulary_ = dict(zip(terms, np.asarray(columns).tolist()))
        self.counter_.fixed_vocabulary_ = not len(terms)
        self.tfidf_ = TfidfTransformer(sublinear_tf=self.sublinear_tf)
        self.tfidf_.idf_ = np.ascontiguousarray(idf, dtype=np.float64)
        if len(terms):
            self.tfidf_.n_features_in_ = len(terms)

    def __getstate__(self) -> dict[str, Any]:
        """The saved form: plain values (the hyperparameters as the ``[vectorise]`` section's
        ``dataclasses.asdict``, notes, terms in vocabulary order, their columns, idf, df limits),
        so ``vectoriser.joblib`` is a function of the fitted values.

        Why not the scikit-learn objects: pickle writes a string object once and refers back to
        it, by identity, and their attribute names are not the same objects in every process
        (Python shares one table of attribute names per class, taken from its first instance;
        when that was unpickled -- the classifier, loaded before vectorising with --jobs 2 -- the
        names are other objects than the interned ones). The bytes then depended on the job count.
        """
        state: dict[str, Any] = {"config": _section_values({name: getattr(self, name) for name in _FIELDS})}
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
        """Rebuild from :meth:`__getstate__`'s values (the scikit-learn parts made afresh). A
        ``config`` of None (an unconfigured vectoriser, as once saved) is the defaults."""
        values = state.get("config")
        params = _section_values(values) if values is not None else dataclasses.asdict(VectoriseConfig())
        for name in _FIELDS:
            setattr(self, name, params.get(name, getattr(_DEFAULTS, name)))
        if "terms" in state:
            self.notes_ = list(state["notes"])
            self._set_fitted(state["terms"], state["columns"], state["idf"], state["min_df"], state["max_df"])

    # ---- using the fitted state -----------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "counter_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("Vectoriser is not fitted yet; call fit, fit_transform or fit_stats")

    def transform(self, docs: Any) -> sp.csr_matrix:
        """TF-IDF of new documents with the fitted vocabulary and idf."""
        self._check_fitted()
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
        weight = float(self.headline_weight)
        data = pairs.both if weight == 1.0 else pairs.both + (weight - 1.0) * pairs.head
        rows, cols = pairs.rows, pairs.terms
        nonzero = data != 0
        if weight != 1.0 and not nonzero.all():
            rows, cols, data = rows[nonzero], cols[nonzero], data[nonzero]
        counts = _csr(len(heads), len(vocabulary), rows, cols, data)
        return self.tfidf_.transform(counts).tocsr()

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Feature names (unigrams and space-joined n-grams), in column order."""
        self._check_fitted()
        vocabulary = self.counter_.vocabulary_
        names = np.empty(len(vocabulary), dtype=object)
        for term, column in vocabulary.items():
            names[column] = term
        return names


def _alphabetical_columns(names: list[str]) -> np.ndarray:
    """Each name's column: its rank in alphabetical order (``CountVectorizer``'s columns)."""
    rank = np.empty(len(names), dtype=np.int64)
    rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return rank


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
    uses = ("clean",)

    def __init__(self, config: VectoriseConfig | None = None, clean: Any = None) -> None:
        self.config = config or VectoriseConfig()
        self.clean = clean
        self.vectoriser = Vectoriser.from_config(self.config)
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
