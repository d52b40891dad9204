"""Vectorise stage: weighted TF-IDF over cleaned tokens as a picklable scikit-learn transformer."""
from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from pipeline.clean import clean_articles
from pipeline.config import CleanConfig, VectoriseConfig
from pipeline.records import Article
from pipeline.vectorise import TokenNgrams, Vectoriser

DOCS = [
    (["trust", "deficit"], ["board", "warn", "deficit"]),
    (["gp", "access"], ["patient", "board"]),
    (["chair", "appoint"], ["trust", "board", "chair"]),
    (["deficit", "grow"], ["gp", "warn"]),
]


def _column(vectoriser: Vectoriser, term: str) -> int:
    return list(vectoriser.get_feature_names_out()).index(term)


def test_headline_weighting_raises_headline_terms():
    # "trust" (headline) and "warn" (standfirst) have the same df, so only the weight differs
    config = VectoriseConfig(min_df=1, max_df=1.0, headline_weight=3)
    vec = Vectoriser(config)
    X = vec.fit_transform(DOCS).toarray()
    assert X[0, _column(vec, "trust")] > X[0, _column(vec, "warn")]
    flat = Vectoriser(VectoriseConfig(min_df=1, max_df=1.0, headline_weight=1))
    Y = flat.fit_transform(DOCS).toarray()
    assert Y[0, _column(flat, "trust")] == pytest.approx(Y[0, _column(flat, "warn")])


def test_rows_are_l2_normalised_and_sparse():
    X = Vectoriser(VectoriseConfig(min_df=1, max_df=1.0)).fit_transform(DOCS)
    assert hasattr(X, "tocsr") and X.shape[0] == 4
    assert np.allclose(np.sqrt(X.multiply(X).sum(axis=1)).A1, 1.0)


def test_min_df_counts_documents_and_max_df_prunes():
    vec = Vectoriser(VectoriseConfig(min_df=2, max_df=0.6))
    vec.fit(DOCS)
    names = set(vec.get_feature_names_out())
    # df: board 3/4 > 0.6 dropped; deficit 2, trust 2, gp 2, warn 2 kept; singletons dropped
    # "chair" appears twice but in one document only, so min_df=2 drops it
    assert names == {"deficit", "trust", "gp", "warn"}


def test_ngrams_do_not_cross_fields():
    grams = TokenNgrams(1, 2)((["a", "b"], ["c", "d"]))
    assert grams == ["a", "b", "a b", "c", "d", "c d"]
    assert "b c" not in grams


def test_accepts_articles_pairs_and_token_lists():
    arts = [Article(id="x", headline="Trust deficit grows", standfirst="Board warns of deficit"),
            Article(id="y", headline="GP access falls", standfirst="Patients wait")]
    cleaned = clean_articles(arts, CleanConfig())
    config = VectoriseConfig(min_df=1, max_df=1.0)
    from_articles = Vectoriser(config).fit_transform(arts).toarray()
    from_result = Vectoriser(config).fit_transform(cleaned).toarray()
    assert np.array_equal(from_articles, from_result)
    plain = Vectoriser(config).fit_transform([a.tokens for a in arts])
    assert plain.shape[0] == 2
    with pytest.raises(TypeError, match="clean stage"):
        Vectoriser(config).fit_transform(["raw text"])


def test_transform_matches_fit_transform_after_joblib_round_trip():
    vec = Vectoriser(VectoriseConfig(min_df=1, max_df=1.0))
    X = vec.fit_transform(DOCS)
    buffer = io.BytesIO()
    joblib.dump(vec, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert np.allclose(loaded.transform(DOCS).toarray(), X.toarray())
    assert list(loaded.get_feature_names_out()) == list(vec.get_feature_names_out())


def test_clone_keeps_params():
    vec = Vectoriser(VectoriseConfig(headline_weight=5))
    assert clone(vec).config.headline_weight == 5


def test_tiny_corpus_relaxes_df_limits():
    vec = Vectoriser(VectoriseConfig(min_df=2, max_df=0.9))
    X = vec.fit_transform([(["trust", "deficit"], [])])
    assert X.shape == (1, 2)
    assert any("max_df" in n or "min_df" in n for n in vec.notes_)


def test_identical_documents_keep_their_terms():
    X = Vectoriser(VectoriseConfig()).fit_transform([(["trust", "deficit"], [])] * 3)
    assert X.shape == (3, 2) and X.nnz == 6


def test_empty_vocabulary_gives_zero_columns():
    vec = Vectoriser(VectoriseConfig())
    X = vec.fit_transform([([], []), ([], [])])
    assert X.shape == (2, 0)
    assert vec.transform([(["trust"], [])]).shape == (1, 0)
    assert Vectoriser().fit_transform([]).shape == (0, 0)


def test_unfitted_transform_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Vectoriser().transform(DOCS)
