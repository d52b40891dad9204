"""write_outputs: the files hold exactly the records, however they were encoded.

articles.jsonl is written by this process alone, or (large runs, jobs > 1) with a forked child
encoding chunks from the front and handing each over; what a failed child did not deliver is encoded
here. Every way must give the same bytes as the plain one-line-per-record writer, and run.json must
describe the files.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from pipeline import outputs
from pipeline.backends.forked import can_fork
from pipeline.config import Config
from pipeline.io import write_lines_atomic
from pipeline.records import Article, Reject, Source
from pipeline.run import RunResult, write_outputs

needs_fork = pytest.mark.skipif(not can_fork(), reason="fork is Linux-only here")


def _result(n: int, jobs: int) -> RunResult:
    """A synthetic run with non-ASCII, escaped and control characters and every field filled."""
    articles = [Article(id=f"{i:016x}", headline=f"Trust’s £{i}m “plan” \\ \"quoted\"\t{i}",
                        standfirst=None if i % 3 else "é\u2028\x01", systems=["Kent & Medway ICS"],
                        sources=[Source("p.txt", i + 1, i % 7)], tokens=["trust", f"t{i}"],
                        amounts=[1e6 * i] if i % 2 else [], cluster=i % 4, cluster_terms=["gp"],
                        cluster_score=i / 7, category="finance", confidence=0.5 + i / (3 * n),
                        uncertain=bool(i % 2), scores={"finance": 0.75, "workforce": 0.25})
                for i in range(n)]
    rejects = [Reject(file="p.txt", line=i, reason="too short", text="ü" * i) for i in range(3)]
    return RunResult(articles=articles, rejects=rejects, clusters=[], counts={}, timings={"parse": 0.0},
                     manifest={"jobs": jobs}, config=Config(), inputs=[])


def _plain(tmp_path: Path, records: list) -> bytes:
    """What the one-line-at-a-time text writer produces for the records."""
    path = tmp_path / "plain.jsonl"
    write_lines_atomic(path, (r.to_json() for r in records))
    return path.read_bytes()


@pytest.fixture
def small_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork from 40 articles and encode in blocks of 7, so small tests cross every boundary."""
    monkeypatch.setattr(outputs, "PARALLEL_MIN_ARTICLES", 40)
    monkeypatch.setattr(outputs, "BLOCK_RECORDS", 7)


@pytest.mark.parametrize("jobs", [1, 2])
def test_files_hold_exactly_the_records_and_run_json_describes_them(
        tmp_path: Path, small_parallel: None, jobs: int) -> None:
    result = _result(101, jobs)
    published = write_outputs(result, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "articles.jsonl").read_bytes() == _plain(tmp_path, result.articles)
    assert (out / "rejects.jsonl").read_bytes() == _plain(tmp_path, result.rejects)
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert set(manifest["outputs"]) == {"articles.jsonl", "rejects.jsonl", "report.html"}
    for name, entry in manifest["outputs"].items():
        data = (out / name).read_bytes()
        assert entry == {"path": str(out / name), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert set(published) == {"articles.jsonl", "rejects.jsonl", "report.html", "run.json"}
    # no part file, no staging left; the lock file stays (removing it would race)
    assert sorted(p.name for p in out.iterdir()) == sorted([*published, ".lock"])


@pytest.fixture
def slow_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report takes 0.3 s, so the forked child surely claims chunks before this process does."""
    import time

    from pipeline import report

    real = report.render_report

    def slow(result: RunResult) -> str:
        time.sleep(0.3)
        return real(result)

    monkeypatch.setattr(report, "render_report", slow)


@pytest.fixture
def encode_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every chunk encoding leaves a note "<pid> <start>" in a file (the child's notes too)."""
    witness = tmp_path / "encoded.txt"
    real = outputs._ArticleLines._encode

    def spy(self, index: int) -> bytes:
        with open(witness, "a", encoding="utf-8") as note:
            note.write(f"{os.getpid()} {self.starts[index]}\n")
        return real(self, index)

    monkeypatch.setattr(outputs._ArticleLines, "_encode", spy)
    return witness


@needs_fork
def test_a_forked_child_encodes_chunks_from_the_front(tmp_path: Path, small_parallel: None, slow_report: None,
                                                      encode_notes: Path) -> None:
    result = _result(100, jobs=2)
    write_outputs(result, tmp_path / "out")
    notes = [tuple(map(int, line.split())) for line in encode_notes.read_text().splitlines()]
    child = [start for pid, start in notes if pid != os.getpid()]
    here = [start for pid, start in notes if pid == os.getpid()]
    assert child and child[0] == 0 and child == sorted(child)  # from the front, in turn
    assert sorted(child + here) == list(range(0, 100, 7))  # every chunk once
    assert not here or (here == sorted(here, reverse=True) and min(here) > max(child))  # the back here
    assert (tmp_path / "out" / "articles.jsonl").read_bytes() == _plain(tmp_path, result.articles)


def test_small_or_single_job_runs_do_not_fork(tmp_path: Path, small_parallel: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(*args: object) -> None:
        raise AssertionError("forked")

    monkeypatch.setattr("pipeline.backends.forked.SharedChunks._fork", no_fork)
    write_outputs(_result(39, jobs=2), tmp_path / "a")  # below PARALLEL_MIN_ARTICLES
    write_outputs(_result(100, jobs=1), tmp_path / "b")
    assert (tmp_path / "b" / "articles.jsonl").read_bytes().count(b"\n") == 100


@needs_fork
@pytest.mark.parametrize("failure", ["raises", "lost bytes", "dies"])
def test_failed_child_is_replaced_by_encoding_here(tmp_path: Path, small_parallel: None, slow_report: None,
                                                   monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    from pipeline.backends import forked

    witness = tmp_path / "child.txt"
    real = outputs._ArticleLines._encode
    parent = os.getpid()

    def broken(self, index: int) -> bytes:
        if os.getpid() == parent:
            return real(self, index)
        witness.write_text("ran")
        if failure == "raises":
            raise RuntimeError("child broke")
        if failure == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, index)

    if failure == "lost bytes":  # what the child handed over cannot be read back in full
        monkeypatch.setattr(forked._Feed, "read", lambda self, offset, length: b'{"partial":')
    monkeypatch.setattr(outputs._ArticleLines, "_encode", broken)
    result = _result(100, jobs=2)
    write_outputs(result, tmp_path / "out")
    assert witness.read_text() == "ran"
    assert (tmp_path / "out" / "articles.jsonl").read_bytes() == _plain(tmp_path, result.articles)
    assert [p.name for p in (tmp_path / "out").glob(".*")] == [".lock"]  # no staging directory left


def test_unencodable_text_fails_without_publishing(tmp_path: Path) -> None:
    result = _result(5, jobs=1)
    result.articles[3].headline = "lone surrogate \ud800"  # valid in a str, not in UTF-8
    with pytest.raises(UnicodeEncodeError):
        write_outputs(result, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".lock"]


# ---- the fast block encoder gives to_json's bytes, on any record ---------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_records import FLOATS, TYPED, odd_articles  # noqa: E402


def _expected_block(records: list) -> bytes | str:
    try:
        return "".join(r.to_json() + "\n" for r in records).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - the same kind of error must come out of the writer
        return type(exc).__name__


def _block(records: list) -> bytes | str:
    try:
        return outputs._encode_block(records)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


@settings(max_examples=500, deadline=None)
@given(st.lists(TYPED, min_size=1, max_size=3))
def test_block_encoder_equals_to_json_on_any_article(records: list) -> None:
    assert _block(records) == _expected_block(records)


@settings(max_examples=300, deadline=None)
@given(st.lists(TYPED | odd_articles(), min_size=1, max_size=3))
def test_block_encoder_on_a_field_of_another_type_gives_to_json_or_valid_json(records: list) -> None:
    """A record the stages never make (a field of an undeclared type): the writer gives to_json's
    bytes or error, or -- where orjson encodes a value json.dumps cannot or spells it as valid
    JSON (NaN as null) -- a valid JSON line per record. Where both refuse the block, the error
    may come from another record: the writer encodes each line as it goes, the reference joins
    the text of all first."""
    got, expected = _block(records), _expected_block(records)
    if isinstance(expected, str):  # to_json refuses: the writer refuses too, or writes valid JSON
        if isinstance(got, str):
            return
    if got != expected:
        assert isinstance(got, bytes)
        lines = got.decode("utf-8").split("\n")
        assert lines[-1] == "" and len(lines) == len(records) + 1
        for line in lines[:-1]:
            json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS | st.floats(min_value=-1e-3, max_value=1e-3), min_size=1, max_size=4))
def test_block_encoder_spells_every_float_as_json_does(values: list) -> None:
    """Small magnitudes are where orjson and json.dumps spell floats differently."""
    article = Article(id="x", headline="h", amounts=values, cluster=0, cluster_terms=[], cluster_score=values[0],
                      confidence=values[-1], scores={str(i): v for i, v in enumerate(values)})
    assert _block([article]) == _expected_block([article])


def test_block_encoder_takes_the_fast_path_on_run_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ordinary records go through orjson (no to_json call), and text that looks like a small
    float sends the block to to_json, still with the same bytes."""
    if outputs._orjson_dumps is None:
        pytest.skip("orjson is not installed")
    records = _result(50, jobs=1).articles
    expected = _expected_block(records)
    calls = []
    real = Article.to_json
    monkeypatch.setattr(Article, "to_json", lambda self: calls.append(1) or real(self))
    assert outputs._encode_block(records) == expected and not calls
    records[7].headline = "rates fell 0.00005 points, or 2e-5"
    assert outputs._encode_block(records) == _expected_block(records) and calls
