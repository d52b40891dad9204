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
                raise TextInputError(f"needs a 'headline' string, got "
                                     f"{type(headline).__name__}", key=f"item {i}")
            if not headline.strip():
                raise TextInputError("empty or whitespace-only headline", key=f"item {i}")
            standfirst = item.get("standfirst")
            if standfirst is not None and not isinstance(standfirst, str):
                raise TextInputError(f"'standfirst' must be a string or null, got "
                                     f"{type(standfirst).__name__}", key=f"item {i}")
            append(article_parts(headline, standfirst, item.get("series"),
                                 series_names=series_names, kickers=kickers))
        else:
            raise ItemTypeError("expected a headline string or a mapping with "
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
    if text.isascii() and "&" not in text and ";" not in text and "\\" not in text:
        # what the two steps amount to for such text (NFKC and the quote table leave ASCII
        # alone; casefold is lower): most words, when the n-grams are cached per word
        return " ".join(text.split()).lower()
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


class TokenIds:
    """Integer ids for the tokens a fitted model can use (unknown tokens get -1).

    Why: the word n-gram and lexicon features of a batch are then computed on one integer array
    per batch (numpy) instead of building and looking up n-gram strings in Python per text.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self.ids: dict[str, int] = {}
        for token in tokens:
            self.ids.setdefault(token, len(self.ids))
        self._index: KeyIndex | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """The id of every token in ``tokens`` (-1 where unknown).

        A large batch is joined into one buffer and looked up by integer key (see
        :class:`Words`): copying the strings once costs far less than hashing each of them.
        """
        joined = Words.joined(tokens) if len(tokens) >= 1000 else None
        if joined is None:
            return np.fromiter(map(self.ids.get, tokens, repeat(-1)), dtype=np.int64,
                               count=len(tokens))
        if self._index is None:
            self._index = KeyIndex()
            keys = [(key, i) for token, i in self.ids.items()
                    for key in [word_key(token)] if key is not None]
            self._index.add(np.array([h for (h, _), _ in keys], dtype=np.uint64),
                            np.array([t for (_, t), _ in keys], dtype=np.uint64),
                            np.array([i for _, i in keys], dtype=np.int64))
        head, tail, keyed = joined.keys()
        ids = self._index.find(head, tail)
        long = np.flatnonzero(~keyed)
        if len(long):
            ids[long] = np.fromiter((self.ids.get(tokens[k], -1) for k in long.tolist()),
                                    dtype=np.int64, count=len(long))
        return ids


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

    def id_tokens(self) -> list[str]:
        """The tokens :meth:`id_tables` needs ids for."""
        return [token for entries in self.first.values() for entry, _ in entries for token in entry]

    def id_tables(self, token_ids: TokenIds) -> tuple[np.ndarray, ...]:
        """Entries in token ids, grouped by first token: (start and count of each token's entries;
        entry tokens, padded with -2; entry lengths; entry categories)."""
        n = len(token_ids)
        grouped = sorted((token_ids.ids[first], [token_ids.ids[t] for t in entry], c)
                         for first, entries in self.first.items() for entry, c in entries)
        width = max((len(e) for _, e, _ in grouped), default=1)
        tokens = np.full((len(grouped), width), -2, dtype=np.int64)
        for k, (_, entry, _) in enumerate(grouped):
            tokens[k, :len(entry)] = entry
        firsts = np.fromiter((f for f, _, _ in grouped), dtype=np.int64, count=len(grouped))
        count = np.zeros(n + 1, dtype=np.int64)  # the extra last slot answers for id -1
        np.add.at(count, firsts, 1)
        start = np.zeros(n + 1, dtype=np.int64)
        start[:n] = np.searchsorted(firsts, np.arange(n))
        lengths = np.fromiter((len(e) for _, e, _ in grouped), dtype=np.int64, count=len(grouped))
        cats = np.fromiter((c for _, _, c in grouped), dtype=np.int64, count=len(grouped))
        return start, count, tokens, lengths, cats

    def transform_ids(self, ids: np.ndarray, ends: np.ndarray, tables: tuple[np.ndarray, ...],
                      weight: float = 1.0) -> np.ndarray:
        """:meth:`transform` as a dense array, for items whose token ids are
        ``ids[ends[i]:ends[i + 1]]`` (``tables`` from :meth:`id_tables` with the same ids).

        Every (position, entry starting with that token) pair is checked at once, one token
        offset at a time, so the Python work does not grow with the batch.
        """
        start, count, tokens, lengths, cats = tables
        n_items, n_cats = len(ends) - 1, len(self.categories)
        per_position = count[ids]
        candidates = np.flatnonzero(per_position)
        if not len(candidates):
            return np.zeros((n_items, n_cats))
        reps = per_position[candidates]
        pos = np.repeat(candidates, reps)
        entry = start[ids[pos]] + np.arange(len(pos)) - np.repeat(np.cumsum(reps) - reps, reps)
        length = lengths[entry]
        item = np.searchsorted(ends, pos, side="right") - 1
        ok = pos + length <= ends[item + 1]  # the entry fits inside its item's tokens
        for k in range(1, tokens.shape[1]):
            check = np.flatnonzero(ok & (length > k))
            ok[check] = ids[pos[check] + k] == tokens[entry[check], k]
        found = np.bincount(item[ok] * n_cats + cats[entry[ok]], minlength=n_items * n_cats)
        return np.log1p(found.reshape(n_items, n_cats).astype(np.float64)) * weight


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

    def supports_ids(self) -> bool:
        """Whether :meth:`transform_ids` can compute these n-grams (unigrams and bigrams)."""
        return 1 <= self.ngram_range[0] <= self.ngram_range[1] <= 2

    def id_tokens(self) -> list[str]:
        """The tokens :meth:`id_tables` needs ids for: every vocabulary entry and, split at each
        space, its two sides (a phrase token such as "chief executive" contains a space, so a
        bigram's text can be split in more than one place)."""
        out = []
        for term in self.vocabulary_:
            out.append(term)
            cut = term.find(" ")
            while cut >= 0:
                out.extend((term[:cut], term[cut + 1:]))
                cut = term.find(" ", cut + 1)
        return out

    def id_tables(self, token_ids: TokenIds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feature of each token id as a unigram, -1 if none, with a last slot for id -1;
        sorted keys ``left * len(token_ids) + right`` of the bigrams in the vocabulary; their
        features)."""
        ids, n = token_ids.ids, len(token_ids)
        low, high = self.ngram_range
        unigram = np.full(n + 1, -1, dtype=np.int64)
        keys: list[int] = []
        features: list[int] = []
        for term, feature in self.vocabulary_.items():
            if low == 1:  # the analyzer looks every token up as it is, spaces and all
                unigram[ids[term]] = feature
            cut = term.find(" ") if high >= 2 else -1
            while cut >= 0:  # the vocabulary holds strings: "a b c" is ("a b", "c") and ("a", "b c")
                keys.append(ids[term[:cut]] * n + ids[term[cut + 1:]])
                features.append(feature)
                cut = term.find(" ", cut + 1)
        order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable")
        return (unigram, np.asarray(keys, dtype=np.int64)[order],
                np.asarray(features, dtype=np.int64)[order])

    def transform_ids(self, ids: np.ndarray, ends: np.ndarray,
                      tables: tuple[np.ndarray, np.ndarray, np.ndarray]) -> sp.csr_matrix:
        """:meth:`transform` of the items whose token ids are ``ids[ends[i]:ends[i + 1]]``
        (``tables`` from :meth:`id_tables` with the same ids); the same matrix (tested)."""
        unigram, keys, features = tables
        n_tokens, n = len(ids), len(unigram) - 1
        low, high = self.ngram_range
        slots = np.full((n_tokens, 2), -1, dtype=np.int64)  # per position: its unigram, its bigram
        if low == 1:
            slots[:, 0] = unigram[ids]
        if high >= 2 and n_tokens > 1 and len(keys):
            last = np.zeros(n_tokens, dtype=bool)  # a bigram never crosses into the next item
            last[ends[1:][ends[1:] > ends[:-1]] - 1] = True
            pairs = np.flatnonzero(~last[:-1] & (ids[:-1] >= 0) & (ids[1:] >= 0))
            query = ids[pairs] * n + ids[pairs + 1]
            at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
            hit = keys[at] == query
            slots[pairs[hit], 1] = features[at[hit]]
        flat = slots.ravel()
        keep = flat >= 0
        indptr = np.concatenate(([0], np.cumsum(keep)))[np.asarray(ends, dtype=np.int64) * 2]
        X = sp.csr_matrix((np.ones(int(keep.sum()), dtype=self.dtype), flat[keep].astype(np.int32),
                           indptr), shape=(len(ends) - 1, len(self.vocabulary_)))
        X.sum_duplicates()  # sorts indices and adds repeated n-grams, as in counts()
        return self.tfidf_.transform(X, copy=False)


# -- words of many texts at once, without a Python string per word ----------------------------------
# str.split() splits on the 29 code points for which str.isspace() is true; in UTF-8 these are the
# ASCII bytes below and the multi-byte sequences checked in _mark_wide_spaces (tested against
# str.split on every one of them).

_SPACE_BYTES = np.zeros(256, dtype=bool)
_SPACE_BYTES[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20]] = True
_TEXT_SEPARATOR = "\x1e"  # whitespace, so no word spans two texts; a text holding it is split in Python
_LOW_BYTES = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [(1 << 64) - 1],
                      dtype=np.uint64)  # masks keeping the first k bytes of a little-endian word
KEY_BYTES = 15  # words up to this many UTF-8 bytes have an exact two-integer key


def _mark_wide_spaces(data: np.ndarray, space: np.ndarray) -> None:
    """Mark the bytes of U+0085, U+00A0, U+1680, U+2000-200A, U+2028/9, U+202F, U+205F and U+3000
    (``data`` has at least two bytes of padding after the text)."""
    n = len(space)
    lead = np.flatnonzero((data[:n] >= 0xC2) & (data[:n] <= 0xE3))
    if not len(lead):
        return
    b0, b1, b2 = data[lead], data[lead + 1], data[lead + 2]
    two = (b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))
    three = ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80)) \
        | ((b0 == 0xE2) & (b1 == 0x80) & (((b2 >= 0x80) & (b2 <= 0x8A)) | (b2 == 0xA8)
                                          | (b2 == 0xA9) | (b2 == 0xAF))) \
        | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F)) \
        | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
    for width, found in ((2, two), (3, three)):
        at = lead[found]
        for k in range(width):
            space[at + k] = True


class Words:
    """The whitespace-separated words of a list of texts as UTF-8 byte ranges of one buffer.

    Why: splitting 100k texts into 3.6M Python strings and hashing each one was the largest part
    of tagging; here the words are found with numpy, and every word of at most ``KEY_BYTES``
    bytes gets an exact integer key (its bytes and length) for lookups without a string.
    ``indptr[t]:indptr[t + 1]`` are the words of text ``t``, as ``texts[t].split()`` gives them.
    """

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray,
                 indptr: np.ndarray) -> None:
        self.buffer = buffer
        self.starts = starts
        self.lengths = lengths
        self.indptr = indptr

    @classmethod
    def of(cls, texts: Sequence[str]) -> "Words | None":
        """The words of ``texts``; None if a text holds the separator U+001E (split in Python)."""
        buffer = _TEXT_SEPARATOR.join(texts).encode("utf-8", "surrogatepass") + bytes(16)
        data = np.frombuffer(buffer, dtype=np.uint8)
        n = len(buffer) - 16
        separators = np.flatnonzero(data[:n] == 0x1E)
        if len(separators) != max(len(texts) - 1, 0):
            return None
        space = _SPACE_BYTES[data[:n]]
        _mark_wide_spaces(data, space)
        edges = np.diff(space.view(np.int8), prepend=np.int8(1), append=np.int8(1))
        starts = np.flatnonzero(edges == -1)
        lengths = np.flatnonzero(edges == 1) - starts
        first = np.searchsorted(starts, np.concatenate(([0], separators + 1)))
        return cls(buffer, starts, lengths, np.concatenate((first, [len(starts)])))

    @classmethod
    def joined(cls, strings: Sequence[str]) -> "Words | None":
        """Each string as one word, spaces and all (None if one holds the separator U+001E)."""
        buffer = _TEXT_SEPARATOR.join(strings).encode("utf-8", "surrogatepass") + bytes(16)
        n = len(buffer) - 16
        separators = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8)[:n] == 0x1E)
        if len(separators) != max(len(strings) - 1, 0):
            return None
        starts = np.concatenate(([0], separators + 1))
        ends = np.concatenate((separators, [n]))
        return cls(buffer, starts, ends - starts, np.arange(len(strings) + 1))

    def keys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first 8 bytes, next 7 bytes + length in the top byte, which words have such a key)."""
        eight = np.ndarray((len(self.buffer) - 7,), dtype="<u8", buffer=self.buffer, strides=(1,))
        lengths = self.lengths
        head = eight[self.starts] & _LOW_BYTES[np.minimum(lengths, 8)]
        tail = eight[self.starts + 8] & _LOW_BYTES[np.clip(lengths - 8, 0, 7)]
        tail |= np.minimum(lengths, 255).astype(np.uint64) << np.uint64(56)
        return head, tail, lengths <= KEY_BYTES

    def word(self, k: int) -> str:
        start = int(self.starts[k])
        return self.buffer[start:start + int(self.lengths[k])].decode("utf-8", "surrogatepass")


def sparse_product(A: sp.csr_matrix, B: sp.csr_matrix) -> sp.csr_matrix:
    """``A @ B`` (CSR, same data type) by one call of scipy's product kernel.

    Why: ``@`` first runs a symbolic pass only to size the result, a third of the product's
    time; the size is bounded by the entries the rows of ``B`` bring (each product term adds at
    most one), so the result is written into arrays of that size. Same kernel, so the same
    matrix (tested); ``@`` is used whenever the kernel or the bound is not suitable.
    """
    try:
        from scipy.sparse._sparsetools import csr_matmat
    except ImportError:  # pragma: no cover - a SciPy without the kernel
        return (A @ B).tocsr()
    bound = int(np.diff(B.indptr)[A.indices].sum()) if A.nnz else 0
    if A.dtype != B.dtype or bound >= 2**31 - 1 or max(A.shape + B.shape) >= 2**31 - 1:
        return (A @ B).tocsr()
    index = np.int32
    indptr = np.empty(A.shape[0] + 1, dtype=index)
    indices = np.empty(bound, dtype=index)
    data = np.empty(bound, dtype=A.dtype)
    try:
        csr_matmat(A.shape[0], B.shape[1], A.indptr.astype(index, copy=False),
                   A.indices.astype(index, copy=False), A.data,
                   B.indptr.astype(index, copy=False), B.indices.astype(index, copy=False),
                   B.data, indptr, indices, data)
    except (TypeError, ValueError):  # pragma: no cover - another signature
        return (A @ B).tocsr()
    nnz = int(indptr[-1])
    return sp.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(A.shape[0], B.shape[1]))


def _distinct_pairs(head: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position where each distinct (head, tail) pair first occurs, in order of appearance;
    for every position, the number of its pair in that order)."""
    order = np.lexsort((tail, head))  # stable: equal pairs keep their order
    h, t = head[order], tail[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (h[1:] != h[:-1]) | (t[1:] != t[:-1])
    sorted_group = np.cumsum(starts) - 1
    first = order[starts]  # per group, sorted by key
    by_appearance = np.argsort(first, kind="stable")
    renumber = np.empty_like(by_appearance)
    renumber[by_appearance] = np.arange(len(by_appearance))
    group = np.empty(len(order), dtype=np.int64)
    group[order] = renumber[sorted_group]
    return first[by_appearance], group


def word_key(word: str) -> tuple[int, int] | None:
    """:meth:`Words.keys` of one word (None if it has more than ``KEY_BYTES`` bytes)."""
    raw = word.encode("utf-8", "surrogatepass")
    if len(raw) > KEY_BYTES:
        return None
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little") | len(raw) << 56


class KeyIndex:
    """Exact map from (head, tail) integer keys to ids, as a numpy hash table (linear probing).

    A lookup of millions of keys is a few vectorised passes; keys are compared in full, so a
    hash collision costs a probe, never a wrong id.
    """

    _MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F),
            np.uint64(0x94D049BB133111EB))

    def __init__(self) -> None:
        self.head = np.zeros(0, dtype=np.uint64)
        self.tail = np.zeros(0, dtype=np.uint64)
        self.ids = np.zeros(0, dtype=np.int64)
        self._bits = 0
        # per slot: the id there (-1: empty) and its key, so a probe is one random access
        self._slot_ids = np.full(1, -1, dtype=np.int64)
        self._slot_head = np.zeros(1, dtype=np.uint64)
        self._slot_tail = np.zeros(1, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.ids)

    def _slots(self, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
        a, b, c = self._MIX
        mixed = head * a ^ tail * b
        mixed ^= mixed >> np.uint64(31)
        mixed *= c
        return (mixed >> np.uint64(64 - self._bits)).astype(np.int64) if self._bits else \
            np.zeros(len(head), dtype=np.int64)

    def add(self, head: np.ndarray, tail: np.ndarray, ids: np.ndarray) -> None:
        """Add keys (not yet present, distinct) and rebuild the table (at most a quarter full)."""
        self.head = np.concatenate((self.head, head.astype(np.uint64)))
        self.tail = np.concatenate((self.tail, tail.astype(np.uint64)))
        self.ids = np.concatenate((self.ids, ids.astype(np.int64)))
        self._bits = max(4, (4 * len(self.ids)).bit_length())
        size = 1 << self._bits
        table = np.full(size, -1, dtype=np.int64)
        slot = self._slots(self.head, self.tail)
        pending = np.arange(len(self.ids))
        while len(pending):  # claim free slots; of keys claiming the same slot one wins
            free = pending[table[slot[pending]] < 0]
            table[slot[free]] = free
            pending = pending[table[slot[pending]] != pending]
            slot[pending] = (slot[pending] + 1) & (size - 1)
        filled = table >= 0
        self._slot_ids = np.where(filled, self.ids[table], -1)
        self._slot_head = np.where(filled, self.head[table], 0).astype(np.uint64)
        self._slot_tail = np.where(filled, self.tail[table], 0).astype(np.uint64)

    def find(self, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """The id of every key (-1 where absent)."""
        if not len(self.ids) or not len(head):
            return np.full(len(head), -1, dtype=np.int64)
        mask = len(self._slot_ids) - 1
        slot = self._slots(head, tail)
        out = self._slot_ids[slot]
        match = (self._slot_head[slot] == head) & (self._slot_tail[slot] == tail)
        pending = np.flatnonzero((out >= 0) & ~match)  # the slot holds another key: probe on
        out[~match] = -1
        while len(pending):
            slot[pending] = at = (slot[pending] + 1) & mask
            entry = self._slot_ids[at]
            found = (self._slot_head[at] == head[pending]) & (self._slot_tail[at] == tail[pending])
            hit = found & (entry >= 0)
            out[pending[hit]] = entry[hit]
            pending = pending[(entry >= 0) & ~found]
        return out


def char_wb_ngrams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams of one whitespace-free word (padded with a space each
    side; a word no longer than n, padded, is counted once and longer n are skipped)."""
    min_n, max_n = ngram_range
    w = f" {word} "
    w_len = len(w)
    if w_len <= min_n:
        return [w]
    return [w[i:i + n] for n in range(min_n, min(max_n, w_len) + 1) for i in range(w_len - n + 1)]


class _WordRows:
    """The n-gram count rows of the distinct words seen so far: word -> row, by string (a dict)
    and, for words of at most ``KEY_BYTES`` bytes, by integer key (a :class:`KeyIndex`)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.rows: sp.csr_matrix | None = None
        self.index = KeyIndex()

    def add(self, words: list[str], rows: sp.csr_matrix,
            keys: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Append ``words`` and their rows; ``keys``: their :meth:`Words.keys`, if known."""
        base = len(self.ids)
        self.ids.update(zip(words, range(base, base + len(words))))
        self.rows = rows if self.rows is None else sp.vstack([self.rows, rows], format="csr")
        if keys is None:
            pairs = [word_key(w) or (0, 0) for w in words]
            keys = (np.fromiter((h for h, _ in pairs), dtype=np.uint64, count=len(pairs)),
                    np.fromiter((t for _, t in pairs), dtype=np.uint64, count=len(pairs)),
                    np.fromiter((len(w.encode("utf-8", "surrogatepass")) <= KEY_BYTES
                                 for w in words), dtype=bool, count=len(words)))
        head, tail, keyed = keys
        if keyed.any():
            self.index.add(head[keyed], tail[keyed], base + np.flatnonzero(keyed))


class CharNgramTfidf:
    """``TfidfVectorizer(analyzer="char_wb", lowercase=False, sublinear_tf=True)`` with a fast
    transform: the same vocabulary, idf and values, but n-grams are generated once per distinct
    word instead of once per word occurrence.

    Why: ``char_wb`` n-grams never cross whitespace, so a text's n-gram counts are the sum of its
    words' counts. Scikit-learn builds every n-gram string of every text in Python (half of the
    tag stage's time); here each word occurrence costs one dictionary lookup, and the counts are
    the sparse product (texts x words) @ (words x features) with the word rows kept between
    calls. That cache is bounded (``cache_size`` words; cleared when full) and not pickled; the
    words of a batch are found and looked up without a Python string each (:class:`Words`).
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
        # _word_ids/_word_rows stay empty (the cache is in _caches): a saved model keeps its bytes
        self._word_ids: dict[str, int] = {}
        self._word_rows: sp.csr_matrix | None = None
        self.__dict__.pop("_caches", None)
        self.__dict__.pop("_grams", None)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_word_ids"], state["_word_rows"] = {}, None
        state.pop("_caches", None)  # the word cache and n-gram keys are never saved
        state.pop("_grams", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_cache()

    def cached_words(self, normalise: Any = None) -> int:
        """How many distinct words the cache for ``normalise`` holds."""
        cache = self.__dict__.get("_caches", {}).get(normalise)
        return len(cache.ids) if cache is not None else 0

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

    def _gram_keys(self) -> tuple[np.ndarray, int, KeyIndex] | None:
        """The vocabulary as integer keys: (rank of each code point, 0 for characters no n-gram
        has; bits per rank; key -> feature), or None when the n-grams do not fit a 64-bit key.
        A key holds the ranks of the n-gram's characters and, in its low 3 bits, its length.
        Built once per fitted vocabulary, not saved."""
        if "_grams" not in self.__dict__:
            self._grams = None
            alphabet = sorted({c for gram in self.vocabulary_ for c in gram})
            bits = max(1, len(alphabet).bit_length())
            if alphabet and bits * self.ngram_range[1] + 3 <= 63 and self.ngram_range[1] < 8:
                rank = {c: r for r, c in enumerate(alphabet, 1)}
                keys = np.fromiter((sum(rank[c] << (bits * k) for k, c in enumerate(gram)) << 3
                                    | len(gram) for gram in self.vocabulary_),
                                   dtype=np.int64, count=len(self.vocabulary_))
                index = KeyIndex()
                index.add(keys.astype(np.uint64), np.zeros(len(keys), dtype=np.uint64),
                          np.fromiter(self.vocabulary_.values(), dtype=np.int64,
                                      count=len(self.vocabulary_)))
                ranks = np.zeros(ord(alphabet[-1]) + 2, dtype=np.int64)  # last: any higher code
                ranks[[ord(c) for c in alphabet]] = np.arange(1, len(alphabet) + 1)
                self._grams = (ranks, bits, index)
        return self._grams

    def _rows_of(self, words: Sequence[str], normalise: Any = None) -> sp.csr_matrix:
        """(words x features) counts of each word's in-vocabulary n-grams; with ``normalise``,
        of the n-grams of the words of ``normalise(word)``.

        The n-grams of all the words are formed and looked up at once as integer keys (see
        :meth:`_gram_keys`), in the order and with the padding of :func:`char_wb_ngrams`.
        """
        pieces = [normalise(w).split() for w in words] if normalise is not None else \
            [[w] for w in words]
        grams = self._gram_keys()
        flat = list(chain.from_iterable(pieces))
        if grams is None or not flat:
            return self._rows_of_pieces(pieces)
        ranks, bits, index = grams
        low, high = self.ngram_range
        sizes = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat)) + 2  # padded
        codes = np.frombuffer((" " + "  ".join(flat) + " ").encode("utf-32-le", "surrogatepass"),
                              dtype=np.uint32)
        rank = ranks[np.minimum(codes, len(ranks) - 1)]
        rank = np.concatenate((rank, np.zeros(high, dtype=np.int64)))  # windows may run past the end
        piece_of = np.repeat(np.arange(len(flat)), sizes)
        ends = np.cumsum(sizes)[piece_of]  # end of each position's padded piece
        position = np.arange(len(codes))
        key = np.zeros(len(codes), dtype=np.int64)
        unknown = np.zeros(len(codes), dtype=bool)
        found_pieces, found_keys = [], []
        for n in range(1, high + 1):
            nth = rank[n - 1:n - 1 + len(codes)]
            key |= nth << (bits * (n - 1))
            unknown |= nth == 0
            if n >= low:  # every window of n characters inside its padded piece
                take = np.flatnonzero((position + n <= ends) & ~unknown)
            else:  # a padded piece shorter than the smallest n is one n-gram (as char_wb does)
                starts = np.cumsum(sizes) - sizes
                take = starts[(sizes == n) & ~unknown[starts]]
            found_pieces.append(piece_of[take])
            found_keys.append(key[take] << 3 | n)
        query = np.concatenate(found_keys).astype(np.uint64)
        feature = index.find(query, np.zeros(len(query), dtype=np.uint64))
        hit = feature >= 0
        owner = np.repeat(np.arange(len(words)), [len(p) for p in pieces])
        rows = sp.csr_matrix((np.ones(int(hit.sum()), dtype=self.dtype),
                              (owner[np.concatenate(found_pieces)[hit]], feature[hit])),
                             shape=(len(words), len(self.vocabulary_)))
        rows.sum_duplicates()
        return rows

    def _rows_of_pieces(self, pieces: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """:meth:`_rows_of` one n-gram string at a time (any vocabulary)."""
        get = self.vocabulary_.get
        missing = repeat(-1)
        looked_up: list[int] = []
        ends = np.zeros(len(pieces) + 1, dtype=np.int64)
        for k, words in enumerate(pieces):
            for word in words:
                looked_up.extend(map(get, char_wb_ngrams(word, self.ngram_range), missing))
            ends[k + 1] = len(looked_up)
        found = np.fromiter(looked_up, dtype=np.int64, count=len(looked_up))
        keep = found >= 0
        ends = np.concatenate(([0], np.cumsum(keep)))[ends]
        rows = sp.csr_matrix((np.ones(int(keep.sum()), dtype=self.dtype),
                              found[keep].astype(np.int32), ends),
                             shape=(len(pieces), len(self.vocabulary_)))
        rows.sum_duplicates()
        return rows

    def _cache(self, normalise: Any, *, fresh: bool = False) -> _WordRows:
        caches = self.__dict__.setdefault("_caches", {})
        if fresh or normalise not in caches:
            caches.clear()  # one cache at a time bounds the memory
            caches[normalise] = _WordRows()
        return caches[normalise]

    def _ids_of_words(self, words: Words, normalise: Any) -> tuple[_WordRows, np.ndarray]:
        """The cache and the row of every word of ``words``, adding the words it lacks.

        A word with a key that the index does not hold is new (every cached word with a key is
        indexed), so new words are told apart by key and decoded once each; only words too
        long for a key are looked up by string.
        """
        cache = self._cache(normalise)
        head, tail, keyed = words.keys()
        ids = cache.index.find(head, tail)
        ids[~keyed] = -1
        lost = np.flatnonzero(ids < 0)
        if not len(lost):
            return cache, ids
        short, long = lost[keyed[lost]], lost[~keyed[lost]]
        first, group = _distinct_pairs(head[short], tail[short])
        fresh = short[first]
        new = [words.word(k) for k in fresh.tolist()]
        long_words = [words.word(k) for k in long.tolist()]
        new_long = [w for w in dict.fromkeys(long_words) if w not in cache.ids]
        if len(cache.ids) + len(new) + len(new_long) > self.cache_size:
            if len(cache.ids):  # full: start again with this batch
                self._cache(normalise, fresh=True)
                return self._ids_of_words(words, normalise)
        base = len(cache.ids)
        cache.add(new + new_long, self._rows_of(new + new_long, normalise),
                  (np.concatenate((head[fresh], np.zeros(len(new_long), dtype=np.uint64))),
                   np.concatenate((tail[fresh], np.zeros(len(new_long), dtype=np.uint64))),
                   np.arange(len(new) + len(new_long)) < len(new)))
        ids[short] = base + group
        ids[long] = np.fromiter(map(cache.ids.__getitem__, long_words), dtype=np.int64,
                                count=len(long_words))
        return cache, ids

    def _ids_of_strings(self, flat: list[str], normalise: Any) -> tuple[_WordRows, np.ndarray]:
        """:meth:`_ids_of_words` for words given as strings."""
        cache = self._cache(normalise)
        ids = np.fromiter(map(cache.ids.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        missing = np.flatnonzero(ids < 0).tolist()
        if missing:
            found = [flat[k] for k in missing]
            new = list(dict.fromkeys(w for w in found if w not in cache.ids))
            if len(cache.ids) + len(new) > self.cache_size and len(cache.ids):
                self._cache(normalise, fresh=True)  # full: start again with this batch
                return self._ids_of_strings(flat, normalise)
            cache.add(new, self._rows_of(new, normalise))
            ids[missing] = np.fromiter(map(cache.ids.__getitem__, found), dtype=np.int64,
                                       count=len(found))
        return cache, ids

    def counts(self, texts: Sequence[str], *, sort: bool = False,
               normalise: Any = None) -> sp.csr_matrix:
        """Raw n-gram counts (texts x features), equal to ``CountVectorizer.transform(texts)``,
        or of ``[normalise(t) for t in texts]`` when ``normalise`` is given.

        ``normalise`` must work word by word: ``normalise(t).split()`` is the words of
        ``normalise(w)`` for each whitespace-separated word ``w`` of ``t``, in order (true of
        :func:`char_text`; tested). Then it runs once per distinct raw word, cached like the
        words' n-grams, instead of once per text.
        """
        words = Words.of(texts)
        if words is not None:
            cache, ids = self._ids_of_words(words, normalise)
            indptr = words.indptr
        else:  # a text holds the separator character: split in Python
            per_text = [t.split() for t in texts]
            indptr = np.zeros(len(texts) + 1, dtype=np.int64)
            np.cumsum(np.fromiter(map(len, per_text), dtype=np.int64, count=len(texts)),
                      out=indptr[1:])
            cache, ids = self._ids_of_strings(list(chain.from_iterable(per_text)), normalise)
        word_rows = cache.rows if cache.rows is not None else \
            sp.csr_matrix((0, len(self.vocabulary_)), dtype=self.dtype)
        D = sp.csr_matrix((np.ones(len(ids), dtype=self.dtype), ids, indptr),
                          shape=(len(texts), word_rows.shape[0]))
        X = sparse_product(D, word_rows)
        if len(cache.ids) > self.cache_size:  # one batch had more distinct words than it holds
            self._cache(normalise, fresh=True)
        if sort:
            X.sort_indices()
        return X

    def transform(self, texts: Sequence[str], *, normalise: Any = None) -> sp.csr_matrix:
        """TF-IDF of ``texts`` with the fitted vocabulary (as ``TfidfVectorizer.transform``);
        ``normalise``: see :meth:`counts`."""
        return self._tfidf(self.counts(texts, normalise=normalise))

    def _tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """``self.tfidf_.transform(counts)``, with the same float32 operations, but ``log`` only
        where a count exceeds 1: most n-grams occur once in a text, and then log(1) + 1 = 1 and
        the value is the idf itself."""
        from sklearn.preprocessing import normalize

        tfidf = self.tfidf_
        idf = getattr(tfidf, "idf_", None)
        if not (tfidf.sublinear_tf and tfidf.norm == "l2" and idf is not None
                and counts.data.dtype == idf.dtype):
            return tfidf.transform(counts, copy=False)
        values = idf[counts.indices]
        many = np.flatnonzero(counts.data > 1)
        if len(many):
            repeated = counts.data[many]
            np.log(repeated, out=repeated)
            repeated += 1.0
            repeated *= values[many]
            values[many] = repeated
        counts.data = values
        return normalize(counts, norm="l2", copy=False)
