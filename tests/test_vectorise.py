"""Vectorise stage: weighted TF-IDF over cleaned tokens as a picklable scikit-learn transformer."""
from __future__ import annotations

import io
import warnings

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

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
    vec = Vectoriser.from_config(config)
    X = vec.fit_transform(DOCS).toarray()
    assert X[0, _column(vec, "trust")] > X[0, _column(vec, "warn")]
    flat = Vectoriser.from_config(VectoriseConfig(min_df=1, max_df=1.0, headline_weight=1))
    Y = flat.fit_transform(DOCS).toarray()
    assert Y[0, _column(flat, "trust")] == pytest.approx(Y[0, _column(flat, "warn")])


def test_rows_are_l2_normalised_and_sparse():
    X = Vectoriser.from_config(VectoriseConfig(min_df=1, max_df=1.0)).fit_transform(DOCS)
    assert hasattr(X, "tocsr") and X.shape[0] == 4
    assert np.allclose(np.sqrt(X.multiply(X).sum(axis=1)).A1, 1.0)


def test_min_df_counts_documents_and_max_df_prunes():
    vec = Vectoriser.from_config(VectoriseConfig(min_df=2, max_df=0.6))
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
    from_articles = Vectoriser.from_config(config).fit_transform(arts).toarray()
    assert np.array_equal(from_articles, Vectoriser.from_config(config).fit_transform([(a.tokens, []) for a in arts]).toarray())
    from_result = Vectoriser.from_config(config).fit_transform(cleaned).toarray()
    assert np.array_equal(from_result, Vectoriser.from_config(config).fit_transform(cleaned.docs).toarray())
    assert not np.array_equal(from_articles, from_result)  # the headline weighting
    plain = Vectoriser.from_config(config).fit_transform([a.tokens for a in arts])
    assert plain.shape[0] == 2
    with pytest.raises(TypeError, match="clean stage"):
        Vectoriser.from_config(config).fit_transform(["raw text"])


def test_transform_matches_fit_transform_after_joblib_round_trip():
    vec = Vectoriser.from_config(VectoriseConfig(min_df=1, max_df=1.0))
    X = vec.fit_transform(DOCS)
    buffer = io.BytesIO()
    joblib.dump(vec, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert np.allclose(loaded.transform(DOCS).toarray(), X.toarray())
    assert list(loaded.get_feature_names_out()) == list(vec.get_feature_names_out())


def test_clone_keeps_params():
    vec = Vectoriser.from_config(VectoriseConfig(headline_weight=5))
    assert clone(vec).headline_weight == 5.0 and clone(vec).get_params() == vec.get_params()


def test_tiny_corpus_relaxes_df_limits():
    vec = Vectoriser.from_config(VectoriseConfig(min_df=2, max_df=0.9))
    X = vec.fit_transform([(["trust", "deficit"], [])])
    assert X.shape == (1, 2)
    assert any("max_df" in n or "min_df" in n for n in vec.notes_)


def test_identical_documents_keep_their_terms():
    X = Vectoriser.from_config(VectoriseConfig()).fit_transform([(["trust", "deficit"], [])] * 3)
    assert X.shape == (3, 2) and X.nnz == 6


def test_empty_vocabulary_gives_zero_columns():
    vec = Vectoriser.from_config(VectoriseConfig())
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

        config = self._section()
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
        weight = float(self._section().headline_weight)
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
    fast, reference = Vectoriser.from_config(config), _ReferenceVectoriser.from_config(config)
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
vectoriser = Vectoriser.from_config(VectoriseConfig(min_df=1, max_df=1.0))
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
    vec = Vectoriser.from_config(VectoriseConfig(min_df=1, max_df=1.0, ngram_max=2, headline_weight=3))
    X = vec.fit_transform(DOCS)
    first = io.BytesIO()
    joblib.dump(vec, first)
    loaded = joblib.load(io.BytesIO(first.getvalue()))
    assert loaded.get_params() == vec.get_params() and loaded.notes_ == vec.notes_
    assert list(loaded.counter_.vocabulary_.items()) == list(vec.counter_.vocabulary_.items())
    assert (loaded.counter_.min_df, loaded.counter_.max_df) == (vec.counter_.min_df, vec.counter_.max_df)
    assert loaded.counter_.analyzer.ngram_max == 2
    np.testing.assert_array_equal(loaded.tfidf_.idf_, vec.tfidf_.idf_)
    assert (loaded.transform(DOCS) != vec.transform(DOCS)).nnz == 0
    assert np.allclose(loaded.transform(DOCS).toarray(), X.toarray())
    again = io.BytesIO()
    joblib.dump(loaded, again)
    assert again.getvalue() == first.getvalue()
    unfitted = joblib.load(io.BytesIO(_dumped(Vectoriser.from_config(VectoriseConfig(headline_weight=4)))))
    assert unfitted.headline_weight == 4 and not hasattr(unfitted, "counter_")
    empty = joblib.load(io.BytesIO(_dumped(Vectoriser().fit([[], []]))))
    assert empty.transform([["x"]]).shape == (1, 0)


def _dumped(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


# ---- the scikit-learn estimator contract -------------------------------------------------------

def test_hyperparameters_are_the_vectorise_sections_fields():
    """One keyword hyperparameter per [vectorise] field, its default the section's (defined once,
    in pipeline/config.py); from_config copies a section; bad values are refused by fit, not
    __init__ (scikit-learn's contract), with the section's own validation."""
    import dataclasses
    import inspect

    params = inspect.signature(Vectoriser).parameters
    fields = dataclasses.fields(VectoriseConfig)
    assert list(params) == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert {name: p.default for name, p in params.items()} == dataclasses.asdict(VectoriseConfig())
    section = VectoriseConfig(ngram_max=2, min_df=0.1, max_df=0.8, sublinear_tf=False, headline_weight=3)
    assert Vectoriser.from_config(section).get_params() == dataclasses.asdict(section)
    with pytest.raises(TypeError):
        Vectoriser(VectoriseConfig())  # the section is not a positional parameter any more
    bad = Vectoriser(ngram_min=0)
    with pytest.raises(ValueError, match="ngram_min"):
        bad.fit(DOCS)
    assert not hasattr(bad, "counter_")


def test_estimator_contract_on_token_input():
    """What the generic checks cannot feed, checked on real token input: __init__ stores the
    parameters and nothing else, learned state (names ending in "_") only in fit, fit returns self,
    transform and partial change nothing, clone/set_params round trip, the declared input tags."""
    import inspect
    import pickle

    vec = Vectoriser(min_df=1, max_df=1.0, headline_weight=3)
    names = list(inspect.signature(Vectoriser).parameters)
    assert sorted(vars(vec)) == sorted(names)
    assert clone(vec).set_params(ngram_max=2).get_params()["ngram_max"] == 2 and vec.ngram_max == 1
    vec.partial(DOCS)
    assert sorted(vars(vec)) == sorted(names)  # statistics are not fitting
    assert vec.fit(DOCS) is vec and vec.fit_stats(vec.partial(DOCS)) is vec
    learned = set(vars(vec)) - set(names)
    assert learned and all(name.endswith("_") for name in learned)
    before = pickle.dumps(vec)
    vec.transform(DOCS + [(["unseen"], ["words"])])
    vec.partial(DOCS)
    vec.get_feature_names_out()
    assert pickle.dumps(vec) == before
    tags = vec.__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    with pytest.raises(TypeError, match="sparse"):
        Vectoriser().fit(vec.transform(DOCS))


class _ArrayFed(Vectoriser):
    """The Vectoriser declaring 2-D input, so scikit-learn's generic checks run on its code: they
    feed numeric arrays, each row read as one document's tokens. Only the tags differ."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = False
        return tags


# Checks that fail because the input is documents of tokens, not a numeric 2-D array.
_NOT_ARRAY_INPUT = {
    "check_n_features_in_after_fitting": "documents have no fixed number of input features "
                                         "(neither does CountVectorizer): no n_features_in_",
    "check_n_features_in": "documents have no fixed number of input features: no n_features_in_",
    "check_transformer_general": "a document may have any number of tokens, so no feature-count check",
    "check_complex_data": "a complex number is read as a token; the input is not numeric",
    "check_estimators_nan_inf": "NaN and inf are read as tokens; the input is not numeric",
    "check_dtype_object": "a dict is refused as a token with TypeError 'unhashable type', not numpy's message",
    "check_estimators_empty_data_messages": "an empty corpus is accepted on purpose (a run with no "
                                            "articles gives a 0-column matrix, with a note)",
    "check_estimators_pickle": "the saved form writes terms as str (tokens are strings), so float "
                               "'tokens' do not survive a round trip",
    "check_transformer_data_not_an_array": "the corpus is iterated as documents; this array-like "
                                           "wrapper is not iterable",
    "check_fit1d": "a 1-D array is a corpus of numbers, not of token lists: TypeError, not ValueError",
    "check_fit2d_predict1d": "a 1-D array is a corpus of numbers, not of token lists: TypeError, not ValueError",
}


with warnings.catch_warnings():  # the Vectoriser's own tags skip the data checks: said, not warned
    warnings.simplefilter("ignore", SkipTestWarning)
    _SCIKIT_LEARN_CHECKS = parametrize_with_checks(
        [Vectoriser(), _ArrayFed(min_df=1, max_df=1.0)],
        expected_failed_checks=lambda est: _NOT_ARRAY_INPUT if isinstance(est, _ArrayFed) else {},
        xfail_strict=True)


@_SCIKIT_LEARN_CHECKS
def test_scikit_learn_checks(estimator, check):
    """scikit-learn's estimator checks: on the Vectoriser as it is (its tags declare token input,
    so only the API checks needing no data run), and on it fed numeric arrays (all the generic
    checks, those that cannot apply to token input listed above, each with its reason)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# ---- statistics that combine: partial, combine, fit_stats -------------------------------------

def _batches(docs, n):
    """``docs`` in ``n`` contiguous batches of near-even size (some empty when docs are few)."""
    bounds = np.linspace(0, len(docs), n + 1).round().astype(int)
    return [docs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _assert_stats_fit_equals_fit(docs, config: VectoriseConfig) -> None:
    whole = Vectoriser.from_config(config)
    X = whole.fit_transform(docs)
    for n in (1, 2, 5):
        vec = Vectoriser.from_config(config)
        stats = vec.combine([vec.partial(batch) for batch in _batches(docs, n)])
        assert stats.n_docs == len(docs)
        vec.fit_stats(stats)
        assert list(vec.counter_.vocabulary_.items()) == list(whole.counter_.vocabulary_.items())
        np.testing.assert_array_equal(vec.tfidf_.idf_.view(np.uint64), whole.tfidf_.idf_.view(np.uint64))
        assert vec.notes_ == whole.notes_
        assert (vec.counter_.min_df, vec.counter_.max_df) == (whole.counter_.min_df, whole.counter_.max_df)
        assert _dumped(vec) == _dumped(whole)  # vectoriser.joblib: the same bytes
        _assert_same_matrix(vec.transform(docs), whole.transform(docs))
        # fit_transform stores each row's entries in CountVectorizer's order and its L2 norm sums
        # them in that order; transform stores them by column: the same entries, values within an ulp
        got, want = vec.transform(docs), X.copy()
        want.sort_indices()
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_max_ulp(got.data, want.data, maxulp=2)


STATS_CORPORA = {
    "docs": DOCS,
    "docs x3": DOCS * 3,
    "one doc (min_df and max_df notes)": [(["trust", "deficit"], ["board"])],
    "identical (pruned every term)": [(["trust", "deficit"], [])] * 3,
    "empty vocabulary": [([], []), ([], [])],
    "no documents": [],
    "token lists": [["trust", "board"], ["board", "gp"], ["gp", "trust", "trust"]],
}
STATS_CONFIGS = [
    VectoriseConfig(),
    VectoriseConfig(min_df=1, max_df=1.0, headline_weight=1),
    VectoriseConfig(min_df=1, max_df=1.0, headline_weight=3, ngram_max=2),
    VectoriseConfig(min_df=1, max_df=1.0, headline_weight=0),  # headline-only terms: not in the idf
    VectoriseConfig(headline_weight=2.5, sublinear_tf=False, min_df=0.3, max_df=0.5),
    VectoriseConfig(min_df=3, max_df=2),  # max_df < min_df: all terms kept
]


@pytest.mark.parametrize("config", STATS_CONFIGS, ids=range(len(STATS_CONFIGS)))
@pytest.mark.parametrize("name", list(STATS_CORPORA))
def test_partial_combine_fit_stats_equals_fit(name, config):
    _assert_stats_fit_equals_fit(STATS_CORPORA[name], config)


def test_stats_fit_gives_each_fallback_note():
    """The tiny corpora above do reach every fallback (so the equality covers them)."""
    kinds = {"exceeds the": False, "keeps no term": False, "pruned every term": False, "empty vocabulary": False}
    for docs in STATS_CORPORA.values():
        for config in STATS_CONFIGS:
            vec = Vectoriser.from_config(config)
            for note in vec.fit_stats(vec.partial(docs)).notes_:
                kinds.update((kind, True) for kind in kinds if kind in note)
    assert all(kinds.values()), kinds


def test_stats_fit_equals_fit_on_sample_pages(sample_pages):
    from pipeline.config import ParseConfig
    from pipeline.parse import parse_paths

    cleaned = clean_articles(list(parse_paths(sample_pages, ParseConfig()).articles), CleanConfig())
    pairs = list(zip(cleaned.headline_tokens, cleaned.standfirst_tokens))
    for config in (VectoriseConfig(), VectoriseConfig(ngram_max=2, headline_weight=0)):
        _assert_stats_fit_equals_fit(pairs, config)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(_WORDS, max_size=5), st.lists(_WORDS, max_size=5)), max_size=12),
       st.sampled_from(CONFIGS + STATS_CONFIGS))
def test_stats_fit_equals_fit_on_generated_corpora(docs, config):
    _assert_stats_fit_equals_fit(docs, config)


def test_combine_sums_in_order_and_partial_orders_by_first_appearance():
    vec = Vectoriser(min_df=1, max_df=1.0, headline_weight=0)
    first = vec.partial([(["b", "a"], ["a"]), (["c"], [])])
    assert list(first.df.items()) == [("b", 1), ("a", 1), ("c", 1)] and first.n_docs == 2
    assert first.cancelled == {"b": 1, "c": 1}  # headline only, weighted 0
    second = vec.partial([(["d"], ["a", "b"])])
    both = vec.combine([first, second])
    assert list(both.df.items()) == [("b", 2), ("a", 2), ("c", 1), ("d", 1)] and both.n_docs == 3
    assert both.cancelled == {"b": 1, "c": 1, "d": 1}
    assert vec.combine([]).n_docs == 0


def test_saved_form_writes_the_section_as_before():
    """vectoriser.joblib's "config" entry is still ``dataclasses.asdict`` of the [vectorise]
    section (same keys, order and values: the file's bytes are unchanged), and a state saved
    when the vectoriser held the section itself, or none (config None), loads the same way."""
    import dataclasses

    section = VectoriseConfig(ngram_max=2, min_df=1, max_df=1.0, headline_weight=3)
    state = Vectoriser.from_config(section).fit(DOCS).__getstate__()
    assert list(state["config"].items()) == list(dataclasses.asdict(section).items())
    assert Vectoriser(ngram_max=2, min_df=1, max_df=1.0, headline_weight=3).__getstate__()["config"] == \
        dataclasses.asdict(section)  # 3 written as the section's 3.0
    loaded = Vectoriser.__new__(Vectoriser)
    loaded.__setstate__({**state, "config": None})
    assert loaded.get_params() == Vectoriser().get_params() and loaded.notes_ == state["notes"]
