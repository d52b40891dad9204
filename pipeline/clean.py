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
- :func:`clean_articles` -- fills ``Article.tokens`` / ``Article.amounts``, ignores blurbs.
- :func:`article_text` / :func:`find_blurbs` -- the text of an article as cluster and tag see it.
- :func:`repair_text`, :func:`parse_amounts` -- the two text helpers, usable on their own.
"""
from __future__ import annotations

import gc
import html
import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
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
_NAMED_BARE = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "apos": "'", "nbsp": " "}
# "#39;" and "quot;" left behind when a scraper dropped the "&" of an HTML entity.
# Scrapers often turned the "&" into a space ("Google #39;s"): that space goes with the entity.
_BARE_NUMERIC = re.compile(r"(?:(?<=\S) )?(?<![&\w])#(x[0-9a-fA-F]{1,5}|\d{1,6});")
_BARE_NAMED = re.compile(r"(?<![&\w])(quot|amp|lt|gt|apos|nbsp);")
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|co\.uk|org\.uk|nhs\.uk|gov\.uk)\b",
                  re.IGNORECASE)
_URL_HINT = re.compile(r"://|www\.|\.(?:com|net|org|co\.uk|org\.uk|nhs\.uk|gov\.uk)\b", re.IGNORECASE)
# A parenthesised source credit of 1-4 capitalised words: "(Reuters)", "(AP)", "(Canadian Press)".
_SOURCE_TAG = re.compile(r"\(\s*(?:[A-Z][\w.&'-]*\s*){1,4}\)")
# A dateline before a dash at the start: "AP - ", "LONDON (Reuters) - ", "TORONTO, Canada -- ".
_DATELINE = re.compile(r"^\s*(?:[A-Z][\w.&'/]*[,.]?\s+){0,5}[A-Z][\w.&'/]*\s*(?:\([^()]{1,40}\)\s*)?-{1,2}\s+")
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
    text = unicodedata.normalize("NFKC", text)
    return text if text.isascii() else text.translate(_QUOTES)  # every _QUOTES key is non-ASCII


def repair_text(text: str) -> str:
    """Undo common scraping damage: HTML entities (with or without "&"), tags, backslash line
    breaks, URLs, wire-service source tags and datelines. Generic, not tuned to one corpus."""
    # each pattern is skipped when a character it needs is absent (same output, most texts are
    # clean and these searches are most of the clean stage's own time)
    text = html.unescape(text)
    if "#" in text:
        text = _BARE_NUMERIC.sub(_bare_numeric, text)
    if ";" in text:
        text = _BARE_NAMED.sub(lambda m: _NAMED_BARE[m.group(1)], text)
    text = html.unescape(text)  # "&amp;lt;" style double escapes
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = text.replace("\\", " ")
    if _URL_HINT.search(text):  # what every _URL alternative needs, found far faster
        text = _URL.sub(" ", text)
    if "(" in text:
        text = _SOURCE_TAG.sub(" ", text)
    for _ in range(2):  # "SPACE.com - TORONTO, Canada -- ..." has two
        text = text.lstrip(" -:|")
        if "-" in text:
            text = _DATELINE.sub("", text, count=1)
    return text


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
    if not text:
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


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: cleaning allocates millions of small acyclic tuples
    and lists, and the collector's repeated full passes over them cost a sixth of the stage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---- the cleaner -------------------------------------------------------------------------------------

_DROP = ""  # phrase output meaning "drop these words"
# Per distinct whitespace-delimited chunk: (kept tokens, (lemma, kept) per spaCy token, positions
# whose lemma can start a phrase). Bounded: cleared when a batch would take it past this many.
_Chunk = tuple[tuple[str, ...], tuple[tuple[str, bool], ...], tuple[int, ...]]
_CHUNK_CACHE_SIZE = 1_000_000


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
        import spacy
        from spacy.lang.en.stop_words import STOP_WORDS

        lists = self.lists if self.lists is not None else load_domain_lists(self.config)
        nlp = spacy.blank("en")
        try:
            lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
            nlp.initialize()
            table = lemmatizer.lookups.get_table("lemma_lookup")
        except (ValueError, KeyError, OSError) as exc:  # spacy-lookups-data missing
            raise ConfigError(f"spaCy lookup lemmatiser unavailable ({exc}); "
                              "install spacy-lookups-data", key="clean") from None
        state: dict[str, Any] = {
            "tokenizer": nlp.tokenizer, "table": table, "lemma_cache": dict(lists.lemmas),
            "stop": frozenset(w.lower() for w in STOP_WORDS) | lists.stop_words,
            "acronyms": dict(lists.acronyms), "chunks": {},
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
        return _MONEY.sub(_money_placeholder, text)

    def _word_item(self, word: str) -> tuple[str, bool]:
        """(lemma or final token, kept by the filters) for one spaCy token: a pure function of
        the token text, so it is computed once per distinct chunk and cached."""
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

    def _chunk_entry(self, words: Sequence[str]) -> _Chunk:
        items = tuple(self._word_item(w) for w in words)
        index = self._s["phrases"]
        return (tuple(lemma for lemma, keep in items if keep), items,
                tuple(j for j, (lemma, _) in enumerate(items) if lemma in index))

    def _match_phrases(self, seq: Sequence[tuple[str, bool]], starts: Sequence[int]) -> list[str]:
        """Join phrases (longest first) and drop stop phrases, left to right; elsewhere keep the
        words the filters kept. Only ``starts`` (positions whose lemma begins a phrase) are tried."""
        index = self._s["phrases"]
        out: list[str] = []
        i, n = 0, len(seq)
        for p in starts:
            if p < i:  # inside a phrase already matched
                continue
            for key, output in index[seq[p][0]]:
                size = len(key)
                if p + size <= n and all(seq[p + j][0] == key[j] for j in range(1, size)):
                    out.extend([lemma for lemma, keep in seq[i:p] if keep])
                    if output:
                        out.append(output)
                    i = p + size
                    break
        out.extend([lemma for lemma, keep in seq[i:] if keep])
        return out

    def _clean_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens for ``texts`` (see :meth:`_clean_chunks`), garbage collector paused."""
        with paused_gc():
            return self._clean_chunks(texts)

    def _clean_chunks(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens for ``texts``, paying spaCy once per distinct whitespace-delimited chunk.

        spaCy's tokenizer splits on runs of whitespace (``str.isspace``, exactly what
        ``str.split()`` uses) and tokenises each run of non-space characters on its own
        (prefixes, suffixes, infixes, special cases, URL/token_match all apply per run); the
        whitespace runs become space tokens, which are dropped anyway. So tokenising each
        distinct chunk once and concatenating gives the tokens of the whole text (tested against
        whole-text tokenisation in tests/test_clean.py). News vocabulary is Zipfian: 1M texts
        hold a few hundred thousand distinct chunks.
        """
        s = self._s
        chunks: dict[str, _Chunk] = s["chunks"]
        split = [self.prepare(t).split() for t in texts]
        unseen = {c: None for parts in split for c in parts if c not in chunks}
        if len(chunks) + len(unseen) > _CHUNK_CACHE_SIZE:
            chunks.clear()
            unseen = {c: None for parts in split for c in parts}
        if unseen:
            tokenizer = s["tokenizer"]
            for chunk, doc in zip(unseen, tokenizer.pipe(unseen, batch_size=self.config.batch_size)):
                chunks[chunk] = self._chunk_entry([t.text for t in doc])
        out: list[list[str]] = []
        for parts in split:
            entries = [chunks[c] for c in parts]
            if not any(e[2] for e in entries):
                out.append([tok for e in entries for tok in e[0]])
                continue
            seq: list[tuple[str, bool]] = []
            starts: list[int] = []
            for kept, items, chunk_starts in entries:
                if chunk_starts:
                    base = len(seq)
                    starts.extend([base + j for j in chunk_starts])
                seq.extend(items)
            out.append(self._match_phrases(seq, starts))
        return out

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

    def tokens(self, texts: Sequence[str], n_jobs: int = 1) -> list[list[str]]:
        """Lemma tokens for each text; each distinct text cleaned once (and cached for reuse).

        ``n_jobs`` > 1 (0 = all cores) spreads large inputs over worker processes that return
        token lists only; below ``parallel_threshold`` distinct texts (by default always: each
        worker would rebuild the chunk cache, and one process measured faster on 2 cores) it
        runs in-process.
        """
        with paused_gc():
            return self._tokens(texts, n_jobs)

    def _tokens(self, texts: Sequence[str], n_jobs: int) -> list[list[str]]:
        texts = ["" if t is None else str(t) for t in texts]
        cache = self._cache
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        todo_clean = [t for t in todo if t.strip()]
        for t in todo:
            if not t.strip():
                cache[t] = []
        if todo_clean:
            if len(cache) + len(todo_clean) > self.config.cache_size:
                cache.clear()
                for t in todo:
                    if not t.strip():
                        cache[t] = []
            workers = _resolve_jobs(n_jobs)
            if workers > 1 and len(todo_clean) >= self.config.parallel_threshold:
                results = _parallel_clean(self.config, todo_clean, workers)
            else:
                results = self._clean_many(todo_clean)
            if len(todo_clean) <= self.config.cache_size:
                cache.update(zip(todo_clean, results))
            else:  # too many to keep: answer from this batch only
                local = dict(zip(todo_clean, results))
                return [cache[t] if t in cache else local[t] for t in texts]
        return [list(cache[t]) for t in texts]


def _resolve_jobs(n_jobs: int) -> int:
    if n_jobs is None or n_jobs == 1:
        return 1
    cores = os.cpu_count() or 1
    if n_jobs <= 0:
        return cores if n_jobs == 0 else max(1, cores + 1 + n_jobs)
    return n_jobs


@lru_cache(maxsize=4)
def _worker_cleaner(config_json: str) -> TextCleaner:
    """One cleaner per worker process and config (built once, reused across chunks)."""
    return TextCleaner(CleanConfig(**json.loads(config_json)))


def _clean_chunk(config_json: str, texts: list[str]) -> list[list[str]]:
    return _worker_cleaner(config_json)._clean_many(texts)


def _parallel_clean(config: CleanConfig, texts: list[str], workers: int) -> list[list[str]]:
    """Clean in worker processes; only strings go out and token lists come back (no Docs)."""
    from dataclasses import asdict

    from joblib import Parallel, delayed

    config_json = json.dumps(asdict(config), sort_keys=True)
    size = max(config.batch_size, -(-len(texts) // (workers * 4)))
    chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
    parts = Parallel(n_jobs=workers, backend="loky")(delayed(_clean_chunk)(config_json, c) for c in chunks)
    return [tokens for part in parts for tokens in part]


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
    seen: dict[str, set[str]] = {}
    blurbs: set[str] = set()
    for article in articles:
        key = normalise_key(article.standfirst)
        if not key:
            continue
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
class CleanResult:
    """Tokens per field (so the vectoriser can weight the headline) plus counts for the run."""

    headline_tokens: list[list[str]] = field(default_factory=list)
    standfirst_tokens: list[list[str]] = field(default_factory=list)
    blurbs: frozenset[str] = frozenset()
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def docs(self) -> list[tuple[list[str], list[str]]]:
        """(headline tokens, standfirst tokens) per article: the vectoriser's weighted input."""
        return list(zip(self.headline_tokens, self.standfirst_tokens))


# Last clean_articles call: article id -> (headline token count, total) so a Vectoriser handed
# plain Articles can still weight the headline. Replaced on every call (bounded by one corpus).
_FIELD_SPLIT: dict[str, tuple[int, int]] = {}


def split_tokens(article: Article) -> tuple[list[str], list[str]]:
    """(headline, standfirst) tokens of an article cleaned in this process; otherwise all of
    ``article.tokens`` count as headline."""
    tokens = article.tokens or []
    split = _FIELD_SPLIT.get(article.id)
    if split is None or split[1] != len(tokens):
        return list(tokens), []
    return list(tokens[:split[0]]), list(tokens[split[0]:])


def clean_articles(articles: list[Article], config: CleanConfig | None = None, n_jobs: int = 1,
                   cleaner: TextCleaner | None = None) -> CleanResult:
    """Fill ``tokens`` (headline then non-blurb standfirst) and ``amounts`` (pounds) on each
    article. Blurbs are detected over the whole corpus and contribute no tokens."""
    with paused_gc():
        return _clean_articles(articles, config, n_jobs, cleaner)


def _clean_articles(articles: list[Article], config: CleanConfig | None, n_jobs: int,
                    cleaner: TextCleaner | None) -> CleanResult:
    config = config or CleanConfig()
    cleaner = cleaner or TextCleaner(config)
    blurbs = find_blurbs(articles, config.blurb_min_headlines)
    heads = [headline_text(a) for a in articles]
    stands = ["" if is_blurb(a, blurbs) else (a.standfirst or "") for a in articles]
    distinct = len({t for t in heads + stands if t.strip()})
    tokens = cleaner.tokens(heads + stands, n_jobs=n_jobs)
    head_tokens, stand_tokens = tokens[:len(articles)], tokens[len(articles):]
    _FIELD_SPLIT.clear()
    empty = 0
    for article, head, stand, h_text, s_text in zip(articles, head_tokens, stand_tokens, heads, stands):
        article.tokens = head + stand
        article.amounts = list(dict.fromkeys(parse_amounts(h_text) + parse_amounts(s_text)))
        _FIELD_SPLIT[article.id] = (len(head), len(article.tokens))
        empty += not article.tokens
    counts = {
        "texts": sum(1 for t in heads + stands if t.strip()),
        "distinct_texts": distinct,
        "blurbs": len(blurbs),
        "blurb_articles": sum(1 for a in articles if is_blurb(a, blurbs)),
        "empty": empty,
    }
    return CleanResult(head_tokens, stand_tokens, blurbs, counts)
