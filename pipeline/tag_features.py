"""Feature pieces of the category classifier: input checking, article text, n-grams, lexicon counts.

Everything here is a module-level function or small class so a fitted classifier pickles
(no lambdas or closures), and everything works one text at a time, so a prediction never
depends on the batch it came in.
"""
from __future__ import annotations

import html
import re
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


def article_text(headline: str, standfirst: str | None = None, series: Any = None, *,
                 series_names: Sequence[str] = DEFAULT_SERIES,
                 kickers: Sequence[str] = DEFAULT_KICKERS) -> str:
    """The text a category is read from: headline without kicker or series label, plus standfirst.

    A series column's standfirst is its stock blurb and carries no topic (taxonomy tie-break), so
    it is dropped when ``series`` is set or the headline starts with a known series label.
    """
    headline = headline.strip()
    headline, in_series = _strip_prefix(headline, series_names)
    headline, _ = _strip_prefix(headline, kickers)
    if series or in_series or not standfirst:
        return headline
    return f"{headline}\n{standfirst.strip()}"


def item_texts(X: Any, *, series_names: Sequence[str] = DEFAULT_SERIES,
               kickers: Sequence[str] = DEFAULT_KICKERS) -> list[str]:
    """Check the items once at the boundary and turn each into its article text.

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
    texts = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip():
                raise TextInputError(f"item {i}: empty or whitespace-only text", key=f"item {i}")
            texts.append(article_text(item, series_names=series_names, kickers=kickers))
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
            texts.append(article_text(headline, standfirst, item.get("series"),
                                      series_names=series_names, kickers=kickers))
        else:
            raise ItemTypeError(f"item {i}: expected a headline string or a mapping with "
                                f"'headline', got {type(item).__name__}", key=f"item {i}")
    return texts


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
        """log(1 + count) per category, times ``weight``, as a sparse matrix."""
        rows = np.vstack([self.counts(t) for t in token_lists]) if token_lists else \
            np.zeros((0, len(self.categories)))
        return sp.csr_matrix(np.log1p(rows) * weight)
