"""The main job end to end on the bundled sample pages: counts reconcile, manifest, outputs, errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, InputError, ModelError, OutputError
from pipeline.io import sha256_file
from pipeline.model_store import load_classifier
from pipeline.tag import min_confidence_of
from pipeline.report import CATEGORY_ORDER
from pipeline.run import OUTPUT_FILES, RunResult, resolve_inputs, run

REPO = Path(__file__).resolve().parent.parent
LABELS_DIR = REPO / "data" / "labels"
# What run.json may hold differently between two runs of the same input and config with another
# --jobs: when it ran, how long each stage took, and the job count itself. Everything else --
# counts, notes, config, inputs, model, libraries, and every output's sha256 and size -- is equal.
RUN_JSON_VARIES = ("started", "finished", "timings_seconds", "jobs")


@pytest.fixture(scope="module")
def sample_run(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    out = tmp_path_factory.mktemp("run") / "out"
    return run(out_dir=out, model=model_path, n_jobs=1), out


def test_package_exposes_run_function() -> None:
    assert pipeline.run is run and callable(pipeline.run)


def test_counts_reconcile(sample_run: tuple[RunResult, Path]) -> None:
    result, _ = sample_run
    parse = result.counts["parse"]
    assert parse["slots"] == parse["written"] + parse["merged"] + parse["rejected"]
    assert parse["written"] == len(result.articles) > 0
    for stage in ("clean", "vectorise", "cluster", "tag"):
        assert result.counts[stage]["articles"] == len(result.articles), stage
    assert result.counts["reconciliation"]["ok"] is True and result.reconciled
    assert result.counts["rejects"] == len(result.rejects) == parse["rejected"]
    assert set(result.timings) == {"parse", "clean", "vectorise", "cluster", "tag", "write"}


def test_every_article_is_complete_and_in_input_order(sample_run: tuple[RunResult, Path]) -> None:
    result, _ = sample_run
    ids = [a.id for a in result.articles]
    assert len(ids) == len(set(ids))
    files = [str(p) for p in result.inputs]
    first = [(files.index(a.sources[0].file), a.sources[0].position) for a in result.articles]
    assert first == sorted(first)  # order of first appearance: file order, then slot on the page
    cluster_ids = {c.id for c in result.clusters}
    for a in result.articles:
        assert a.category in CATEGORY_ORDER
        threshold = min_confidence_of(load_classifier(), result.config.tag)
        assert 0.0 <= a.confidence <= 1.0 and a.uncertain == (
            a.uncertain_reason is not None and (a.uncertain_reason == "out_of_scope" or a.confidence < threshold))
        assert a.cluster in cluster_ids or a.cluster == -1
        assert a.systems and a.tokens is not None
    assert sum(c.size for c in result.clusters) == sum(1 for a in result.articles if a.cluster != -1)
    assert len(result.coords) == len(result.articles)


def test_writes_every_output(sample_run: tuple[RunResult, Path]) -> None:
    result, out = sample_run
    assert set(result.outputs) == set(OUTPUT_FILES)
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == sorted(OUTPUT_FILES)
    lines = (out / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [a.id for a in result.articles]
    assert len((out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()) == len(result.rejects)
    assert "Categories per ICS page" in (out / "report.html").read_text(encoding="utf-8")


def test_manifest(sample_run: tuple[RunResult, Path], model_path: Path) -> None:
    result, out = sample_run
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert manifest["version"] == pipeline.__version__
    assert [i["path"] for i in manifest["inputs"]] == [str(p) for p in resolve_inputs(None)]
    for item in manifest["inputs"]:
        assert item["sha256"] == sha256_file(Path(item["path"])) and item["format"] == "page"
        assert item["bytes"] == Path(item["path"]).stat().st_size
    assert manifest["config"] == Config().to_dict()
    assert manifest["seeds"] == {"cluster.random_state": 0}
    assert manifest["model"]["sha256"] == sha256_file(model_path)
    assert manifest["model"]["card"]["artefact_sha256"] == manifest["model"]["sha256"]
    assert manifest["libraries"]["scikit-learn"] and manifest["libraries"]["spacy"]
    assert manifest["counts"]["reconciliation"]["ok"] is True
    # every stage's time; writing is timed after run.json is written, so only the result has it
    assert set(manifest["timings_seconds"]) == set(result.timings) - {"write"}
    assert result.seconds >= sum(manifest["timings_seconds"].values())
    for name in ("articles.jsonl", "rejects.jsonl", "report.html", "vectoriser.joblib"):
        assert manifest["outputs"][name]["sha256"] == sha256_file(out / name), name
    assert manifest["started"] <= manifest["finished"]


def test_writes_nothing_without_out_dir(model_path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run([str(p) for p in resolve_inputs(None)[:1]], model=model_path, n_jobs=1)
    assert result.outputs == {} and list(tmp_path.iterdir()) == []
    assert result.articles and result.manifest["outputs"] == {}


def test_directory_input_is_its_files_sorted(tmp_path: Path) -> None:
    pages = resolve_inputs(None)
    for page in reversed(pages[:2]):
        shutil.copy(page, tmp_path / page.name)
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    assert [p.name for p in resolve_inputs([tmp_path])] == [p.name for p in pages[:2]]
    with pytest.raises(InputError, match="no .txt, .jsonl or .csv"):
        resolve_inputs([tmp_path / "empty"]) if (tmp_path / "empty").mkdir() is None else None


def test_same_file_twice_is_read_once() -> None:
    page = resolve_inputs(None)[0]
    assert resolve_inputs([page, page]) == [page]


def test_output_equal_to_input_is_refused(model_path: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    shutil.copy(resolve_inputs(None)[0], page)
    with pytest.raises(OutputError, match="existing file"):
        run([page], out_dir=page, model=model_path)
    jsonl = tmp_path / "articles.jsonl"
    jsonl.write_text('{"headline": "A headline long enough to keep"}\n', encoding="utf-8")
    with pytest.raises(OutputError, match="overwrite the input articles.jsonl"):
        run([jsonl], out_dir=tmp_path, model=model_path)
    assert jsonl.read_text(encoding="utf-8").startswith('{"headline"')


def test_missing_model_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        run(out_dir=tmp_path / "out", model=tmp_path / "nope.joblib")
    assert not (tmp_path / "out").exists()


def test_missing_input_is_an_input_error(model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        run([tmp_path / "missing.txt"], out_dir=tmp_path / "out", model=model_path)
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]


def test_dask_backend_without_the_extra_is_refused_clearly(model_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"run.backend: .*pip install -e \"\.\[dask\]\""):
        run(config=load_config(overrides=["run.backend=dask"]), model=model_path)


def test_input_with_only_rejects_writes_them(model_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"headline": ""}\n{"standfirst": "no headline"}\n', encoding="utf-8")
    result = run([bad], out_dir=tmp_path / "out", model=model_path)
    assert result.articles == [] and len(result.rejects) == 2
    assert result.counts["reconciliation"]["ok"] is True
    assert (tmp_path / "out" / "articles.jsonl").read_text(encoding="utf-8") == ""
    assert len((tmp_path / "out" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.slow
def test_same_input_gives_byte_identical_articles(model_path: Path, tmp_path: Path,
                                                   sample_run: tuple[RunResult, Path]) -> None:
    _, first = sample_run
    run(out_dir=tmp_path / "again", model=model_path, n_jobs=1)
    assert (tmp_path / "again" / "articles.jsonl").read_bytes() == (first / "articles.jsonl").read_bytes()
    assert (tmp_path / "again" / "rejects.jsonl").read_bytes() == (first / "rejects.jsonl").read_bytes()


def test_run_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """The run freezes its long-lived records during the job and unfreezes them afterwards; a
    caller's own frozen objects stay frozen and nothing else is changed."""
    import gc

    from pipeline import run

    assert gc.get_freeze_count() == 0 and gc.isenabled()
    run(n_jobs=1)
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run(n_jobs=1)
        assert gc.get_freeze_count() >= frozen * 0.9  # not unfrozen by the run
    finally:
        gc.unfreeze()


def _cli_outputs(cwd: Path, jobs: int, *args: str) -> dict[str, bytes]:
    """``hsj-pipeline run ... --jobs N --out out`` in ``cwd``; every output file's bytes (the same
    --out for every run, so the paths recorded in run.json are the same too)."""
    env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", *args, "--jobs", str(jobs), "--out", "out",
                           "--quiet"], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return {name: (cwd / "out" / name).read_bytes() for name in OUTPUT_FILES}


def _assert_same_outputs(one: dict[str, bytes], two: dict[str, bytes], varies: tuple[str, ...]) -> None:
    for name in OUTPUT_FILES:
        if name != "run.json":
            assert one[name] == two[name], name
    first, second = json.loads(one["run.json"]), json.loads(two["run.json"])
    assert set(first) == set(second)
    for key in first:
        if key not in varies:
            assert first[key] == second[key], key
    # the hashes run.json records are those of the very files compared above
    from hashlib import sha256

    assert {n: o["sha256"] for n, o in second["outputs"].items()} == \
        {n: sha256(two[n]).hexdigest() for n in OUTPUT_FILES if n != "run.json"}


@pytest.mark.slow
def test_samples_give_the_same_bytes_with_one_or_two_jobs(tmp_path: Path) -> None:
    one = _cli_outputs(tmp_path, 1)
    two = _cli_outputs(tmp_path, 2)
    _assert_same_outputs(one, two, RUN_JSON_VARIES)
    assert json.loads(two["run.json"])["jobs"] == 2 and one["articles.jsonl"].count(b"\n") > 50


@pytest.fixture(scope="module")
def forking_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough pages and articles that --jobs 2 forks the parse, the clean (threshold lowered by
    --set below) and the tag stage; plus a file of rejects."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate_corpus import write_corpus

    root = tmp_path_factory.mktemp("forking")
    write_corpus(2200, root / "pages", seed=5, per_page=10)
    (root / "pages" / "zz_extra.jsonl").write_text(
        '{"headline": ""}\n{"headline": "Trust board warns of deficit", "standfirst": "Plan due"}\n'
        '{"standfirst": "no headline"}\n', encoding="utf-8")
    return root


@pytest.mark.slow
def test_a_forking_run_gives_the_same_bytes_with_one_or_two_jobs(forking_corpus: Path) -> None:
    from pipeline.config import load_config
    from pipeline.execution import forked_minimums

    pages = forking_corpus / "pages"
    threshold = 1000
    args = (str(pages), "--set", f"clean.parallel_threshold={threshold}")
    one = _cli_outputs(forking_corpus, 1, *args)
    two = _cli_outputs(forking_corpus, 2, *args)
    _assert_same_outputs(one, two, RUN_JSON_VARIES)
    manifest = json.loads(two["run.json"])
    articles = manifest["counts"]["reconciliation"]["articles_out"]
    # big enough that every stage the forked executor shares was shared with --jobs 2
    minimum = forked_minimums(threshold, load_config().tag.parallel_threshold)
    assert len(list(pages.iterdir())) >= minimum["parse"] and articles >= minimum["clean"]
    assert 2 * articles >= threshold and articles >= load_config().tag.parallel_threshold
    assert manifest["counts"]["rejects"] == 2 and one["rejects.jsonl"].count(b"\n") == 2
