"""The Dask backend gives the local backend's results: same articles, categories, counts; ARI >= 0.9.

Runs on ``distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` reached
through ``run.scheduler`` (the path used for an existing cluster), over the sample pages plus a
generated corpus of about 2,000 articles; and, through the CLI, on a scheduler and a worker
started as their own processes (``dask scheduler`` / ``dask worker``), the worker in another
working directory and with another view of the files. Skipped when the ``[dask]`` extra is not
installed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

distributed = pytest.importorskip("distributed")

from pipeline.config import SAMPLES_DIR, VectoriseConfig, load_config  # noqa: E402
from pipeline.run import RunResult, run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N_GENERATED = 2000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample pages first, then generated pages (with cross-page duplicates like the real ones)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate_corpus import write_corpus

    root = tmp_path_factory.mktemp("corpus")
    for page in sorted(SAMPLES_DIR.glob("*.txt")):
        shutil.copy(page, root / f"a_{page.name}")
    generated = root / "gen"
    write_corpus(N_GENERATED, generated, seed=3)
    for page in sorted(generated.glob("*.txt")):
        page.rename(root / f"b_{page.name}")
    generated.rmdir()
    (root / "c_rejects.jsonl").write_text('{"headline": ""}\n{"standfirst": "no headline"}\n', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cluster_address() -> str:
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def both(corpus: Path, model_path: Path, cluster_address: str,
         tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult]:
    local = run([corpus], config=load_config(), model=model_path, n_jobs=1,
                out_dir=tmp_path_factory.mktemp("local") / "out")
    config = load_config(overrides=['run.backend="dask"', f'run.scheduler="{cluster_address}"'])
    out = tmp_path_factory.mktemp("dask") / "out"
    dask = run([corpus], config=config, model=model_path, out_dir=out, n_jobs=2)
    return local, dask


def test_same_articles_in_the_same_order(both: tuple[RunResult, RunResult]) -> None:
    local, dask = both
    assert len(local.articles) > N_GENERATED
    assert [a.id for a in dask.articles] == [a.id for a in local.articles]
    for a, b in zip(local.articles, dask.articles):
        assert (b.tokens, b.amounts, b.systems) == (a.tokens, a.amounts, a.systems), a.id


def test_categories_identical_for_every_article(both: tuple[RunResult, RunResult]) -> None:
    local, dask = both
    by_id = {a.id: a for a in local.articles}
    for b in dask.articles:
        a = by_id[b.id]
        assert (b.category, b.confidence, b.uncertain, b.scores) == \
            (a.category, a.confidence, a.uncertain, a.scores), b.id
    assert len({a.category for a in dask.articles}) >= 3


def test_clusters_agree_with_ari_at_least_0_9(both: tuple[RunResult, RunResult]) -> None:
    from sklearn.metrics import adjusted_rand_score

    local, dask = both
    ari = adjusted_rand_score([a.cluster for a in local.articles], [b.cluster for b in dask.articles])
    assert ari >= 0.9
    assert dask.counts["cluster"]["k"] == local.counts["cluster"]["k"] >= 2


def test_same_counts_and_reconciliation(both: tuple[RunResult, RunResult]) -> None:
    local, dask = both
    for stage in ("parse", "clean", "vectorise", "tag"):
        assert dask.counts[stage] == local.counts[stage], stage
    parse = dask.counts["parse"]
    assert parse["merged"] > 0 and parse["slots"] == parse["written"] + parse["merged"] + parse["rejected"]
    assert dask.reconciled and local.reconciled
    assert len(dask.rejects) == len(local.rejects)


def test_outputs_written_and_manifest_names_the_backend(both: tuple[RunResult, RunResult]) -> None:
    _, dask = both
    assert dask.manifest["backend"]["name"] == "dask"
    assert dask.manifest["backend"]["workers"] == 2
    lines = dask.outputs["articles.jsonl"].read_text(encoding="utf-8").splitlines()
    assert lines == [a.to_json() for a in dask.articles]


def test_same_bytes_as_the_local_backend(both: tuple[RunResult, RunResult]) -> None:
    """articles.jsonl, rejects.jsonl and vectoriser.joblib are the local run's bytes (report.html
    and run.json also name the backend and its libraries)."""
    local, dask = both
    for name in ("articles.jsonl", "rejects.jsonl", "vectoriser.joblib"):
        assert dask.outputs[name].read_bytes() == local.outputs[name].read_bytes(), name
    assert local.rejects and dask.manifest["outputs"]["vectoriser.joblib"]["sha256"] == \
        local.manifest["outputs"]["vectoriser.joblib"]["sha256"]


def test_vocabulary_from_summed_document_frequencies_equals_local_fit() -> None:
    """The df-sum fit gives the local Vectoriser's vocabulary, idf and matrix (no cluster needed)."""
    from pipeline.backends.dask_backend import stats_partition
    from pipeline.vectorise import Vectoriser

    rng = np.random.RandomState(0)
    words = [f"w{i}" for i in range(60)]
    docs = [([str(w) for w in rng.choice(words, rng.randint(1, 6))],
             [str(w) for w in rng.choice(words, rng.randint(0, 12))]) for _ in range(400)]
    for config in (VectoriseConfig(), VectoriseConfig(ngram_max=2, min_df=2, max_df=0.5),
                   VectoriseConfig(min_df=0.01, max_df=30)):
        local = Vectoriser.from_config(config)
        X_local = local.fit_transform(docs)
        fitted = Vectoriser.from_config(config)
        # uneven partitions, each through the function the workers run
        fitted.fit_stats(fitted.combine(stats_partition(([h for h, _ in docs[s:s + 97]],
                                                         [t for _, t in docs[s:s + 97]], None), fitted)
                                        for s in range(0, len(docs), 97)))
        # the same vocabulary in the same order, so vectoriser.joblib is the same bytes
        assert list(fitted.counter_.vocabulary_.items()) == list(local.counter_.vocabulary_.items())
        assert _saved(fitted) == _saved(local)
        np.testing.assert_array_equal(fitted.tfidf_.idf_, local.tfidf_.idf_)
        X = sp.vstack([fitted.transform(docs[s:s + 97]) for s in range(0, len(docs), 97)], format="csr")
        assert X.shape == X_local.shape
        assert abs(X - X_local).max() < 1e-12


def _saved(vectoriser: object) -> bytes:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(vectoriser, buffer)
    return buffer.getvalue()


def test_unknown_scheduler_gives_a_one_line_config_error(model_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.backends import dask_backend
    from pipeline.errors import ConfigError

    monkeypatch.setattr(dask_backend, "CONNECT_TIMEOUT", "2s")
    config = load_config(overrides=['run.backend="dask"', 'run.scheduler="tcp://127.0.0.1:9"'])
    with pytest.raises(ConfigError, match="run.scheduler"):
        run(config=config, model=model_path)


def test_tag_partition_gives_the_local_tag_columns(model_path: Path) -> None:
    from pipeline.backends.dask_backend import tag_partition
    from pipeline.model_store import load_classifier
    from pipeline.tag import tag_columns

    classifier = load_classifier(model_path)
    config = load_config()
    items = [{"headline": h} for h in ("Trust board approves deficit plan", "Nurses strike over pay award")]
    here, there = tag_columns(items, classifier, config.tag), tag_partition(classifier, items, config.tag)
    assert there.categories == here.categories and there.score_dicts() == here.score_dicts()


@pytest.fixture(scope="module")
def native_both(corpus: Path, model_path: Path, cluster_address: str) -> tuple[RunResult, RunResult]:
    """Both backends with thresholds low enough that the ~2,000 articles take the large-corpus
    path: full-batch k-means locally, Dask-native k-means on the workers (matrix never gathered)."""
    from pipeline.backends import dask_backend

    local = run([corpus], config=load_config(overrides=["cluster.minibatch_threshold=300"]),
                model=model_path, n_jobs=1)
    config = load_config(overrides=["cluster.minibatch_threshold=300", 'run.backend="dask"',
                                    f'run.scheduler="{cluster_address}"'])

    def never(*args: object) -> None:
        raise AssertionError("the Dask-native path gathered the matrix")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dask_backend, "NATIVE_CLUSTER_MIN", 300)
        patch.setattr(dask_backend, "gather_matrix", never)
        dask = run([corpus], config=config, model=model_path, n_jobs=2)
    return local, dask


def test_dask_native_kmeans_agrees_with_local(native_both: tuple[RunResult, RunResult]) -> None:
    from sklearn.metrics import adjusted_rand_score

    local, dask = native_both
    assert any("dask-native k-means" in n for n in dask.manifest["notes"])
    ari = adjusted_rand_score([a.cluster for a in local.articles], [b.cluster for b in dask.articles])
    assert ari >= 0.9
    assert dask.counts["cluster"]["k"] == local.counts["cluster"]["k"] >= 2
    assert dask.counts["cluster"]["distinct"] == local.counts["cluster"]["distinct"]
    assert [c.terms for c in dask.clusters][:3] == [c.terms for c in local.clusters][:3]
    assert all(a.category == b.category for a, b in zip(local.articles, dask.articles))


# ---- a scheduler and a worker started as their own processes ------------------------------------

STARTUP_TIMEOUT = 60.0


def _dask(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m dask ...`` in its own session (so its children are stopped with it)."""
    with open(log, "wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started by :func:`_dask` and its children (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _scheduler_address(scheduler_file: Path, process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dask scheduler exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    pytest.fail(f"dask scheduler not ready in {STARTUP_TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's files and the worker's view of them. From ``client/`` (the CLI's working
    directory) a user names ``a.txt``, ``hidden/b.txt``, ``other/c.txt`` and ``rejects.jsonl``;
    the worker runs in ``worker/``, which holds a decoy ``a.txt``, sees no ``client/hidden/`` and
    sees another ``c.txt`` in ``client/other/``."""
    root = tmp_path_factory.mktemp("worlds")
    pages = sorted(SAMPLES_DIR.glob("*.txt"))
    for place, page in (("client/a.txt", 0), ("client/hidden/b.txt", 1), ("client/other/c.txt", 2),
                        ("worker_other/c.txt", 3), ("worker/a.txt", 4)):
        (root / place).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pages[page], root / place)
    (root / "client" / "rejects.jsonl").write_text('{"headline": ""}\n{"standfirst": "no headline"}\n',
                                                   encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def external_scheduler(worlds: Path) -> str:
    """A scheduler and one worker as separate processes on 127.0.0.1; always stopped after."""
    logs = worlds / "logs"
    logs.mkdir()
    scheduler_file = logs / "scheduler.json"
    started: list[subprocess.Popen] = []
    try:
        started.append(_dask(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                              "--scheduler-file", str(scheduler_file)], logs, logs / "scheduler.log"))
        address = _scheduler_address(scheduler_file, started[0], logs / "scheduler.log")
        view = os.pathsep.join([f"{worlds / 'client' / 'hidden'}={worlds / 'nowhere'}",
                                f"{worlds / 'client' / 'other'}={worlds / 'worker_other'}"])
        env = {**os.environ, "HSJ_TEST_WORKER_VIEW": view}
        started.append(_dask(["worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                              "--no-dashboard", "--death-timeout", "30",
                              "--preload", str(REPO / "tests" / "dask_worker_view.py")],
                             worlds / "worker", logs / "worker.log", env))
        with distributed.Client(address, timeout="30s") as client:
            try:
                client.wait_for_workers(1, timeout=STARTUP_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"dask worker not ready: {(logs / 'worker.log').read_text(errors='replace')[-2000:]}")
        yield address
    finally:
        for process in reversed(started):
            _stop(process)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HSJ_TEST_PAUSE"}
    return subprocess.run([sys.executable, "-m", "pipeline", "run", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.mark.slow
def test_existing_cluster_reads_inputs_by_the_clients_paths(worlds: Path, external_scheduler: str) -> None:
    """Relative names work though the worker's working directory is another (with a decoy of the
    same name); a file the worker cannot see, or sees with other bytes, is parsed by the client,
    with a note naming the worker and the file; the outputs are the local run's, sources included."""
    client_dir = worlds / "client"
    inputs = ["a.txt", "hidden/b.txt", "other/c.txt", "rejects.jsonl"]
    done = _cli(client_dir, *inputs, "--backend", "dask", "--scheduler", external_scheduler, "--out", "dask", "-q")
    assert done.returncode == 0, done.stderr
    local = _cli(client_dir, *inputs, "--out", "local", "-q")
    assert local.returncode == 0, local.stderr
    for name in ("articles.jsonl", "rejects.jsonl", "vectoriser.joblib"):
        assert (client_dir / "dask" / name).read_bytes() == (client_dir / "local" / name).read_bytes(), name
    articles = [json.loads(line) for line in (client_dir / "dask" / "articles.jsonl").read_text("utf-8").splitlines()]
    assert {s["file"] for a in articles for s in a["sources"]} == set(inputs[:3])
    manifest = json.loads((client_dir / "dask" / "run.json").read_text("utf-8"))
    assert manifest["backend"]["scheduler"] == external_scheduler
    assert [i["path"] for i in manifest["inputs"]] == inputs
    assert manifest["inputs"] == json.loads((client_dir / "local" / "run.json").read_text("utf-8"))["inputs"]
    notes = [n for n in manifest["notes"] if n.startswith("parse:")]
    assert len(notes) == 2, manifest["notes"]
    assert "worker tcp://127.0.0.1:" in notes[0] and "cannot read hidden/b.txt" in notes[0]
    assert "read other bytes" in notes[1] and "(other/c.txt)" in notes[1]


@pytest.mark.slow
def test_existing_cluster_missing_input_is_the_local_error(worlds: Path, external_scheduler: str) -> None:
    from cli_helpers import one_line_error

    done = _cli(worlds / "client", "a.txt", "missing.txt", "--backend", "dask", "--scheduler", external_scheduler,
                "--out", "missing")
    one_line_error(done, 2, "missing.txt", "no such file")
