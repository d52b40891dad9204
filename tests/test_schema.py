"""Output contract: the shipped JSON Schema is the one generated from the record model, and every
line a run writes validates against it and reads as plain JSON (and with pandas, when installed)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from pipeline.records import SCHEMA_PATH, Article, Source, article_schema
from pipeline.run import run


@pytest.fixture(scope="module")
def run_out(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("schema") / "out"
    run(out_dir=out, model=model_path, n_jobs=1)
    return out


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == article_schema(), "run `python -m pipeline.records` to regenerate"


def test_schema_ships_in_the_package() -> None:
    from importlib import resources

    text = resources.files("pipeline").joinpath("schema/article.schema.json").read_text(encoding="utf-8")
    assert json.loads(text)["title"] == "HSJ pipeline article record"


def test_every_output_line_validates(run_out: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    lines = (run_out / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    for number, line in enumerate(lines, 1):
        errors = list(validator.iter_errors(json.loads(line)))
        assert not errors, f"line {number}: {errors[0].message}"
    first = json.loads(lines[0])
    for key in ("id", "headline", "standfirst", "caption", "kicker", "series", "systems", "sources",
                "cluster", "cluster_terms", "cluster_score", "category", "confidence", "uncertain", "scores"):
        assert key in first, key
    assert first["category"] is not None and isinstance(first["scores"], dict)


def test_schema_rejects_a_wrong_record() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    good = json.loads(Article(id="a" * 16, headline="h", sources=[Source("f", 1, 0)]).to_json())
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({**good, "confidence": "high"}))
    assert list(validator.iter_errors({**good, "extra": 1}))
    assert list(validator.iter_errors({k: v for k, v in good.items() if k != "headline"}))


def test_jsonl_reads_line_by_line(run_out: Path) -> None:
    for name in ("articles.jsonl", "rejects.jsonl"):
        raw = (run_out / name).read_bytes()
        assert not raw or raw.endswith(b"\n")
        assert b"\r" not in raw
        for line in raw.decode("utf-8").splitlines():
            assert isinstance(json.loads(line), dict)


def test_pandas_reads_articles(run_out: Path) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_json(run_out / "articles.jsonl", lines=True)
    assert len(frame) == len((run_out / "articles.jsonl").read_text(encoding="utf-8").splitlines())
    assert {"id", "headline", "category", "cluster"} <= set(frame.columns)


def test_jq_reads_articles(run_out: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq not installed")
    done = subprocess.run(["jq", "-r", ".id", str(run_out / "articles.jsonl")], capture_output=True,
                          text=True, check=True)
    ids = [json.loads(line)["id"] for line in (run_out / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    assert done.stdout.split() == ids
