"""Clean stage: repair and normalise text, then turn it into lemma tokens with spaCy.

spaCy runs as ``spacy.blank("en")`` (its rule-based tokenizer) plus the lookup lemma table from
spacy-lookups-data, so nothing is downloaded. Only the tokenizer runs through spaCy: Doc objects
never leave the process, and lemmas come from the lookup table keyed on the *lower-cased* word,
which avoids the case trap ("Trusts" would otherwise stay "Trusts"). Domain lists (stop words,
phrases, aliases, acronyms, lemma fixes) live in ``configs/normalise.toml``.

Public names:

- :class:`TextCleaner` -- ``.tokens(texts)``: tokens per text; each distinct text is cleaned once
  and cached, and spaCy tokenises each distinct whitespace-delimited chunk once (exactly as it
  would inside the whole text); pickles without its spaCy objects; a text gives the same tokens
  alone or in a batch.
- :class:`CleanStage` -- the stage component; :func:`clean_articles` -- the stage in one call: fills
  ``Article.tokens`` / ``Article.amounts``, ignores blurbs.
- :func:`article_text` / :func:`find_blurbs` -- the text of an article as cluster and tag see it.
- :func:`repair_text`, :func:`parse_amounts` -- the two text helpers, usable on their own.
"""
from __future__ import annotations

import html
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, compress, count, islice
from pathlib import Path
from typing import Any

from .config import CONFIG_DIR, CleanConfig
from .errors import ConfigError
from .records import Article, normalise_key

NORMALISE_FILE = CONFIG_DIR / "normalise.toml"

# ---- text repair (generic scraped-text artefacts) ------------------------------------------------

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200b": "",
    "\u2013": " - ", "\u2014": " - ", "\u2212": "-",
})
_QUOTE_PAIRS = tuple((chr(k), v) for k, v in _QUOTES.items())
_NAMED_BARE = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "apos": "'", "nbsp": " "}
# "#39;" and "quot;" left behind when a scraper dropped the "&" of an HTML entity.
# Scrapers often turned the "&" into a space ("Google #39;s"): that space goes with the entity.
_BARE_NUMERIC = re.compile(r"(?:(?<=\S) )?(?<![&\w])#(x[0-9a-fA-F]{1,5}|\d{1,6});")
_BARE_NUMERIC_CORE = re.compile(r"#(x[0-9a-fA-F]{1,5}|\d{1,6});")  # what follows its lookbehinds
_WORD_CHAR = re.compile(r"\w")
_BARE_NAMED = re.compile(r"(?<![&\w])(quot|amp|lt|gt|apos|nbsp);")
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|co\.uk|org\.uk|nhs\.uk|gov\.uk)\b",
                  re.IGNORECASE)
_URL_HINT = re.compile(r"://|www\.|\.(?:com|net|org|co\.uk|org\.uk|nhs\.uk|gov\.uk)\b", re.IGNORECASE)
_DOMAIN_HINT = re.compile(r"\.(?:com|net|org|co\.uk|org\.uk|nhs\.uk|gov\.uk)\b")  # lower-cased ASCII
# A parenthesised source credit of 1-4 capitalised words: "(Reuters)", "(AP)", "(Canadian Press)".
_SOURCE_TAG = re.compile(r"\(\s*(?:[A-Z][\w.&'-]*\s*){1,4}\)")
# A dateline before a dash at the start: "AP - ", "LONDON (Reuters) - ", "TORONTO, Canada -- ".
_DATELINE = re.compile(r"^\s*(?:[A-Z][\w.&'/]*[,.]?\s+){0,5}[A-Z][\w.&'/]*\s*(?:\([^()]{1,40}\)\s*)?-{1,2}\s+")
# What a dateline match needs somewhere: its dash followed by whitespace (hyphenated words have none).
_DASH_SPACE = re.compile(r"-\s")
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_CAPS_PLURAL = re.compile(r"^[A-Z][A-Z&]+s$")

# Money: "£20m", "£1.7m", "£240,000", "£1bn", "$10 million". Kept as one magnitude token.
_MONEY = re.compile(
    r"([£$€])\s?(\d+(?:,\d{3})*(?:\.\d+)?)(?:\s?(bn|billion|m|mn|million|k|thousand)\b)?",
    re.IGNORECASE)
_SCALE = {"bn": 1e9, "billion": 1e9, "m": 1e6, "mn": 1e6, "million": 1e6, "k": 1e3, "thousand": 1e3}
_CURRENCY = {"£": "gbp", "$": "usd", "€": "eur"}
_SYMBOL = {v: k for k, v in _CURRENCY.items()}


def normalise_chars(text: str) -> str:
    """NFKC, straight quotes, plain spaces: curly quotes and U+00A0 otherwise split words oddly."""
    if text.isascii():  # ASCII is NFKC-stable and every _QUOTES key is non-ASCII
        return text
    text = unicodedata.normalize("NFKC", text)
    # = text.translate(_QUOTES) (no replacement holds a key), without its per-character dict lookups
    for old, new in _QUOTE_PAIRS:
        if old in text:
            text = text.replace(old, new)
    return text


def repair_text(text: str) -> str:
    """Undo common scraping damage: HTML entities (with or without "&"), tags, backslash line
    breaks, URLs, wire-service source tags and datelines. Generic, not tuned to one corpus."""
    # each pattern is skipped when a character it needs is absent (same output, most texts are
    # clean and these searches are most of the clean stage's own time)
    if "&" in text:  # what html.unescape needs (it returns the text as it is without one)
        text = html.unescape(text)
    if "#" in text:
        text = _sub_bare_numeric(text)
    if "t;" in text or "p;" in text or "s;" in text:  # every _BARE_NAMED name ends in t, p or s
        text = _BARE_NAMED.sub(lambda m: _NAMED_BARE[m.group(1)], text)
    if "&" in text:  # "&amp;lt;" style double escapes
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "\\" in text:
        text = text.replace("\\", " ")
    if _may_hold_url(text):
        text = _URL.sub(" ", text)
    if "(" in text:
        text = _SOURCE_TAG.sub(" ", text)
    for _ in range(2):  # "SPACE.com - TORONTO, Canada -- ..." has two
        text = text.lstrip(" -:|")
        if "-" not in text or not _DASH_SPACE.search(text):
            break  # no dateline now, and lstrip again would change nothing
        before = text
        text = _DATELINE.sub("", text, count=1)
        if text == before:
            break  # the second round would see the same text
    return text


def _may_hold_url(text: str) -> bool:
    """``_URL_HINT.search(text)``, which every ``_URL`` alternative needs. On ASCII text its
    three alternatives are looked for in the lower-cased text (lower() keeps every position and
    word boundary there), the domain one from each "." only: a quarter of the time of the
    case-insensitive scan, which tries every position."""
    if text.isascii():
        if "." not in text and ":" not in text:  # every hint holds one
            return False
        lower = text.lower()
        return "://" in lower or "www." in lower or _DOMAIN_HINT.search(lower) is not None
    return _URL_HINT.search(text) is not None


def _sub_bare_numeric(text: str) -> str:
    """``_BARE_NUMERIC.sub(_bare_numeric, text)``, found from each "#" (that pattern opens with
    an optional group and lookbehinds, so the regex engine tries it at every position: 7 us a
    text). A match needs no "&" or word character before its "#", and takes along a space that
    follows a non-space."""
    parts: list[str] = []
    last = 0
    for match in _BARE_NUMERIC_CORE.finditer(text):
        start = match.start()
        if start:
            before = text[start - 1]
            if before == "&" or _WORD_CHAR.match(before):
                continue
            if before == " " and start >= 2 and not text[start - 2].isspace():
                start -= 1
        parts.append(text[last:start])
        parts.append(_bare_numeric(match))
        last = match.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _bare_numeric(match: re.Match[str]) -> str:
    code = match.group(1)
    try:
        value = int(code[1:], 16) if code[0] in "xX" else int(code)
        return chr(value) if 0 < value < 0x110000 else " "
    except ValueError:
        return " "


def _money_value(match: re.Match[str]) -> float:
    number = float(match.group(2).replace(",", ""))
    scale = (match.group(3) or "").lower()
    return number * _SCALE.get(scale, 1.0)


def parse_amounts(text: str | None) -> list[float]:
    """Pound amounts in a text, in order, e.g. "£1.7m and £240,000" -> [1700000.0, 240000.0]."""
    if not text or text.isascii():  # "£" is not ASCII, and NFKC leaves ASCII alone
        return []
    text = normalise_chars(text)
    if "£" not in text:
        return []
    return [_money_value(m) for m in _MONEY.finditer(text) if m.group(1) == "£"]


def _money_placeholder(match: re.Match[str]) -> str:
    """Replace an amount with a word the tokenizer keeps whole: "qqmoneygbpmqq" for "£20m"."""
    value = _money_value(match)
    magnitude = "bn" if value >= 1e9 else "m" if value >= 1e6 else "k" if value >= 1e3 else "u"
    return f" qqmoney{_CURRENCY[match.group(1)]}{magnitude}qq "


_PLACEHOLDER = re.compile(r"^qqmoney(gbp|usd|eur)(bn|m|k|u)qq$")


def _placeholder_token(text: str) -> str | None:
    m = _PLACEHOLDER.match(text)
    if not m:
        return None
    symbol = _SYMBOL[m.group(1)]
    return symbol if m.group(2) == "u" else symbol + m.group(2)


# ---- domain lists ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DomainLists:
    """The normalisation lists, merged from the normalise file and the run config."""

    stop_words: frozenset[str]
    stop_phrases: tuple[str, ...]
    phrases: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    acronyms: tuple[tuple[str, str], ...]
    lemmas: tuple[tuple[str, str], ...]


def load_domain_lists(config: CleanConfig) -> DomainLists:
    """Read ``configs/normalise.toml`` (or ``clean.normalise_file``) and add the config's extras."""
    path = Path(config.normalise_file) if config.normalise_file else NORMALISE_FILE
    if not path.is_file():
        raise ConfigError(f"normalise file not found: {path}", key="clean.normalise_file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=str(path)) from None
    known = {"stop_words", "stop_phrases", "phrases", "aliases", "acronyms", "lemmas"}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", key=f"{path.name}:{key}")
        want = dict if key in ("aliases", "acronyms", "lemmas") else list
        if not isinstance(value, want) or not all(isinstance(v, str) for v in
                                                  (value.values() if want is dict else value)):
            raise ConfigError(f"expected a {'table' if want is dict else 'list'} of strings",
                              key=f"{path.name}:{key}")
    return DomainLists(
        stop_words=frozenset(w.lower() for w in [*data.get("stop_words", []), *config.extra_stop_words]),
        stop_phrases=tuple(data.get("stop_phrases", [])),
        phrases=tuple(dict.fromkeys([*data.get("phrases", []), *config.phrases])),
        aliases=tuple(data.get("aliases", {}).items()),
        acronyms=tuple(data.get("acronyms", {}).items()),
        lemmas=tuple((k.lower(), v) for k, v in data.get("lemmas", {}).items()),
    )


# ---- the cleaner -------------------------------------------------------------------------------------

_DROP = ""  # phrase output meaning "drop these words"
# Chunk caches (see TextCleaner._clean_chunks), bounded: cleared before a batch once they hold
# more than this many chunks.
_CHUNK_CACHE_SIZE = 1_000_000


class _Memo(dict):
    """A dict that computes a missing value on lookup (``build(key)``) and keeps it, so one C-level
    ``map(memo.__getitem__, keys)`` both fills the cache and reads it: a million texts hold tens
    of millions of chunks, and every extra Python-level pass over them costs seconds."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[Any], Any]) -> None:
        super().__init__()
        self.build = build

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.build(key)
        return value


@lru_cache(maxsize=1)
def _spacy_english() -> tuple[Any, Any]:
    """``spacy.blank("en")`` with the lookup lemmatiser, and its lemma table: built once per
    process and shared by every cleaner (the run's and the trained model's), as neither depends
    on the configuration and building one costs 0.25 s. Sharing changes no output: the
    tokenizer's own caches (and its vocabulary's new entries) only remember what it computed."""
    import spacy

    nlp = spacy.blank("en")
    try:
        lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        nlp.initialize()
        table = lemmatizer.lookups.get_table("lemma_lookup")
    except (ValueError, KeyError, OSError) as exc:  # spacy-lookups-data missing
        raise ConfigError(f"spaCy lookup lemmatiser unavailable ({exc}); "
                          "install spacy-lookups-data", key="clean") from None
    return nlp, table


class TextCleaner:
    """Turns raw texts into lists of normalised lemma tokens.

    Parameters
    ----------
    config:
        The ``[clean]`` section; defaults to :class:`CleanConfig`.

    The spaCy tokenizer, lemma table and phrase index are built lazily and left out of the
    pickle, so the object is cheap to ship inside a scikit-learn estimator or to worker processes.
    """

    def __init__(self, config: CleanConfig | None = None) -> None:
        self.config = config or CleanConfig()
        self.lists: DomainLists | None = None
        self._state: dict[str, Any] | None = None
        self._cache: dict[str, list[str]] = {}

    def __getstate__(self) -> dict:
        return {"config": self.config, "lists": self.lists}

    def __setstate__(self, state: dict) -> None:
        self.config = state["config"]
        self.lists = state.get("lists")
        self._state = None
        self._cache = {}

    def freeze(self) -> "TextCleaner":
        """Snapshot the domain lists into this object (and its pickle).

        A trained model freezes its cleaner, so later edits to ``configs/normalise.toml`` or
        ``[clean]`` lists change what the run's clustering sees but never the features the model
        was trained on.
        """
        if self.lists is None:
            self.lists = load_domain_lists(self.config)
            self._state = None
        return self

    # -- lazy construction ----------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:
        from spacy.lang.en.stop_words import STOP_WORDS

        lists = self.lists if self.lists is not None else load_domain_lists(self.config)
        nlp, table = _spacy_english()
        state: dict[str, Any] = {
            "tokenizer": nlp.tokenizer, "table": table, "lemma_cache": dict(lists.lemmas),
            "stop": frozenset(w.lower() for w in STOP_WORDS) | lists.stop_words,
            "acronyms": dict(lists.acronyms), "alone": _Memo(self._new_chunk), "lemmas": {},
            "keeps": {}, "open": {}, "crossing": _Memo(self._crossing), "units": _Memo(self._new_unit),
            "items": _Memo(self._word_item), "plain": _Memo(self._new_plain),
            "specials": frozenset(nlp.tokenizer.rules or ()),
            "affixes": (nlp.tokenizer.prefix_search, nlp.tokenizer.suffix_search,
                        nlp.tokenizer.infix_finditer),
        }
        self._state = state
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        entries = [(p, p.lower().replace(" ", "_")) for p in lists.phrases]
        entries += [(p, _DROP) for p in lists.stop_phrases]
        entries += list(lists.aliases)
        for surface, output in entries:
            key = tuple(self._lemma(t.text) for t in nlp.tokenizer(normalise_chars(surface)))
            if key:
                index.setdefault(key[0], []).append((key, output))
        for options in index.values():
            options.sort(key=lambda item: -len(item[0]))
        state["phrases"] = index
        return state

    @property
    def _s(self) -> dict[str, Any]:
        return self._state if self._state is not None else self._build()

    def _lemma(self, word: str) -> str:
        lower = word.lower()
        if len(lower) > 2 and lower.endswith("."):  # "Ky." -> "ky"; "U.S." -> "u.s"
            lower = lower.rstrip(".")
        cache = self._s["lemma_cache"]
        lemma = cache.get(lower)
        if lemma is None:
            lemma = self._s["table"].get(lower, lower)
            cache[lower] = lemma
        return lemma

    # -- cleaning ----------------------------------------------------------------------------------
    def prepare(self, text: str) -> str:
        """The string handed to the spaCy tokenizer: repaired, normalised, money as placeholders."""
        text = normalise_chars(text)
        if self.config.repair:
            text = repair_text(text)
        if "£" in text or "$" in text or "€" in text:  # what every _MONEY match starts with
            text = _MONEY.sub(_money_placeholder, text)
        return text

    def _word_item(self, word: str) -> tuple[str, bool]:
        """(lemma or final token, kept by the filters) for one spaCy token: a pure function of
        the token text, so it is computed once per distinct token (``items``) and cached."""
        money = _placeholder_token(word)
        if money is not None:
            return money, True
        acronyms = self._s["acronyms"]
        if word in acronyms:
            return acronyms[word], True
        lemma = word[:-1].lower() if _CAPS_PLURAL.match(word) else self._lemma(word)
        keep = not (lemma in self._s["stop"] or len(lemma) < self.config.min_token_length
                    or not _LETTER.search(lemma) or lemma.startswith("'"))
        return lemma, keep

    def _words(self, chunk: str) -> list[str]:
        """spaCy's tokens of one chunk. Two shapes are settled by spaCy's own rules, checked with
        its own patterns, without the Doc and new lexemes it would build (four in five distinct
        chunks have them): a plain word (ASCII letters) is one token; a plain word followed by
        one character that spaCy's suffix pattern splits off, "trust," or "board.", is two."""
        if chunk.isascii():
            if chunk.isalpha():
                if self._plain(chunk):
                    return [chunk]
            elif len(chunk) > 1 and chunk[:-1].isalpha() and self._splits_last(chunk) \
                    and self._plain(chunk[:-1]):
                return [chunk[:-1], chunk[-1]]
        return [t.text for t in self._s["tokenizer"](chunk)]

    def _plain(self, word: str) -> bool:
        """Whether spaCy leaves ``word`` whole: no special case, and neither its prefix, suffix
        nor infix pattern matches (then its affix loop and infix split do nothing). Cached:
        "trust" is asked for again by "trust," and "trust."."""
        return self._s["plain"][word]

    def _new_plain(self, word: str) -> bool:
        """:meth:`_plain`, computed."""
        s = self._s
        prefix, suffix, infixes = s["affixes"]
        return word not in s["specials"] and (prefix is None or prefix(word) is None) \
            and (suffix is None or suffix(word) is None) \
            and (infixes is None or next(infixes(word), None) is None)

    def _splits_last(self, chunk: str) -> bool:
        """Whether spaCy's first affix step on ``chunk`` (no special case) finds no prefix and
        exactly its last character as the suffix (itself no special case), leaving the rest."""
        s = self._s
        prefix, suffix, _ = s["affixes"]
        if chunk in s["specials"] or chunk[-1] in s["specials"] or suffix is None:
            return False
        if prefix is not None and prefix(chunk) is not None:
            return False
        match = suffix(chunk)
        return match is not None and match.start() == len(chunk) - 1 and match.end() == len(chunk)

    def _new_chunk(self, chunk: str) -> tuple[str, ...]:
        """A chunk's tokens as if it stood alone; caches its lemmas and keep flags (one per spaCy
        token) and, in ``open``, the lemmas that would continue a phrase begun at its end when
        they come first in the next chunk (only then can a phrase run into the next chunk)."""
        s = self._s
        items = list(map(s["items"].__getitem__, self._words(chunk)))
        lemmas = tuple(lemma for lemma, _ in items)
        keeps = tuple(keep for _, keep in items)
        s["lemmas"][chunk], s["keeps"][chunk] = lemmas, keeps
        index = s["phrases"]
        starts = [j for j, lemma in enumerate(lemmas) if lemma in index]
        need = self._continuations(lemmas, starts)
        if need:
            s["open"][chunk] = need
        if starts:
            return tuple(self._match_phrases(lemmas, keeps, starts))
        return tuple(compress(lemmas, keeps))

    def _continuations(self, lemmas: tuple[str, ...], starts: Sequence[int]) -> frozenset[str]:
        """Next lemmas of the phrases that start in ``lemmas`` and match up to its end but are longer."""
        index = self._s["phrases"]
        n = len(lemmas)
        need: set[str] = set()
        for p in starts:
            rest = n - p
            for key, _ in index[lemmas[p]]:
                if len(key) > rest and key[:rest] == lemmas[p:]:
                    need.add(key[rest])
        return frozenset(need)

    def _crossing(self, pair: tuple[str, str]) -> bool:
        """Whether a phrase may run from the open chunk ``pair[0]`` into ``pair[1]`` (also, to be
        safe, when ``pair[1]`` has no token at all)."""
        lemmas = self._s["lemmas"][pair[1]]
        return not lemmas or lemmas[0] in self._s["open"][pair[0]]

    def _match_phrases(self, lemmas: tuple[str, ...], keeps: Sequence[bool],
                       starts: Iterable[int]) -> list[str]:
        """Join phrases (longest first) and drop stop phrases, left to right; elsewhere keep the
        words the filters kept. Only ``starts`` (positions whose lemma begins a phrase, in order)
        are tried."""
        index = self._s["phrases"]
        out: list[str] = []
        i = 0
        for p in starts:
            if p < i:  # inside a phrase already matched
                continue
            for key, output in index[lemmas[p]]:
                if lemmas[p:p + len(key)] == key:
                    out.extend(compress(lemmas[i:p], keeps[i:p]))
                    if output:
                        out.append(output)
                    i = p + len(key)
                    break
        out.extend(compress(lemmas[i:], keeps[i:]))
        return out

    def _clean_chunks(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens for ``texts``, paying spaCy once per distinct whitespace-delimited chunk.

        spaCy's tokenizer splits on runs of whitespace (``str.isspace``, exactly what
        ``str.split()`` uses) and tokenises each run of non-space characters on its own
        (prefixes, suffixes, infixes, special cases, URL/token_match all apply per run); the
        whitespace runs become space tokens, which are dropped anyway. So tokenising each
        distinct chunk once and concatenating gives the tokens of the whole text (tested against
        whole-text tokenisation in tests/test_clean.py). News vocabulary is Zipfian: 1M texts
        hold a few hundred thousand distinct chunks.

        Phrases are matched left to right over the whole text, but one can only run from a
        chunk into the next when that chunk is "open" (a phrase starting in it matches up to its
        end) and the next chunk begins with the lemma the phrase needs. Otherwise a text's tokens
        are its chunks' own tokens, concatenated without any per-token work.
        """
        s = self._s
        if len(s["alone"]) > _CHUNK_CACHE_SIZE:
            for cache in ("alone", "lemmas", "keeps", "open", "crossing", "units", "items", "plain"):
                s[cache].clear()
        get = s["alone"].__getitem__
        closed = s["open"].keys().isdisjoint
        is_open = s["open"].__contains__
        crossing = s["crossing"].__getitem__
        prepare = self.prepare
        out: list[list[str]] = []
        for text in texts:
            parts = prepare(text).split()
            tokens = list(chain.from_iterable(map(get, parts)))  # fills the caches first
            if not closed(parts):
                opened = list(map(is_open, parts))
                # (open chunk, next chunk) pairs only: zip reuses its tuple for the others
                pairs = compress(zip(parts, islice(parts, 1, None)), opened)
                crossings = list(compress(compress(count(), opened), map(crossing, pairs)))
                if crossings:
                    tokens = self._join_units(parts, crossings)
            out.append(tokens)
        return out

    def _join_units(self, parts: Sequence[str], crossings: Iterable[int]) -> list[str]:
        """Tokens of a text in which a phrase may run out of the chunks at ``crossings`` (in
        order) into the next: such a chunk is joined with the chunks the phrase may run into,
        and the unit matched as a whole (cached per unit: "integrated care boards" recurs);
        elsewhere chunks stand alone."""
        s = self._s
        alone, lemmas, units, open_ = s["alone"], s["lemmas"], s["units"], s["open"]
        out: list[str] = []
        done, n = 0, len(parts)
        for k in crossings:
            if k < done:  # inside the last unit already
                continue
            out.extend(chain.from_iterable(map(alone.__getitem__, islice(parts, done, k))))
            unit, unit_tokens, need = (parts[k],), alone[parts[k]], open_[parts[k]]
            done = k + 1
            while need and done < n:
                first = lemmas[parts[done]]
                if first and first[0] not in need:
                    break
                unit += (parts[done],)
                unit_tokens, need = units[unit]
                done += 1
            out.extend(unit_tokens)
        out.extend(chain.from_iterable(map(alone.__getitem__, islice(parts, done, None))))
        return out

    def _new_unit(self, unit: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
        """Tokens of consecutive chunks matched as one text, and the lemmas that would continue
        a phrase begun at their end (see :meth:`_continuations`)."""
        s = self._s
        lemmas = tuple(chain.from_iterable(map(s["lemmas"].__getitem__, unit)))
        keeps = tuple(chain.from_iterable(map(s["keeps"].__getitem__, unit)))
        index = s["phrases"]
        starts = [p for p, lemma in enumerate(lemmas) if lemma in index]
        return tuple(self._match_phrases(lemmas, keeps, starts)), self._continuations(lemmas, starts)

    def iter_tokens(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Stream tokens for ``texts`` in batches (memory bounded by ``batch_size``)."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) >= self.config.batch_size:
                yield from self.tokens(batch)
                batch = []
        if batch:
            yield from self.tokens(batch)

    def load(self) -> TextCleaner:
        """Build spaCy, the lemma table and the domain lists now (else on first use); returns self.

        The run loads them once before its batches are shared out, so processes forked from it
        inherit them instead of each building its own."""
        self._s  # noqa: B018 - built on first access
        return self

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """Lemma tokens for each text; each distinct text cleaned once (and cached for reuse).

        A text's tokens depend on the text alone, never on the batch it came in or on what the
        caches hold, so batches can be cleaned anywhere and joined (tested)."""
        texts = ["" if t is None else str(t) for t in texts]
        cache = self._cache
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        todo_clean = [t for t in todo if t.strip()]
        for t in todo:
            if not t.strip():
                cache[t] = []
        if todo_clean:
            if len(cache) + len(todo_clean) > self.config.cache_size:
                # start afresh, but keep this batch's texts that were already cached
                keep = {t: cache[t] for t in dict.fromkeys(texts) if t in cache}
                cache.clear()
                cache.update(keep)
            results = self._clean_chunks(todo_clean)
            if len(todo_clean) <= self.config.cache_size:
                cache.update(zip(todo_clean, results))
            else:  # too many to keep: answer from this batch only
                local = dict(zip(todo_clean, results))
                return [cache[t] if t in cache else local[t] for t in texts]
        return list(map(list, map(cache.__getitem__, texts)))


# ---- articles ------------------------------------------------------------------------------------------

def headline_text(article: Article) -> str:
    """The headline without its kicker ("Exclusive:") or series name ("London Eye:")."""
    headline = article.headline or ""
    for label in (article.kicker, article.series):
        if label and normalise_key(headline).startswith(normalise_key(label) + ":"):
            headline = headline.split(":", 1)[1].strip() if ":" in headline else headline
    return headline


def find_blurbs(articles: Sequence[Article], min_headlines: int = 2) -> frozenset[str]:
    """Normalised standfirsts that are stock blurbs: repeated under ``min_headlines`` or more
    different headlines, or belonging to a series (column/newsletter) article."""
    return _find_blurbs(articles, [normalise_key(a.standfirst) for a in articles], min_headlines)


def _find_blurbs(articles: Sequence[Article], keys: Sequence[str], min_headlines: int) -> frozenset[str]:
    """:func:`find_blurbs` given each article's normalised standfirst. Headlines are only
    normalised under a standfirst that occurs more than once (a blurb needs two headlines)."""
    repeated = {k for k, n in Counter(keys).items() if n > 1 and k}
    seen: dict[str, set[str]] = {}
    blurbs: set[str] = set()
    for article, key in zip(articles, keys):
        if not key:
            continue
        if key in repeated:
            seen.setdefault(key, set()).add(normalise_key(headline_text(article)))
        if article.series:
            blurbs.add(key)
    blurbs.update(k for k, heads in seen.items() if len(heads) >= max(2, min_headlines))
    return frozenset(blurbs)


def is_blurb(article: Article, blurbs: frozenset[str] | set[str] = frozenset()) -> bool:
    """True when the article's standfirst carries no topic (a stock blurb or a series blurb)."""
    key = normalise_key(article.standfirst)
    return bool(key) and (bool(article.series) or key in blurbs)


def article_text(article: Article, blurbs: frozenset[str] | set[str] = frozenset()) -> str:
    """Headline (no kicker/series) plus the standfirst unless it is a blurb: the text of an
    article as both the cluster and the tag stage see it."""
    head = headline_text(article)
    if article.standfirst and not is_blurb(article, blurbs):
        return f"{head}\n{article.standfirst}"
    return head


@dataclass
class CleanColumns:
    """The clean stage's values for a batch of articles: tokens per field, pounds per article
    (what the vectoriser reads: it weights the headline's tokens); from :func:`clean_articles`,
    its counts too."""

    headline_tokens: list[list[str]] = field(default_factory=list)
    standfirst_tokens: list[list[str]] = field(default_factory=list)
    amounts: list[list[float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def docs(self) -> list[tuple[list[str], list[str]]]:
        """(headline tokens, standfirst tokens) per article: the vectoriser's weighted input."""
        return list(zip(self.headline_tokens, self.standfirst_tokens))


class CleanStage:
    """The clean stage as a component (:mod:`pipeline.stages`).

    ``fit(articles)`` answers the corpus-wide question (which standfirsts are stock blurbs: they
    carry no topic and are not cleaned) and loads the cleaner; ``predict`` gives a batch's
    tokens and amounts; ``set_annotations`` writes ``tokens`` (headline then standfirst) and
    ``amounts``, and keeps how many of the tokens came from the headline (:meth:`split`: the
    vectoriser weights the headline).
    """

    name = "clean"
    corpus_wide = False
    uses: tuple[str, ...] = ()

    def __init__(self, config: CleanConfig | None = None, cleaner: TextCleaner | None = None) -> None:
        self.config = config or CleanConfig()
        self.cleaner = cleaner or TextCleaner(self.config)
        self.blurbs: frozenset[str] = frozenset()
        self.notes: list[str] = []
        self.counts: dict[str, int] = {}
        self.headline_counts: dict[str, int] = {}  # article id -> its headline's share of its tokens

    @classmethod
    def from_config(cls, section: CleanConfig) -> CleanStage:
        return cls(section)

    def fit(self, articles: Sequence[Article]) -> CleanStage:
        """Find the corpus's blurbs, count its texts, and load the cleaner (domain lists kept in
        it, so a copy sent elsewhere needs no file)."""
        keys = [normalise_key(a.standfirst) for a in articles]  # once per article, not four times
        self.blurbs = _find_blurbs(articles, keys, self.config.blurb_min_headlines)
        dropped = [bool(k) and (bool(a.series) or k in self.blurbs) for a, k in zip(articles, keys)]
        texts = [t for t in _headline_texts(articles) + _standfirst_texts(articles, dropped) if t.strip()]
        self.counts = {"texts": len(texts), "distinct_texts": len(set(texts)),
                       "blurbs": len(self.blurbs), "blurb_articles": sum(dropped)}
        self.cleaner.freeze().load()
        return self

    def predict(self, articles: Sequence[Article]) -> CleanColumns:
        """Headline tokens, standfirst tokens (none for a blurb) and pounds of each article."""
        heads = _headline_texts(articles)
        stands = _standfirst_texts(articles, [is_blurb(a, self.blurbs) for a in articles])
        tokens = self.cleaner.tokens(heads + stands)
        amounts = [[] if h.isascii() and s.isascii()  # no "£" (parse_amounts would say [])
                   else list(dict.fromkeys(parse_amounts(h) + parse_amounts(s))) for h, s in zip(heads, stands)]
        return CleanColumns(tokens[:len(heads)], tokens[len(heads):], amounts)

    def set_annotations(self, articles: Sequence[Article], columns: CleanColumns) -> dict[str, int]:
        """The one writer of ``tokens`` and ``amounts``."""
        empty = 0
        heads = self.headline_counts
        for article, head, stand, amounts in zip(articles, columns.headline_tokens,
                                                 columns.standfirst_tokens, columns.amounts, strict=True):
            article.tokens = head + stand
            article.amounts = amounts
            heads[article.id] = len(head)
            empty += not article.tokens
        return {"empty": empty}

    def summary(self) -> dict[str, int]:
        """The corpus's text and blurb counts (from :meth:`fit`)."""
        return dict(self.counts)

    def split(self, article: Article) -> tuple[list[str], list[str]]:
        """(headline, standfirst) tokens of an article this stage cleaned; all of ``tokens``
        count as headline for any other (a record read back from a file)."""
        tokens = article.tokens or []
        split = self.headline_counts.get(article.id)
        if split is None or split > len(tokens):
            return list(tokens), []
        return list(tokens[:split]), list(tokens[split:])


def clean_articles(articles: list[Article], config: CleanConfig | None = None,
                   cleaner: TextCleaner | None = None) -> CleanColumns:
    """Fill ``tokens`` (headline then non-blurb standfirst) and ``amounts`` (pounds) on each
    article, as the run's clean stage does in one batch; returns the columns (a vectoriser's
    input) with the stage's counts. Blurbs are found over the whole ``articles`` and contribute
    no tokens."""
    stage = CleanStage(config, cleaner).fit(articles)
    columns = stage.predict(articles)
    columns.counts = {**stage.counts, **stage.set_annotations(articles, columns)}
    return columns


def _headline_texts(articles: Sequence[Article]) -> list[str]:
    return [headline_text(a) if a.kicker or a.series else (a.headline or "") for a in articles]


def _standfirst_texts(articles: Sequence[Article], dropped: Sequence[Any]) -> list[str]:
    return ["" if d else (a.standfirst or "") for a, d in zip(articles, dropped)]
