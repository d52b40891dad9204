"""Scale code paths on a small generated corpus (CI-sized; the big sizes live in benchmarks/).

The generator + a whole run on ~1,000 articles reconcile their counts; parse and tag batches shared
with forked children give the in-process results (and a failed child's share is redone
in-process); the TF-IDF matrix stays sparse through
vectorise and cluster;
the fast silhouette used by auto k equals scikit-learn's; the benchmark's helpers compute what
they claim.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.config import load_config
from pipeline.run import RunResult, run

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
N_ARTICLES = 1000


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generate_corpus import write_corpus

    out = tmp_path_factory.mktemp("pages")
    assert write_corpus(N_ARTICLES, out, seed=1) == len(list(out.glob("*.txt"))) > 50
    return out


@pytest.fixture(scope="module")
def result(pages: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run([pages], config=load_config(), model=model_path, n_jobs=1,
               out_dir=tmp_path_factory.mktemp("run") / "out")


def test_generated_run_reconciles_counts(result: RunResult) -> None:
    parse = result.counts["parse"]
    assert parse["written"] == N_ARTICLES == len(result.articles)
    assert parse["merged"] > 0.1 * N_ARTICLES  # the same article on several ICS pages
    assert parse["slots"] == parse["written"] + parse["merged"] + parse["rejected"]
    for stage in ("clean", "vectorise", "cluster", "tag"):
        assert result.counts[stage]["articles"] == N_ARTICLES, stage
    assert result.reconciled
    written = result.outputs["articles.jsonl"].read_text(encoding="utf-8").splitlines()
    assert len(written) == N_ARTICLES


def test_generated_corpus_is_deterministic_and_seeded(tmp_path: Path) -> None:
    from generate_corpus import write_corpus

    write_corpus(200, tmp_path / "a", seed=5)
    write_corpus(200, tmp_path / "b", seed=5)
    write_corpus(200, tmp_path / "c", seed=6)
    read = lambda d: [p.read_bytes() for p in sorted(d.glob("*.txt"))]  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b") != read(tmp_path / "c")


def test_tfidf_matrix_stays_sparse_through_vectorise_and_cluster(
        pages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Densifying an articles x terms matrix is what blows memory at 1M: forbid it."""
    from pipeline.clean import clean_articles
    from pipeline.cluster import cluster_articles
    from pipeline.parse import parse_paths
    from pipeline.vectorise import Vectoriser

    config = load_config()
    articles = parse_paths(sorted(pages.glob("*.txt")), config.parse).articles
    cleaned = clean_articles(articles, config.clean)
    n = len(articles)

    def refuse(self: sp.spmatrix, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"densified a {self.shape} sparse matrix")

    vectoriser = Vectoriser.from_config(config.vectorise)
    X = vectoriser.fit_transform(cleaned)
    assert sp.issparse(X) and X.shape[0] == n and X.nnz < 0.05 * X.shape[0] * X.shape[1]
    original = sp.csr_matrix.toarray

    def guarded(self: sp.csr_matrix, *args: object, **kwargs: object) -> np.ndarray:
        if self.shape[0] >= n // 2:  # an articles x terms matrix (small k x terms ones are fine)
            refuse(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", guarded)
    monkeypatch.setattr(sp.csr_matrix, "todense", lambda self, *a, **k: guarded(self, *a, **k))
    clustered = cluster_articles(X, articles, config.cluster, vectoriser)
    assert len(clustered.labels) == n and clustered.k >= 2


def test_forked_parse_and_tag_equal_in_process(pages: Path, model_path: Path) -> None:
    """The parse and tag stages' batches shared with forked children give the one-process
    records, counts and checksums (parse) and tags (tag)."""
    from pipeline.execution import Forked, Local
    from pipeline.execution.forked import can_fork
    from pipeline.io import real_paths, sha256_file
    from pipeline.model_store import load_classifier
    from pipeline.parse import InputFile, ParseStage, parse_paths
    from pipeline.runner import predictions
    from pipeline.tag import TagStage

    if not can_fork():
        pytest.skip("fork is Linux-only here")
    config = load_config()
    files = sorted(pages.glob("*.txt"))
    inputs = [InputFile(str(f), r) for f, r in zip(files, real_paths(files))]
    serial = parse_paths(files, config.parse)
    forked = Forked(2, {"parse": 2, "tag": 2})
    stage = ParseStage(config.parse)
    batches, results = predictions(stage, inputs, forked)
    assert len(batches) > 1
    parallel = stage.combine(results, inputs)
    assert [a.to_json() for a in parallel.articles] == [a.to_json() for a in serial.articles]
    assert parallel.counts == serial.counts and len(parallel.rejects) == len(serial.rejects)
    # each file's checksum and size, of the bytes parsed, for run.json: the same either way
    assert parallel.digests == serial.digests == [(str(f), sha256_file(f), f.stat().st_size) for f in files]

    subset = serial.articles[:300]
    twins = parallel.articles[:300]
    tagger = TagStage(config.tag, load_classifier(model_path))
    for executor, articles in ((Local(), subset), (forked, twins)):
        batches, results = predictions(tagger, articles, executor)
        for batch, columns in zip(batches, results):
            tagger.set_annotations(batch, columns)
    assert [(a.category, a.scores, a.uncertain) for a in twins] == [(a.category, a.scores, a.uncertain)
                                                                   for a in subset]


@pytest.mark.parametrize("k", [2, 7, 30])
def test_fast_cosine_silhouette_equals_sklearn(k: int) -> None:
    from sklearn.metrics import silhouette_score

    from pipeline.cluster import cosine_silhouette

    rng = np.random.RandomState(k)
    Z = rng.randn(600, 12) + 3 * rng.randn(k, 12)[rng.randint(0, k, 600)]
    Z[5] = 0.0  # an all-zero row (an article whose LSA projection is empty)
    labels = rng.randint(0, k, 600)
    labels[:k] = np.arange(k)
    labels[7] = k  # a singleton cluster scores 0
    assert cosine_silhouette(Z, labels) == pytest.approx(
        silhouette_score(Z, labels, metric="cosine"), abs=1e-12)


def test_benchmark_ratios_and_memory_sampler() -> None:
    import run_scale

    ours = {"seconds": {"parse": 1.0, "clean": 4.0, "vectorise": 2.0, "cluster": 3.0, "tag": 6.0,
                        "write": 1.0, "total": 17.0}}
    base = {"seconds": {"vectorise": 2.0, "cluster": 1.5, "tag": 0.5, "total": 4.0}}
    r = run_scale.ratios(ours, base)
    assert r["vectorise (clean+vectorise vs TfidfVectorizer)"] == 3.0
    assert r["cluster (vs MiniBatchKMeans)"] == 2.0
    assert r["tag (vs LinearSVC predict)"] == 12.0
    assert r["total, whole pipeline incl. parse+write (vs baseline total)"] == 4.25
    assert r["total, clean..tag only (vs baseline total)"] == 3.75
    # --repeats: the fastest pipeline run against the fastest baseline of any run, highest peak
    slow = {"ours": {**ours, "peak_rss_mib_total": 900}, "baseline": {"seconds": {**base["seconds"], "total": 3.4}}}
    quick = {"ours": {**ours, "seconds": {**ours["seconds"], "total": 13.6}, "peak_rss_mib_total": 800},
             "baseline": base}
    best = run_scale.fastest([slow, quick])
    assert best["ours"]["seconds"]["total"] == 13.6 and best["baseline"]["seconds"]["total"] == 3.4
    assert best["ratios"]["total, whole pipeline incl. parse+write (vs baseline total)"] == 4.0
    assert best["ours"]["peak_rss_mib_total"] == 900 and best["pipeline_totals_of_all_runs"] == [17.0, 13.6]
    assert run_scale.fastest([slow]) is slow
    sampler = run_scale.MemorySampler()
    sampler.set_phase("x")
    block = bytearray(64 * 1024 * 1024)  # noqa: F841 - held while sampling
    sampler.sample()
    assert sampler.peaks["x"] >= 64 * 1024 * 1024 and sampler.peaks["x"] >= sampler.self_peaks["x"]


def test_forked_tagger_gives_the_in_process_output(pages: Path, model_path: Path, result: RunResult,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import tag
    from pipeline.execution.forked import can_fork

    if not can_fork():
        pytest.skip("fork is Linux-only here")
    real, pids = tag.tag_columns, tmp_path / "pids"

    def recording(*args: object, **kwargs: object) -> object:
        with pids.open("a") as handle:  # a child's list would die with it: a file does not
            handle.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(tag, "tag_columns", recording)  # inherited by the fork
    config = load_config(None, ["tag.parallel_threshold=0"])
    forked = run([pages], config=config, model=model_path, n_jobs=2, out_dir=tmp_path / "out")
    assert str(os.getpid()) in pids.read_text() and len(set(pids.read_text().split())) == 2  # shared
    assert not any("failed" in n for n in forked.manifest["notes"])
    first = Path(result.outputs["articles.jsonl"]).read_bytes()
    assert (tmp_path / "out" / "articles.jsonl").read_bytes() == first
    assert forked.counts["tag"] == result.counts["tag"]


def test_failed_forked_tagger_is_redone_in_process(pages: Path, model_path: Path, result: RunResult,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.execution.forked import can_fork

    if not can_fork():
        pytest.skip("fork is Linux-only here")

    from pipeline import tag

    parent = os.getpid()
    real = tag.tag_columns

    def broken(*args: object, **kwargs: object) -> object:
        if os.getpid() != parent:
            raise MemoryError("child ran out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(tag, "tag_columns", broken)  # inherited by the fork
    config = load_config(None, ["tag.parallel_threshold=0"])
    again = run([pages], config=config, model=model_path, n_jobs=2, out_dir=tmp_path / "out")
    assert any(n.startswith("tag: a forked worker failed") and "MemoryError" in n
               for n in again.manifest["notes"])
    first = Path(result.outputs["articles.jsonl"]).read_bytes()
    assert (tmp_path / "out" / "articles.jsonl").read_bytes() == first


def test_parallel_parse_reports_the_first_bad_file_like_serial(pages: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from pipeline.errors import InputError
    from pipeline.execution import Forked
    from pipeline.io import real_paths
    from pipeline.parse import InputFile, ParseStage, parse_paths
    from pipeline.runner import predictions

    files = []
    for page in sorted(pages.glob("*.txt"))[:40]:
        files.append(Path(shutil.copy(page, tmp_path / page.name)))
    files[25].write_bytes(b"Somerset ICS\n\nfine line\nbad \x00 byte\n")
    files[31].write_bytes(b"\xff\xfe\x00broken")
    with pytest.raises(InputError) as serial:
        parse_paths(files, load_config().parse)
    stage = ParseStage(load_config().parse)
    inputs = [InputFile(str(f), r) for f, r in zip(files, real_paths(files))]
    with pytest.raises(InputError) as parallel:
        stage.combine(predictions(stage, inputs, Forked(2, {"parse": 2}))[1], inputs)
    assert str(parallel.value) == str(serial.value) and files[25].name in str(parallel.value)
