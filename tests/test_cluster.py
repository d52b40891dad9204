"""Cluster stage: topics on the sample pages, determinism, bad input, c-TF-IDF terms, AG News."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipeline.clean import clean_articles
from pipeline.cluster import ClusterInfo, cluster_articles
from pipeline.config import CleanConfig, ClusterConfig, ParseConfig, VectoriseConfig
from pipeline.records import Article
from pipeline.vectorise import Vectoriser


def _cluster(articles: list[Article], config: ClusterConfig | None = None,
             vconfig: VectoriseConfig | None = None):
    clean_articles(articles, CleanConfig())
    vec = Vectoriser.from_config(vconfig or VectoriseConfig())
    X = vec.fit_transform(articles)
    return cluster_articles(X, articles, config or ClusterConfig(), vec)


def _sample_articles(pages) -> list[Article]:
    from pipeline.parse import parse_paths

    return list(parse_paths(pages, ParseConfig()).articles)


def _dump(result, articles) -> str:
    return json.dumps({
        "labels": result.labels.tolist(), "k": result.k, "k_scores": result.k_scores,
        "clusters": [c.to_dict() for c in result.clusters],
        "coords": result.coords.tolist(),
        "articles": [[a.id, a.cluster, a.cluster_terms, a.cluster_score] for a in articles],
    }, sort_keys=True)


# ---- the bundled HSJ pages ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hsj(sample_pages):
    articles = _sample_articles(sample_pages)
    return articles, _cluster(articles)


def _label_of(articles: list[Article], start: str) -> int:
    return next(a.cluster for a in articles if a.headline.startswith(start))


def test_sample_clusters_read_as_topics(hsj):
    articles, result = hsj
    gp = _label_of(articles, "Threefold ICS variation in GP phone access")
    assert _label_of(articles, "One in seven callers could not reach GP") == gp
    assert "gp" in result.clusters[gp].terms
    lead = _label_of(articles, "Two ICBs appoint chief executives")
    assert _label_of(articles, "Trust appoints new chair from ICB") == lead
    assert _label_of(articles, "Trust names third CEO in four months") == lead
    assert {"appoint", "chief executive"} <= set(result.clusters[lead].terms)
    money = _label_of(articles, "NHSE begins to claw back funding")
    assert _label_of(articles, "NHSE \u2018treads tightrope\u2019 with new cash bailout") == money
    assert "nhs england" in result.clusters[money].terms
    assert len({gp, lead, money}) == 3


def test_sample_clusters_agree_with_hand_labelled_categories(hsj):
    """Clusters carry topic information: their agreement with the hand-labelled categories
    (data/labels/seeds.jsonl) beats 99% of random relabellings with the same cluster sizes."""
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from pipeline.config import REPO_ROOT
    from pipeline.records import normalise_key

    articles, result = hsj
    gold = {normalise_key(d["headline"]): d["category"] for d in map(
        json.loads, (REPO_ROOT / "data" / "labels" / "seeds.jsonl").read_text("utf-8").splitlines())}

    def category(article: Article) -> str:  # gold headlines keep their kicker ("Revealed: ...")
        key = normalise_key(article.headline)
        return gold.get(key) or next(v for k, v in gold.items() if k.endswith(key))

    y = [category(a) for a in articles]
    observed = nmi(y, result.labels)
    rng = np.random.RandomState(0)
    null = [nmi(y, rng.permutation(result.labels)) for _ in range(200)]
    assert observed > np.percentile(null, 99), (observed, np.percentile(null, 99))


def test_sample_auto_k_is_reasonable_and_recorded(hsj):
    articles, result = hsj
    assert 2 <= result.k <= int(np.sqrt(len(articles)))
    assert result.k in result.k_scores or result.k == max(result.k_scores, key=result.k_scores.get)
    assert any("auto k" in note for note in result.notes)


def test_cluster_fields_are_consistent(hsj):
    articles, result = hsj
    assert [c.id for c in result.clusters] == list(range(result.k))
    sizes = [c.size for c in result.clusters]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) + (result.labels == -1).sum() == len(articles)
    by_id = {a.id: a for a in articles}
    for info in result.clusters:
        rep = by_id[info.representative_id]
        assert rep.cluster == info.id and rep.headline == info.representative_headline
        members = [a for a in articles if a.cluster == info.id]
        assert rep.cluster_score == max(a.cluster_score for a in members)
        assert all(a.cluster_terms == info.terms for a in members)
        assert all("_" not in t for t in info.terms)  # readable
    for a in articles:
        assert a.cluster_score == round(a.cluster_score, 4)
    assert result.coords.shape == (len(articles), 2)


def test_same_input_and_config_give_identical_bytes(sample_pages, hsj):
    articles, result = hsj
    again = _sample_articles(sample_pages)
    assert _dump(_cluster(again), again) == _dump(result, articles)


def test_random_state_is_used(sample_pages):
    a, b = _sample_articles(sample_pages), _sample_articles(sample_pages)
    ra = _cluster(a, ClusterConfig(n_clusters=6, random_state=0, refine="none", n_init=1))
    rb = _cluster(b, ClusterConfig(n_clusters=6, random_state=1, refine="none", n_init=1))
    assert ra.k == rb.k == 6  # both valid; the seed is recorded and steers the result
    assert ra.labels.shape == rb.labels.shape


@pytest.mark.parametrize("method", ["agglomerative", "hdbscan"])
def test_outlier_methods_mark_minus_one(sample_pages, method):
    articles = _sample_articles(sample_pages)
    result = _cluster(articles, ClusterConfig(method=method, n_clusters=10, min_cluster_size=3))
    outliers = [a for a in articles if a.cluster == -1]
    assert outliers, "the sample pages have one-off stories that should be outliers"
    assert all(a.cluster_terms == [] and -1.0 <= a.cluster_score <= 1.0 for a in outliers)
    assert all(c.size >= 3 for c in result.clusters)


# ---- bad input -----------------------------------------------------------------------------------

def _arts(headlines: list[str]) -> list[Article]:
    return [Article(id=f"id{i}", headline=h) for i, h in enumerate(headlines)]


def test_no_articles():
    result = _cluster([])
    assert result.labels.shape == (0,) and result.clusters == [] and result.coords.shape == (0, 2)


def test_single_article_is_one_cluster():
    arts = _arts(["Trust deficit grows"])
    result = _cluster(arts)
    assert result.k == 1 and arts[0].cluster == 0 and arts[0].cluster_score == 1.0
    assert result.clusters[0].representative_id == "id0"
    assert "deficit" in result.clusters[0].terms


def test_identical_articles_merge_into_one_cluster():
    arts = _arts(["Trust deficit grows"] * 4)
    result = _cluster(arts, ClusterConfig(n_clusters=3))
    assert result.k == 1 and result.clusters[0].size == 4
    assert any("identical" in n for n in result.notes)
    assert any("using k=1" in n for n in result.notes)


def test_fewer_articles_than_n_clusters_clamps_k():
    arts = _arts(["Trust deficit grows", "GP access falls", "Chair appointed at trust"])
    result = _cluster(arts, ClusterConfig(n_clusters=10), VectoriseConfig(min_df=1))
    assert result.k == 3 and sorted(result.labels.tolist()) == [0, 1, 2]
    assert any("n_clusters=10" in n and "k=3" in n for n in result.notes)


def test_stop_word_and_number_texts_are_empty_outliers():
    arts = _arts(["the and of", "2024 12 500", "Trust deficit grows", "GP access falls"])
    result = _cluster(arts, ClusterConfig(n_clusters=2))
    assert [a.cluster for a in arts[:2]] == [-1, -1]
    assert all(a.cluster_score == 0.0 and a.cluster_terms == [] for a in arts[:2])
    assert result.k == 2 and any("no content words" in n for n in result.notes)


def test_only_empty_texts():
    arts = _arts(["", "the of", "42"])
    result = _cluster(arts)
    assert result.k == 0 and result.labels.tolist() == [-1, -1, -1]


def test_row_count_mismatch_is_an_error():
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="rows"):
        cluster_articles(sp.csr_matrix((2, 3)), _arts(["a"]), ClusterConfig(), ["x", "y", "z"])


# ---- topic terms ---------------------------------------------------------------------------------

def test_terms_distinguish_rather_than_count():
    # "trust" is in every article (frequent everywhere); it must not lead any cluster's terms
    heads = ([f"Trust deficit funding gap {w}" for w in ("grows", "widens", "doubles", "deepens")]
             + [f"Trust GP access phone {w}" for w in ("falls", "drops", "slumps", "sinks")])
    arts = _arts(heads)
    result = _cluster(arts, ClusterConfig(n_clusters=2, refine="none"),
                      VectoriseConfig(min_df=1, max_df=1.0))
    tops = {c.terms[0] for c in result.clusters}
    assert "trust" not in tops
    finance = next(c for c in result.clusters if "deficit" in c.terms)
    assert finance.size == 4
    assert set(finance.terms[:2]) == {"deficit", "funding gap"}  # distinguishing words first
    assert isinstance(result.clusters[0], ClusterInfo)


def test_phrase_terms_are_shown_as_words():
    heads = ["Integrated care board chief executive quits", "Integrated care board chief executive named",
             "GP access falls", "GP access drops"]
    arts = _arts(heads)
    result = _cluster(arts, ClusterConfig(n_clusters=2), VectoriseConfig(min_df=1, max_df=1.0))
    terms = {t for c in result.clusters for t in c.terms}
    assert "chief executive" in terms and "chief_executive" not in terms


# ---- the fast paths (same results as the plain algorithms) ---------------------------------------

def _bytes_groups(X, rows):
    """Reference for _unique_rows: group rows by their exact bytes, in first-appearance order."""
    seen: dict[bytes, int] = {}
    firsts, inverse = [], []
    for r in rows:
        a, b = X.indptr[r], X.indptr[r + 1]
        key = X.indices[a:b].tobytes() + b"|" + X.data[a:b].tobytes()
        if key not in seen:
            seen[key] = len(firsts)
            firsts.append(r)
        inverse.append(seen[key])
    return firsts, inverse


def test_unique_rows_equals_grouping_by_bytes():
    import scipy.sparse as sp

    from pipeline.cluster import _unique_rows

    rng = np.random.RandomState(3)
    base = sp.random(40, 25, density=0.2, random_state=rng, format="csr")
    X = sp.vstack([base[rng.randint(0, 40, 400)], sp.csr_matrix((2, 25))]).tocsr()
    # same fingerprint (a -0.0 entry projects like 0.0) but different bytes: two groups
    X = sp.vstack([X, sp.csr_matrix(([0.0, 0.5], [1, 2], [0, 2]), shape=(1, 25)),
                   sp.csr_matrix(([-0.0, 0.5], [1, 2], [0, 2]), shape=(1, 25))]).tocsr()
    X.sort_indices()
    rows = np.flatnonzero(np.diff(X.indptr) > 0)
    firsts, inverse = _unique_rows(X, rows)
    ref_firsts, ref_inverse = _bytes_groups(X, rows)
    assert firsts.tolist() == ref_firsts and inverse.tolist() == ref_inverse
    assert inverse[-1] != inverse[-2]


def _topic_docs(n: int, topics: int, seed: int = 0) -> list[list[str]]:
    """Token lists drawn from disjoint 15-word vocabularies, one per topic, in topic order."""
    rng = np.random.RandomState(seed)
    return [[f"t{i % topics}w{w}" for w in rng.choice(15, 6, replace=False)] for i in range(n)]


def _mixed_docs(n: int, topics: int, seed: int = 0) -> list[list[str]]:
    """Token lists whose topics share words: half of each article from its topic's 10 words,
    half from all of them, so naive Bayes needs many small steps from a random start."""
    rng = np.random.RandomState(seed)
    docs = []
    for i in range(n):
        own = rng.rand(8) < 0.5
        topic_word = rng.randint(0, 10, 8) + 10 * (i % topics)
        words = np.where(own, topic_word, rng.randint(0, 10 * topics, 8))
        docs.append([f"w{w}" for w in words])
    return docs


def test_refine_nb_equals_sklearn_multinomial_nb_hard_em(monkeypatch):
    """The written-out refinement (sums updated from the rows that moved) takes the same steps
    as refitting sklearn's MultinomialNB from scratch."""
    import pipeline.cluster as cluster
    from sklearn.naive_bayes import MultinomialNB

    X = Vectoriser.from_config(VectoriseConfig()).fit_transform(_mixed_docs(400, 3))
    start = np.random.RandomState(0).randint(0, 3, X.shape[0])  # a poor start: several steps
    weights = np.ones(X.shape[0])
    expected, steps = start.copy(), 0
    for steps in range(1, 21):
        model = MultinomialNB(alpha=0.3, fit_prior=False)
        new = model.fit(X, expected, sample_weight=weights).predict(X)
        if len(np.unique(new)) < 3 or np.array_equal(new, expected):
            break
        expected = new
    monkeypatch.setattr(cluster, "REFINE_TOL", 0.0)
    labels, taken = cluster._refine_nb(X, start.copy(), weights, ClusterConfig())
    assert labels.tolist() == expected.tolist() and taken == steps >= 5


def test_refine_nb_stops_once_few_articles_move(monkeypatch):
    import pipeline.cluster as cluster

    X = Vectoriser.from_config(VectoriseConfig()).fit_transform(_mixed_docs(400, 3))
    start = np.random.RandomState(0).randint(0, 3, X.shape[0])
    _, default_steps = cluster._refine_nb(X, start.copy(), np.ones(400), ClusterConfig())
    monkeypatch.setattr(cluster, "REFINE_TOL", 1.0)  # any step moves at most 100%
    _, steps = cluster._refine_nb(X, start.copy(), np.ones(400), ClusterConfig())
    assert steps == 1 < default_steps


def test_auto_k_on_a_sample_finds_separated_topics_and_is_deterministic():
    """Above the exhaustive search (1,000 sampled articles) k comes from a grid with halving
    steps, and the final k-means starts from the sample's centres: it must still find four
    well-separated topics exactly, and give the same bytes twice."""
    docs = _topic_docs(1600, 4)
    X = Vectoriser.from_config(VectoriseConfig()).fit_transform(docs)
    arts = _arts([" ".join(d) for d in docs])
    config = ClusterConfig(silhouette_sample=1200)
    result = cluster_articles(X, arts, config, Vectoriser.from_config(VectoriseConfig()).fit(docs))
    from sklearn.metrics import adjusted_rand_score

    assert result.k == 4 and any("tried" in n and "1200 articles" in n for n in result.notes)
    assert adjusted_rand_score([i % 4 for i in range(1600)], result.labels) == 1.0
    again = _arts([" ".join(d) for d in docs])
    repeat = cluster_articles(X, again, config, Vectoriser.from_config(VectoriseConfig()).fit(docs))
    assert _dump(repeat, again) == _dump(result, arts)


# ---- AG News quality (real corpus nobody here wrote) --------------------------------------------

@pytest.mark.agnews
@pytest.mark.slow
def test_agnews_beats_sklearn_reference_on_repaired_text(ag_news_csv):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from cluster_agnews import (load_ag_news, our_labels, our_matrix, reference_labels, scores,
                                simple_repair)

    titles, descriptions, y = load_ag_news(ag_news_csv)
    repaired = [simple_repair(f"{t} {d}") for t, d in zip(titles, descriptions)]
    ref = scores(y, reference_labels(repaired, seed=0))
    ours = scores(y, our_labels(*our_matrix(titles, descriptions), seed=0))  # raw text in
    assert ours["nmi"] >= 1.1 * ref["nmi"], (ours, ref)
    assert ours["ari"] > ref["ari"], (ours, ref)
    assert ours["nmi"] > 0.5


def test_config_dataclass_defaults_are_the_documented_ones():
    from pipeline.config import load_config

    loaded = load_config()
    assert dataclasses.asdict(loaded.cluster) == dataclasses.asdict(ClusterConfig())
    assert dataclasses.asdict(loaded.vectorise) == dataclasses.asdict(VectoriseConfig())
    assert dataclasses.asdict(loaded.clean) == dataclasses.asdict(CleanConfig())
