"""``hsj-pipeline parse`` as a user meets it: outputs, summary line, exit codes, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import full_disk_env, one_line_error


def cli(*args: str | Path, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = env or dict(os.environ, COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "pipeline", "parse", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_parse_seed_pages(sample_pages, tmp_path) -> None:
    out = tmp_path / "articles.jsonl"
    done = cli(*sample_pages, "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ("parsed 5 files: 98 slots -> 79 articles written, "
                                   "19 duplicates merged, 0 rejected")
    assert done.stdout == ""
    records = read_jsonl(out)
    assert len(records) == 79 and len({r["id"] for r in records}) == 79
    claw = next(r for r in records if r["headline"].startswith("NHSE begins to claw back"))
    assert claw["kicker"] == "Exclusive" and len(claw["systems"]) == 4 and len(claw["sources"]) == 4
    assert (tmp_path / "articles.rejects.jsonl").read_text(encoding="utf-8") == ""
    # the same input gives the same bytes
    again = tmp_path / "again.jsonl"
    assert cli(*sample_pages, "--out", again, "--quiet").returncode == 0
    assert again.read_bytes() == out.read_bytes()


def test_rejects_file_and_quiet(tmp_path) -> None:
    page = tmp_path / "p.txt"
    page.write_text("Devon ICS\n\nmoney coins\n\nTrust fined over late accounts\n\n\n"
                    "A trust has been fined for filing its accounts late.\n\nHospital beds\n", encoding="utf-8")
    rejects = tmp_path / "bad" / "r.jsonl"
    done = cli(page, "--out", tmp_path / "a.jsonl", "--rejects", rejects)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "parsed 1 file: 2 slots -> 1 articles written, 0 duplicates merged, 1 rejected",
        f"rejects written to {rejects}"]
    assert read_jsonl(rejects) == [{"file": str(page), "line": 10, "reason": "caption with no headline",
                                    "text": "Hospital beds"}]
    quiet = cli(page, "--out", tmp_path / "b.jsonl", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_csv_columns_by_number_and_name(tmp_path) -> None:
    headerless = tmp_path / "ag.csv"
    headerless.write_text('"3","Fears for pension","Unions are disappointed."\n"4","Row two","Text."\n',
                          encoding="utf-8")
    out = tmp_path / "ag.jsonl"
    done = cli(headerless, "--headline-column", "2", "--standfirst-column", "3", "--out", out)
    assert done.returncode == 0, done.stderr
    assert [(r["headline"], r["standfirst"]) for r in read_jsonl(out)] == [
        ("Fears for pension", "Unions are disappointed."), ("Row two", "Text.")]
    named = tmp_path / "named.csv"
    named.write_text("title,body\nA b,C d.\n", encoding="utf-8")
    done = cli(named, "--headline-column", "title", "--standfirst-column", "body", "--out", out)
    assert done.returncode == 0 and read_jsonl(out)[0]["standfirst"] == "C d."
    one_line_error(cli(named, "--out", out), 2, f"error: {named}:1: no headline column 'headline'")


def test_title_only_page_warns(tmp_path) -> None:
    page = tmp_path / "t.txt"
    page.write_text("Dorset ICS\n", encoding="utf-8")
    done = cli(page, "--out", tmp_path / "a.jsonl")
    assert done.returncode == 2  # nothing usable in the input: an error in parse, run and tag alike
    assert done.stderr.splitlines() == [
        f"warning: {page}: page has a title (Dorset ICS) but no articles",
        "error: no usable articles in the input (0 read, 0 rejected)"]


@pytest.mark.parametrize("name, data, needle", [
    ("missing.txt", None, "no such file"),
    ("empty.txt", b"", ":1: empty file"),
    ("latin.txt", "Devon ICS\n\n£5m\n".encode("latin-1"), ":3: not UTF-8 text"),
    ("nul.txt", b"Devon ICS\n\x00\x01", ":2: binary data"),
    ("notitle.txt", "Exclusive: Trust fined\n\n\nA trust was fined for filing late accounts.\n".encode(),
     ":1: no page title"),
])
def test_input_errors_are_one_line_with_file_and_line(tmp_path, name, data, needle) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    out = tmp_path / "a.jsonl"
    one_line_error(cli(path, "--out", out), 2, f"error: {path}", needle)
    assert not out.exists()  # nothing half-written


def test_directory_and_debug(tmp_path) -> None:
    one_line_error(cli(tmp_path, "--out", tmp_path / "a.jsonl"), 2, "is a directory")
    debug = subprocess.run([sys.executable, "-m", "pipeline", "--debug", "parse", str(tmp_path), "--out",
                            str(tmp_path / "a.jsonl")], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_refuses_to_overwrite_an_input(sample_pages, tmp_path) -> None:
    page = tmp_path / "p.txt"
    page.write_bytes(sample_pages[0].read_bytes())
    one_line_error(cli(page, "--out", page), 5, "would overwrite an input")
    assert page.read_bytes() == sample_pages[0].read_bytes()


def test_bad_config_key_is_named(sample_pages, tmp_path) -> None:
    one_line_error(cli(sample_pages[0], "--out", tmp_path / "a.jsonl", "--set", "parse.kickerz=[]"),
                   3, "parse.kickerz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_devices_are_refused_at_once(sample_pages, tmp_path) -> None:
    fifo = tmp_path / "pages.txt"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block for ever
    specials = [fifo] + [Path(d) for d in ("/dev/zero", "/dev/urandom") if Path(d).exists()]
    for path in specials:
        out = tmp_path / "a.jsonl"
        # a regression hangs (FIFO) or reads 2 GiB (devices): the timeout turns that into a failure
        done = cli(sample_pages[0], path, "--out", out, timeout=60)
        one_line_error(done, 2, f"error: {path}: ", "not a regular file")
        assert not out.exists()


@pytest.mark.parametrize("target", ["out", "rejects"])
def test_full_disk_is_one_line_exit_5_and_no_partial_file(sample_pages, tmp_path, target) -> None:
    full = tmp_path / "full"
    full.mkdir()
    out = (full if target == "out" else tmp_path) / "a.jsonl"
    rejects = (full if target == "rejects" else tmp_path) / "r.jsonl"
    bad = tmp_path / "bad.jsonl"  # one reject, so the rejects file has lines to write
    bad.write_text('{"headline": "Trust fined"}\nnot json\n', encoding="utf-8")
    done = cli(*sample_pages, bad, "--out", out, "--rejects", rejects, env=full_disk_env(tmp_path, full))
    named = out if target == "out" else rejects
    one_line_error(done, 5, f"error: {named}: ", "No space left on device")
    assert list(full.iterdir()) == []  # no temporary and no partial file
