"""Feature pieces of the category classifier: input checking, the text it reads, n-gram TF-IDF.

Everything here works one text at a time, so a prediction never depends on the batch it came
in, and every learned table is stored as arrays and strings (no large dicts), so a model saved
with skops is small and quick to load (:mod:`pipeline.model_store`).
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from .config import DEFAULT_KICKERS, DEFAULT_SERIES  # the parse defaults: one list
from .errors import InputError
from .records import normalise_key


class TextInputError(InputError, ValueError):
    """An item to classify that is empty or malformed (a ValueError for scikit-learn tools)."""


class LabelSetError(InputError, ValueError):
    """Labels that cannot train or cross-validate a model (too few classes or examples)."""


class ItemTypeError(InputError, TypeError):
    """An item to classify that is neither a string nor a mapping (a TypeError too)."""


def _strip_prefix(headline: str, names: Iterable[str]) -> tuple[str, bool]:
    """Remove a leading "<name>:" (case-insensitive); report whether one was found."""
    if ":" not in headline:  # most headlines: one scan instead of a test per name
        return headline, False
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
                raise TextInputError("empty or whitespace-only text", key=f"item {i}")
            append(article_parts(item, series_names=series_names, kickers=kickers))
        elif type(item) is dict or isinstance(item, Mapping):  # (the ABC check is slow)
            headline = item.get("headline")
            if not isinstance(headline, str):
                raise TextInputError(f"needs a 'headline' string, got {type(headline).__name__}",
                                     key=f"item {i}")
            if not headline.strip():
                raise TextInputError("empty or whitespace-only headline", key=f"item {i}")
            standfirst = item.get("standfirst")
            if standfirst is not None and not isinstance(standfirst, str):
                raise TextInputError("'standfirst' must be a string or null, got "
                                     f"{type(standfirst).__name__}", key=f"item {i}")
            append(article_parts(headline, standfirst, item.get("series"),
                                 series_names=series_names, kickers=kickers))
        else:
            raise ItemTypeError("expected a headline string or a mapping with 'headline', got "
                                f"{type(item).__name__}", key=f"item {i}")
    return parts


def item_texts(X: Any, *, series_names: Sequence[str] = DEFAULT_SERIES,
               kickers: Sequence[str] = DEFAULT_KICKERS) -> list[str]:
    """:func:`item_parts` joined into one text per item."""
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

    Scraped and wire text carries these; every word is kept (source credits, datelines)."""
    if "&" in text:
        text = html.unescape(text)
    if ";" in text:
        text = _BARE_NAMED.sub(_named_entity, _BARE_NUMERIC.sub(_numeric_entity, text))
    return text.replace("\\", " ")


def char_text(text: str) -> str:
    """Encoding-repaired, lower-cased, quote- and space-normalised text: what the n-grams read."""
    if text.isascii() and "&" not in text and ";" not in text and "\\" not in text:
        return " ".join(text.split()).lower()  # what the two steps amount to for such text
    return normalise_key(undo_encoding(text))


# -- n-gram TF-IDF with array state ---------------------------------------------------------------

WORD_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default token pattern
_WORD_RE = re.compile(WORD_PATTERN)


class NgramTfidf:
    """Sublinear TF-IDF over word n-grams (``kind="word"``) or ``char_wb`` n-grams, l2-normalised.

    The same features as scikit-learn's ``TfidfVectorizer(analyzer=kind, sublinear_tf=True)``
    on already lower-cased text (tested), with two differences that matter here:

    - the vocabulary is kept as one newline-joined string and the idf as an array, and the
      lookup dict is rebuilt on load: skops stores a large dict entry by entry (slow and big);
    - ``char_wb`` n-grams never cross a space, so a text's counts are the sum of its words'
      counts: they are computed once per distinct word of a batch and combined with one sparse
      product (about 20 times faster than n-gram by n-gram on news text).
    """

    def __init__(self, kind: str, ngram_range: tuple[int, int], min_df: int = 1) -> None:
        if kind not in ("word", "char_wb"):
            raise ValueError(f"kind must be 'word' or 'char_wb', got {kind!r}")
        self.kind = kind
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.min_df = int(min_df)
        self.terms = ""
        self.idf = np.zeros(0)
        self._index: dict[str, int] = {}
        self._tables: Any = None

    # -- state: arrays and strings only (the dict is rebuilt) --

    def __getstate__(self) -> dict[str, Any]:
        return {"kind": self.kind, "ngram_range": self.ngram_range, "min_df": self.min_df,
                "terms": self.terms, "idf": self.idf}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.kind = state["kind"]
        self.ngram_range = tuple(state["ngram_range"])
        self.min_df = state["min_df"]
        self.terms = state["terms"]
        self.idf = np.asarray(state["idf"], dtype=np.float64)
        self._set_vocabulary(self.terms)

    def _set_vocabulary(self, terms: str) -> None:
        """The lookup dict and, for word 1-2 grams, the token tables of :meth:`_word_counts`."""
        self.terms = terms
        self._index = self._build_index(terms)
        self._tables = self._token_tables() if self.kind == "word" and self.ngram_range in ((1, 1), (1, 2)) else None

    @staticmethod
    def _build_index(terms: str) -> dict[str, int]:
        return {term: i for i, term in enumerate(terms.split("\n"))} if terms else {}

    def __len__(self) -> int:
        return len(self._index)

    def vocabulary(self) -> list[str]:
        """The n-grams in column order."""
        return self.terms.split("\n") if self.terms else []

    # -- counting --

    def _analyzer(self) -> Any:
        return CountVectorizer(analyzer=self.kind, ngram_range=self.ngram_range, lowercase=False,
                               token_pattern=WORD_PATTERN).build_analyzer()

    def _token_tables(self) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """(token -> id, column of each token as a unigram or -1, sorted bigram keys
        ``first * n_tokens + second``, their columns) over the learned vocabulary."""
        tokens: dict[str, int] = {}
        pairs: list[tuple[str, str, int]] = []
        unigrams: list[tuple[str, int]] = []
        for term, column in self._index.items():
            parts = term.split(" ")
            for token in parts:
                tokens.setdefault(token, len(tokens))
            if len(parts) == 1:
                unigrams.append((term, column))
            else:
                pairs.append((parts[0], parts[1], column))
        unigram_column = np.full(len(tokens), -1, dtype=np.int64)
        for token, column in unigrams:
            unigram_column[tokens[token]] = column
        keys = np.asarray([tokens[a] * len(tokens) + tokens[b] for a, b, _ in pairs], dtype=np.int64)
        columns = np.asarray([c for _, _, c in pairs], dtype=np.int64)
        order = np.argsort(keys)
        return tokens, unigram_column, keys[order], columns[order]

    def _word_counts(self, texts: Sequence[str], index: Mapping[str, int] | None) -> Any:
        """(counts over ``index``) or, with ``index`` None, (counts, vocabulary) of all n-grams.

        Why not CountVectorizer(vocabulary=...).transform: it looks every n-gram up one by one
        in Python; for 1-2 grams the same counts come from token ids and numpy (tested equal)."""
        if index is None:
            vec = CountVectorizer(analyzer=self._analyzer())
            counts = vec.fit_transform(texts)
            return counts, vec.get_feature_names_out().tolist()
        if self._tables is None:
            return CountVectorizer(analyzer=self._analyzer(), vocabulary=index).transform(texts)
        tokens, unigram_column, bigram_keys, bigram_columns = self._tables
        per_text = [_WORD_RE.findall(t) for t in texts]
        lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
        ids = np.fromiter((tokens.get(t, -1) for ts in per_text for t in ts), dtype=np.int64,
                          count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        known = ids >= 0
        uni = np.where(known, unigram_column[np.where(known, ids, 0)], -1)
        parts_rows, parts_cols = [rows[uni >= 0]], [uni[uni >= 0]]
        if self.ngram_range[1] == 2 and ids.size > 1 and bigram_keys.size:
            same_text = rows[1:] == rows[:-1]
            both = known[1:] & known[:-1] & same_text
            keys = ids[:-1][both] * len(tokens) + ids[1:][both]
            at = np.minimum(np.searchsorted(bigram_keys, keys), bigram_keys.size - 1)
            hit = bigram_keys[at] == keys
            parts_rows.append(rows[:-1][both][hit])
            parts_cols.append(bigram_columns[at[hit]])
        r, c = np.concatenate(parts_rows), np.concatenate(parts_cols)
        counts = sp.csr_matrix((np.ones(r.size, dtype=np.float64), (r, c)), shape=(len(texts), len(index)))
        counts.sum_duplicates()
        return counts

    def _char_counts(self, texts: Sequence[str], index: Mapping[str, int] | None) -> Any:
        """As :meth:`_word_counts`, by words: (texts x words) @ (words x n-grams)."""
        per_text = [t.split() for t in texts]
        table: dict[str, int] = {}
        ids = np.fromiter((table.setdefault(w, len(table)) for ws in per_text for w in ws),
                          dtype=np.int64, count=sum(map(len, per_text)))
        rows = np.repeat(np.arange(len(texts), dtype=np.int64),
                         np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text)))
        docs = sp.csr_matrix((np.ones(ids.size, dtype=np.float64), (rows, ids)),
                             shape=(len(texts), len(table)))
        docs.sum_duplicates()
        words = list(table)
        analyse = self._analyzer()
        grams = [analyse(w) for w in words]
        fresh = index is None
        if fresh:
            index = {}
            for gs in grams:
                for g in gs:
                    index.setdefault(g, len(index))
        indptr, indices = [0], []
        for gs in grams:
            indices.extend(k for k in map(index.get, gs) if k is not None)
            indptr.append(len(indices))
        word_grams = sp.csr_matrix((np.ones(len(indices), dtype=np.float64), indices, indptr),
                                   shape=(len(words), len(index)))
        word_grams.sum_duplicates()
        counts = (docs.astype(np.float64) @ word_grams).tocsr()
        if not fresh:
            return counts
        order = sorted(index, key=index.__getitem__)
        return counts, order

    def _counts(self, texts: Sequence[str], index: Mapping[str, int] | None) -> Any:
        if self.kind == "word":
            return self._word_counts(texts, index)
        return self._char_counts(texts, index)

    # -- fit / transform --

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary (n-grams in at least ``min_df`` texts, sorted) and the idf."""
        counts, names = self._counts(texts, None)
        counts = sp.csr_matrix(counts)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        keep = np.flatnonzero(df >= self.min_df)
        order = keep[np.argsort(np.asarray(names, dtype=object)[keep], kind="stable")]
        terms = [names[k] for k in order]
        if any("\n" in t for t in terms):  # cannot happen: n-grams never span a line break
            raise ValueError("an n-gram holds a line break")
        self._set_vocabulary("\n".join(terms))
        n = counts.shape[0]
        self.idf = np.log((1.0 + n) / (1.0 + df[order])) + 1.0
        return self._weigh(counts[:, order].tocsr())

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of ``texts`` over the learned vocabulary (unseen n-grams are dropped)."""
        return self._weigh(sp.csr_matrix(self._counts(texts, self._index),
                                         shape=(len(texts), len(self._index))))

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        counts = counts.astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)
        weighted = sp.csr_matrix(counts @ sp.diags(self.idf) if self.idf.size else counts)
        if weighted.shape[0] == 0:  # normalize refuses an empty batch
            return weighted
        return normalize(weighted, norm="l2", copy=False)
