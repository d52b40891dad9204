"""Parse stage: the seed pages' exact figures and fields, drift in page layout, JSONL and CSV."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from pipeline.config import ParseConfig
from pipeline.errors import InputError
from pipeline.parse import (
    HeadlineSplitter,
    clean_text,
    parse_csv,
    parse_jsonl,
    parse_page,
    parse_paths,
    parse_text,
)
from pipeline.records import article_id

CFG = ParseConfig()
LABELS = Path(__file__).resolve().parent.parent / "data" / "labels" / "seeds.jsonl"


@pytest.fixture(scope="module")
def seeds(sample_pages: list[Path]):
    return parse_paths(sample_pages, CFG)


def by_headline(result, headline: str):
    found = [a for a in result.articles if a.headline == headline]
    assert len(found) == 1, headline
    return found[0]


def summary(result) -> list[tuple]:
    """What must survive drift: everything but the line numbers of sources."""
    return [(a.id, a.headline, a.standfirst, a.caption, a.kicker, a.series, tuple(a.systems),
             tuple((s.file, s.position) for s in a.sources)) for a in result.articles]


# ---- the five seed pages --------------------------------------------------------------------------


def test_seed_counts(seeds, sample_pages) -> None:
    assert [f["slots"] for f in seeds.counts["files"]] == [20, 20, 20, 18, 20]
    assert [f["title"] for f in seeds.counts["files"]] == [
        "Coventry and Warwickshire ICS", "Gloucestershire ICS", "Kent and Medway ICS",
        "Northamptonshire ICS", "South West London ICS"]
    c = seeds.counts
    assert (c["slots"], c["written"], c["merged"], c["rejected"]) == (98, 79, 19, 0)
    assert len(seeds.articles) == 79 and seeds.rejects == []
    assert len({a.id for a in seeds.articles}) == 79


def test_seed_articles_match_hand_transcription(seeds) -> None:
    # data/labels/seeds.jsonl was typed up by hand from the pages, in order of first appearance.
    gold = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(gold) == len(seeds.articles)
    for article, want in zip(seeds.articles, gold):
        printed = "".join(f"{p}: " for p in (article.kicker, article.series) if p) + article.headline
        assert printed == " ".join(want["headline"].split())
        assert article.standfirst == (" ".join(want["standfirst"].split()) if want["standfirst"] else None)


def test_exclusive_article_on_four_pages(seeds, sample_pages) -> None:
    a = by_headline(seeds, "NHSE begins to claw back funding from ICSs to pay off historic debts")
    assert a.kicker == "Exclusive" and a.series is None
    assert a.caption == "money coins finance"
    assert a.systems == ["Coventry and Warwickshire ICS", "Gloucestershire ICS", "Kent and Medway ICS",
                         "South West London ICS"]
    assert [(Path(s.file).name, s.line, s.position) for s in a.sources] == [
        (sample_pages[0].name, 19, 3), (sample_pages[1].name, 12, 2),
        (sample_pages[2].name, 100, 15), (sample_pages[4].name, 31, 5)]
    assert a.standfirst.startswith("Three-quarters of integrated care systems face funding cuts of up to £20m")
    # the id ignores the kicker but keeps everything else
    assert a.id == article_id(a.headline, a.standfirst)


def test_series_column(seeds) -> None:
    a = by_headline(seeds, "Staff survey reveals a county of contrast")
    assert a.series == "West Country Chronicle" and a.kicker is None
    assert a.caption == "Nick Carding 3x2"
    assert a.systems == ["Gloucestershire ICS"]
    assert a.id == article_id("West Country Chronicle: Staff survey reveals a county of contrast", a.standfirst)
    london = [a for a in seeds.articles if a.series == "London Eye"]
    assert len(london) == 6 and all(a.caption is None for a in london)
    assert {a.series for a in seeds.articles} == {None, "London Eye", "West Country Chronicle",
                                                   "Recovery Watch", "The Integrator"}


def test_article_without_standfirst(seeds) -> None:
    a = by_headline(seeds, "HSJ Awards 2023: Performance Recovery Award")
    assert a.standfirst is None and a.series is None and a.kicker is None
    assert a.caption == "HSJ Awards 2023 3x2"
    # and the article after it still has its caption
    after = by_headline(seeds, "Government and NHS in talks over £1bn funding gap")
    assert after.caption == "Money, finance and accounts" and after.kicker == "Exclusive"


def test_article_without_caption(seeds) -> None:
    a = by_headline(seeds, "Trust appoints new chair from ICB")
    assert a.caption is None
    assert a.standfirst == ("An acute trust in the West Midlands has appointed a new chair from its "
                            "neighbouring integrated care board.")
    assert sum(a.caption is None for a in seeds.articles) == 25


def test_text_is_whitespace_normalised_but_not_cleaned(seeds) -> None:
    a = by_headline(seeds, "Threefold ICS variation in GP phone access revealed")
    assert a.standfirst.endswith("analysis of new annual figures.")  # trailing U+00A0 gone
    b = by_headline(seeds, "Government and NHS in talks over £1bn funding gap")
    assert "year, HSJ has learned" in b.standfirst and "\u00a0" not in b.standfirst
    c = by_headline(seeds, "Trust’s ‘leadership behaviour’ attacked by six ICBs")  # curly quotes kept
    assert "“pattern of behaviour”" in c.standfirst


def test_revealed_kicker_is_case_insensitive_and_keeps_rest() -> None:
    splitter = HeadlineSplitter(CFG)
    assert splitter.split("REVEALED: the tenfold difference") == ("the tenfold difference", "Revealed", None)
    assert splitter.split("Exclusive: London Eye: x y") == ("x y", "Exclusive", "London Eye")
    assert splitter.split("london eye : Exclusive:  x") == ("x", "Exclusive", "London Eye")
    assert splitter.split("HSJ Awards 2023: Performance Recovery Award") == (
        "HSJ Awards 2023: Performance Recovery Award", None, None)
    assert splitter.split("Exclusive:") == ("Exclusive:", None, None)
    custom = HeadlineSplitter(ParseConfig(series=["Primary Care Note"], kickers=["Analysis"]))
    assert custom.split("Analysis: Primary Care Note: a b") == ("a b", "Analysis", "Primary Care Note")
    assert custom.split("Exclusive: a b") == ("Exclusive: a b", None, None)


def test_kicker_and_plain_versions_merge() -> None:
    page_a = "A ICS\n\ncap\n\nExclusive: Trust fined for late accounts\n\n\nA trust was fined.\n"
    page_b = "B ICS\n\n\nTrust fined for late accounts\n\n\nA trust was fined.\n"
    merged = _parse_texts([("a.txt", page_a), ("b.txt", page_b)])
    assert len(merged.articles) == 1
    a = merged.articles[0]
    assert a.kicker == "Exclusive" and a.caption == "cap" and a.systems == ["A ICS", "B ICS"]
    assert merged.counts["merged"] == 1


def _parse_texts(named: list[tuple[str, str]]):
    from pipeline.parse import ArticleMerger

    merger = ArticleMerger()
    for name, text in named:
        kind = "jsonl" if name.endswith(".jsonl") else "csv" if name.endswith(".csv") else "page"
        merger.add_file(parse_text(text, name, kind, CFG))
    return merger.result()


def test_same_headline_with_another_standfirst_is_another_article() -> None:
    page = ("A ICS\n\n\nTrust fined for late accounts\n\n\nA trust was fined.\n\n\n"
            "Trust fined for late accounts\n\n\nAnother trust was fined as well.\n\n\n"
            "Trust fined for late accounts\n\n\nA trust was fined.\n")
    result = _parse_texts([("a.txt", page), ("b.txt", page.replace("A ICS", "B ICS"))])
    assert [(a.standfirst, [s.line for s in a.sources]) for a in result.articles] == [
        ("A trust was fined.", [4, 16, 4, 16]), ("Another trust was fined as well.", [10, 10])]
    assert [a.id for a in result.articles] == [article_id("Trust fined for late accounts", a.standfirst)
                                               for a in result.articles]
    assert result.counts["merged"] == 4


def test_slots_pickle_as_constructor_arguments() -> None:
    import pickle

    from pipeline.parse import Slot

    slot = Slot("p.txt", 4, 1, "Trust fined", "A trust was fined.", "cap", "Exclusive", None,
                "Devon ICS", None, ["Devon ICS"])
    assert slot.__reduce__() == (Slot, ("p.txt", 4, 1, "Trust fined", "A trust was fined.", "cap",
                                        "Exclusive", None, "Devon ICS", None, ["Devon ICS"], None))
    assert pickle.loads(pickle.dumps(slot)) == slot
    slot.derived_id = "0123456789abcdef"  # set by parse workers; must survive the trip back
    assert pickle.loads(pickle.dumps(slot)).derived_id == "0123456789abcdef"




# ---- layout drift: every seed page, transformed, must give the same records ------------------------


def _split_layout(text: str) -> tuple[list[str], list[int]]:
    """Non-blank lines and the blank-line gap before each."""
    lines, gaps, gap = [], [], 0
    for line in text.split("\n"):
        if line.strip():
            lines.append(line)
            gaps.append(gap)
            gap = 0
        else:
            gap += 1
    return lines, gaps


def _join_layout(lines: list[str], gaps: list[int]) -> str:
    out = []
    for line, gap in zip(lines, gaps):
        out += [""] * gap + [line]
    return "\n".join(out) + "\n"


def _regap(text: str, change) -> str:
    lines, gaps = _split_layout(text)
    return _join_layout(lines, [gaps[0]] + [max(0, change(i, g)) for i, g in enumerate(gaps[1:], 1)])


DRIFTS = {
    "crlf": lambda t, r: t.replace("\n", "\r\n"),
    "mixed_endings": lambda t, r: "".join(line + r.choice(["\n", "\r\n", "\r"]) for line in t.split("\n")),
    "bom": lambda t, r: "\ufeff" + t,
    "trailing_spaces": lambda t, r: "\n".join(line + " " * r.randint(0, 3) for line in t.split("\n")),
    "nbsp": lambda t, r: "\n".join(re.sub(" ", lambda m: r.choice([" ", "\u00a0"]), line)
                                   + r.choice(["", "\u00a0"]) for line in t.split("\n")),
    "no_final_newline": lambda t, r: t.rstrip("\n"),
    "final_newlines": lambda t, r: t.rstrip("\n") + "\n" * 5,
    "tabs": lambda t, r: "\n".join(("\t" + line.replace(" ", "\t", 1)) if line else r.choice(["", "\t", " \t "])
                                   for line in t.split("\n")),
    "extra_blank_everywhere": lambda t, r: _regap(t, lambda i, g: g + 1),
    "two_extra_blank_everywhere": lambda t, r: _regap(t, lambda i, g: g + 2),
    "one_blank_removed_everywhere": lambda t, r: _regap(t, lambda i, g: g - 1),
    "doubled_blank_lines": lambda t, r: _regap(t, lambda i, g: 2 * g),
    "one_blank_removed_in_some_gaps": lambda t, r: _regap(t, lambda i, g: g - (r.random() < 0.2)),
    "one_blank_added_in_some_gaps": lambda t, r: _regap(t, lambda i, g: g + (r.random() < 0.2)),
    "thousands_of_blank_lines_in_some_gaps": lambda t, r: _regap(
        t, lambda i, g: g + 3000 if g >= 1 and r.random() < 0.1 else g),
    "leading_blank_lines": lambda t, r: "\n\n\n" + t,
}


@pytest.fixture(scope="module")
def seed_texts(sample_pages) -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sample_pages]


@pytest.mark.parametrize("drift", sorted(DRIFTS))
@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_seed_pages_survive_drift(drift: str, rng_seed: int, seed_texts) -> None:
    rng = random.Random(rng_seed)
    clean = _parse_texts(seed_texts)
    drifted = _parse_texts([(name, DRIFTS[drift](text, rng)) for name, text in seed_texts])
    assert summary(drifted) == summary(clean)
    assert drifted.counts["slots"] == 98 and drifted.rejects == []


def test_drift_keeps_line_numbers_pointing_at_headlines(seed_texts) -> None:
    name, text = seed_texts[0]
    drifted = DRIFTS["extra_blank_everywhere"](text, random.Random(0))
    _, slots, _ = parse_page(drifted, name, CFG)
    lines = drifted.split("\n")
    for slot in slots:
        raw = lines[slot.line - 1]
        assert slot.headline in clean_text(raw)


def test_wrapped_standfirst_is_joined() -> None:
    page = ("Somerset ICS\n\nmoney coins finance\n\nTrust misses savings target\n\n\n"
            "A trust in the South West has missed its savings target for the\n"
            "third year running, papers show.\n\n\nBoard agrees £3m savings plan\n\n\n"
            "The integrated care board has agreed a plan to save £3m this year.\n")
    title, slots, rejects = parse_page(page, "p.txt", CFG)
    assert rejects == []
    assert [(s.headline, s.standfirst) for s in slots] == [
        ("Trust misses savings target",
         "A trust in the South West has missed its savings target for the third year running, papers show."),
        ("Board agrees £3m savings plan", "The integrated care board has agreed a plan to save £3m this year.")]


def test_html_is_stripped_and_entities_unescaped() -> None:
    page = ("Devon ICS\n\n<p>money coins</p>\n\n<b>Trust &amp; ICB</b> agree &pound;5m deal\n\n\n"
            "The trust and the board have agreed a &lt;b&gt;deal&lt;/b&gt; worth &#163;5m.<br/>\n")
    title, slots, rejects = parse_page(page, "p.txt", CFG)
    assert (slots[0].caption, slots[0].headline, slots[0].standfirst) == (
        "money coins", "Trust & ICB agree £5m deal", "The trust and the board have agreed a deal worth £5m.")
    assert clean_text("b*&^%~ks a < b > c") == "b*&^%~ks a < b > c"


def test_clean_text_keeps_printable_single_spaced_text_as_it_is() -> None:
    # clean_text returns such text unchanged, which is right only while no whitespace but the
    # space, and none of the invisible characters it removes, counts as printable
    import sys

    from pipeline.parse import _INVISIBLE

    assert [hex(i) for i in range(sys.maxunicode + 1) if chr(i).isprintable()
            and ((chr(i).isspace() and i != 32) or _INVISIBLE.match(chr(i)))] == []
    text = "Trust’s £5m “deal” – in full"
    assert clean_text(text) is text
    assert clean_text("a\u00a0b\u200bc  d\t") == "a bc d"
    assert clean_text(" x") == clean_text("x ") == "x"


def test_title_only_page_is_empty_not_an_error() -> None:
    title, slots, rejects = parse_page("Dorset ICS\n\n\n", "p.txt", CFG)
    assert (title, slots, rejects) == ("Dorset ICS", [], [])


def test_page_without_title_is_an_input_error(seed_texts) -> None:
    name, text = seed_texts[2]
    without = text.split("\n", 2)[2]  # drop the title and the blank line after it
    with pytest.raises(InputError, match="no page title") as info:
        parse_page(without, name, CFG)
    assert info.value.file == name and info.value.line == 1
    with pytest.raises(InputError, match="no page title"):
        parse_page("Exclusive: Trust fined\n\n\nA trust was fined for late accounts.\n", "p.txt", CFG)
    with pytest.raises(InputError, match="no page title"):
        parse_page("Trust fined over late accounts\n\n\nA trust has been fined for filing its annual "
                   "accounts late, papers show.\n\nmoney coins finance\n\nBoard agrees £3m savings "
                   "plan\n\n\nThe integrated care board has agreed a plan to save £3m this year.\n",
                   "p.txt", CFG)


# ---- JSON Lines and CSV ---------------------------------------------------------------------------


def test_jsonl_records() -> None:
    text = "\n".join([
        json.dumps({"headline": "Exclusive: Trust fined", "standfirst": "A trust was fined.", "label": 3}),
        "",
        json.dumps({"headline": "Board meets", "id": 17, "systems": ["Devon ICS"]}),
        "{not json",
        json.dumps({"standfirst": "no headline"}),
        json.dumps(["a", "list"]),
        json.dumps({"headline": "   "}),
        json.dumps({"headline": "x", "standfirst": 5}),
    ])
    slots, rejects = parse_jsonl(text, "r.jsonl", CFG)
    assert [(s.headline, s.kicker, s.standfirst, s.id, s.line, s.position) for s in slots] == [
        ("Trust fined", "Exclusive", "A trust was fined.", None, 1, 1),
        ("Board meets", None, None, "17", 3, 2)]
    assert slots[1].systems == ["Devon ICS"]
    assert [(r.line, r.reason.split(" (")[0]) for r in rejects] == [
        (4, "not valid JSON"), (5, "no headline"), (6, "not a JSON object"), (7, "no headline"),
        (8, "standfirst is not text")]


def test_jsonl_explicit_id_is_kept_and_conflicts_are_rejected() -> None:
    text = "\n".join(json.dumps(r) for r in [
        {"id": "a1", "headline": "One"}, {"id": "a1", "headline": "One"}, {"id": "a1", "headline": "Two"}])
    result = _parse_texts([("r.jsonl", text)])
    assert [a.id for a in result.articles] == ["a1"]
    assert [len(a.sources) for a in result.articles] == [2]
    assert [r.line for r in result.rejects] == [3] and "already used" in result.rejects[0].reason
    c = result.counts
    assert (c["slots"], c["written"], c["merged"], c["rejected"]) == (3, 1, 1, 1)


def test_own_output_round_trips(seeds, tmp_path) -> None:
    out = tmp_path / "articles.jsonl"
    out.write_text("\n".join(a.to_json() for a in seeds.articles) + "\n", encoding="utf-8")
    again = parse_paths([out], CFG)
    assert [(a.id, a.headline, a.standfirst, a.caption, a.kicker, a.series, a.systems)
            for a in again.articles] == [
        (a.id, a.headline, a.standfirst, a.caption, a.kicker, a.series, a.systems) for a in seeds.articles]


def test_csv_with_header_names() -> None:
    text = "id,title,summary,label\r\nx1,Trust fined,A trust was fined.,2\r\nx2,\"Board, meets\",,1\r\n"
    slots, rejects = parse_csv(text, "h.csv", "title", "summary", CFG)
    assert [(s.id, s.headline, s.standfirst, s.line, s.position) for s in slots] == [
        ("x1", "Trust fined", "A trust was fined.", 2, 1), ("x2", "Board, meets", None, 3, 2)]
    assert rejects == []


def test_csv_default_columns_and_optional_standfirst() -> None:
    slots, _ = parse_csv("headline,standfirst\nA b c,D e f.\n", "d.csv", config=CFG)
    assert [(s.headline, s.standfirst) for s in slots] == [("A b c", "D e f.")]
    slots, _ = parse_csv("headline,other\nA b c,zzz\n", "d.csv", config=CFG)  # default column absent
    assert [(s.headline, s.standfirst) for s in slots] == [("A b c", None)]
    with pytest.raises(InputError, match="no standfirst column 'standfirst'") as info:
        parse_csv("headline,other\nA b c,zzz\n", "d.csv", None, "standfirst", CFG)
    assert (info.value.file, info.value.line) == ("d.csv", 1)


def test_csv_without_header_by_column_number() -> None:
    text = '"3","Fears for pension","Unions say they are disappointed."\n"4","Second row","More text."\n'
    slots, rejects = parse_csv(text, "ag.csv", "2", "3", CFG)
    assert [(s.headline, s.standfirst, s.line) for s in slots] == [
        ("Fears for pension", "Unions say they are disappointed.", 1), ("Second row", "More text.", 2)]
    slots, _ = parse_csv(text, "ag.csv", "2", None, CFG)
    assert [s.standfirst for s in slots] == [None, None]


def test_csv_multiline_field_keeps_row_start_line() -> None:
    text = 'headline,standfirst\n"A b","line one\nline two"\nC d,E f.\n'
    slots, _ = parse_csv(text, "m.csv", config=CFG)
    assert [(s.headline, s.standfirst, s.line) for s in slots] == [
        ("A b", "line one line two", 2), ("C d", "E f.", 4)]


@pytest.mark.agnews
def test_ag_news_flows_through(ag_news_csv) -> None:
    result = parse_paths([ag_news_csv], CFG, headline_column="2", standfirst_column="3")
    c = result.counts
    assert c["slots"] == 7600
    assert c["slots"] == c["written"] + c["merged"] + c["rejected"]
    assert c["written"] > 7500
    first = result.articles[0]
    assert first.headline == "Fears for T N pension after talks"
    assert first.standfirst.startswith("Unions representing workers at Turner Newall say")
    assert first.systems == [] and first.sources[0].line == 1


def test_ids_derived_in_workers_merge_exactly_like_ids_derived_in_the_merge(seeds, sample_pages) -> None:
    """Parse workers precompute each slot's derived id; merging those slots must give the same
    articles, merges and counts as the merge deriving them itself."""
    from pipeline.parse import ArticleMerger, parse_file, with_derived_ids

    merger = ArticleMerger()
    for page in sample_pages:
        parsed = with_derived_ids(parse_file(page, CFG))
        assert all(s.derived_id == article_id(s.headline if not s.series else f"{s.series}: {s.headline}",
                                              s.standfirst) for s in parsed.slots)
        merger.add_file(parsed)
    result = merger.result()
    assert result.articles == seeds.articles and result.counts == seeds.counts


# ---- hostile text: lone surrogates and control characters ------------------------------------

import unicodedata  # noqa: E402

from pipeline.parse import count_controls, strip_controls  # noqa: E402


def _controls_in(value: object) -> list[str]:
    """Control characters (Cc) anywhere in a JSON-like value."""
    if isinstance(value, str):
        return [c for c in value if unicodedata.category(c) == "Cc"]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _controls_in(v)]
    if isinstance(value, list):
        return [c for v in value for c in _controls_in(v)]
    return []


@pytest.mark.parametrize("field, value", [
    ("headline", "Bad \\udfff story"), ("standfirst", "x \\ud800 y"), ("id", "a\\udfffb"),
    ("systems", ["Kent", "\\udc80"]), ("caption", "\\udfff"), ("kicker", "\\udbff"),
    ("series", "\\udfffx"),
])
def test_lone_surrogate_is_a_reject_naming_the_field(tmp_path: Path, field: str, value: object) -> None:
    record = {"headline": "Trust fined over late accounts", "standfirst": "A trust was fined."}
    record[field] = value
    raw = json.dumps(record).replace("\\\\u", "\\u")  # the escape itself, as a file would hold it
    path = tmp_path / "s.jsonl"
    path.write_text('{"headline": "A good story about trusts"}\n' + raw + "\n", encoding="utf-8")
    result = parse_paths([path], CFG)  # merging hashed the headline: a surrogate crashed here
    assert [a.headline for a in result.articles] == ["A good story about trusts"]
    (reject,) = result.rejects
    assert reject.line == 2 and reject.reason.startswith(f"{field} contains a lone surrogate (U+")
    reject.to_json().encode("utf-8")  # writable as UTF-8
    assert result.counts["slots"] == 2 and result.counts["rejected"] == 1


def test_controls_stripped_from_every_field_and_counted_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"headline": "Esc \\u001b]0;title\\u0007 trust \\u001b[2J fined", "standfirst": '
        '"C1 \\u0085\\u009b here\\u0000.", "id": "x\\u001b1", "systems": ["Kent\\u0007"], '
        '"caption": "Photo\\u007f", "kicker": "Exclusive\\u0008", "series": "Col\\u0090"}\n'
        '{"headline": "\\u001b\\u0007\\u0085"}\n', encoding="utf-8")
    result = parse_paths([path], CFG)
    (article,) = result.articles
    assert article.headline == "Esc ]0;title trust [2J fined"
    assert article.standfirst == "C1 here." and article.id == "x1" and article.systems == ["Kent"]
    assert (article.caption, article.kicker, article.series) == ("Photo", "Exclusive", "Col")
    assert _controls_in(json.loads(article.to_json())) == []
    (reject,) = result.rejects
    assert reject.line == 2 and "nothing left once tags and control characters are removed" in reject.reason
    assert result.counts["controls_stripped"] == 14  # 11 in the article, 3 in the reject
    assert result.counts["files"][0]["controls_stripped"] == 14


def test_controls_stripped_and_counted_csv_and_page(tmp_path: Path) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('headline,standfirst,other\n"Trust\x85 fined\x7f","A fine\x0b.","\x9b"\n',
                        encoding="utf-8")
    result = parse_paths([csv_path], CFG)
    assert [(a.headline, a.standfirst) for a in result.articles] == [("Trust fined", "A fine.")]
    assert result.counts["controls_stripped"] == 3  # the unused column is not read
    page = tmp_path / "p.txt"
    page.write_text("Kent\x85 ICS\n\nCaption\x9b1\n\nTrust\x7f fined over\x0c accounts\n\n\n"
                    "The trust was fined for filing late accounts.\n", encoding="utf-8")
    result = parse_paths([page], CFG)
    (article,) = result.articles
    assert article.systems == ["Kent ICS"] and article.caption == "Caption1"
    assert article.headline == "Trust fined over accounts"
    assert result.counts["controls_stripped"] == 4


@pytest.mark.parametrize("text, expected", [
    ("plain ascii", "plain ascii"), ("a\x1b[2Jb", "a[2Jb"), ("  a \x07 b  ", "a b"),
    ("caf\u00e9\x85 \x9b", "caf\u00e9"), ("x &#27;[31m y", "x [31m y"), ("<b>\x1b</b>z", "z"),
    ("tab\tand\nnewline\rcr", "tab and newline cr"), ("\x7f", ""),
])
def test_clean_text_strips_controls_on_every_path(text: str, expected: str) -> None:
    assert clean_text(text) == expected
    assert strip_controls("a\tb\nc\x00\x1b\x85") == "a\tb\nc"
    assert count_controls("a\tb\nc\x00\x1b\x85\r") == 3


def test_repeated_control_lines_are_cleaned_the_same_each_time(tmp_path: Path) -> None:
    # the same raw line twice is cleaned the same way both times, and its controls counted twice
    line = "Trust\x85 fined over late accounts"
    page = tmp_path / "p.txt"
    page.write_text(f"Kent ICS\n\n\n{line}\n\n\nThe trust was fined.\n\n\n{line}\n\n\n"
                    "A second story told again.\n", encoding="utf-8")
    result = parse_paths([page], CFG)
    assert [a.headline for a in result.articles] == ["Trust fined over late accounts"] * 2
    assert result.counts["controls_stripped"] == 2
