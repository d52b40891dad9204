"""The Dask backend gives the local backend's results: same articles, categories, counts; ARI >= 0.9.

Runs on ``distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` reached
through ``run.scheduler`` (the path used for an existing cluster), over the sample pages plus a
generated corpus of about 2,000 articles. Skipped when the ``[dask]`` extra is not installed.
"""
from __future__ import annotations

import shutil
import sys
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
    from collections import Counter

    from pipeline.backends.dask_backend import df_partition, fitted_vectoriser
    from pipeline.vectorise import Vectoriser

    rng = np.random.RandomState(0)
    words = [f"w{i}" for i in range(60)]
    docs = [([str(w) for w in rng.choice(words, rng.randint(1, 6))],
             [str(w) for w in rng.choice(words, rng.randint(0, 12))]) for _ in range(400)]
    for config in (VectoriseConfig(), VectoriseConfig(ngram_max=2, min_df=2, max_df=0.5),
                   VectoriseConfig(min_df=0.01, max_df=30)):
        local = Vectoriser(config)
        X_local = local.fit_transform(docs)
        df: Counter = Counter()
        for start in range(0, len(docs), 97):  # uneven partitions
            part = docs[start:start + 97]
            df.update(df_partition(([h for h, _ in part], [s for _, s in part]), config.ngram_min,
                                   config.ngram_max))
        fitted = fitted_vectoriser(df, len(docs), config)
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


def test_tag_partition_reuses_clean_tokens_only_when_the_probe_matches(model_path: Path) -> None:
    from pipeline.backends.dask_backend import tag_partition
    from pipeline.tag import load_classifier

    classifier = load_classifier(model_path)
    config = load_config()
    heads = ["Trust board approves deficit plan", "Nurses strike over pay award"]
    stands = ["", ""]
    items = [{"headline": h} for h in heads]
    plain = tag_partition(classifier, items, config.tag)
    true_tokens = classifier.cleaner_.tokens(heads)
    # the second headline's tokens swapped for finance words: used only if the tokens are reused
    planted = ([true_tokens[0], ["deficit", "budget", "financial", "saving"]], [[], []])
    reused = tag_partition(classifier, items, config.tag, config.clean, heads, stands, planted)
    assert reused[0] == plain[0]
    assert reused[1]["scores"] != plain[1]["scores"]  # the planted tokens were read
    wrong_probe = ([["something", "else"], planted[0][1]], [[], []])
    guarded = tag_partition(classifier, items, config.tag, config.clean, heads, stands, wrong_probe)
    assert guarded == plain  # probe mismatch: nothing reused, everything cleaned by the model


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
