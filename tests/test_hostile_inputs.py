"""Catalogue of hostile and broken inputs, each with the behaviour it must get.

Whole-file problems raise :class:`InputError` naming the file (and line where there is one);
a bad block inside a good page becomes a reject with file, line, reason and a snippet; every
slot read is accounted for (slots == written + merged + rejected).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import pipeline.io

from pipeline.config import ParseConfig
from pipeline.errors import InputError
from pipeline.parse import MAX_HEADLINE_CHARS, parse_paths

CFG = ParseConfig()
PAGE = ("Somerset ICS\n\nmoney coins finance\n\nTrust misses savings target for third year\n\n\n"
        "A trust in the South West has missed its savings target for the third year running.\n\n\n"
        "ICB appoints interim chief executive\n\n\n"
        "An integrated care board has appointed an interim chief executive from a neighbouring trust.\n")
EXPECTED = [("Trust misses savings target for third year", "money coins finance"),
            ("ICB appoints interim chief executive", None)]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def parsed(tmp_path: Path, name: str, data: bytes | str, **kw):
    result = parse_paths([write(tmp_path, name, data)], CFG, **kw)
    c = result.counts
    assert c["slots"] == c["written"] + c["merged"] + c["rejected"]
    return result


def heads(result) -> list[tuple[str, str | None]]:
    return [(a.headline, a.caption) for a in result.articles]


def input_error(tmp_path: Path, name: str, data: bytes | str, match: str, line: int | None = 1,
                **kw) -> InputError:
    path = write(tmp_path, name, data)
    with pytest.raises(InputError, match=match) as info:
        parse_paths([path], CFG, **kw)
    assert info.value.file == str(path)
    assert info.value.line == line
    assert "\n" not in str(info.value)  # one line for the CLI
    return info.value


# ---- whole-file errors ------------------------------------------------------------------------------


def test_empty_file(tmp_path) -> None:
    input_error(tmp_path, "empty.txt", b"", "empty file")
    input_error(tmp_path, "blank.txt", " \n\t\n\u00a0\n\n", "empty file")
    input_error(tmp_path, "bom_only.txt", b"\xef\xbb\xbf", "empty file")
    input_error(tmp_path, "empty.jsonl", b"", "empty file")
    input_error(tmp_path, "empty.csv", b"\n\n", "empty file")


def test_binary_and_nul_bytes(tmp_path) -> None:
    input_error(tmp_path, "nul.txt", PAGE.encode() + b"bad\x00line\n", "binary data", line=15)
    input_error(tmp_path, "png.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8", line=1)
    input_error(tmp_path, "ctrl.txt", "Somerset ICS\n\nab\x01cd\n", "control character 0x01", line=3)


def test_latin1_text(tmp_path) -> None:
    err = input_error(tmp_path, "latin1.txt", PAGE.replace("third", "£3m").encode("latin-1"),
                      "not UTF-8", line=5)
    assert "0xa3" in err.message and "re-save" in err.message


def test_utf16_with_bom_is_read_without_bom_is_named(tmp_path) -> None:
    assert heads(parsed(tmp_path, "utf16.txt", PAGE.encode("utf-16"))) == EXPECTED
    assert heads(parsed(tmp_path, "utf16be.txt", b"\xfe\xff" + PAGE.encode("utf-16-be"))) == EXPECTED
    input_error(tmp_path, "utf16le.txt", PAGE.encode("utf-16-le"), "UTF-16 text without a byte-order mark")


def test_directory(tmp_path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    with pytest.raises(InputError, match="is a directory") as info:
        parse_paths([folder], CFG)
    assert info.value.file == str(folder)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file"):
        parse_paths([tmp_path / "nope.txt"], CFG)


def test_unreadable_file(tmp_path, monkeypatch) -> None:
    path = write(tmp_path, "locked.txt", PAGE)
    path.chmod(0)
    if path.stat().st_mode & 0o777 == 0 and not _can_read(path):
        pass  # a real permission error
    else:  # running as root: simulate what the OS would say
        def denied(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(pipeline.io, "open", denied, raising=False)
    with pytest.raises(InputError, match="permission denied") as info:
        parse_paths([path], CFG)
    assert info.value.file == str(path)


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except PermissionError:
        return False


def test_page_without_title(tmp_path) -> None:
    body = PAGE.split("\n", 2)[2]
    input_error(tmp_path, "notitle.txt", body, "no page title", line=1)


def test_ten_megabyte_single_line(tmp_path) -> None:
    big = "word " * (2 * 1024 * 1024)
    input_error(tmp_path, "big.txt", big, "no page title: line 1 has 10485759 characters")


def test_csv_missing_column(tmp_path) -> None:
    input_error(tmp_path, "cols.csv", "title,summary\nA b,C d.\n", "no headline column 'headline'")
    input_error(tmp_path, "cols2.csv", "headline,summary\nA b,C d.\n", "no standfirst column 'body'",
                standfirst_column="body")
    input_error(tmp_path, "cols3.csv", "a,b\nc,d\n", "headline column 5 does not exist",
                headline_column="5", standfirst_column="b")


# ---- pages that parse, with rejects where a block fits no article ------------------------------------


def test_title_only(tmp_path) -> None:
    result = parsed(tmp_path, "title.txt", "Dorset ICS")
    assert result.articles == [] and result.rejects == []
    assert result.counts["files"][0]["title"] == "Dorset ICS" and result.counts["slots"] == 0


@pytest.mark.parametrize("variant", ["crlf", "mixed", "bom", "tabs", "cr_only"])
def test_line_ending_bom_and_tab_variants(tmp_path, variant) -> None:
    text = {"crlf": PAGE.replace("\n", "\r\n"),
            "mixed": "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(PAGE.split("\n"))),
            "bom": "\ufeff" + PAGE,
            "tabs": "\n".join("\t" + line.replace(" ", "\t") if line else "\t \t" for line in PAGE.split("\n")),
            "cr_only": PAGE.replace("\n", "\r")}[variant]
    result = parsed(tmp_path, f"{variant}.txt", text)
    assert heads(result) == EXPECTED
    assert result.articles[0].standfirst == ("A trust in the South West has missed its savings target "
                                             "for the third year running.")


def test_thousands_of_blank_lines(tmp_path) -> None:
    lines = PAGE.split("\n")
    text = "\n" * 5000 + "\n".join(lines[:8]) + "\n" * 5000 + "\n".join(lines[8:]) + "\n" * 5000
    assert heads(parsed(tmp_path, "blank.txt", text)) == EXPECTED


def test_missing_and_extra_blank_lines_between_every_part(tmp_path) -> None:
    squeezed = PAGE.replace("\n\n\n", "\n\n").replace("finance\n\n", "finance\n")
    assert heads(parsed(tmp_path, "missing.txt", squeezed)) == EXPECTED
    widened = PAGE.replace("\n\n", "\n\n\n")
    assert heads(parsed(tmp_path, "extra.txt", widened)) == EXPECTED


def test_caption_with_no_headline(tmp_path) -> None:
    result = parsed(tmp_path, "orphan_end.txt", PAGE + "\nHospital beds\n")
    assert heads(result) == EXPECTED
    assert [(r.line, r.reason, r.text) for r in result.rejects] == [(16, "caption with no headline", "Hospital beds")]
    assert result.counts["slots"] == 3 and result.counts["rejected"] == 1

    middle = PAGE.replace("money coins finance\n", "Hospital beds\n\nmoney coins finance\n")
    result = parsed(tmp_path, "orphan_mid.txt", middle)
    assert heads(result) == EXPECTED
    assert [(r.line, r.reason) for r in result.rejects] == [(3, "caption with no headline")]


def test_headline_at_end_of_file(tmp_path) -> None:
    result = parsed(tmp_path, "end.txt", PAGE + "\nDigital innovation\n\nRevealed: First ICS digital maturity ratings")
    last = result.articles[-1]
    assert (last.headline, last.kicker, last.caption, last.standfirst) == (
        "First ICS digital maturity ratings", "Revealed", "Digital innovation", None)
    assert result.counts["written"] == 3 and result.rejects == []


def test_html_tags_and_entities(tmp_path) -> None:
    text = PAGE.replace("money coins finance", "<img alt=''>money &amp; coins</img>").replace(
        "Trust misses", "<b>Trust</b>&nbsp;misses")
    result = parsed(tmp_path, "html.txt", text)
    assert heads(result) == [("Trust misses savings target for third year", "money & coins"), EXPECTED[1]]


def test_emoji_and_other_scripts(tmp_path) -> None:
    text = PAGE.replace("Trust misses", "Trust 🚑 misses").replace(
        "An integrated care board", "Ένα συμβούλιο 医疗 board").replace("Somerset ICS", "Somerset ICS ✓")
    result = parsed(tmp_path, "emoji.txt", text)
    assert result.articles[0].headline == "Trust 🚑 misses savings target for third year"
    assert result.articles[1].standfirst.startswith("Ένα συμβούλιο 医疗 board")
    assert result.articles[0].systems == ["Somerset ICS ✓"]


def test_two_thousand_character_headline_is_rejected(tmp_path) -> None:
    long_headline = "Trust " + "x" * 1994
    text = PAGE.replace("ICB appoints interim chief executive", long_headline)
    result = parsed(tmp_path, "long.txt", text)
    assert heads(result) == EXPECTED[:1]
    (reject,) = result.rejects
    assert reject.line == 11
    assert reject.reason == f"headline too long (2000 characters; limit {MAX_HEADLINE_CHARS})"
    assert len(reject.text) == 200 and reject.text.startswith("Trust xxx")
    assert result.counts["slots"] == 2


def test_an_over_long_caption_is_rejected_at_its_own_line(tmp_path) -> None:
    """Regression: the reject named the headline's line and quoted the headline, so the user
    could not find the line at fault."""
    caption = "coins " * 120  # 720 characters: a caption, but over the caption limit
    text = PAGE.replace("money coins finance", caption.strip())
    result = parsed(tmp_path, "longcaption.txt", text)
    assert heads(result) == EXPECTED[1:]
    (reject,) = result.rejects
    assert reject.line == 3 and reject.reason.startswith("caption too long (719 characters")
    assert "its article at line 5 is rejected with it" in reject.reason
    assert reject.text.startswith("coins coins")
    assert result.counts["slots"] == 2


def test_ten_megabyte_line_inside_a_page(tmp_path) -> None:
    text = PAGE.replace("An integrated care board has appointed", "An " + "integrated " * 1_000_000 + "board")
    result = parsed(tmp_path, "bigline.txt", text)
    assert heads(result) == EXPECTED[:1]
    (reject,) = result.rejects
    assert reject.line == 11 and reject.reason.startswith("standfirst too long (")
    assert reject.text == "ICB appoints interim chief executive"


def test_same_page_given_twice(tmp_path) -> None:
    path = write(tmp_path, "page.txt", PAGE)
    result = parse_paths([path, path], CFG)
    assert heads(result) == EXPECTED
    c = result.counts
    assert (c["slots"], c["written"], c["merged"], c["rejected"]) == (4, 2, 2, 0)
    first = result.articles[0]
    assert first.systems == ["Somerset ICS"]
    assert [(s.file, s.line, s.position) for s in first.sources] == [(str(path), 5, 1)] * 2


# ---- JSONL and CSV -------------------------------------------------------------------------------------


def test_jsonl_bad_lines(tmp_path) -> None:
    text = "\n".join([json.dumps({"headline": "Good one", "standfirst": "Fine."}), "{oops", "[1, 2]",
                      json.dumps({"title": "no headline key"}), json.dumps({"headline": None}),
                      json.dumps({"headline": "x" * 2000}), "", "   "])
    result = parsed(tmp_path, "bad.jsonl", text)
    assert [a.headline for a in result.articles] == ["Good one"]
    assert [(r.line, r.reason.split(" (")[0]) for r in result.rejects] == [
        (2, "not valid JSON"), (3, "not a JSON object"), (4, "no headline"), (5, "no headline"),
        (6, "headline too long")]
    assert result.counts["slots"] == 6  # blank lines are not slots


def test_jsonl_ten_megabyte_line(tmp_path) -> None:
    result = parsed(tmp_path, "big.jsonl", "x" * (10 * 1024 * 1024) + "\n" + json.dumps({"headline": "Ok"}))
    assert [a.headline for a in result.articles] == ["Ok"]
    assert result.rejects[0].line == 1 and len(result.rejects[0].text) == 200


def test_csv_ragged_rows(tmp_path) -> None:
    text = "headline,standfirst\nGood,Fine.\nShort\nToo,many,fields\n\"Unclosed,quote\n"
    result = parsed(tmp_path, "ragged.csv", text)
    assert [a.headline for a in result.articles] == ["Good"]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "ragged row: 1 fields, expected 2"), (4, "ragged row: 3 fields, expected 2"),
        (5, "ragged row: 1 fields, expected 2")]
    assert result.counts["slots"] == 4


def test_csv_huge_field_is_a_reject_not_a_crash(tmp_path) -> None:
    text = "headline,standfirst\n" + "y" * 2_000_000 + ",z\nFine,Ok.\n"
    result = parsed(tmp_path, "huge.csv", text)
    assert [a.headline for a in result.articles] == ["Fine"]
    assert [(r.line, r.reason.split(" (")[0]) for r in result.rejects] == [(2, "headline too long")]
