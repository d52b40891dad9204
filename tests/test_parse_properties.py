"""Property tests for the parser: round trips through the page format, and no crash on any input."""
from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.config import SAMPLES_DIR, ParseConfig
from pipeline.errors import InputError
from pipeline.io import decode_text
from pipeline import parse
from pipeline.parse import ArticleMerger, clean_text, parse_page, parse_text

CFG = ParseConfig()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _vocabulary() -> list[str]:
    """Words of the seed pages, so generated texts have realistic shapes but new combinations."""
    words: set[str] = set()
    for page in sorted(SAMPLES_DIR.glob("*.txt")):
        for line in page.read_text(encoding="utf-8").splitlines()[1:]:
            words.update(w for w in clean_text(line).split() if re.fullmatch(r"[A-Za-z’'£,-]+", w))
    return sorted(w.strip(",") for w in words if w.strip(",") and not w.startswith(("’", "'")))


WORDS = _vocabulary()
LOWER = [w for w in WORDS if w.islower()]
SYSTEMS = ["Kent and Medway ICS", "Devon ICS", "North East and North Cumbria ICS", "Frimley ICS"]
BLURBS = {"London Eye": "Essential insight into England’s biggest health economy, by HSJ bureau chief Ben Clover.",
          "Recovery Watch": "Recovering services from the covid crisis is a big task for NHS leaders for the "
                            "foreseeable future."}


def _sentence(words: list[str]) -> str:
    return words[0][:1].upper() + words[0][1:] + "".join(" " + w for w in words[1:])


headline_st = st.builds(
    lambda prefix, words: prefix + _sentence(words),
    st.sampled_from(["", "", "", "Exclusive: ", "Revealed: "]),
    st.lists(st.sampled_from(WORDS), min_size=4, max_size=14),
).filter(lambda h: len(h) >= 20)  # real headlines; "A A A A" is as much a caption as a headline
standfirst_st = st.lists(st.sampled_from(WORDS), min_size=14, max_size=40).map(lambda w: _sentence(w) + ".")
caption_st = st.lists(st.sampled_from(LOWER), min_size=1, max_size=5).map(" ".join)


@st.composite
def record_st(draw) -> tuple[str | None, str, str | None]:
    caption = draw(st.none() | caption_st)
    series = draw(st.sampled_from([None] * 6 + sorted(BLURBS)))
    if series:
        return caption, f"{series}: " + _sentence(draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=9))), \
            BLURBS[series]
    return caption, draw(headline_st), draw(st.none() | standfirst_st | standfirst_st | standfirst_st)


def render(title: str, records, *, shift: int, eol: str, trailing: str, final_newline: bool,
           no_standfirst_gap: int, local: tuple[int, int] | None = None) -> str:
    """An HSJ page: caption, 1 blank, headline, 2 blanks, standfirst; 1 blank before a caption and
    2 before a caption-less headline; a missing standfirst leaves 3 (or 4) blanks after its headline."""
    parts: list[str] = [title]
    after_standfirst = True
    for caption, headline, standfirst in records:
        if caption:
            parts += [""] * ((1 if after_standfirst else no_standfirst_gap) + shift) + [caption]
            parts += [""] * (1 + shift) + [headline]
        else:
            parts += [""] * ((2 if after_standfirst else no_standfirst_gap + 1) + shift) + [headline]
        if standfirst:
            parts += [""] * (2 + shift) + [standfirst]
        after_standfirst = bool(standfirst)
    if local is not None:  # one gap somewhere drifts by a blank line
        blanks = [i for i, p in enumerate(parts) if not p]
        where, delta = local
        if blanks:
            i = blanks[where % len(blanks)]
            if delta > 0:
                parts.insert(i, "")
            elif parts[i - 1] == "" or (i + 1 < len(parts) and parts[i + 1] == ""):
                del parts[i]  # only where the gap had two or more blank lines
    text = eol.join(p + trailing if p else p for p in parts)
    return text + eol if final_newline else text


@SETTINGS
@given(title=st.sampled_from(SYSTEMS), records=st.lists(record_st(), min_size=1, max_size=12),
       shift=st.sampled_from([0, 0, 0, 1]), eol=st.sampled_from(["\n", "\r\n"]),
       trailing=st.sampled_from(["", " ", "\u00a0", "\t"]), final_newline=st.booleans(),
       no_standfirst_gap=st.sampled_from([3, 4]),
       local=st.none() | st.tuples(st.integers(0, 200), st.sampled_from([-1, 1])))
def test_rendered_pages_parse_back_to_the_same_records(title, records, shift, eol, trailing,
                                                       final_newline, no_standfirst_gap, local) -> None:
    text = render(title, records, shift=shift, eol=eol, trailing=trailing, final_newline=final_newline,
                  no_standfirst_gap=no_standfirst_gap, local=local)
    got_title, slots, rejects = parse_page(text, "page.txt", CFG)
    assert got_title == title
    assert rejects == []
    got = [(s.caption, "".join(f"{p}: " for p in (s.kicker, s.series) if p) + s.headline, s.standfirst)
           for s in slots]
    assert got == list(records)
    assert [s.position for s in slots] == list(range(1, len(records) + 1))


def _reconciles(parsed) -> None:
    merger = ArticleMerger()
    merger.add_file(parsed)
    result = merger.result()
    c = result.counts
    assert c["slots"] == c["written"] + c["merged"] + c["rejected"]
    assert c["slots"] == len(parsed.slots) + len(parsed.rejects)


@SETTINGS
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
       kind=st.sampled_from(["page", "jsonl", "csv"]))
def test_any_text_gives_records_or_an_input_error(text, kind) -> None:
    try:
        parsed = parse_text(text, f"x.{kind}", kind, CFG)
    except InputError as exc:
        assert exc.file == f"x.{kind}" and exc.line is not None
        return
    _reconciles(parsed)


line_st = st.one_of(st.sampled_from(["", "", "", " ", "\t", "\u00a0"]), caption_st, headline_st, standfirst_st,
                    st.text(max_size=60))


@SETTINGS
@given(lines=st.lists(line_st, max_size=60), kind=st.sampled_from(["page", "jsonl", "csv"]))
def test_page_like_text_gives_records_or_an_input_error(lines, kind) -> None:
    text = "Devon ICS\n" + "\n".join(lines)
    try:
        parsed = parse_text(text, "x", kind, CFG)
    except InputError:
        return
    _reconciles(parsed)
    for slot in parsed.slots:
        assert slot.headline and slot.headline == clean_text(slot.headline)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_decode_or_raise_input_error(data) -> None:
    try:
        text = decode_text(data, "b.txt")
        parsed = parse_text(text, "b.txt", "page", CFG)
    except InputError as exc:
        assert exc.file == "b.txt"
        return
    assume(parsed is not None)
    _reconciles(parsed)


# ---- the page decoder equals its specification ----------------------------------------------------


def _reference_decode(gaps, emits, tables, start_cost, free_start=False):
    """The layout decoder written out from the transition table: the specification the
    decoder must match exactly (costs, labels and how ties fall)."""
    n = len(gaps)
    if n == 0:
        return start_cost, [], 0.0
    inf = float("inf")
    best = [inf] * 7
    best[parse._START] = start_cost
    back = []
    for i in range(n):
        gap = min(gaps[i], parse._GAP_MAX)
        cur, ptr = [inf] * 7, [-1] * 7
        for label in range(6):
            top, arg = inf, -1
            for p in parse._INTO[label]:
                c = best[p]
                if c == inf:
                    continue
                if not (free_start and i == 0):
                    c += tables[(p, label)][gap]
                if c < top:
                    top, arg = c, p
            cur[label], ptr[label] = top + emits[i][label], arg
        back.append(ptr)
        best = cur
    final, last = inf, -1
    for label in range(6):
        c = best[label] + parse._END_COST.get(label, 0.0)
        if c < final:
            final, last = c, label
    labels, gap_cost = [0] * n, 0.0
    for i in range(n - 1, -1, -1):
        labels[i] = last
        prev = back[i][last]
        if not (free_start and i == 0):
            gap_cost += (tables[(prev, last)][min(gaps[i], parse._GAP_MAX)]
                         - parse._TRANSITIONS[(prev, last)][1])
        last = prev
    return final, labels, gap_cost


# few distinct values, so that many paths cost the same and ties have to fall the same way
cost_st = st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 14.0, 0.1, 0.2, 0.30000000000000004, 1.05])
emit_st = st.tuples(*[cost_st] * 6)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(st.tuples(st.integers(0, 40), emit_st), max_size=30),
       spacing=st.sampled_from(parse._SPACINGS), start_cost=st.sampled_from([0.0, 1.0, 2.5, 6.0]),
       free_start=st.booleans())
def test_decoder_equals_the_table_driven_reference(lines, spacing, start_cost, free_start) -> None:
    gaps, emits = [g for g, _ in lines], [e for _, e in lines]
    tables = parse._TABLES[spacing]
    assert parse._decode(gaps, emits, tables, start_cost, free_start) == \
        _reference_decode(gaps, emits, tables, start_cost, free_start)


def _title_rejected_by_decoding(lines, splitter) -> bool:
    """The title check decoding both readings of the first lines, as it did before bounds."""
    title = lines.texts[0]
    if len(title) > parse.MAX_TITLE_CHARS:
        return True
    window = lines[:10]
    title_cost = parse._title_cost(title, splitter.has_prefix(title))
    nominal = parse._TABLES[(1, 0)]
    with_title, _, _ = _reference_decode(window.gaps[1:], window.emits[1:], nominal, title_cost)
    without, _, _ = _reference_decode(window.gaps, window.emits, nominal, 0.0, free_start=True)
    margin = 3.0 if title_cost >= 3.0 else 6.0
    return title_cost >= 6.0 or (len(window) > 1 and without + margin < with_title)


first_line_st = st.one_of(st.sampled_from(SYSTEMS), headline_st, standfirst_st, caption_st,
                          st.sampled_from(["devon ICS", "Devon ICS.", "London Eye: Devon", "Devon ICS 2024"]))


@SETTINGS
@given(first=first_line_st, lines=st.lists(line_st, max_size=40))
def test_title_check_agrees_with_decoding_both_readings(first, lines) -> None:
    splitter = parse._splitter(CFG)
    page = parse._page_lines(first + "\n" + "\n".join(lines), splitter)
    assume(len(page) > 0)
    labels = parse._layout(page[1:])
    expected = _title_rejected_by_decoding(page, splitter)
    title_cost = parse._title_cost(page.texts[0], splitter.has_prefix(page.texts[0]))
    if len(page) > 1 and title_cost < 6.0 and parse._title_surely_fits(
            page, labels, title_cost, 3.0 if title_cost >= 3.0 else 6.0):
        assert not expected  # the bounds never let through a page the decoders would refuse
    try:
        parse._check_title(page, labels, "p.txt", splitter)
    except InputError:
        assert expected
    else:
        assert not expected


_CONTROLISH = st.text(alphabet=st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x9f), st.sampled_from("é£’\u00a0\u200b<>&;#b/ ")),
    max_size=60)


@SETTINGS
@given(st.one_of(_CONTROLISH, st.text(max_size=60)))
def test_clean_text_leaves_no_control_character(text: str) -> None:
    # every path of clean_text (printable fast path, ASCII path, tags/entities) strips controls
    out = clean_text(text)
    assert not any(unicodedata.category(c) == "Cc" for c in out), repr(out)
    assert out == clean_text(text)  # deterministic
