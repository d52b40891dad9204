"""Feature pieces of the category classifier: input checking, article text, n-grams, lexicon counts.

Everything here is a module-level function or small class so a fitted classifier pickles
(no lambdas or closures), and everything works one text at a time, so a prediction never
depends on the batch it came in.
"""
from __future__ import annotations

import html
import re
from itertools import chain, repeat
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import InputError
from .records import normalise_key

# Defaults mirror ParseConfig: series columns (stock standfirst) and kickers (no topic).
DEFAULT_SERIES: tuple[str, ...] = ("London Eye", "West Country Chronicle", "Recovery Watch",
                                   "The Integrator")
DEFAULT_KICKERS: tuple[str, ...] = ("Exclusive", "Revealed")


class TextInputError(InputError, ValueError):
    """An item to classify that is empty or malformed (a ValueError for scikit-learn tools)."""


class LabelSetError(InputError, ValueError):
    """Labels that cannot train or cross-validate a model (too few classes or examples)."""


class ItemTypeError(InputError, TypeError):
    """An item to classify that is neither a string nor a mapping (a TypeError too)."""


def _strip_prefix(headline: str, names: Iterable[str]) -> tuple[str, bool]:
    """Remove a leading "<name>:" (case-insensitive); report whether one was found."""
    for name in names:
        if len(headline) > len(name) and headline[len(name)] == ":" and \
                headline[:len(name)].casefold() == name.casefold():
            return headline[len(name) + 1:].strip(), True
    return headline, False


def article_parts(headline: str, standfirst: str | None = None, series: Any = None, *,
                  series_names: Sequence[str] = DEFAULT_SERIES,
                  kickers: Sequence[str] = DEFAULT_KICKERS) -> tuple[str, str]:
    """(headline without kicker or series label, standfirst or "") a category is read from.

    A series column's standfirst is its stock blurb and carries no topic (taxonomy tie-break), so
    it is dropped ("") when ``series`` is set or the headline starts with a known series label.
    """
    headline = headline.strip()
    headline, in_series = _strip_prefix(headline, series_names)
    headline, _ = _strip_prefix(headline, kickers)
    if series or in_series or not standfirst:
        return headline, ""
    return headline, standfirst.strip()


def article_text(headline: str, standfirst: str | None = None, series: Any = None, *,
                 series_names: Sequence[str] = DEFAULT_SERIES,
                 kickers: Sequence[str] = DEFAULT_KICKERS) -> str:
    """The text a category is read from: :func:`article_parts` joined by a newline."""
    head, stand = article_parts(headline, standfirst, series, series_names=series_names,
                                kickers=kickers)
    return f"{head}\n{stand}" if stand else head


def item_parts(X: Any, *, series_names: Sequence[str] = DEFAULT_SERIES,
               kickers: Sequence[str] = DEFAULT_KICKERS) -> list[tuple[str, str]]:
    """Check the items once at the boundary and turn each into its (headline, standfirst) parts.

    Each item is a headline string or a mapping with ``headline`` and optional ``standfirst``
    and ``series``. Errors name the item's index.
    """
    if isinstance(X, (str, bytes)) or isinstance(X, Mapping):
        raise ItemTypeError(f"expected a list of texts or records, got a single {type(X).__name__}; "
                            "wrap it in a list")
    if hasattr(X, "tolist") and not hasattr(X, "keys"):
        X = X.tolist()
    try:
        items = list(X)
    except TypeError:
        raise ItemTypeError(f"expected a list of texts or records, got {type(X).__name__}") from None
    parts = []
    append = parts.append
    for i, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip():
                raise TextInputError(f"item {i}: empty or whitespace-only text", key=f"item {i}")
            append(article_parts(item, series_names=series_names, kickers=kickers))
        elif isinstance(item, Mapping):
            headline = item.get("headline")
            if not isinstance(headline, str):
                raise TextInputError(f"item {i}: needs a 'headline' string, got "
                                     f"{type(headline).__name__}", key=f"item {i}")
            if not headline.strip():
                raise TextInputError(f"item {i}: empty or whitespace-only headline", key=f"item {i}")
            standfirst = item.get("standfirst")
            if standfirst is not None and not isinstance(standfirst, str):
                raise TextInputError(f"item {i}: 'standfirst' must be a string or null, got "
                                     f"{type(standfirst).__name__}", key=f"item {i}")
            append(article_parts(headline, standfirst, item.get("series"),
                                 series_names=series_names, kickers=kickers))
        else:
            raise ItemTypeError(f"item {i}: expected a headline string or a mapping with "
                                f"'headline', got {type(item).__name__}", key=f"item {i}")
    return parts


def item_texts(X: Any, *, series_names: Sequence[str] = DEFAULT_SERIES,
               kickers: Sequence[str] = DEFAULT_KICKERS) -> list[str]:
    """:func:`item_parts` joined into one text per item (what the character view reads)."""
    return [f"{h}\n{s}" if s else h
            for h, s in item_parts(X, series_names=series_names, kickers=kickers)]


_BARE_NUMERIC = re.compile(r"(?<![&\w])#(\d{1,7}|x[0-9a-fA-F]{1,6});")
_BARE_NAMED = re.compile(r"(?<![&\w])(quot|amp|lt|gt|apos|nbsp);")
_NAMED = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "apos": "'", "nbsp": " "}


def _numeric_entity(match: re.Match[str]) -> str:
    code = match.group(1)
    value = int(code[1:], 16) if code[0] in "xX" else int(code)
    return chr(value) if 0 < value < 0x110000 else " "


def _named_entity(match: re.Match[str]) -> str:
    return _NAMED[match.group(1)]


def undo_encoding(text: str) -> str:
    """Undo encoding damage only: HTML entities (with or without the "&") and backslash breaks.

    Unlike the clean stage's ``repair_text`` this keeps every word (source credits, datelines):
    the character view sees the text as written, the word view sees clean's normalised lemmas,
    and the two complement each other (+0.5 points of AG News accuracy over clean text).
    """
    if "&" in text:
        text = html.unescape(text)
    if ";" in text:
        text = _BARE_NAMED.sub(_named_entity, _BARE_NUMERIC.sub(_numeric_entity, text))
    return text.replace("\\", " ")


def char_text(text: str) -> str:
    """Encoding-repaired, lower-cased, quote- and space-normalised text for character n-grams."""
    return normalise_key(undo_encoding(text))


class WordNgrams:
    """Analyzer for TfidfVectorizer over pre-cleaned token lists: n-grams joined by a space."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 2)) -> None:
        self.ngram_range = tuple(ngram_range)

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        low, high = self.ngram_range
        out = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return out


class LexiconMatcher:
    """Counts, per category, how many lexicon entries (lemma sequences) occur in a token list."""

    def __init__(self, lexicon: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self.categories = list(lexicon)
        self.first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for c, cat in enumerate(self.categories):
            for entry in dict.fromkeys(tuple(e) for e in lexicon[cat] if e):
                self.first.setdefault(entry[0], []).append((entry, c))

    def counts(self, tokens: Sequence[str]) -> np.ndarray:
        """Matches per category for one text (each entry counted at each position it starts)."""
        out = np.zeros(len(self.categories), dtype=np.float64)
        n = len(tokens)
        for i, tok in enumerate(tokens):
            for entry, c in self.first.get(tok, ()):
                if len(entry) == 1 or (i + len(entry) <= n and tuple(tokens[i:i + len(entry)]) == entry):
                    out[c] += 1.0
        return out

    def transform(self, token_lists: Sequence[Sequence[str]], weight: float = 1.0) -> sp.csr_matrix:
        """log(1 + count) per category, times ``weight``, as a sparse matrix.

        Only texts holding a lexicon word's first token are matched in Python; the rest cost
        one set test per token (most tokens start no entry).
        """
        first = self.first
        rows: list[int] = []
        cols: list[int] = []
        for r, tokens in enumerate(token_lists):
            if first.keys().isdisjoint(tokens):
                continue
            n = len(tokens)
            for i, tok in enumerate(tokens):
                for entry, c in first.get(tok, ()):
                    if len(entry) == 1 or (i + len(entry) <= n and tuple(tokens[i:i + len(entry)]) == entry):
                        rows.append(r)
                        cols.append(c)
        shape = (len(token_lists), len(self.categories))
        counts = sp.csr_matrix((np.ones(len(rows)), (np.asarray(rows, dtype=np.int64),
                                                     np.asarray(cols, dtype=np.int64))), shape=shape)
        counts.sum_duplicates()
        counts.data = np.log1p(counts.data) * weight
        counts.eliminate_zeros()
        return counts


class WordTfidf:
    """``TfidfVectorizer(analyzer=WordNgrams(ngram_range), sublinear_tf=True)`` over token lists
    with a faster transform (one dictionary lookup per n-gram, counts summed by scipy) and the
    same vocabulary, idf and output as the vectorizer (tested)."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), dtype: Any = np.float32) -> None:
        self.ngram_range = tuple(ngram_range)
        self.dtype = dtype

    def fit_transform(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Learn the vocabulary and idf; return the TF-IDF matrix of ``token_lists``."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        self.counter_ = CountVectorizer(analyzer=WordNgrams(self.ngram_range), dtype=self.dtype)
        counts = self.counter_.fit_transform(token_lists)
        self.vocabulary_ = self.counter_.vocabulary_
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        return self.tfidf_.transform(counts, copy=False)

    def fit(self, token_lists: Sequence[Sequence[str]]) -> "WordTfidf":
        self.fit_transform(token_lists)
        return self

    def counts(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Raw n-gram counts, equal to ``CountVectorizer.transform``."""
        get = self.vocabulary_.get
        analyze = self.counter_.analyzer
        missing = repeat(-1)
        looked_up: list[int] = []
        indptr = np.zeros(len(token_lists) + 1, dtype=np.int64)
        for i, tokens in enumerate(token_lists):
            looked_up.extend(map(get, analyze(tokens), missing))  # -1: not in the vocabulary
            indptr[i + 1] = len(looked_up)
        found = np.fromiter(looked_up, dtype=np.int64, count=len(looked_up))
        keep = found >= 0  # n-grams outside the vocabulary are dropped, as CountVectorizer does
        if not keep.all():
            indptr = np.concatenate(([0], np.cumsum(keep)))[indptr]
            found = found[keep]
        X = sp.csr_matrix((np.ones(len(found), dtype=self.dtype), found.astype(np.int32), indptr),
                          shape=(len(token_lists), len(self.vocabulary_)))
        X.sum_duplicates()  # sorts indices and adds repeated n-grams
        return X

    def transform(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """TF-IDF with the fitted vocabulary (same as ``TfidfVectorizer.transform``)."""
        return self.tfidf_.transform(self.counts(token_lists), copy=False)


def char_wb_ngrams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams of one whitespace-free word (padded with a space each
    side; a word no longer than n, padded, is counted once and longer n are skipped)."""
    min_n, max_n = ngram_range
    w = f" {word} "
    w_len = len(w)
    if w_len <= min_n:
        return [w]
    return [w[i:i + n] for n in range(min_n, min(max_n, w_len) + 1) for i in range(w_len - n + 1)]


class CharNgramTfidf:
    """``TfidfVectorizer(analyzer="char_wb", lowercase=False, sublinear_tf=True)`` with a fast
    transform: the same vocabulary, idf and values, but n-grams are generated once per distinct
    word instead of once per word occurrence.

    Why: ``char_wb`` n-grams never cross whitespace, so a text's n-gram counts are the sum of its
    words' counts. Scikit-learn builds every n-gram string of every text in Python (half of the
    tag stage's time); here each word occurrence costs one dictionary lookup, and the counts are
    the sparse product (texts x words) @ (words x features) with the word rows kept between
    calls. That cache is bounded (``cache_size`` words; cleared when full) and not pickled.
    Column indices within a row are left in product order (sorting them cost a fifth of the
    transform); ``counts(..., sort=True)`` sorts, for comparisons.

    Fitting delegates to :class:`~sklearn.feature_extraction.text.CountVectorizer` and
    :class:`~sklearn.feature_extraction.text.TfidfTransformer` exactly as ``TfidfVectorizer``
    does, so the features are the same; tests compare the matrices.
    """

    def __init__(self, ngram_range: tuple[int, int] = (2, 5), min_df: int | float = 1,
                 max_features: int | None = None, dtype: Any = np.float32,
                 cache_size: int = 300_000) -> None:
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.max_features = max_features
        self.dtype = dtype
        self.cache_size = cache_size
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._word_ids: dict[str, int] = {}
        self._word_rows: sp.csr_matrix | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_word_ids"], state["_word_rows"] = {}, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_cache()

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary and idf from ``texts``; return their TF-IDF matrix."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        self.counter_ = CountVectorizer(analyzer="char_wb", lowercase=False,
                                        ngram_range=self.ngram_range, min_df=self.min_df,
                                        max_features=self.max_features, dtype=self.dtype)
        counts = self.counter_.fit_transform(texts)
        self.vocabulary_ = self.counter_.vocabulary_
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        self._reset_cache()
        return self.tfidf_.transform(counts, copy=False)

    def fit(self, texts: Sequence[str]) -> "CharNgramTfidf":
        self.fit_transform(texts)
        return self

    def _rows_of(self, words: Sequence[str]) -> sp.csr_matrix:
        """(words x features) counts of each word's in-vocabulary n-grams, built in one pass."""
        get = self.vocabulary_.get
        missing = repeat(-1)
        looked_up: list[int] = []
        ends = np.zeros(len(words) + 1, dtype=np.int64)
        for k, word in enumerate(words):
            looked_up.extend(map(get, char_wb_ngrams(word, self.ngram_range), missing))
            ends[k + 1] = len(looked_up)
        found = np.fromiter(looked_up, dtype=np.int64, count=len(looked_up))
        keep = found >= 0
        ends = np.concatenate(([0], np.cumsum(keep)))[ends]
        rows = sp.csr_matrix((np.ones(int(keep.sum()), dtype=self.dtype),
                              found[keep].astype(np.int32), ends),
                             shape=(len(words), len(self.vocabulary_)))
        rows.sum_duplicates()
        return rows

    def counts(self, texts: Sequence[str], *, sort: bool = False) -> sp.csr_matrix:
        """Raw n-gram counts (texts x features), equal to ``CountVectorizer.transform``."""
        words_per_text = [t.split() for t in texts]
        flat = list(chain.from_iterable(words_per_text))
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, words_per_text), dtype=np.int64, count=len(texts)),
                  out=indptr[1:])
        word_ids = self._word_ids
        ids = np.fromiter(map(word_ids.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        unseen = np.flatnonzero(ids < 0)
        if len(unseen):
            new = list(dict.fromkeys(flat[i] for i in unseen))
            if len(word_ids) + len(new) > self.cache_size:  # full: start again with this batch
                self._reset_cache()
                word_ids = self._word_ids
                new = list(dict.fromkeys(flat))
                unseen = np.arange(len(flat))
            base = len(word_ids)
            word_ids.update(zip(new, range(base, base + len(new))))
            rows = self._rows_of(new)
            self._word_rows = rows if self._word_rows is None else \
                sp.vstack([self._word_rows, rows], format="csr")
            ids[unseen] = np.fromiter(map(word_ids.__getitem__, (flat[i] for i in unseen)),
                                      dtype=np.int64, count=len(unseen))
        word_rows = self._word_rows if self._word_rows is not None else \
            sp.csr_matrix((0, len(self.vocabulary_)), dtype=self.dtype)
        D = sp.csr_matrix((np.ones(len(ids), dtype=self.dtype), ids, indptr),
                          shape=(len(texts), word_rows.shape[0]))
        X = (D @ word_rows).tocsr()
        if len(word_ids) > self.cache_size:  # one batch had more distinct words than it holds
            self._reset_cache()
        if sort:
            X.sort_indices()
        return X

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF of ``texts`` with the fitted vocabulary (as ``TfidfVectorizer.transform``)."""
        return self.tfidf_.transform(self.counts(texts), copy=False)
