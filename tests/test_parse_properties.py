"""Property tests for the parser: round trips through the page format, and no crash on any input."""
from __future__ import annotations

import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.config import SAMPLES_DIR, ParseConfig
from pipeline.errors import InputError
from pipeline.io import decode_text
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
