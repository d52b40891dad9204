"""Feature pieces of the category classifier: input checking, the text it reads, n-gram TF-IDF.

Everything here works one text at a time, so a prediction never depends on the batch it came
in, and every learned table is stored as arrays and strings (no large dicts), so a model saved
with skops is small and quick to load (:mod:`pipeline.model_store`).
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from .config import DEFAULT_KICKERS, DEFAULT_SERIES  # the parse defaults: one list
from .errors import InputError
from .parse import lone_surrogate
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
            _no_surrogate(item, "text", i)
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
            _no_surrogate(headline, "headline", i)
            if standfirst:
                _no_surrogate(standfirst, "standfirst", i)
            append(article_parts(headline, standfirst, item.get("series"),
                                 series_names=series_names, kickers=kickers))
        else:
            raise ItemTypeError("expected a headline string or a mapping with 'headline', got "
                                f"{type(item).__name__}", key=f"item {i}")
    return parts


def _no_surrogate(text: str, field: str, i: int) -> None:
    """A lone surrogate is not text (it cannot be encoded, so it cannot be hashed or written)."""
    found = lone_surrogate(text)
    if found is not None:
        raise TextInputError(f"{field} holds a lone surrogate ({found}), which is not text", key=f"item {i}")


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
      counts: they are computed once per distinct word of a batch (by a trie of character ids
      walked with numpy, :class:`CharGramTables`) and combined with one sparse product.

    Predicting reads a :class:`TextBatch` (texts split into words once, for the word and the
    character blocks of the whole texts and of the headlines); every matrix equals, value for
    value and in the same stored order, what counting n-gram by n-gram gave (tested).
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
        self._char_tables: CharGramTables | None = None

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
        self._char_tables = (CharGramTables.build(terms, self.ngram_range)
                             if self.kind == "char_wb" else None)

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

    def _learn_counts(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, list[str]]:
        """(counts, n-gram of each column) of every n-gram in ``texts`` (what :meth:`fit_transform`
        learns from)."""
        if self.kind == "word":
            vec = CountVectorizer(analyzer=self._analyzer())
            counts = vec.fit_transform(texts)
            return counts, vec.get_feature_names_out().tolist()
        batch = TextBatch(texts)
        analyse = self._analyzer()
        grams = [analyse(w) for w in batch.words]
        index: dict[str, int] = {}
        for gs in grams:
            for g in gs:
                index.setdefault(g, len(index))
        counts = (batch.docs(batch.rows, batch.ids, len(batch.words)) @
                  _rows_of_grams(grams, index)).tocsr()
        return counts, sorted(index, key=index.__getitem__)

    def batch_counts(self, batch: "TextBatch", heads: bool = True) -> list["CountRows"]:
        """Counts over the vocabulary of the batch's whole texts and (``heads``) of their heads,
        to be taken a block of rows at a time (:meth:`CountRows.rows`).

        Word 1-2 grams: each distinct word of the batch is tokenised once and a text's tokens
        are its words' tokens (a token never spans whitespace), looked up as token ids with
        numpy (tested equal to CountVectorizer). ``char_wb``: n-grams never cross a space, so a
        text's counts are the sum of its words': (texts x words) @ (words x n-grams), the
        words' n-grams found with :class:`CharGramTables`. Every row holds its entries in the
        order counting the whole texts and the heads as two batches of their own gives."""
        if self.kind == "word":
            if self._tables is None:
                vec = CountVectorizer(analyzer=self._analyzer(), vocabulary=self._index)
                return [CountRows(sp.csr_matrix(vec.transform(texts)))
                        for texts in batch.texts(heads)]
            return [CountRows(counts) for counts in self._word_counts(batch, heads)]
        if self._char_tables is None:
            analyse = self._analyzer()
            grams = _rows_of_grams([analyse(w) for w in batch.words], self._index)
        else:
            grams = self._char_tables.word_grams(batch.words, len(self._index))
        out = [CountRows(batch.docs(batch.rows, batch.ids, len(batch.words)), grams)]
        if heads:
            rows, ids = batch.rows[batch.in_head], batch.ids[batch.in_head]
            # the heads' words numbered in order of first appearance among the heads, as a
            # batch of heads alone numbers them (it fixes the order of the product's entries)
            distinct, first = np.unique(ids, return_index=True)
            order = distinct[np.argsort(first, kind="stable")]
            number = np.zeros(len(batch.words), dtype=np.int64)
            number[order] = np.arange(order.size, dtype=np.int64)
            out.append(CountRows(batch.docs(rows, number[ids], order.size), grams[order]))
        return out

    def _word_counts(self, batch: "TextBatch", heads: bool) -> list[sp.csr_matrix]:
        """Word 1-2 gram counts of the whole texts and (``heads``) of the heads, canonical CSR: a
        text's tokens are its words' tokens, each distinct word is tokenised once, and a head's
        n-grams are those of its text whose tokens all lie in the head (the head comes first)."""
        tokens, unigram_column, bigram_keys, bigram_columns = self._tables
        per_word = list(map(_WORD_RE.findall, batch.words))  # C-level loops: no Python frame
        lengths = np.fromiter(map(len, per_word), dtype=np.int64, count=len(per_word))
        token_ids = np.fromiter(map(tokens.get, chain.from_iterable(per_word), repeat(-1)),
                                dtype=np.int64, count=int(lengths.sum()))
        starts = np.cumsum(lengths) - lengths
        n = lengths[batch.ids]
        rows = np.repeat(batch.rows, n)
        in_head = np.repeat(batch.in_head, n)
        ids = token_ids[np.repeat(starts[batch.ids] - (np.cumsum(n) - n), n) +
                        np.arange(rows.size, dtype=np.int64)]
        known = ids >= 0
        uni = np.where(known, unigram_column[np.where(known, ids, 0)], -1)
        counted = uni >= 0
        parts = [(rows[counted], uni[counted], in_head[counted])]
        if self.ngram_range[1] == 2 and ids.size > 1 and bigram_keys.size:
            same_text = rows[1:] == rows[:-1]
            both = known[1:] & known[:-1] & same_text
            keys = ids[:-1][both] * len(tokens) + ids[1:][both]
            at = np.minimum(np.searchsorted(bigram_keys, keys), bigram_keys.size - 1)
            hit = bigram_keys[at] == keys
            parts.append((rows[:-1][both][hit], bigram_columns[at[hit]], in_head[1:][both][hit]))
        r, c, h = (np.concatenate(column) for column in zip(*parts))
        return [self._count_matrix(r, c, batch.n_texts)] + \
            ([self._count_matrix(r[h], c[h], batch.n_texts)] if heads else [])

    def _count_matrix(self, rows: np.ndarray, columns: np.ndarray, n_texts: int) -> sp.csr_matrix:
        counts = sp.csr_matrix((np.ones(rows.size, dtype=np.float64), (rows, columns)),
                               shape=(n_texts, len(self._index)))
        counts.sum_duplicates()
        return counts

    # -- fit / transform --

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary (n-grams in at least ``min_df`` texts, sorted) and the idf."""
        counts, names = self._learn_counts(texts)
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
        return self.transform_batch(TextBatch(texts), heads=False)[0]

    def transform_batch(self, batch: "TextBatch", heads: bool = True) -> list[sp.csr_matrix]:
        """[TF-IDF rows of the batch's whole texts, and (``heads``) of their heads alone]: the
        same matrices as :meth:`transform` of each, from one split of the texts into words."""
        return [self.tfidf_of_reversed(counts.reversed_rows(0, batch.n_texts))
                for counts in self.batch_counts(batch, heads)]

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """TF-IDF of learned counts (:meth:`fit_transform`; the model's bytes depend on it, so it
        stays the plain sparse product; :meth:`tfidf_of_reversed` is the fast equal for counts
        of :meth:`batch_counts`)."""
        counts = counts.astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)
        weighted = sp.csr_matrix(counts @ sp.diags(self.idf) if self.idf.size else counts)
        if weighted.shape[0] == 0:  # normalize refuses an empty batch
            return weighted
        return normalize(weighted, norm="l2", copy=False)

    def tfidf_of_reversed(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear tf times idf, rows l2-normalised, of count rows given last row first.

        The rows come back in order with each row's entries reversed: what ``counts @
        sp.diags(idf)`` stores (a row's order fixes how its norm and later the margins are
        summed, so it is kept bit for bit), here from one pass over the arrays read backwards
        instead of a sparse product. A row never holds a column twice in any count matrix here
        (the product would merge them)."""
        indices = np.ascontiguousarray(counts.indices[::-1])
        data = np.log(np.asarray(counts.data[::-1], dtype=np.float64))
        data += 1.0
        if self.idf.size:
            data *= self.idf[indices]
        indptr = (counts.nnz - counts.indptr[::-1]).astype(counts.indptr.dtype)
        weighted = sp.csr_matrix((data, indices, indptr), shape=(counts.shape[0], len(self._index)))
        if weighted.shape[0] == 0:  # normalize refuses an empty batch
            return weighted
        return normalize(weighted, norm="l2", copy=False)


_MARK = "\x00"  # no text should hold it (checked); ASCII keeps an ASCII batch one byte a character
_SEPARATOR = f" {_MARK} "


class TextBatch:
    """The whitespace-separated words of a batch of texts, split once for every feature block.

    Each text is a head and an optional rest (``rests``; "" for none), read as ``head + " " +
    rest``; the heads alone form the headline blocks. ``words`` are the distinct words in order
    of first appearance; ``ids``/``rows``/``in_head`` give, word by word in text order, the
    word's number, its text and whether it is in the head.
    """

    def __init__(self, heads: Sequence[str], rests: Sequence[str] | None = None) -> None:
        self.heads = heads
        self.rests = rests
        self.n_texts = len(heads)
        if rests is not None and len(rests) != len(heads):
            raise ValueError(f"{len(heads)} heads but {len(rests)} rests")
        per_text = 1 if rests is None else 2
        segments = list(heads) if rests is None else list(chain.from_iterable(zip(heads, rests)))
        # one split of all texts, a separator word between them: one list, not one per text
        # (many small lists cost as much again in garbage collection passes)
        joined = _SEPARATOR.join(segments)
        if joined.count(_MARK) == max(0, len(segments) - 1):
            tokens = joined.split()
            words = dict.fromkeys(tokens)
            words.pop(_MARK, None)
            self.words = list(words)  # in order of first appearance
            number = dict(zip(self.words, range(len(self.words))))
            number[_MARK] = -1
            stream = np.fromiter(map(number.__getitem__, tokens), dtype=np.int64, count=len(tokens))
            mark = stream < 0
            segment = np.cumsum(mark)[~mark]
            self.ids = stream[~mark]
        else:  # a text holds the separator's character: split text by text
            per_segment = list(map(str.split, segments))
            tokens = list(chain.from_iterable(per_segment))
            self.words = list(dict.fromkeys(tokens))
            number = dict(zip(self.words, range(len(self.words))))
            self.ids = np.fromiter(map(number.__getitem__, tokens), dtype=np.int64, count=len(tokens))
            segment = np.repeat(np.arange(len(segments), dtype=np.int64),
                                np.fromiter(map(len, per_segment), dtype=np.int64,
                                            count=len(per_segment)))
        self.rows = segment // per_text
        self.in_head = segment % per_text == 0

    def texts(self, heads: bool) -> list[list[str]]:
        """[the whole texts, and (``heads``) the heads]."""
        whole = (list(self.heads) if self.rests is None else
                 [f"{h} {r}" if r else h for h, r in zip(self.heads, self.rests)])
        return [whole, list(self.heads)] if heads else [whole]

    def docs(self, rows: np.ndarray, ids: np.ndarray, n_words: int) -> sp.csr_matrix:
        """(texts x words) counts of a word stream, canonical CSR."""
        docs = sp.csr_matrix((np.ones(ids.size, dtype=np.float64), (rows, ids)),
                             shape=(self.n_texts, n_words))
        docs.sum_duplicates()
        return docs


class CountRows:
    """Counts of a batch, a block of rows at a time: a matrix, or the product (texts x words) @
    (words x n-grams) made only for the rows asked for (each block stays small)."""

    def __init__(self, counts: sp.csr_matrix, grams: sp.csr_matrix | None = None) -> None:
        self.counts = counts
        self.grams = grams

    def reversed_rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``stop - 1`` down to ``start``; each row exactly as in the whole batch's matrix
        (what :meth:`NgramTfidf.tfidf_of_reversed` takes)."""
        block = self.counts[start:stop][::-1]
        return block if self.grams is None else (block @ self.grams).tocsr()


def _rows_of_grams(grams: Sequence[Sequence[str]], index: Mapping[str, int]) -> sp.csr_matrix:
    """(words x vocabulary) counts from each word's n-grams (those not in ``index`` dropped)."""
    indptr, indices = [0], []
    for gs in grams:
        indices.extend(k for k in map(index.get, gs) if k is not None)
        indptr.append(len(indices))
    rows = sp.csr_matrix((np.ones(len(indices), dtype=np.float64), indices, indptr),
                         shape=(len(grams), len(index)))
    rows.sum_duplicates()
    return rows


_MAX_TABLE = 1 << 23  # entries of the n-gram trie's transition table (32 MB); above: no tables


class CharGramTables:
    """The ``char_wb`` vocabulary as a trie of character ids, so the n-grams of many words are
    looked up with a few numpy gathers instead of one Python slice and dict lookup per n-gram.

    Each character of the vocabulary gets an id 1..k (0: a character no n-gram holds). A state
    is a prefix of some n-gram (1: the empty prefix; 0: a dead end, which every unknown
    character and every missing prefix leads to and never leaves); ``step[state * (k + 1) +
    id]`` is the state after one more character and ``column[state]`` the n-gram's column or
    -1. ``char_wb`` pads each word with one space on both sides and takes every window of
    length min_n..max_n; in the words of a batch joined by single spaces these are exactly the
    windows with no space inside (no n-gram of the vocabulary holds one), so every window of
    the joined text is walked, all windows at once, and a window that ends in an n-gram belongs
    to the word it starts in (or, starting at a space, the word after it).
    """

    def __init__(self, alphabet: np.ndarray, step: np.ndarray, column: np.ndarray,
                 ngram_range: tuple[int, int]) -> None:
        self.alphabet = alphabet  # sorted code points of the vocabulary's characters
        self.step = step
        self.column = column
        self.ngram_range = ngram_range

    @classmethod
    def build(cls, terms: str, ngram_range: tuple[int, int]) -> "CharGramTables | None":
        """The tables of a newline-joined vocabulary, or None when they would be too large, for
        ``min_n == 1`` (the padding space is then a 1-gram of each word: two words share one
        space in the joined text) and for ``min_n > 3`` (scikit-learn then also counts a word
        shorter than min_n whole, once)."""
        min_n, max_n = ngram_range
        if min_n < 2 or min_n > 3 or max_n < min_n:
            return None
        points = _code_points(terms)
        newline = points == ord("\n")
        alphabet = np.unique(points[~newline])
        base = alphabet.size + 1
        ids = np.searchsorted(alphabet, points) + 1
        if terms:
            starts = np.r_[0, np.flatnonzero(newline) + 1]
            lengths = np.r_[np.flatnonzero(newline), points.size] - starts
        else:
            starts = lengths = np.zeros(0, dtype=np.int64)
        state = np.ones(starts.size, dtype=np.int64)
        edges, targets = [], []
        n_states = n_inner = 2
        for depth in range(1, max_n + 1):
            longer = np.flatnonzero(lengths >= depth)
            keys = state[longer] * base + ids[starts[longer] + depth - 1]
            distinct, which = np.unique(keys, return_inverse=True)
            edges.append(distinct)
            targets.append(n_states + np.arange(distinct.size, dtype=np.int64))
            state[longer] = n_states + which.reshape(-1)
            n_states += distinct.size
            if depth < max_n:
                n_inner = n_states
        if n_inner * base > _MAX_TABLE:
            return None
        step = np.zeros(n_inner * base, dtype=np.int32)
        step[np.concatenate(edges)] = np.concatenate(targets)
        column = np.full(n_states, -1, dtype=np.int64)
        counted = (lengths >= min_n) & (lengths <= max_n)
        column[state[counted]] = np.flatnonzero(counted)
        return cls(alphabet, step, column, (min_n, max_n))

    def word_grams(self, words: Sequence[str], n_columns: int) -> sp.csr_matrix:
        """(words x vocabulary) counts of each word's ``char_wb`` n-grams, canonical CSR."""
        min_n, max_n = self.ngram_range
        if not words or not self.alphabet.size:
            return sp.csr_matrix((len(words), n_columns), dtype=np.float64)
        points = _code_points(" " + " ".join(words) + " ")
        at = np.minimum(np.searchsorted(self.alphabet, points), self.alphabet.size - 1)
        ids = np.where(self.alphabet[at] == points, at + 1, 0).astype(np.int32)
        base = self.alphabet.size + 1
        word_of = np.cumsum(points == ord(" ")) - 1
        rows, cols = [], []
        state = np.ones(points.size, dtype=np.int32)
        for n in range(1, max_n + 1):
            windows = points.size - n + 1
            state = self.step[state[:windows] * base + ids[n - 1:]]
            if n >= min_n:
                column = self.column[state]
                hit = np.flatnonzero(column >= 0)
                rows.append(word_of[hit])
                cols.append(column[hit])
        r, c = np.concatenate(rows), np.concatenate(cols)
        grams = sp.csr_matrix((np.ones(r.size, dtype=np.float64), (r, c)),
                              shape=(len(words), n_columns))
        grams.sum_duplicates()
        return grams


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` as an int64 array, one per character (lone surrogates too)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
