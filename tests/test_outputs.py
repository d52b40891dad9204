"""write_outputs: the files hold exactly the records (the plain one-line-per-record writer's bytes,
whatever the block size), and run.json describes them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import pipeline.outputs as outputs
from pipeline.config import Config
from pipeline.io import write_lines_atomic
from pipeline.records import Article, Reject, Source
from pipeline.run import RunResult, write_outputs

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


@pytest.mark.parametrize("block", [7, 1024])
def test_files_hold_exactly_the_records_and_run_json_describes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(outputs, "LINES_PER_BLOCK", block)  # blocks of 7 cross every boundary
    result = _result(101, 1)
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


def test_unencodable_text_fails_without_publishing(tmp_path: Path) -> None:
    result = _result(5, jobs=1)
    result.articles[3].headline = "lone surrogate \ud800"  # valid in a str, not in UTF-8
    with pytest.raises(UnicodeEncodeError):
        write_outputs(result, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".lock"]
