"""Vectorise stage: weighted TF-IDF over cleaned tokens as a picklable scikit-learn transformer."""
from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    # an Article alone does not say which tokens were its headline's: all count as headline
    from_articles = Vectoriser(config).fit_transform(arts).toarray()
    assert np.array_equal(from_articles, Vectoriser(config).fit_transform([(a.tokens, []) for a in arts]).toarray())
    from_result = Vectoriser(config).fit_transform(cleaned).toarray()
    assert np.array_equal(from_result, Vectoriser(config).fit_transform(cleaned.docs).toarray())
    assert not np.array_equal(from_articles, from_result)  # the headline weighting
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


# ---- the direct counting equals scikit-learn's CountVectorizer, to the bit ---------------------

class _ReferenceVectoriser(Vectoriser):
    """The vectoriser as it was built on ``CountVectorizer`` (before counting with numpy),
    verbatim: the matrix, vocabulary and idf the fast one must reproduce exactly."""

    def fit_transform(self, docs, y=None, **_):
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        from pipeline.vectorise import as_fields

        config = self._config
        fields = [as_fields(d) for d in getattr(docs, "docs", docs)]
        both, heads = [(h, s) for h, s in fields], [(h,) for h, _ in fields]
        min_df, max_df, notes = self._df_bounds(config, len(both))
        self.notes_ = notes
        analyzer = TokenNgrams(config.ngram_min, config.ngram_max)
        try:
            try:
                self.counter_ = CountVectorizer(analyzer=analyzer, min_df=min_df, max_df=max_df,
                                                dtype=np.float64)
                counts = self.counter_.fit_transform(both)
            except ValueError:
                self.counter_ = CountVectorizer(analyzer=analyzer, dtype=np.float64)
                counts = self.counter_.fit_transform(both)
                self.notes_.append("min_df/max_df pruned every term; kept all terms instead")
        except ValueError:
            self.counter_ = CountVectorizer(analyzer=TokenNgrams(config.ngram_min, config.ngram_max),
                                            vocabulary=[], dtype=np.float64)
            self.notes_.append("empty vocabulary: no text had a content word")
            self.counter_.vocabulary_ = {}
            self.counter_.fixed_vocabulary_ = True
            counts = sp.csr_matrix((len(both), 0), dtype=np.float64)
        self.tfidf_ = TfidfTransformer(sublinear_tf=config.sublinear_tf)
        weighted = self._reference_weighted(counts, heads)
        if weighted.shape[1] == 0:
            self.tfidf_.idf_ = np.zeros(0)
            return weighted.tocsr()
        return self.tfidf_.fit_transform(weighted).tocsr()

    def _reference_weighted(self, counts, heads):
        weight = float(self._config.headline_weight)
        if weight == 1.0 or counts.shape[1] == 0:
            return counts
        return (counts + (weight - 1.0) * self.counter_.transform(heads)).tocsr()

    def transform(self, docs):
        import scipy.sparse as sp

        from pipeline.vectorise import as_fields

        fields = [as_fields(d) for d in getattr(docs, "docs", docs)]
        both, heads = [(h, s) for h, s in fields], [(h,) for h, _ in fields]
        if not self.counter_.vocabulary_:
            return sp.csr_matrix((len(both), 0), dtype=np.float64)
        weighted = self._reference_weighted(self.counter_.transform(both), heads)
        return self.tfidf_.transform(weighted).tocsr()


def _assert_same_matrix(got, want) -> None:
    assert type(got) is type(want) and got.shape == want.shape and got.dtype == want.dtype
    assert got.indices.dtype == want.indices.dtype and got.indptr.dtype == want.indptr.dtype
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)  # stored order too: norms sum in it
    np.testing.assert_array_equal(got.data.view(np.uint64), want.data.view(np.uint64))


def _assert_same_as_reference(docs, config: VectoriseConfig, new_docs=None) -> None:
    fast, reference = Vectoriser(config), _ReferenceVectoriser(config)
    _assert_same_matrix(fast.fit_transform(docs), reference.fit_transform(docs))
    assert list(fast.counter_.vocabulary_.items()) == list(reference.counter_.vocabulary_.items())
    assert all(type(v) is int for v in fast.counter_.vocabulary_.values())
    params, want = fast.counter_.get_params(), reference.counter_.get_params()
    assert vars(params.pop("analyzer")) == vars(want.pop("analyzer")) and params == want
    assert fast.counter_.fixed_vocabulary_ == reference.counter_.fixed_vocabulary_
    np.testing.assert_array_equal(fast.tfidf_.idf_.view(np.uint64), reference.tfidf_.idf_.view(np.uint64))
    assert fast.notes_ == reference.notes_
    for batch in (docs, new_docs if new_docs is not None else getattr(docs, "docs", docs)[:3]):
        _assert_same_matrix(fast.transform(batch), reference.transform(batch))


CONFIGS = [
    VectoriseConfig(),
    VectoriseConfig(min_df=1, max_df=1.0),
    VectoriseConfig(headline_weight=1),  # counts left as CountVectorizer stores them
    VectoriseConfig(headline_weight=0, min_df=1, max_df=1.0),  # headline-only terms cancel: zeros dropped
    VectoriseConfig(headline_weight=2.5, sublinear_tf=False),
    VectoriseConfig(ngram_min=1, ngram_max=2, min_df=1, max_df=1.0),
    VectoriseConfig(ngram_min=2, ngram_max=3, min_df=1),
    VectoriseConfig(min_df=0.3, max_df=0.5),  # fractions
    VectoriseConfig(min_df=3, max_df=2),  # max_df < min_df: sklearn refuses, all terms kept
    VectoriseConfig(min_df=5, max_df=1.0),  # prunes every term
]


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_matches_countvectorizer_on_small_corpora(config):
    sorted_rows = [(["a", "b"], ["c"]), (["a", "c"], ["b", "c"]), (["b"], ["c", "a"])]  # canonical rows
    for docs in (DOCS, DOCS * 3, sorted_rows, [([], [])] * 2, [(["x"], [])], []):
        new_docs = [(["deficit", "zzz"], ["trust", "deficit"]), ([], [])]
        _assert_same_as_reference(docs, config, new_docs=new_docs)


def test_matches_countvectorizer_on_sample_pages(sample_pages):
    from pipeline.config import ParseConfig
    from pipeline.parse import parse_paths

    cleaned = clean_articles(list(parse_paths(sample_pages, ParseConfig()).articles), CleanConfig())
    for config in CONFIGS[:3] + [CONFIGS[5]]:
        _assert_same_as_reference(cleaned, config)


def test_matches_countvectorizer_on_ag_news(ag_news_csv):
    import csv

    with open(ag_news_csv, newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(3000), csv.reader(handle))]
    arts = [Article(id=str(i), headline=row[1], standfirst=row[2]) for i, row in enumerate(rows)]
    cleaned = clean_articles(arts, CleanConfig())
    _assert_same_as_reference(cleaned, VectoriseConfig())
    _assert_same_as_reference(cleaned, VectoriseConfig(ngram_max=2))


_WORDS = st.sampled_from(["trust", "deficit", "board", "gp", "chair", "nhs_england", "£m", "a b", "é"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(_WORDS, max_size=5), st.lists(_WORDS, max_size=5)), max_size=12),
       st.sampled_from(CONFIGS))
def test_matches_countvectorizer_on_generated_corpora(docs, config):
    _assert_same_as_reference(docs, config)


_DUMP_SCRIPT = """
import io, sys, joblib
from pipeline.config import VectoriseConfig
from pipeline.vectorise import Vectoriser

if len(sys.argv) > 1:
    # what the run does when the classifier is loaded before the vectoriser is fitted (jobs > 1):
    # the process's first CountVectorizer and TfidfTransformer are unpickled ones
    joblib.load(sys.argv[1])
docs = [(["trust", "deficit", "input", "dtype"], ["board", "warn", "deficit"]),
        (["gp", "access", "input"], ["patient", "board", "dtype"]),
        (["chair", "appoint"], ["trust", "board", "chair"])]
vectoriser = Vectoriser(VectoriseConfig(min_df=1, max_df=1.0))
vectoriser.fit_transform(docs)
out = io.BytesIO()
joblib.dump(vectoriser, out)
sys.stdout.buffer.write(out.getvalue())
"""


def test_saved_bytes_do_not_depend_on_what_the_process_unpickled_before(tmp_path):
    """The saved vectoriser is a function of its values. Python shares one table of attribute
    names among a class's instances, taken from the first; when that first CountVectorizer was
    unpickled (the classifier, loaded early with --jobs 2), the names are other string objects
    and pickle's memo (by identity) wrote them differently: vectoriser.joblib differed by job count."""
    import subprocess
    import sys

    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    counter = CountVectorizer().fit(["a trust board", "board deficit"])
    joblib.dump([counter, TfidfTransformer().fit(counter.transform(["a trust board"]))],
                tmp_path / "estimators.joblib")
    fresh, after_load = (subprocess.run([sys.executable, "-c", _DUMP_SCRIPT, *extra], capture_output=True,
                                        check=True).stdout for extra in ([], [str(tmp_path / "estimators.joblib")]))
    assert fresh and fresh == after_load


def test_round_trip_keeps_the_fitted_state_and_the_bytes():
    vec = Vectoriser(VectoriseConfig(min_df=1, max_df=1.0, ngram_max=2, headline_weight=3))
    X = vec.fit_transform(DOCS)
    first = io.BytesIO()
    joblib.dump(vec, first)
    loaded = joblib.load(io.BytesIO(first.getvalue()))
    assert loaded.config == vec.config and loaded.notes_ == vec.notes_
    assert list(loaded.counter_.vocabulary_.items()) == list(vec.counter_.vocabulary_.items())
    assert (loaded.counter_.min_df, loaded.counter_.max_df) == (vec.counter_.min_df, vec.counter_.max_df)
    assert loaded.counter_.analyzer.ngram_max == 2
    np.testing.assert_array_equal(loaded.tfidf_.idf_, vec.tfidf_.idf_)
    assert (loaded.transform(DOCS) != vec.transform(DOCS)).nnz == 0
    assert np.allclose(loaded.transform(DOCS).toarray(), X.toarray())
    again = io.BytesIO()
    joblib.dump(loaded, again)
    assert again.getvalue() == first.getvalue()
    unfitted = joblib.load(io.BytesIO(_dumped(Vectoriser(VectoriseConfig(headline_weight=4)))))
    assert unfitted.config.headline_weight == 4 and not hasattr(unfitted, "counter_")
    empty = joblib.load(io.BytesIO(_dumped(Vectoriser().fit([[], []]))))
    assert empty.transform([["x"]]).shape == (1, 0)


def _dumped(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()
