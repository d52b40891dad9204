"""Parse stage: HSJ listing pages, JSON Lines and CSV -> unique :class:`Article` records.

A listing page is a title line (the ICS) followed by article slots, each an optional image
caption, one blank line, the headline, two blank lines and an optional standfirst. Real pages
drift (blank lines added or lost, CRLF, BOMs, tabs, U+00A0), so the page is not split on
blank-line counts alone: every non-blank line is labelled caption / headline / standfirst (or a
continuation of one, or junk) by a small Viterbi decoder that adds up how unlike each label a
line *looks* and how far each blank-line gap is from the gap that label change expects. The
cheapest labelling wins, so one odd gap is outvoted by what the lines look like and vice versa.

The pure functions (:func:`parse_page`, :func:`parse_jsonl`, :func:`parse_csv`) take text and a
file name and never touch the filesystem; :func:`parse_paths` reads through :mod:`pipeline.io`
and merges the same article seen on several pages into one record.

Speed (100k articles are a third of a million lines): the title check decodes only when cost
bounds cannot settle it (:func:`_title_surely_fits`), which gives exactly the result of decoding
(tested). The line features are computed for every line and the decoder walks its transition
table: a per-line cache and a decoder generated as source with ``exec`` each saved under 5% of
the pipeline's time at 100k and 1M articles and were removed (benchmarks/README.md, "Speed devices").
"""
from __future__ import annotations

import csv
import hashlib
import html
import io as _io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import chain, compress, count
from operator import attrgetter, getitem, itemgetter
from pathlib import Path
from typing import Any

from .config import ParseConfig
from .errors import InputError
from .io import decode_text, read_bytes
from .records import Article, Reject, Source, article_id, normalise_key

# Limits: past these a field is not the thing it claims to be (a scrape gone wrong).
MAX_TITLE_CHARS = 300
MAX_CAPTION_CHARS = 500
MAX_HEADLINE_CHARS = 1000
MAX_STANDFIRST_CHARS = 5000
SNIPPET_CHARS = 200

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)


# ---- records of one parse ---------------------------------------------------------------------


@dataclass(slots=True)
class Slot:
    """One occurrence of an article on a page or one input row, before duplicates are merged."""

    file: str
    line: int
    position: int
    headline: str
    standfirst: str | None = None
    caption: str | None = None
    kicker: str | None = None
    series: str | None = None
    system: str | None = None
    id: str | None = None
    systems: list[str] | None = None  # JSONL records may carry their own list
    # the id derived from the texts when ``id`` is None, if already computed (by a parse worker,
    # so the merge in the main process need not hash every slot): see with_derived_ids
    derived_id: str | None = None

    def __reduce__(self) -> tuple[type[Slot], tuple[Any, ...]]:
        """Pickle as constructor arguments: worker processes send back every slot they read, and
        the dataclass default for ``slots=True`` (a Python ``__setstate__`` per object) took 3x
        as long to load."""
        return Slot, _slot_fields(self)


_slot_fields = attrgetter(*(f.name for f in fields(Slot)))


@dataclass(slots=True)
class FileParse:
    """What one input file gave: its kind, page title, slots and rejects."""

    file: str
    kind: str
    title: str | None
    slots: list[Slot]
    rejects: list[Reject]
    # of the bytes parsed (for run.json), when read from a file: taken here, where the bytes are
    # in hand anyway, instead of reading every input a second time
    sha256: str | None = None
    size: int | None = None
    # control characters removed from the file's text fields (see strip_controls)
    controls: int = 0

    @property
    def slot_count(self) -> int:
        """Slots read in this file: articles found plus blocks rejected."""
        return len(self.slots) + len(self.rejects)


@dataclass
class ParseResult:
    """Unique articles in order of first appearance, rejects, and counts that reconcile.

    ``counts`` is a plain dict (``slots``, ``written``, ``merged``, ``rejected``, ``files``)
    so it can go straight into a run manifest; ``slots == written + merged + rejected``.
    """

    articles: list[Article]
    rejects: list[Reject]
    counts: dict[str, Any] = field(default_factory=dict)
    # per input file, in order: (file, sha256, bytes) of what was parsed (FileParse.sha256, .size)
    digests: list[tuple[str, str | None, int | None]] = field(default_factory=list)


# ---- text normalisation and headline prefixes -------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")
# C0 and C1 control characters and DEL, except tab, newline and carriage return (a line break
# here): terminal escape sequences, NULs and bells are never article text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def strip_controls(text: str) -> str:
    """``text`` without control characters (tab, newline and CR kept): see :data:`_CONTROL`."""
    return text if text.isprintable() else _CONTROL.sub("", text)


def count_controls(text: str) -> int:
    """How many characters :func:`strip_controls` removes from ``text``."""
    return 0 if text.isprintable() else len(_CONTROL.findall(text))


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` as ``U+XXXX`` (JSON can escape one; it is not text
    and cannot be written as UTF-8), else None."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def clean_text(text: str) -> str:
    """Whitespace-normalised text: HTML tags stripped, entities unescaped, control characters
    removed, runs of spaces collapsed.

    Pages and CSVs come from scrapes, so ``<b>`` and ``&amp;`` are artefacts, not content. Curly
    quotes, dashes and £ are kept: normalising those is the clean stage's job.
    """
    if "<" not in text and "&" not in text:
        # Printable text has no whitespace but " " and none of the invisible characters (all
        # are separators, controls or format characters), so with single inner spaces it is
        # clean already, and checking that costs half of rebuilding the string.
        if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        if text.isascii():
            return " ".join(strip_controls(text).split())
    else:
        if "<" in text:
            text = _TAG.sub(" ", text)
        if "&" in text:
            text = html.unescape(text)  # "&#27;" is an ESC: controls are stripped after this
            if "<" in text:
                text = _TAG.sub(" ", text)
    text = strip_controls(text)
    if not text.isascii() and _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


class HeadlineSplitter:
    """Splits "Exclusive: London Eye: text" into kicker, series and the topical text.

    Only configured kickers and series are recognised (case-insensitively), so a headline such as
    "HSJ Awards 2023: Performance Recovery Award" keeps its colon and stays a headline.
    """

    def __init__(self, config: ParseConfig) -> None:
        self.kickers = {k.casefold(): k for k in config.kickers if k.strip()}
        self.series = {s.casefold(): s for s in config.series if s.strip()}
        names = sorted({*self.kickers, *self.series}, key=len, reverse=True)
        alternation = "|".join(re.escape(n) for n in names) or r"(?!)"
        self._prefix = re.compile(rf"({alternation})\s*:\s*(?=\S)", re.IGNORECASE)
        self._span = max(map(len, names), default=0) + 3  # where the colon of a prefix can be

    def split(self, headline: str) -> tuple[str, str | None, str | None]:
        """Return ``(topical headline, kicker, series)``; at most one of each prefix is taken."""
        kicker = series = None
        if ":" not in headline:  # every prefix ends in a colon; most headlines have none
            return headline, kicker, series
        for _ in range(2):
            match = self._prefix.match(headline)
            if not match:
                break
            key = match.group(1).casefold()
            if key in self.kickers and kicker is None:
                kicker = self.kickers[key]
            elif key in self.series and series is None:
                series = self.series[key]
            else:
                break
            headline = headline[match.end():]
        return headline, kicker, series

    def has_prefix(self, text: str) -> bool:
        """Whether a line opens with a configured kicker or series (a strong headline sign)."""
        return ":" in text[: self._span] and self._prefix.match(text) is not None


def identity_headline(headline: str, series: str | None) -> str:
    """The headline the id is derived from: series prefix kept, kicker dropped.

    HSJ shows the same story with and without "Exclusive:", and those should merge; a column's
    name is part of what makes its entries distinct.
    """
    return f"{series}: {headline}" if series else headline


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


# ---- page layout decoding ---------------------------------------------------------------------

# Labels of a non-blank line after the title.
CAP, HEAD, STAND, HEAD_CONT, STAND_CONT, JUNK = range(6)
LABELS = ("caption", "headline", "standfirst", "headline", "standfirst", "junk")
_START = 6  # the title (or the top of a page without one)

_GAP_MISSING = 2.0    # cost per blank line too few
_GAP_EXTRA = 1.5      # cost per blank line too many (the commoner drift)
_GAP_CAP = 3          # a gap off by more than this costs no more (thousands of blank lines)
_GAP_MAX = 16         # gaps are clipped here before table lookup
_ORPHAN = 4.0         # a caption not followed by its headline
_JUNK = 14.0          # a line that is none of the three (dearer than two maximal gap costs)
_HEAD_CONT = 4.0      # a headline wrapped onto a second line (rare)
_STAND_CONT = 3.0     # a standfirst wrapped onto a second line
_DRIFT_PRIOR = 1.0    # preference for the page's nominal spacing over a shifted one

# (from, to) -> (blank lines expected between them, fixed cost). None: any gap is fine.
# Between articles there is one blank line before a caption and two before a caption-less
# headline; a headline without standfirst is followed by 3 (seen) or 4 (empty standfirst line).
_TRANSITIONS: dict[tuple[int, int], tuple[tuple[int, ...] | None, float]] = {
    (_START, CAP): ((1,), 0.0), (_START, HEAD): ((2,), 0.0), (_START, JUNK): (None, 0.0),
    (CAP, HEAD): ((1,), 0.0), (CAP, CAP): ((1,), _ORPHAN), (CAP, JUNK): (None, _ORPHAN),
    (JUNK, CAP): (None, 0.0), (JUNK, HEAD): (None, 0.0), (JUNK, JUNK): (None, 0.0),
}
for _h in (HEAD, HEAD_CONT):
    _TRANSITIONS.update({
        (_h, STAND): ((2,), 0.0), (_h, CAP): ((3, 4), 0.0), (_h, HEAD): ((4, 5), 0.0),
        (_h, HEAD_CONT): ((0,), _HEAD_CONT), (_h, JUNK): (None, 0.0)})
for _s in (STAND, STAND_CONT):
    _TRANSITIONS.update({
        (_s, CAP): ((1,), 0.0), (_s, HEAD): ((2,), 0.0), (_s, STAND_CONT): ((0,), _STAND_CONT),
        (_s, JUNK): (None, 0.0)})
_END_COST = {CAP: _ORPHAN}

# Spacing hypotheses (scale, shift) applied to the expected gaps between parts (not within a
# wrapped paragraph): nominal, one or two blank lines added everywhere, one lost, doubled.
_SPACINGS = ((1, 0), (1, 1), (1, -1), (2, 0), (1, 2))

_SENTENCE_END = frozenset(".!")
_CLOSERS = " \"'’”)]»"
_PHOTO_TAIL = re.compile(r"(?:\d+x\d+|(?:19|20)\d\d|\d{5,})$")


@dataclass(slots=True)
class _PageLines:
    """A page's non-blank lines as parallel lists: 1-based numbers, texts, gaps and label costs.

    Lists rather than one object per line: the decoder only reads ``gaps`` and ``emits``, and
    100k articles come on a third of a million lines.
    """

    numbers: list[int]
    texts: list[str]
    gaps: list[int]  # blank lines between a line and the previous non-blank one
    emits: list[tuple[float, ...]]  # cost of each label, continuations scored against the line before

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, part: slice) -> _PageLines:
        return _PageLines(self.numbers[part], self.texts[part], self.gaps[part], self.emits[part])


def _length_costs(n: int) -> tuple[float, float, float]:
    """The parts of the caption, headline and standfirst costs that depend on length alone."""
    cap = 1.5 + min((n - 60) / 20, 4.0) if n > 60 else 0.0
    head = 2.0 if n < 12 else 2.0 + min((n - 120) / 40, 4.0) if n > 120 else 0.0
    stand = 3.0 if n < 50 else 1.0 if n < 80 else 0.0
    return cap, head, stand


_LONG = 280  # from this length on, no cost depends on the length
_LENGTH_COSTS = [_length_costs(n) for n in range(_LONG + 1)]


def _shape(text: str, prefixed: bool) -> tuple[tuple[float, float, float], bool, bool]:
    """How unlike a caption, a headline and a standfirst a line looks (0 = typical).

    Each cost starts from its length part (looked up) and adds the other signs in a fixed order,
    so the sums, and the decoder's choices, are the same on every run.
    """
    words = text.count(" ") + 1
    last = text[-1:]
    tail = None
    if last and last in _CLOSERS:
        tail = text[-24:].rstrip(_CLOSERS)
        last = tail[-1:]
    ends_sentence = last in _SENTENCE_END
    starts_lower = text[:1].islower()
    # every branch of _PHOTO_TAIL ends in \d (a decimal digit), so most lines skip the search
    photo = last.isdecimal() and _PHOTO_TAIL.search(text[-24:] if tail is None else tail) is not None
    n = len(text)
    cap, head, stand = _LENGTH_COSTS[n if n < _LONG else _LONG]

    if words > 10:
        cap += 1.5
    if ends_sentence:
        cap += 3.0
    elif last == "?":
        cap += 2.0
    if prefixed:
        cap += 5.0

    if words > 25:
        head += 1.5
    if words <= 3 and not prefixed:
        head += 2.5
    if ends_sentence and not text.endswith("..."):
        head += 4.0
    if starts_lower:
        head += 2.5
    if photo:
        head += 2.5

    if words <= 5:
        stand += 2.0
    if not ends_sentence:
        stand += 1.5
    if starts_lower:
        stand += 2.0
    if photo:
        stand += 3.0
    if prefixed:
        stand += 4.0
    return (cap, head, stand), ends_sentence, starts_lower


def _title_cost(text: str, prefixed: bool) -> float:
    """How unlike a page title (an ICS name) the first line looks."""
    cost = 0.0
    if len(text) > 100:
        cost += 4.0
    if text.rstrip(_CLOSERS)[-1:] in _SENTENCE_END:
        cost += 4.0
    if prefixed:
        cost += 6.0
    if text[:1].islower():
        cost += 3.0
    if _PHOTO_TAIL.search(text):
        cost += 2.0
    return cost


def _gap_cost(deviation: int) -> float:
    if deviation >= 0:
        return _GAP_EXTRA * min(_GAP_CAP, deviation)
    return _GAP_MISSING * min(_GAP_CAP, -deviation)


def _gap_tables(scale: int, shift: int) -> dict[tuple[int, int], tuple[float, ...]]:
    """Cost of each gap 0.._GAP_MAX for every allowed transition, under one spacing hypothesis."""
    tables = {}
    for key, (expected, base) in _TRANSITIONS.items():
        if expected is None:
            tables[key] = (base,) * (_GAP_MAX + 1)
            continue
        if expected != (0,):
            expected = tuple(max(0, e * scale + shift) for e in expected)
        tables[key] = tuple(base + min(_gap_cost(g - e) for e in expected)
                            for g in range(_GAP_MAX + 1))
    return tables


_TABLES = {spacing: _gap_tables(*spacing) for spacing in _SPACINGS}
_INTO: dict[int, list[int]] = {}
for (_p, _q) in _TRANSITIONS:
    _INTO.setdefault(_q, []).append(_p)


def _step_costs(tables: dict[tuple[int, int], tuple[float, ...]]
                ) -> list[list[list[tuple[int, float]]]]:
    """For each gap 0.._GAP_MAX and each label: its predecessors (``_INTO`` order, the start
    state left to :func:`_decode`) with the transition's cost at that gap."""
    return [[[(p, tables[(p, label)][g]) for p in _INTO[label] if p != _START] for label in range(6)]
            for g in range(_GAP_MAX + 1)]


def _steps(gaps: Sequence[int], emits: Sequence[tuple[float, ...]],
           step_costs: list[list[list[tuple[int, float]]]], best: list[float],
           back: list[tuple[int, ...]]) -> list[float]:
    """The decoder's inner loop: one Viterbi step per line after the first.

    Each label takes its cheapest predecessor plus the transition's cost at the line's gap, plus
    the label's own cost. Predecessors are tried in ``_INTO`` order with a strict ``<``, so the
    first of equal costs wins. Appends each line's chosen predecessors to ``back`` and returns
    the final costs.
    """
    inf = float("inf")
    for gap, emit in zip(gaps, emits):
        costs: list[float] = []
        chosen: list[int] = []
        for predecessors, own in zip(step_costs[gap if gap < _GAP_MAX else _GAP_MAX], emit):
            cost, prev = inf, predecessors[0][0]
            for p, transition in predecessors:
                c = best[p] + transition
                if c < cost:
                    cost, prev = c, p
            costs.append(cost + own)
            chosen.append(prev)
        back.append(tuple(chosen))
        best = costs
    return best


def _decode(gaps: Sequence[int], emits: Sequence[tuple[float, ...]], tables: dict,
            start_cost: float, free_start: bool = False) -> tuple[float, list[int], float]:
    """Cheapest label sequence for a run of lines; returns (cost, labels, total gap cost on the path).

    ``free_start``: the first line follows no title, so its gap is not scored.
    """
    n = len(gaps)
    if n == 0:
        return start_cost, [], 0.0
    inf = float("inf")
    gap0 = gaps[0] if gaps[0] < _GAP_MAX else _GAP_MAX
    best: list[float] = []
    first: list[int] = []
    for label in range(6):  # the first line can only follow the start
        row = tables.get((_START, label))
        cost = inf if row is None else (start_cost if free_start else start_cost + row[gap0])
        best.append(cost + emits[0][label])
        first.append(-1 if row is None else _START)
    back: list[tuple[int, ...]] = [tuple(first)]
    best = _steps(gaps[1:], emits[1:], _STEP_COSTS[id(tables)], best, back)
    final, last = inf, -1
    for label in range(6):
        c = best[label] + _END_COST.get(label, 0.0)
        if c < final:
            final, last = c, label
    labels = [0] * n
    gap_cost = 0.0
    extra = _GAP_PARTS[id(tables)]
    for i in range(n - 1, 0, -1):
        labels[i] = last
        prev = back[i][last]
        gap = gaps[i]
        gap_cost += extra[prev * 7 + last][gap if gap < _GAP_MAX else _GAP_MAX]
        last = prev
    labels[0] = last
    if not free_start:
        gap_cost += extra[_START * 7 + last][gap0]
    return final, labels, gap_cost


def _gap_parts(tables: dict[tuple[int, int], tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Per transition (at ``prev * 7 + label``), its cost for each gap less its fixed cost."""
    parts: list[tuple[float, ...]] = [()] * 49
    for (prev, label), row in tables.items():
        base = _TRANSITIONS[(prev, label)][1]
        parts[prev * 7 + label] = tuple(cost - base for cost in row)
    return parts


_GAP_PARTS = {id(t): _gap_parts(t) for t in _TABLES.values()}
_STEP_COSTS = {id(t): _step_costs(t) for t in _TABLES.values()}

_BLANK: tuple[()] = ()
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_Emits = tuple[int, tuple[float, ...], tuple[float, ...]]


def _emits(costs: tuple[float, float, float], ends_sentence: bool, starts_lower: bool) -> _Emits:
    """``(which emit the next line takes, emit after an open line, emit after a finished sentence)``.

    A wrapped line (a continuation) is cheap after a line that did not end its sentence, or when
    it starts lower-case, so a line carries both and the line before picks one.
    """
    cont = 0.0 if starts_lower else 1.0
    return (2 if ends_sentence else 1, (*costs, cont, cont, _JUNK),
            (*costs, cont + 3.0, cont + 3.0, _JUNK))


def _line_features(raw: str, splitter: HeadlineSplitter) -> tuple[Any, ...]:
    """``(text, emits)`` of one raw page line (see :func:`_emits`), or ``()`` for a line that is
    blank once cleaned (only spaces, tags or invisible characters)."""
    text = clean_text(raw) if raw and not raw.isspace() else ""
    if not text:
        return _BLANK
    return text, _emits(*_shape(text, ":" in text and splitter.has_prefix(text)))


def _page_lines(text: str, splitter: HeadlineSplitter) -> _PageLines:
    """Non-blank lines (after normalisation) with their 1-based numbers and preceding gaps.

    Line by line in C where it can be (``map``/``compress``/``filter``; a page is mostly empty
    lines): a gap is the distance between line numbers, and each line's
    continuation cost is chosen by the line before it.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    features = [_line_features(raw, splitter) for raw in text.split("\n")]
    numbers = list(compress(count(1), features))  # blank lines (features ()) drop out
    features = list(filter(None, features))
    choices = list(map(_SECOND, features))  # (index the next line takes, two emits): see _emits
    return _PageLines(
        numbers,
        list(map(_FIRST, features)),
        [number - before - 1 for before, number in zip(chain((0,), numbers), numbers)],
        list(map(getitem, choices, chain((1,), map(_FIRST, choices)))))  # picked by the line before


def _layout(content: _PageLines) -> list[int]:
    """Labels for the lines after the title, trying the nominal spacing first."""
    cost, labels, gap_cost = _decode(content.gaps, content.emits, _TABLES[(1, 0)], 0.0)
    if gap_cost == 0.0:
        return labels
    for spacing in _SPACINGS[1:]:
        c, lab, _ = _decode(content.gaps, content.emits, _TABLES[spacing], _DRIFT_PRIOR)
        if c < cost:
            cost, labels = c, lab
    return labels


_TITLE_WINDOW = 10  # lines the title check decodes


def _title_surely_fits(lines: _PageLines, labels: Sequence[int], title_cost: float,
                       margin: float) -> bool:
    """Whether bounds alone show the first line stays the title (see :func:`_check_title`).

    The check compares the cheapest labelling of the first lines with a title (at most
    ``title_cost`` plus what the page's own labels of those lines cost) and without one (at
    least each line's cheapest label: no gap costs less than 0). The sums are taken in the
    decoder's order and float addition is monotone, so when the bounds settle the comparison
    its outcome is the decoders' -- on nearly every page, which then skips two decodes.
    """
    n = min(len(lines), _TITLE_WINDOW)
    tables = _TABLES[(1, 0)]
    upper, prev = title_cost, _START
    for gap, emit, label in zip(lines.gaps[1:n], lines.emits[1:n], labels):
        upper = upper + tables[(prev, label)][min(gap, _GAP_MAX)]
        upper = upper + emit[label]
        prev = label
    upper = upper + _END_COST.get(prev, 0.0)
    lower = 0.0
    for emit in lines.emits[:n]:
        lower = lower + min(emit)
    return lower + margin >= upper


def _check_title(lines: _PageLines, labels: Sequence[int], file: str,
                 splitter: HeadlineSplitter) -> None:
    """Refuse a page whose first line reads better as an article part than as an ICS name.

    ``labels`` are the layout of the lines after it (used only to bound the decoders' costs).
    """
    title, number = lines.texts[0], lines.numbers[0]
    if len(title) > MAX_TITLE_CHARS:
        raise InputError(f"no page title: line {number} has {len(title)} characters "
                         f"(a title names the ICS, at most {MAX_TITLE_CHARS})",
                         file=file, line=number)
    title_cost = _title_cost(title, splitter.has_prefix(title))
    # A missing title costs a whole page, so the structure must argue strongly unless the line
    # itself does not look like a name (lower-case start, a sentence, a kicker).
    margin = 3.0 if title_cost >= 3.0 else 6.0
    if title_cost < 6.0:
        if len(lines) == 1 or _title_surely_fits(lines, labels, title_cost, margin):
            return
        window = lines[:_TITLE_WINDOW]
        with_title, _, _ = _decode(window.gaps[1:], window.emits[1:], _TABLES[(1, 0)], title_cost)
        without, _, _ = _decode(window.gaps, window.emits, _TABLES[(1, 0)], 0.0, free_start=True)
        if not without + margin < with_title:
            return
    raise InputError(f"no page title: line {number} looks like an article "
                     f"(a page starts with its ICS name): {_snippet(title)!r}",
                     file=file, line=number)


_SPLITTERS: dict[tuple[tuple[str, ...], tuple[str, ...]], HeadlineSplitter] = {}


def _splitter(config: ParseConfig) -> HeadlineSplitter:
    """One splitter per kicker/series configuration, reused across pages (its prefix pattern is
    compiled once)."""
    key = (tuple(config.kickers), tuple(config.series))
    splitter = _SPLITTERS.get(key)
    if splitter is None:
        if len(_SPLITTERS) >= 8:
            _SPLITTERS.clear()
        splitter = _SPLITTERS[key] = HeadlineSplitter(config)
    return splitter


def parse_page(text: str, file: str, config: ParseConfig | None = None
               ) -> tuple[str | None, list[Slot], list[Reject]]:
    """Parse one HSJ listing page into ``(title, slots, rejects)``.

    Raises :class:`InputError` for a page that is empty or has no title; blocks inside the page
    that fit no article shape become rejects. A title with no articles is a valid empty page.
    """
    splitter = _splitter(config or ParseConfig())
    lines = _page_lines(text, splitter)
    if not lines:
        raise InputError("empty file (no text)", file=file, line=1)
    content = lines[1:]
    labels = _layout(content)
    _check_title(lines, labels, file, splitter)
    title = lines.texts[0]
    return title, *_assemble(content, labels, title, file, splitter)


def _orphan_caption(file: str, content: _PageLines, i: int) -> Reject:
    """A caption followed by no headline is a reject (it never silently disappears)."""
    return Reject(file, content.numbers[i], "caption with no headline", _snippet(content.texts[i]))


def _assemble(content: _PageLines, labels: Sequence[int], title: str, file: str,
              splitter: HeadlineSplitter) -> tuple[list[Slot], list[Reject]]:
    """Group labelled lines into slots; orphans, junk and oversized parts become rejects."""
    slots: list[Slot] = []
    rejects: list[Reject] = []
    numbers, texts = content.numbers, content.texts
    caption = -1  # index of a caption waiting for its headline
    reading = False  # a slot is open: its headline line, position, texts and caption follow
    line = position = slot_position = 0
    headline, standfirst, slot_caption, caption_line = "", None, None, 0
    for i, label in enumerate(labels):
        if reading and label == HEAD_CONT:
            headline += " " + texts[i]
            continue
        if reading and (label == STAND or label == STAND_CONT):
            standfirst = texts[i] if standfirst is None else standfirst + " " + texts[i]
            continue
        if reading:
            out = _page_slot(file, line, slot_position, headline, standfirst, slot_caption, title, splitter,
                             caption_line)
            (slots if type(out) is Slot else rejects).append(out)  # type: ignore[arg-type]
            reading = False
        if label == HEAD:
            position += 1
            reading, line, slot_position = True, numbers[i], position
            headline, standfirst = texts[i], None
            slot_caption = texts[caption] if caption >= 0 else None
            caption_line = numbers[caption] if caption >= 0 else 0
            caption = -1
        elif label == CAP:
            if caption >= 0:
                position += 1
                rejects.append(_orphan_caption(file, content, caption))
            caption = i
        else:  # junk, or a continuation with nothing to continue
            if caption >= 0:
                position += 1
                rejects.append(_orphan_caption(file, content, caption))
                caption = -1
            position += 1
            rejects.append(Reject(file, numbers[i], "line fits no article shape "
                                  "(not a caption, headline or standfirst)", _snippet(texts[i])))
    if reading:
        out = _page_slot(file, line, slot_position, headline, standfirst, slot_caption, title, splitter,
                         caption_line)
        (slots if type(out) is Slot else rejects).append(out)  # type: ignore[arg-type]
    if caption >= 0:
        rejects.append(_orphan_caption(file, content, caption))
    return slots, rejects


def _too_long(part: str, text: str | None, limit: int) -> str | None:
    if text is not None and len(text) > limit:
        return f"{part} too long ({len(text)} characters; limit {limit})"
    return None


def _page_slot(file: str, line: int, position: int, headline: str, standfirst: str | None,
               caption: str | None, title: str, splitter: HeadlineSplitter,
               caption_line: int = 0) -> Slot | Reject:
    """One page slot from its joined parts, or a reject when a part is too long to be one (at the
    headline's line, or at the caption's with its text when the caption is the part at fault)."""
    if (len(headline) > MAX_HEADLINE_CHARS or (standfirst and len(standfirst) > MAX_STANDFIRST_CHARS)
            or (caption and len(caption) > MAX_CAPTION_CHARS)):
        reason = (_too_long("headline", headline, MAX_HEADLINE_CHARS)
                  or _too_long("standfirst", standfirst, MAX_STANDFIRST_CHARS))
        if reason is None and caption is not None and caption_line:
            return Reject(file, caption_line, f"{_too_long('caption', caption, MAX_CAPTION_CHARS)}; "
                          f"its article at line {line} is rejected with it", _snippet(caption))
        return Reject(file, line, reason or _too_long("caption", caption, MAX_CAPTION_CHARS) or "",
                      _snippet(headline))
    topical, kicker, series = splitter.split(headline)
    return Slot(file, line, position, topical, standfirst, caption, kicker, series, title)


# ---- JSON Lines and CSV ----------------------------------------------------------------------


def _record_slot(file: str, line: int, position: int, headline: Any, standfirst: Any,
                 splitter: HeadlineSplitter, *, caption: Any = None, id_: Any = None,
                 kicker: Any = None, series: Any = None, systems: Any = None
                 ) -> Slot | Reject:
    """Validate one JSONL/CSV record into a slot, or say why it is rejected."""
    def bad(reason: str) -> Reject:
        snippet = _SURROGATE.sub("\ufffd", clean_text(str(headline or "")))
        return Reject(file, line, reason, _snippet(snippet) or None)

    if headline is None or (isinstance(headline, str) and not headline.strip()):
        return bad("no headline")
    if not isinstance(headline, str):
        return bad("headline is not text")
    for name, value in (("standfirst", standfirst), ("caption", caption), ("kicker", kicker),
                        ("series", series)):
        if value is not None and not isinstance(value, str):
            return bad(f"{name} is not text")
    if id_ is not None and (isinstance(id_, bool) or not isinstance(id_, (str, int))
                            or not str(id_).strip()):
        return bad("id is not a non-empty string or integer")
    if systems is not None and not (isinstance(systems, list)
                                    and all(isinstance(s, str) for s in systems)):
        return bad("systems is not a list of strings")
    for name, value in (("headline", headline), ("standfirst", standfirst), ("caption", caption),
                        ("kicker", kicker), ("series", series), ("id", id_),
                        *(("systems", s) for s in systems or ())):
        found = lone_surrogate(value) if isinstance(value, str) else None
        if found:
            return bad(f"{name} contains a lone surrogate ({found}), which is not text")
    id_text = strip_controls(str(id_)).strip() if id_ is not None else None
    if id_ is not None and not id_text:
        return bad("id is empty once control characters are removed")
    if not clean_text(headline):
        return bad("no headline (nothing left once tags and control characters are removed)")
    headline = clean_text(headline)
    standfirst = clean_text(standfirst) if standfirst else None
    caption = clean_text(caption) if caption else None
    reason = (_too_long("headline", headline, MAX_HEADLINE_CHARS)
              or _too_long("standfirst", standfirst, MAX_STANDFIRST_CHARS)
              or _too_long("caption", caption, MAX_CAPTION_CHARS))
    if reason:
        return bad(reason)
    topical, found_kicker, found_series = splitter.split(headline)
    if not topical:
        return bad("no headline")
    return Slot(file, line, position, topical, standfirst or None, caption,
                clean_text(kicker) or None if kicker else found_kicker,
                clean_text(series) or None if series else found_series,
                id=id_text,
                systems=[clean_text(s) for s in systems if clean_text(s)] if systems else None)


def _field_controls(*values: Any) -> int:
    """Control characters in the text fields of one record (lists of strings counted too)."""
    n = 0
    for value in values:
        if isinstance(value, str):
            n += count_controls(value)
        elif isinstance(value, list):
            n += sum(count_controls(v) for v in value if isinstance(v, str))
    return n


def parse_jsonl(text: str, file: str, config: ParseConfig | None = None
                ) -> tuple[list[Slot], list[Reject]]:
    """Parse JSON Lines records (``headline`` required; ``standfirst``, ``id``, ``caption``,
    ``kicker``, ``series``, ``systems`` optional; other keys ignored). Blank lines are skipped.
    """
    slots, rejects, _ = _parse_jsonl(text, file, config)
    return slots, rejects


def _parse_jsonl(text: str, file: str, config: ParseConfig | None = None
                 ) -> tuple[list[Slot], list[Reject], int]:
    """:func:`parse_jsonl`, and the number of control characters stripped from text fields."""
    splitter = _splitter(config or ParseConfig())
    slots: list[Slot] = []
    rejects: list[Reject] = []
    controls = 0
    position = 0
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        position += 1
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            message = getattr(exc, "msg", "too deeply nested")
            rejects.append(Reject(file, number, f"not valid JSON ({message})",
                                  _snippet(strip_controls(raw).strip())))
            continue
        if not isinstance(record, dict):
            rejects.append(Reject(file, number, "not a JSON object", _snippet(strip_controls(raw).strip())))
            continue
        get = record.get
        controls += _field_controls(get("headline"), get("standfirst"), get("caption"), get("id"),
                                    get("kicker"), get("series"), get("systems"))
        out = _record_slot(file, number, position, record.get("headline"), record.get("standfirst"),
                           splitter, caption=record.get("caption"), id_=record.get("id"),
                           kicker=record.get("kicker"), series=record.get("series"),
                           systems=record.get("systems"))
        (slots if isinstance(out, Slot) else rejects).append(out)  # type: ignore[arg-type]
    return slots, rejects, controls


@dataclass
class TagInput:
    """A ``tag`` input: what to classify, the JSON records to echo (None for plain lines), their
    line numbers, the rejects, and the control characters stripped; ``read = tagged + rejected``."""

    items: list[Any] = field(default_factory=list)
    records: list[dict[str, Any] | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    controls: int = 0

    @property
    def read(self) -> int:
        """Non-blank lines read."""
        return len(self.items) + len(self.rejects)


def parse_tag_lines(text: str, file: str, config: ParseConfig | None = None) -> TagInput:
    """Headlines one per line, or JSON records (a line opening with ``{``), for ``hsj-pipeline tag``.

    Each line is checked as :func:`parse_jsonl` checks a record (the same reasons), so ``tag``,
    ``parse`` and ``run`` accept and reject the same lines; a bad line is a reject, not an error.
    Headline, standfirst and series lose their control characters in the item and the record.
    """
    if not text or text.isspace():
        raise InputError("empty file (no text)", file=file, line=1)
    splitter = _splitter(config or ParseConfig())
    out = TagInput()
    position = 0
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        position += 1
        record: dict[str, Any] | None = None
        if raw.lstrip().startswith("{"):
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                message = getattr(exc, "msg", "too deeply nested")
                out.rejects.append(Reject(file, number, f"not valid JSON ({message})",
                                          _snippet(strip_controls(raw).strip())))
                continue
            assert isinstance(record, dict)  # valid JSON opening with "{"
            get = record.get
            out.controls += _field_controls(get("headline"), get("standfirst"), get("series"))
            checked = _record_slot(file, number, position, get("headline"), get("standfirst"), splitter,
                                   caption=get("caption"), id_=get("id"), kicker=get("kicker"),
                                   series=get("series"), systems=get("systems"))
            if isinstance(checked, Reject):
                out.rejects.append(checked)
                continue
            record = dict(record)
            for key in ("headline", "standfirst", "series"):
                if isinstance(record.get(key), str):
                    record[key] = strip_controls(record[key])
            item: Any = {"headline": record["headline"], "standfirst": record.get("standfirst"),
                         "series": record.get("series")}
        else:
            out.controls += count_controls(raw)
            checked = _record_slot(file, number, position, raw, None, splitter)
            if isinstance(checked, Reject):
                out.rejects.append(checked)
                continue
            item = strip_controls(raw).strip()
        out.items.append(item)
        out.records.append(record)
        out.lines.append(number)
    return out


def no_usable_articles(read: int, rejected: int, rejects_at: str | None) -> InputError:
    """The one error of ``parse``, ``run`` and ``tag`` when the inputs gave nothing to write
    (raised after the rejects are written, so every reason can still be read)."""
    where = f"; reasons in {rejects_at}" if rejected and rejects_at else ""
    return InputError(f"no usable articles in the input ({read} read, {rejected} rejected{where})")


def _column_index(spec: str, header: list[str] | None, file: str, role: str) -> int:
    """0-based index of a column given by header name or 1-based number."""
    spec = spec.strip()
    if spec.isdigit():
        index = int(spec) - 1
        if index < 0:
            raise InputError(f"{role} column number must be 1 or more, got {spec}", file=file, line=1)
        width = len(header) if header is not None else None
        if width is not None and index >= width:
            raise InputError(f"{role} column {spec} does not exist (the file has {width} columns)",
                             file=file, line=1)
        return index
    assert header is not None
    names = [h.strip() for h in header]
    if spec in names:
        return names.index(spec)
    folded = [h.casefold() for h in names]
    if spec.casefold() in folded:
        return folded.index(spec.casefold())
    raise InputError(f"no {role} column {spec!r} in the header (columns: {', '.join(names)}); "
                     f"choose one with --{role}-column NAME or a 1-based number",
                     file=file, line=1)


def parse_csv(text: str, file: str, headline_column: str | None = None,
              standfirst_column: str | None = None, config: ParseConfig | None = None
              ) -> tuple[list[Slot], list[Reject]]:
    """Parse CSV rows into slots.

    Columns are header names, or 1-based numbers for a file without a header (AG News is
    ``class,title,description``: ``--headline-column 2 --standfirst-column 3``). The file has a
    header unless every column given is a number. A standfirst column named only by the config
    default may be absent; one given explicitly must exist. An ``id`` column, if the header has
    one, becomes the record id; other columns (labels, dates) are not carried.
    """
    slots, rejects, _ = _parse_csv(text, file, headline_column, standfirst_column, config)
    return slots, rejects


def _parse_csv(text: str, file: str, headline_column: str | None = None,
               standfirst_column: str | None = None, config: ParseConfig | None = None
               ) -> tuple[list[Slot], list[Reject], int]:
    """:func:`parse_csv`, and the number of control characters stripped from text fields."""
    config = config or ParseConfig()
    controls = 0
    splitter = _splitter(config)
    head_spec = (headline_column or config.headline_column).strip()
    stand_explicit = standfirst_column is not None
    stand_spec = (standfirst_column if stand_explicit else config.standfirst_column) or ""
    stand_spec = stand_spec.strip()
    has_header = not head_spec.isdigit() or (stand_explicit and bool(stand_spec)
                                             and not stand_spec.isdigit())
    csv.field_size_limit(2**31 - 1)  # fields are bounded by the record limits, not by csv
    reader = csv.reader(_io.StringIO(text, newline=""))
    slots: list[Slot] = []
    rejects: list[Reject] = []
    header: list[str] | None = None
    head_i = stand_i = id_i = None
    width: int | None = None
    position = 0
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.append(Reject(file, start, f"unreadable CSV row ({exc})"))
            position += 1
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row or not any(cell.strip() for cell in row):
            continue
        if has_header and header is None:
            header = row
            head_i = _column_index(head_spec, header, file, "headline")
            if stand_spec:
                try:
                    stand_i = _column_index(stand_spec, header, file, "standfirst")
                except InputError:
                    if stand_explicit:
                        raise
            folded = [h.strip().casefold() for h in header]
            id_i = folded.index("id") if "id" in folded else None
            width = len(header)
            continue
        if head_i is None:
            head_i = _column_index(head_spec, None, file, "headline")
            stand_i = _column_index(stand_spec, None, file, "standfirst") if stand_spec.isdigit() \
                and stand_explicit else None
            width = len(row)
        position += 1
        if len(row) != width:
            rejects.append(Reject(file, line, f"ragged row: {len(row)} fields, expected {width}",
                                  _snippet(clean_text(",".join(row)))))
            continue
        if head_i >= len(row) or (stand_i is not None and stand_i >= len(row)):
            rejects.append(Reject(file, line, "row is missing the headline or standfirst column",
                                  _snippet(clean_text(",".join(row)))))
            continue
        standfirst = row[stand_i] if stand_i is not None else None
        id_ = (row[id_i] or None) if id_i is not None else None
        controls += _field_controls(row[head_i], standfirst, id_)
        out = _record_slot(file, line, position, row[head_i], standfirst, splitter, id_=id_)
        (slots if isinstance(out, Slot) else rejects).append(out)  # type: ignore[arg-type]
    if header is None and head_i is None:
        raise InputError("empty file (no rows)", file=file, line=1)
    return slots, rejects, controls


# ---- files, merging and the stage entry point ------------------------------------------------


def input_kind(path: str | Path) -> str:
    """``jsonl``, ``csv`` or ``page`` from the file suffix (anything else is read as a page)."""
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "page"


def parse_text(text: str, file: str, kind: str, config: ParseConfig, *,
               headline_column: str | None = None, standfirst_column: str | None = None
               ) -> FileParse:
    """Parse already-decoded text of one input of the given kind (no filesystem access)."""
    if not text or text.isspace():  # not text.strip(): no copy of the whole file
        raise InputError("empty file (no text)", file=file, line=1)
    if kind == "jsonl":
        slots, rejects, controls = _parse_jsonl(text, file, config)
        return FileParse(file, kind, None, slots, rejects, controls=controls)
    if kind == "csv":
        slots, rejects, controls = _parse_csv(text, file, headline_column, standfirst_column, config)
        return FileParse(file, kind, None, slots, rejects, controls=controls)
    title, slots, rejects = parse_page(text, file, config)
    # every line of a page is text (title, caption, headline, standfirst): count in the whole
    return FileParse(file, kind, title, slots, rejects, controls=count_controls(text))


def parse_file(path: str | Path, config: ParseConfig, *, headline_column: str | None = None,
               standfirst_column: str | None = None) -> FileParse:
    """Read (via :mod:`pipeline.io`) and parse one input file; its checksum and size too."""
    return parse_bytes(read_bytes(Path(path)), str(path), config, headline_column=headline_column,
                       standfirst_column=standfirst_column)


def parse_bytes(data: bytes, name: str, config: ParseConfig, *, headline_column: str | None = None,
                standfirst_column: str | None = None) -> FileParse:
    """Parse the bytes of the input file the user named ``name`` (its kind from that name, which
    is also the file of every source and reject), with their checksum and size. Separate from
    the reading so a Dask worker can read the file by its real path and still record the name."""
    parsed = parse_text(decode_text(data, name), name, input_kind(name), config,
                        headline_column=headline_column, standfirst_column=standfirst_column)
    parsed.sha256, parsed.size = hashlib.sha256(data).hexdigest(), len(data)
    return parsed


def with_derived_ids(parsed: FileParse) -> FileParse:
    """Fill ``derived_id`` on the slots without an id: what the merge would compute, done where
    the file was parsed (in a worker process, in parallel) instead of in the merging process."""
    for slot in parsed.slots:
        if not slot.id:
            slot.derived_id = article_id(identity_headline(slot.headline, slot.series), slot.standfirst)
    return parsed


def iter_parsed_files(paths: Iterable[str | Path], config: ParseConfig, *,
                      headline_column: str | None = None, standfirst_column: str | None = None
                      ) -> Iterator[FileParse]:
    """Parse files one at a time, so callers can stream or farm files out to workers."""
    for path in paths:
        yield parse_file(path, config, headline_column=headline_column,
                         standfirst_column=standfirst_column)


class ArticleMerger:
    """Folds slots into unique articles keyed by id, counting merges; order of first appearance."""

    def __init__(self) -> None:
        self.by_id: dict[str, Article] = {}
        self._keys: dict[str, str] = {}
        self._by_ident: dict[str, Article] = {}  # identity headline -> first article with derived id
        self.slots = 0
        self.merged = 0
        self.controls = 0
        self.rejects: list[Reject] = []
        self.files: list[dict[str, Any]] = []
        self.digests: list[tuple[str, str | None, int | None]] = []

    def add_file(self, parsed: FileParse) -> None:
        """Merge one file's slots and keep its rejects, in page order."""
        rejected_before = len(self.rejects)
        for slot in parsed.slots:
            self.add(slot)
        self.rejects.extend(parsed.rejects)
        self.slots += len(parsed.rejects)
        self.controls += parsed.controls
        self.files.append({"file": parsed.file, "kind": parsed.kind, "title": parsed.title,
                           "slots": parsed.slot_count,
                           "rejected": len(self.rejects) - rejected_before,
                           "controls_stripped": parsed.controls})
        self.digests.append((parsed.file, parsed.sha256, parsed.size))

    def add(self, slot: Slot) -> None:
        """Merge one slot: a new article, or one more system and source on an existing one."""
        self.slots += 1
        ident = identity_headline(slot.headline, slot.series)
        if slot.id:  # a derived id is a hash of the normalised texts, so only a given id needs them checked
            art_id = slot.id
            key = normalise_key(ident) + "\n" + normalise_key(slot.standfirst)
        else:  # the same texts again (a merge) have the same id: no need to hash them again
            art_id = slot.derived_id
            if art_id is None:
                known = self._by_ident.get(ident)
                art_id = known.id if known is not None and known.standfirst == slot.standfirst \
                    else article_id(ident, slot.standfirst)
            key = ""
        source = Source(slot.file, slot.line, slot.position)
        article = self.by_id.get(art_id)
        if article is None:
            systems = [slot.system] if slot.system else list(dict.fromkeys(slot.systems or ()))
            article = self.by_id[art_id] = Article(art_id, slot.headline, slot.standfirst, slot.caption,
                                                   slot.kicker, slot.series, systems, [source])
            if key:
                self._keys[art_id] = key
            else:
                self._by_ident.setdefault(ident, article)
            return
        if slot.id and key != (self._keys.get(art_id) or normalise_key(
                identity_headline(article.headline, article.series)) + "\n" + normalise_key(article.standfirst)):
            self.rejects.append(Reject(
                slot.file, slot.line,
                f"id {art_id!r} is already used by a different article "
                f"({article.sources[0].file}:{article.sources[0].line})", _snippet(slot.headline)))
            return
        self.merged += 1
        if slot.system:
            if slot.system not in article.systems:
                article.systems.append(slot.system)
        else:
            for system in slot.systems or ():
                if system not in article.systems:
                    article.systems.append(system)
        article.sources.append(source)
        if article.caption is None:
            article.caption = slot.caption
        if article.kicker is None:
            article.kicker = slot.kicker

    def result(self) -> ParseResult:
        """The articles, rejects and reconciled counts so far."""
        articles = list(self.by_id.values())
        counts = {"slots": self.slots, "written": len(articles), "merged": self.merged,
                  "rejected": len(self.rejects), "controls_stripped": self.controls,
                  "files": self.files}
        assert counts["slots"] == counts["written"] + counts["merged"] + counts["rejected"]
        return ParseResult(articles, list(self.rejects), counts, list(self.digests))


def parse_paths(paths: Iterable[str | Path], config: ParseConfig | None = None, *,
                headline_column: str | None = None, standfirst_column: str | None = None
                ) -> ParseResult:
    """Parse every input (pages, ``.jsonl``, ``.csv``) and merge duplicates across them.

    Raises :class:`InputError` on the first file that cannot be read as a whole (missing,
    directory, empty, not UTF-8, binary, page without title, CSV without the named column).
    """
    merger = ArticleMerger()
    for parsed in iter_parsed_files(paths, config or ParseConfig(), headline_column=headline_column,
                                    standfirst_column=standfirst_column):
        merger.add_file(parsed)
    return merger.result()


# ---- the stage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    """One input: the name the user gave (what sources and rejects record) and its real path,
    resolved where the run started (what a process elsewhere reads: a Dask worker's working
    directory is not the client's)."""

    name: str
    real: str


@dataclass(frozen=True)
class NotRead:
    """An input that a process elsewhere could not read (not there, no permission...)."""

    name: str
    reason: str
    where: str


class ParseStage:
    """The parse stage as a component (:mod:`pipeline.stages`): the source of the records.

    ``predict(files)`` parses a batch of :class:`InputFile`; ``combine(parts)`` merges the
    batches' results in input order into unique articles (:class:`ArticleMerger`), so any
    grouping of the files gives the same articles, rejects and counts.

    ``remote``: batches may be parsed on other machines. A file is then read by its real path,
    and ``combine`` parses a file here when the other side could not read it, or read other
    bytes than this machine has (compared by SHA-256), with a note naming where.
    """

    name = "parse"
    corpus_wide = False
    uses = ("remote",)

    def __init__(self, config: ParseConfig | None = None, remote: bool = False) -> None:
        self.config = config or ParseConfig()
        self.remote = remote
        self.notes: list[str] = []

    @classmethod
    def from_config(cls, section: ParseConfig, remote: bool = False) -> ParseStage:
        return cls(section, remote=remote)

    def predict(self, files: Sequence[InputFile]) -> list[FileParse | NotRead]:
        """Each file parsed (slot ids derived here, where the work is spread)."""
        if not self.remote:
            return [with_derived_ids(parse_file(f.name, self.config)) for f in files]
        from .execution import worker_name

        parsed: list[FileParse | NotRead] = []
        for f in files:
            try:
                data = read_bytes(Path(f.real))
            except InputError as exc:
                parsed.append(NotRead(f.name, exc.message, worker_name()))
                continue
            parsed.append(with_derived_ids(parse_bytes(data, f.name, self.config)))
        return parsed

    def combine(self, parts: Iterable[Sequence[FileParse | NotRead]],
                files: Sequence[InputFile] = ()) -> ParseResult:
        """The batches' results merged in order (``files``: the inputs, for remote checks)."""
        merger = ArticleMerger()
        reals = {f.name: f.real for f in files}
        for part in parts:
            for parsed in part:
                merger.add_file(self._as_read_here(parsed, reals) if self.remote else parsed)
        return merger.result()

    def _as_read_here(self, parsed: FileParse | NotRead, reals: dict[str, str]) -> FileParse:
        """A remote parse if it read the bytes this machine reads, else this machine's own."""
        if isinstance(parsed, NotRead):
            self.notes.append(f"worker {parsed.where} cannot read {parsed.name} ({parsed.reason}); "
                              "parsed on the client")
            return with_derived_ids(parse_file(parsed.name, self.config))
        real = reals.get(parsed.file, parsed.file)
        try:
            same = hashlib.sha256(read_bytes(Path(real))).hexdigest() == parsed.sha256
        except InputError:
            same = False
        if not same:
            self.notes.append(f"a worker read other bytes than the client at {real} ({parsed.file}); "
                              "parsed on the client")
            return with_derived_ids(parse_file(parsed.file, self.config))
        return parsed

    def set_annotations(self, batch: Sequence[Any], columns: Any) -> dict[str, Any]:
        """Nothing to write: parse makes the records (see :meth:`combine`)."""
        return {}
