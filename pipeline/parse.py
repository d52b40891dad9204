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
"""
from __future__ import annotations

import csv
import html
import io as _io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ParseConfig
from .errors import InputError
from .io import read_text
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


@dataclass(slots=True)
class FileParse:
    """What one input file gave: its kind, page title, slots and rejects."""

    file: str
    kind: str
    title: str | None
    slots: list[Slot]
    rejects: list[Reject]

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


# ---- text normalisation and headline prefixes -------------------------------------------------

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")


def clean_text(text: str) -> str:
    """Whitespace-normalised text: HTML tags stripped, entities unescaped, runs of spaces collapsed.

    Pages and CSVs come from scrapes, so ``<b>`` and ``&amp;`` are artefacts, not content. Curly
    quotes, dashes and £ are kept: normalising those is the clean stage's job.
    """
    if text.isascii() and "<" not in text and "&" not in text:
        return " ".join(text.split())
    if "<" in text or "&" in text:
        if "<" in text:
            text = _TAG.sub(" ", text)
        if "&" in text:
            text = html.unescape(text)
            if "<" in text:
                text = _TAG.sub(" ", text)
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
class _Line:
    """A non-blank line with the layout features the decoder scores."""

    number: int
    text: str
    gap: int  # blank lines between this line and the previous non-blank one
    costs: tuple[float, float, float]  # caption, headline, standfirst
    ends_sentence: bool
    starts_lower: bool
    emit: tuple[float, ...] = ()  # cost of each label, continuations scored against the line before


def _shape(text: str, prefixed: bool) -> tuple[tuple[float, float, float], bool, bool]:
    """How unlike a caption, a headline and a standfirst a line looks (0 = typical)."""
    n = len(text)
    words = text.count(" ") + 1
    tail = text[-24:].rstrip(_CLOSERS)
    last = tail[-1:] if tail else ""
    ends_sentence = last in _SENTENCE_END
    question = last == "?"
    starts_lower = text[:1].islower()
    photo = _PHOTO_TAIL.search(tail) is not None

    cap = 0.0
    if n > 60:
        cap += 1.5 + min((n - 60) / 20, 4.0)
    if words > 10:
        cap += 1.5
    if ends_sentence:
        cap += 3.0
    if question:
        cap += 2.0
    if prefixed:
        cap += 5.0

    head = 0.0
    if n < 12:
        head += 2.0
    if n > 120:
        head += 2.0 + min((n - 120) / 40, 4.0)
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

    stand = 0.0
    if n < 50:
        stand += 3.0
    elif n < 80:
        stand += 1.0
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


def _continuation_cost(line: _Line, prev: _Line | None) -> float:
    """A wrapped line: cheap after a line that did not end its sentence, or when it starts lower-case."""
    cost = 0.0 if prev is None or not prev.ends_sentence else 3.0
    return cost if line.starts_lower else cost + 1.0


def _compile(tables: dict[tuple[int, int], tuple[float, ...]]) -> list[list[tuple[int, tuple[float, ...]]]]:
    """For each label, the (previous label, gap-cost row) pairs that may lead into it."""
    return [[(p, tables[(p, label)]) for p in _INTO[label]] for label in range(6)]


def _decode(lines: Sequence[_Line], tables: dict, start_cost: float,
            free_start: bool = False) -> tuple[float, list[int], float]:
    """Cheapest label sequence for ``lines``; returns (cost, labels, total gap cost on the path).

    ``free_start``: the first line follows no title, so its gap is not scored.
    """
    n = len(lines)
    if n == 0:
        return start_cost, [], 0.0
    into = _COMPILED[id(tables)]
    inf = float("inf")
    best = [inf] * 7
    best[_START] = start_cost
    back: list[tuple[int, ...]] = []
    labels6 = range(6)
    for i, line in enumerate(lines):
        gap = line.gap if line.gap < _GAP_MAX else _GAP_MAX
        emit = line.emit
        cur = [inf] * 7
        ptr = [-1] * 7
        free = free_start and i == 0
        for label in labels6:
            top, arg = inf, -1
            for p, row in into[label]:
                c = best[p]
                if c == inf:
                    continue
                if not free:
                    c += row[gap]
                if c < top:
                    top, arg = c, p
            cur[label] = top + emit[label]
            ptr[label] = arg
        back.append(tuple(ptr))
        best = cur
    final, last = inf, -1
    for label in labels6:
        c = best[label] + _END_COST.get(label, 0.0)
        if c < final:
            final, last = c, label
    labels = [0] * n
    gap_cost = 0.0
    for i in range(n - 1, -1, -1):
        labels[i] = last
        prev = back[i][last]
        if not (free_start and i == 0):
            gap_cost += tables[(prev, last)][min(lines[i].gap, _GAP_MAX)] - _TRANSITIONS[(prev, last)][1]
        last = prev
    return final, labels, gap_cost


_COMPILED = {id(t): _compile(t) for t in _TABLES.values()}


def _page_lines(text: str, splitter: HeadlineSplitter) -> list[_Line]:
    """Non-blank lines (after normalisation) with their 1-based numbers and preceding gaps."""
    out: list[_Line] = []
    gap = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not raw or raw.isspace():
            gap += 1
            continue
        line = clean_text(raw)
        if not line:  # only tags or invisible characters
            gap += 1
            continue
        costs, ends, lower = _shape(line, splitter.has_prefix(line))
        item = _Line(number, line, gap, costs, ends, lower)
        cont = _continuation_cost(item, out[-1] if out else None)
        item.emit = (*costs, cont, cont, _JUNK)
        out.append(item)
        gap = 0
    return out


def _layout(content: Sequence[_Line]) -> list[int]:
    """Labels for the lines after the title, trying the nominal spacing first."""
    cost, labels, gap_cost = _decode(content, _TABLES[(1, 0)], 0.0)
    if gap_cost == 0.0:
        return labels
    for spacing in _SPACINGS[1:]:
        c, lab, _ = _decode(content, _TABLES[spacing], _DRIFT_PRIOR)
        if c < cost:
            cost, labels = c, lab
    return labels


def _check_title(lines: Sequence[_Line], file: str, splitter: HeadlineSplitter) -> None:
    """Refuse a page whose first line reads better as an article part than as an ICS name."""
    title = lines[0]
    if len(title.text) > MAX_TITLE_CHARS:
        raise InputError(f"no page title: line {title.number} has {len(title.text)} characters "
                         f"(a title names the ICS, at most {MAX_TITLE_CHARS})",
                         file=file, line=title.number)
    window = lines[:10]
    title_cost = _title_cost(title.text, splitter.has_prefix(title.text))
    with_title, _, _ = _decode(window[1:], _TABLES[(1, 0)], title_cost)
    without, _, _ = _decode(window, _TABLES[(1, 0)], 0.0, free_start=True)
    # A missing title costs a whole page, so the structure must argue strongly unless the line
    # itself does not look like a name (lower-case start, a sentence, a kicker).
    margin = 3.0 if title_cost >= 3.0 else 6.0
    if title_cost >= 6.0 or (len(window) > 1 and without + margin < with_title):
        raise InputError(f"no page title: line {title.number} looks like an article "
                         f"(a page starts with its ICS name): {_snippet(title.text)!r}",
                         file=file, line=title.number)


def parse_page(text: str, file: str, config: ParseConfig | None = None
               ) -> tuple[str | None, list[Slot], list[Reject]]:
    """Parse one HSJ listing page into ``(title, slots, rejects)``.

    Raises :class:`InputError` for a page that is empty or has no title; blocks inside the page
    that fit no article shape become rejects. A title with no articles is a valid empty page.
    """
    config = config or ParseConfig()
    splitter = HeadlineSplitter(config)
    lines = _page_lines(text, splitter)
    if not lines:
        raise InputError("empty file (no text)", file=file, line=1)
    _check_title(lines, file, splitter)
    title = lines[0].text
    content = lines[1:]
    labels = _layout(content)
    return title, *_assemble(content, labels, title, file, splitter)


def _assemble(content: Sequence[_Line], labels: Sequence[int], title: str, file: str,
              splitter: HeadlineSplitter) -> tuple[list[Slot], list[Reject]]:
    """Group labelled lines into slots; orphans, junk and oversized parts become rejects."""
    slots: list[Slot] = []
    rejects: list[Reject] = []
    caption: _Line | None = None
    current: dict[str, Any] | None = None
    position = 0

    def reject_caption() -> None:
        """A caption followed by no headline is a reject (it never silently disappears)."""
        rejects.append(Reject(file, caption.number, "caption with no headline", _snippet(caption.text)))

    def flush() -> None:
        nonlocal current
        if current is not None:
            _finish_page_slot(current, title, file, splitter, slots, rejects)
            current = None

    for line, label in zip(content, labels):
        if label == CAP:
            flush()
            if caption is not None:
                position += 1
                reject_caption()
            caption = line
        elif label == HEAD:
            flush()
            position += 1
            current = {"line": line.number, "position": position, "headline": [line.text],
                       "standfirst": [], "caption": caption.text if caption else None}
            caption = None
        elif label == HEAD_CONT and current is not None:
            current["headline"].append(line.text)
        elif label in (STAND, STAND_CONT) and current is not None:
            current["standfirst"].append(line.text)
        else:  # junk, or a continuation with nothing to continue
            flush()
            if caption is not None:
                position += 1
                reject_caption()
                caption = None
            position += 1
            rejects.append(Reject(file, line.number, "line fits no article shape "
                                  "(not a caption, headline or standfirst)", _snippet(line.text)))
    flush()
    if caption is not None:
        reject_caption()
    return slots, rejects


def _too_long(part: str, text: str | None, limit: int) -> str | None:
    if text is not None and len(text) > limit:
        return f"{part} too long ({len(text)} characters; limit {limit})"
    return None


def _finish_page_slot(parts: dict[str, Any], title: str, file: str, splitter: HeadlineSplitter,
                      slots: list[Slot], rejects: list[Reject]) -> None:
    headline = " ".join(parts["headline"])
    standfirst = " ".join(parts["standfirst"]) or None
    caption = parts["caption"]
    reason = (_too_long("headline", headline, MAX_HEADLINE_CHARS)
              or _too_long("standfirst", standfirst, MAX_STANDFIRST_CHARS)
              or _too_long("caption", caption, MAX_CAPTION_CHARS))
    if reason:
        rejects.append(Reject(file, parts["line"], reason, _snippet(headline)))
        return
    topical, kicker, series = splitter.split(headline)
    slots.append(Slot(file, parts["line"], parts["position"], topical, standfirst, caption,
                      kicker, series, system=title))


# ---- JSON Lines and CSV ----------------------------------------------------------------------


def _record_slot(file: str, line: int, position: int, headline: Any, standfirst: Any,
                 splitter: HeadlineSplitter, *, caption: Any = None, id_: Any = None,
                 kicker: Any = None, series: Any = None, systems: Any = None
                 ) -> Slot | Reject:
    """Validate one JSONL/CSV record into a slot, or say why it is rejected."""
    def bad(reason: str) -> Reject:
        return Reject(file, line, reason, _snippet(clean_text(str(headline or ""))) or None)

    if headline is None or (isinstance(headline, str) and not clean_text(headline)):
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
                id=str(id_).strip() if id_ is not None else None,
                systems=[clean_text(s) for s in systems if clean_text(s)] if systems else None)


def parse_jsonl(text: str, file: str, config: ParseConfig | None = None
                ) -> tuple[list[Slot], list[Reject]]:
    """Parse JSON Lines records (``headline`` required; ``standfirst``, ``id``, ``caption``,
    ``kicker``, ``series``, ``systems`` optional; other keys ignored). Blank lines are skipped.
    """
    splitter = HeadlineSplitter(config or ParseConfig())
    slots: list[Slot] = []
    rejects: list[Reject] = []
    position = 0
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        position += 1
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            message = getattr(exc, "msg", "too deeply nested")
            rejects.append(Reject(file, number, f"not valid JSON ({message})", _snippet(raw.strip())))
            continue
        if not isinstance(record, dict):
            rejects.append(Reject(file, number, "not a JSON object", _snippet(raw.strip())))
            continue
        out = _record_slot(file, number, position, record.get("headline"), record.get("standfirst"),
                           splitter, caption=record.get("caption"), id_=record.get("id"),
                           kicker=record.get("kicker"), series=record.get("series"),
                           systems=record.get("systems"))
        (slots if isinstance(out, Slot) else rejects).append(out)  # type: ignore[arg-type]
    return slots, rejects


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
    config = config or ParseConfig()
    splitter = HeadlineSplitter(config)
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
        out = _record_slot(file, line, position, row[head_i],
                           row[stand_i] if stand_i is not None else None, splitter,
                           id_=(row[id_i] or None) if id_i is not None else None)
        (slots if isinstance(out, Slot) else rejects).append(out)  # type: ignore[arg-type]
    if header is None and head_i is None:
        raise InputError("empty file (no rows)", file=file, line=1)
    return slots, rejects


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
    if not text.strip():
        raise InputError("empty file (no text)", file=file, line=1)
    if kind == "jsonl":
        slots, rejects = parse_jsonl(text, file, config)
        return FileParse(file, kind, None, slots, rejects)
    if kind == "csv":
        slots, rejects = parse_csv(text, file, headline_column, standfirst_column, config)
        return FileParse(file, kind, None, slots, rejects)
    title, slots, rejects = parse_page(text, file, config)
    return FileParse(file, kind, title, slots, rejects)


def parse_file(path: str | Path, config: ParseConfig, *, headline_column: str | None = None,
               standfirst_column: str | None = None) -> FileParse:
    """Read (via :mod:`pipeline.io`) and parse one input file."""
    text = read_text(Path(path))
    return parse_text(text, str(path), input_kind(path), config,
                      headline_column=headline_column, standfirst_column=standfirst_column)


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
        self.slots = 0
        self.merged = 0
        self.rejects: list[Reject] = []
        self.files: list[dict[str, Any]] = []

    def add_file(self, parsed: FileParse) -> None:
        """Merge one file's slots and keep its rejects, in page order."""
        rejected_before = len(self.rejects)
        for slot in parsed.slots:
            self.add(slot)
        self.rejects.extend(parsed.rejects)
        self.slots += len(parsed.rejects)
        self.files.append({"file": parsed.file, "kind": parsed.kind, "title": parsed.title,
                           "slots": parsed.slot_count,
                           "rejected": len(self.rejects) - rejected_before})

    def add(self, slot: Slot) -> None:
        """Merge one slot: a new article, or one more system and source on an existing one."""
        self.slots += 1
        ident = identity_headline(slot.headline, slot.series)
        # a derived id is a hash of the normalised texts, so only a given id needs the texts checked
        key = normalise_key(ident) + "\n" + normalise_key(slot.standfirst) if slot.id else ""
        art_id = slot.id or article_id(ident, slot.standfirst)
        source = Source(slot.file, slot.line, slot.position)
        systems = [slot.system] if slot.system else (slot.systems or [])
        article = self.by_id.get(art_id)
        if article is None:
            self.by_id[art_id] = Article(
                id=art_id, headline=slot.headline, standfirst=slot.standfirst, caption=slot.caption,
                kicker=slot.kicker, series=slot.series, systems=list(dict.fromkeys(systems)),
                sources=[source])
            if key:
                self._keys[art_id] = key
            return
        if slot.id and key != (self._keys.get(art_id) or normalise_key(
                identity_headline(article.headline, article.series)) + "\n" + normalise_key(article.standfirst)):
            self.rejects.append(Reject(
                slot.file, slot.line,
                f"id {art_id!r} is already used by a different article "
                f"({article.sources[0].file}:{article.sources[0].line})", _snippet(slot.headline)))
            return
        self.merged += 1
        for system in systems:
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
                  "rejected": len(self.rejects), "files": self.files}
        assert counts["slots"] == counts["written"] + counts["merged"] + counts["rejected"]
        return ParseResult(articles, list(self.rejects), counts)


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
