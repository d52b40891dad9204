"""CategoryClassifier: estimator API, batch independence, series handling, errors, tag_articles."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import StratifiedKFold, cross_val_score

from pipeline.config import TagConfig
from pipeline.records import Article
from pipeline.tag import CategoryClassifier, cross_validate_classifier, evaluate_predictions, \
    tag_articles, tag_items
from pipeline.tag_features import ItemTypeError, LexiconMatcher, TextInputError, article_text, \
    char_text, item_texts

# Small hand-written training set (three categories, varied wording).
DATA = {
    "finance": [
        "Trust forecasts £40m deficit after overspending on agency staff",
        "ICB told to find £25m of savings before the end of the financial year",
        "System receives emergency cash support to pay suppliers",
        "Capital budget cut leaves hospital repairs on hold",
        "NHS England claws back overspends from integrated care boards",
        "Auditors raise going-concern doubts over provider's accounts",
        "Deficit support withdrawn as region misses breakeven plan",
        "Cost improvement programme falls £12m short of target",
        "Funding allocation formula leaves coastal systems underfunded",
        "Board approves financial recovery plan to close budget gap",
    ],
    "leadership": [
        "Trust chief executive steps down after six years in post",
        "ICB appoints interim chair while it searches for a permanent successor",
        "Hospital group names joint chief executive for two trusts",
        "Chair resigns over handling of board complaint",
        "New CEO says she will not take the full salary offered",
        "Former ambulance boss returns as substantive chief executive",
        "Non-executive director quits citing concerns about board conduct",
        "Health board chief suspended pending investigation",
        "Integrated care board chief to retire in the spring",
        "Mental health trust recruits chair from local authority",
    ],
    "workforce": [
        "Nurses vote to strike over pay award",
        "Resident doctors reject rate card offered by employers",
        "Staff survey shows morale at lowest level in five years",
        "Trust cuts 200 admin posts to reduce headcount",
        "BMA warns of GP unemployment as practices freeze recruitment",
        "Hospital bans hybrid working for office-based staff",
        "Vacancy rate for midwives rises across the region",
        "Paramedics report rising workload and sickness absence",
        "International recruitment of nurses slows as visa rules tighten",
        "Unions criticise plan to move cleaners onto new contracts",
    ],
}
ITEMS = [text for texts in DATA.values() for text in texts]
LABELS = [label for label, texts in DATA.items() for _ in texts]


@pytest.fixture(scope="module")
def fitted() -> CategoryClassifier:
    return CategoryClassifier().fit(ITEMS, LABELS)


def test_fit_sets_classes_and_predicts_unseen_wording(fitted: CategoryClassifier) -> None:
    assert fitted.classes_.tolist() == ["finance", "leadership", "workforce"]
    unseen = ["Provider's overspend grows to £30m as savings plan slips",
              "Chief executive of community trust announces departure",
              "Junior doctors stage walkout in dispute over pay"]
    assert fitted.predict(unseen).tolist() == ["finance", "leadership", "workforce"]


def test_predict_proba_is_a_distribution_in_class_order(fitted: CategoryClassifier) -> None:
    proba = fitted.predict_proba(ITEMS[:5])
    assert proba.shape == (5, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert (proba >= 0).all()
    assert fitted.predict(ITEMS[:5]).tolist() == fitted.classes_[proba.argmax(axis=1)].tolist()


def test_lexicon_auto_uses_taxonomy_only_for_taxonomy_labels(fitted: CategoryClassifier) -> None:
    assert fitted.lexicon_ is not None and "performance" in fitted.lexicon_
    other = CategoryClassifier().fit(ITEMS, ["a" if l == "finance" else "b" for l in LABELS])
    assert other.lexicon_ is None
    off = CategoryClassifier(lexicon=None).fit(ITEMS, LABELS)
    assert fitted.n_features_ == off.n_features_ + 9


def test_estimator_api_get_params_clone_and_cross_val_score() -> None:
    clf = CategoryClassifier(C=0.7, char_max_features=5000)
    params = clf.get_params()
    assert params["C"] == 0.7 and params["char_max_features"] == 5000 and params["lexicon"] == "auto"
    copy = clone(clf)
    assert copy.get_params()["C"] == 0.7 and not hasattr(copy, "classes_")
    scores = cross_val_score(clf, np.array(ITEMS, dtype=object), np.array(LABELS),
                             cv=StratifiedKFold(2, shuffle=True, random_state=0))
    assert scores.shape == (2,) and scores.mean() > 0.6


def test_prediction_does_not_depend_on_the_batch(fitted: CategoryClassifier) -> None:
    rng = np.random.default_rng(0)
    words = " ".join(ITEMS).split()
    batch = [" ".join(rng.choice(words, size=8)) for _ in range(1500)]
    probe = "Trust chair steps down as deficit doubles"
    position = 777
    batch.insert(position, probe)
    alone = fitted.predict_proba([probe])[0]
    inside = fitted.predict_proba(batch)[position]
    np.testing.assert_allclose(alone, inside, rtol=0, atol=1e-12)


def test_series_standfirst_is_ignored() -> None:
    clf = CategoryClassifier(lexicon=None).fit(ITEMS, LABELS)
    blurb = "Our columnist's weekly look at pay, strikes, staff morale and the workforce"
    headline = "Board appoints interim chief executive"
    alone = clf.predict_proba([headline])[0]
    with_series = clf.predict_proba([{"headline": headline, "standfirst": blurb, "series": "London Eye"}])[0]
    prefixed = clf.predict_proba([{"headline": f"London Eye: {headline}", "standfirst": blurb}])[0]
    plain = clf.predict_proba([{"headline": headline, "standfirst": blurb}])[0]
    np.testing.assert_allclose(with_series, alone, atol=1e-12)
    np.testing.assert_allclose(prefixed, alone, atol=1e-12)
    assert not np.allclose(plain, alone)  # without a series the standfirst does count


def test_article_text_strips_kickers_and_series_labels() -> None:
    assert article_text("Exclusive: Trust sued", "Standfirst.") == "Trust sued\nStandfirst."
    assert article_text("The Integrator: ICBs merge", "Stock blurb") == "ICBs merge"
    assert article_text("Exclusive policy shift", None) == "Exclusive policy shift"


def test_char_text_undoes_encoding_damage_and_keeps_words() -> None:
    assert char_text("A  #36;10 million\\deal &amp; more quot;hi") == 'a $10 million deal & more "hi'
    assert char_text("LONDON (Reuters) - Stocks &lt;b&gt;fell") == "london (reuters) - stocks <b>fell"
    assert char_text("issue #1 stays; x#39;s") == "issue #1 stays; x#39;s"
    assert char_text("Trust\u2019s \u201cbig\u201d\u00a0plan") == "trust's \"big\" plan"


@pytest.mark.parametrize("bad, index", [(["ok text", "   "], 1), (["ok", ""], 1),
                                         ([{"headline": "  "}], 0), ([{"standfirst": "x"}], 0)])
def test_empty_text_raises_value_error_naming_the_index(fitted, bad, index) -> None:
    with pytest.raises(ValueError, match=rf"item {index}\b") as info:
        fitted.predict(bad)
    assert isinstance(info.value, TextInputError)


def test_non_string_items_raise_type_error_naming_index_and_type(fitted) -> None:
    with pytest.raises(TypeError, match=r"item 2: .*got int"):
        fitted.predict(["a headline", {"headline": "b"}, 42])
    with pytest.raises(TypeError, match="single str"):
        fitted.predict("just one headline")
    with pytest.raises(ItemTypeError):
        item_texts(None)
    with pytest.raises(ValueError, match="standfirst"):
        fitted.predict([{"headline": "x", "standfirst": 3}])


def test_fit_rejects_mismatched_lengths_and_single_class() -> None:
    with pytest.raises(ValueError, match="3 items but 2 labels"):
        CategoryClassifier().fit(["a b", "c d", "e f"], ["x", "y"])
    with pytest.raises(ValueError, match="two classes"):
        CategoryClassifier().fit(["a b", "c d"], ["x", "x"])


def test_tiny_classes_fall_back_gracefully() -> None:
    items = ITEMS + ["Electronic patient record go-live delayed again"]
    labels = LABELS + ["digital"]
    clf = CategoryClassifier().fit(items, labels)
    assert not clf.calibrated_ and "digital" in clf.classes_.tolist()
    np.testing.assert_allclose(clf.predict_proba(["new app"]).sum(), 1.0)
    two = CategoryClassifier().fit(items + ["NHS App adds access to GP records"], labels + ["digital"])
    assert two.calibrated_ and two.estimator_.cv.n_splits == 2


def test_lexicon_matcher_counts_words_and_phrases() -> None:
    matcher = LexiconMatcher({"performance": [("wait", "list"), ("backlog",)], "finance": [("deficit",)]})
    counts = matcher.counts(["long", "wait", "list", "backlog", "deficit", "wait"])
    assert counts.tolist() == [2.0, 1.0]
    assert matcher.counts(["list", "wait"]).tolist() == [0.0, 0.0]
    features = matcher.transform([["deficit", "deficit"], []], weight=2.0).toarray()
    np.testing.assert_allclose(features, [[0, 2 * np.log(3)], [0, 0]])


def test_lexicon_is_matched_on_lemmas(fitted: CategoryClassifier) -> None:
    tokens = fitted.cleaner_.tokens(["Waiting lists grow as the backlog rises"])[0]
    names = list(fitted.lexicon_)
    counts = fitted.lexicon_matcher_.counts(tokens)
    assert counts[names.index("performance")] >= 2


def test_pickle_round_trip_keeps_predictions(fitted: CategoryClassifier) -> None:
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict_proba(ITEMS[:6]), fitted.predict_proba(ITEMS[:6]))


def test_tag_articles_fills_fields_and_flags_uncertain(fitted: CategoryClassifier) -> None:
    articles = [Article(id=str(i), headline=h) for i, h in enumerate(ITEMS[::5])]
    counts = tag_articles(articles, fitted, TagConfig(min_confidence=0.0))
    assert counts["uncertain"] == 0 and counts["tagged"] == len(articles)
    assert sum(counts["categories"].values()) == len(articles)
    for article, label in zip(articles, LABELS[::5]):
        assert article.category == label
        assert list(article.scores) == fitted.classes_.tolist()
        assert article.confidence == max(article.scores.values())
        assert article.confidence == round(article.confidence, 4)
    unseen = [Article(id=f"u{i}", headline=h) for i, h in enumerate(
        ["Chair steps down", "Budget row", "Nurses strike", "Weather warning issued for weekend",
         "Board papers published late", "Trust deficit grows as chief quits"])]
    tag_articles(unseen, fitted, TagConfig())
    threshold = sorted(a.confidence for a in unseen)[3]
    counts = tag_articles(unseen, fitted, TagConfig(min_confidence=threshold))
    assert 0 < counts["uncertain"] == sum(a.confidence < threshold for a in unseen) < len(unseen)
    assert all(a.uncertain == (a.confidence < threshold) for a in unseen)
    assert all(a.category == max(a.scores, key=a.scores.get) for a in unseen)
    assert tag_articles([], fitted, TagConfig()) == {"categories": {c: 0 for c in fitted.classes_},
                                                     "uncertain": 0, "tagged": 0}


def test_tag_items_matches_tag_articles(fitted: CategoryClassifier) -> None:
    article = Article(id="x", headline="Chair steps down", standfirst="After a row about pay",
                      series=None)
    tag_articles([article], fitted, TagConfig())
    (item,) = tag_items([{"headline": "Chair steps down", "standfirst": "After a row about pay"}],
                        fitted, TagConfig())
    assert item == {"category": article.category, "confidence": article.confidence,
                    "uncertain": article.uncertain, "scores": article.scores}


def test_evaluate_predictions_values() -> None:
    result = evaluate_predictions(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert result["accuracy"] == 0.75
    assert result["confusion_matrix"] == [[1, 1], [0, 2]]
    assert result["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert result["macro_f1"] == round((2 / 3 + 0.8) / 2, 4)


def test_cross_validate_reports_out_of_fold_metrics() -> None:
    result = cross_validate_classifier(CategoryClassifier(), ITEMS, LABELS, folds=2)
    assert result["folds"] == 2 and result["n"] == len(ITEMS)
    assert len(result["macro_f1_folds"]) == 2
    assert sum(map(sum, result["confusion_matrix"])) == len(ITEMS)
    assert 0.5 < result["macro_f1"] <= 1.0
    with pytest.raises(ValueError, match="smallest class has 10"):
        cross_validate_classifier(CategoryClassifier(), ITEMS, LABELS, folds=11)


@pytest.mark.agnews
@pytest.mark.slow
def test_agnews_ours_at_least_baseline_on_same_folds(ag_news_csv) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "tag_agnews.py"
    spec = importlib.util.spec_from_file_location("tag_agnews", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    items, labels = bench.read_ag_news(ag_news_csv)
    assert len(labels) == 7600 and sorted(set(labels)) == ["1", "2", "3", "4"]
    items, labels = bench.subset(items, labels, 2400, seed=0)
    result = bench.compare(items, labels, folds=3, seed=0)
    ours, base = result["ours"], result["baseline"]
    assert np.mean(ours["accuracy"]) >= np.mean(base["accuracy"])
    assert np.mean(ours["macro_f1"]) >= np.mean(base["macro_f1"])
    assert np.mean(ours["accuracy"]) > 0.8


# -- fast feature transforms equal scikit-learn's vectorizers --------------------------------------

def _assert_same_csr(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.dtype == b.dtype
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)


def _char_reference(fit_texts, min_df=2, max_features=50000, ngram_range=(2, 5)):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", lowercase=False, ngram_range=ngram_range,
                           min_df=min_df, max_features=max_features, sublinear_tf=True,
                           dtype=np.float32).fit(fit_texts)


def _label_texts() -> list[str]:
    from pathlib import Path

    from pipeline.model_store import read_labels

    files = sorted((Path(__file__).resolve().parent.parent / "data" / "labels").glob("*.jsonl"))
    return [char_text(t) for t in item_texts(read_labels(files).items)]


def test_char_wb_ngrams_match_sklearn_per_word() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    from pipeline.tag_features import char_wb_ngrams

    for word in ["a", "ab", "abc", "abcd", "nhs", "£20m", "reconfiguration", "é"]:
        for ngram_range in [(2, 5), (1, 3), (3, 3), (4, 6)]:
            analyze = CountVectorizer(analyzer="char_wb", lowercase=False,
                                      ngram_range=ngram_range).build_analyzer()
            assert char_wb_ngrams(word, ngram_range) == analyze(word), (word, ngram_range)


def test_char_tfidf_equals_tfidf_vectorizer_on_labels() -> None:
    from pipeline.tag_features import CharNgramTfidf

    texts = _label_texts()
    fit, test = texts[::2], texts[1::2]
    ref = _char_reference(fit)
    ours = CharNgramTfidf((2, 5), min_df=2, max_features=50000)
    _assert_same_csr(ref.transform(fit), ours.fit_transform(fit))
    assert ours.vocabulary_ == ref.vocabulary_
    np.testing.assert_array_equal(ours.tfidf_.idf_, ref.idf_)
    _assert_same_csr(ref.transform(test), ours.transform(test))
    _assert_same_csr(ref.transform(test), ours.transform(test))  # again, from the word cache
    # a bounded cache that overflows gives the same matrix
    small = CharNgramTfidf((2, 5), min_df=2, max_features=50000, cache_size=50).fit(fit)
    _assert_same_csr(ref.transform(test[:300]), small.transform(test[:300]))
    assert small.cached_words() <= 50
    _assert_same_csr(ref.transform(["nhs trust", "trust"]), small.transform(["nhs trust", "trust"]))
    assert 0 < small.cached_words() <= 50  # a small batch is kept
    assert ours.cached_words() > 1000
    assert pickle.loads(pickle.dumps(ours)).cached_words() == 0  # not saved with a model


def test_char_tfidf_equals_tfidf_vectorizer_on_ag_news(ag_news_csv) -> None:
    import csv

    from pipeline.tag_features import CharNgramTfidf

    with open(ag_news_csv, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:3001]
    texts = [char_text(f"{r[1]}\n{r[2]}") for r in rows]
    ref = _char_reference(texts[:2000], max_features=20000)
    ours = CharNgramTfidf((2, 5), min_df=2, max_features=20000).fit(texts[:2000])
    _assert_same_csr(ref.transform(texts[2000:]), ours.transform(texts[2000:]))


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab c\t\n\u00a0\u2003é£-.'xyz")),
                        max_size=40), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_char_tfidf_equals_tfidf_vectorizer_on_generated_text(texts) -> None:
    from pipeline.tag_features import CharNgramTfidf

    fit = texts + ["ab abc xyz", "c a b é£"]
    ref = _char_reference(fit, min_df=1, max_features=None, ngram_range=(1, 4))
    ours = CharNgramTfidf((1, 4), min_df=1, max_features=None).fit(fit)
    probe = texts[::-1] + ["", "   ", "abcxyz ab"]
    _assert_same_csr(ref.transform(probe), ours.transform(probe))


def test_word_tfidf_equals_tfidf_vectorizer(fitted: CategoryClassifier) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.tag_features import WordNgrams, WordTfidf

    tokens = fitted.cleaner_.tokens(_label_texts()[:800])
    ref = TfidfVectorizer(analyzer=WordNgrams((1, 2)), sublinear_tf=True, dtype=np.float32)
    ref.fit(tokens[::2])
    ours = WordTfidf((1, 2)).fit(tokens[::2])
    assert ours.vocabulary_ == ref.vocabulary_
    _assert_same_csr(ref.transform(tokens[1::2] + [[], ["trust", "trust"]]),
                     ours.transform(tokens[1::2] + [[], ["trust", "trust"]]))


def test_lexicon_transform_equals_per_text_counts(fitted: CategoryClassifier) -> None:
    matcher = fitted.lexicon_matcher_
    tokens = fitted.cleaner_.tokens(_label_texts()[:400]) + [[]]
    dense = np.log1p(np.vstack([matcher.counts(t) for t in tokens])) * 0.25
    np.testing.assert_allclose(matcher.transform(tokens, 0.25).toarray(), dense)


# -- reusing the run's clean-stage tokens -----------------------------------------------------------

def test_tags_are_identical_with_and_without_the_clean_stage_tokens(fitted, sample_pages) -> None:
    import copy

    from pipeline.clean import clean_articles
    from pipeline.config import CleanConfig, ParseConfig
    from pipeline.parse import parse_paths
    from pipeline.tag import known_from_clean

    articles = list(parse_paths(sample_pages, ParseConfig()).articles)
    cleaned = clean_articles(articles, CleanConfig())
    shared, plain = copy.deepcopy(articles), copy.deepcopy(articles)
    for begin in range(0, len(articles), 30):  # in chunks, as the run does
        known = known_from_clean(fitted, CleanConfig(), cleaned, shared[begin:begin + 30], begin)
        assert known  # the same cleaner: tokens are reused
        tag_articles(shared[begin:begin + 30], fitted, TagConfig(), known=known)
    tag_articles(plain, clone(fitted).fit(ITEMS, LABELS), TagConfig())
    assert [(a.category, a.confidence, a.scores) for a in shared] == \
        [(a.category, a.confidence, a.scores) for a in plain]
    # the reused tokens are exactly what the model's cleaner gives for those texts
    known = known_from_clean(fitted, CleanConfig(), cleaned, articles)
    assert {t: fitted.cleaner_.tokens([t])[0] for t in known} == known


def test_clean_stage_tokens_are_not_reused_from_another_cleaner(fitted, sample_pages) -> None:
    from pipeline.clean import clean_articles
    from pipeline.config import CleanConfig, ParseConfig
    from pipeline.parse import parse_paths
    from pipeline.tag import known_from_clean

    articles = list(parse_paths(sample_pages, ParseConfig()).articles)
    other = CleanConfig(extra_stop_words=["trust"])
    cleaned = clean_articles(articles, other)
    assert known_from_clean(fitted, other, cleaned, articles) is None
    assert known_from_clean(fitted, CleanConfig(min_token_length=3), cleaned, articles) is None
    # tokens that do not match the model's cleaner are caught by the probe even if configs agree
    cleaned = clean_articles(articles, CleanConfig())
    assert known_from_clean(fitted, CleanConfig(), cleaned, articles) is not None
    cleaned.headline_tokens[0] = ["tampered"]
    assert known_from_clean(fitted, CleanConfig(), cleaned, articles) is None


def test_tag_items_in_small_chunks_equals_one_batch(fitted, monkeypatch) -> None:
    import pipeline.tag as tag_module

    items = ITEMS + [{"headline": "Exclusive: ICB deficit grows", "standfirst": "Board told"}]
    whole = tag_items(items, fitted, TagConfig())
    monkeypatch.setattr(tag_module, "PREDICT_CHUNK", 7)
    assert tag_items(items, fitted, TagConfig()) == whole
    assert len(whole) == len(items)


def test_known_tokens_path_handles_a_headline_that_is_only_a_kicker(fitted) -> None:
    items = ["Exclusive:", {"headline": "Revealed: trust deficit", "standfirst": "Board told"}]
    known = {"trust deficit": fitted.cleaner_.tokens(["trust deficit"])[0]}
    assert tag_items(items, fitted, TagConfig(), known=known) == tag_items(items, fitted, TagConfig())


# -- the block-wise prediction path -----------------------------------------------------------------

def test_round4_equals_python_round() -> None:
    from pipeline.tag import round4

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(200000), rng.random(20000) ** 8,
                             (np.arange(20001) + 0.5) / 1e4,  # halves, as near as floats get
                             [0.0, 1.0, 0.03125, 0.00005, 0.99995, 1e-300, 0.5, 0.12345]])
    assert round4(values).tolist() == [round(v, 4) for v in values.tolist()]
    matrix = values[:9000].reshape(1000, 9)
    assert round4(matrix).tolist() == [[round(v, 4) for v in row] for row in matrix.tolist()]


def _generic_proba(clf: CategoryClassifier, items, known=None) -> np.ndarray:
    """What predict_proba gave before the block-wise path: the stacked matrix into the estimator."""
    return clf.estimator_.predict_proba(clf._features(items, fit=False, known=known))


def test_block_wise_prediction_equals_the_estimator_on_stacked_features(fitted) -> None:
    items = ITEMS + ["Exclusive: ICB chief executive quits", "unseen words only zzz", "£",
                     {"headline": "London Eye: board told", "standfirst": "Stock blurb"},
                     {"headline": "Trust deficit", "standfirst": "Chief executive quits"}]
    assert fitted._fast_path() is not None
    np.testing.assert_allclose(fitted.predict_proba(items), _generic_proba(fitted, items),
                               rtol=0, atol=1e-12)
    texts = ["Trust deficit", "Chief executive quits"]
    known = dict(zip(texts, fitted.cleaner_.tokens(texts)))
    np.testing.assert_allclose(fitted.predict_proba(items, known=known),
                               _generic_proba(fitted, items, known), rtol=0, atol=1e-12)


def test_block_wise_prediction_of_a_binary_model_and_fallbacks() -> None:
    two = [label if label == "finance" else "other" for label in LABELS]
    binary = CategoryClassifier(lexicon=None).fit(ITEMS, two)
    assert binary._fast_path() is not None
    probe = ITEMS[::3] + ["Board approves deficit plan"]
    np.testing.assert_allclose(binary.predict_proba(probe), _generic_proba(binary, probe),
                               rtol=0, atol=1e-12)
    sigmoid = CategoryClassifier(calibration="sigmoid").fit(ITEMS, LABELS)
    assert sigmoid._fast_path() is None  # evaluated by the estimator itself
    assert sigmoid.predict(probe).tolist() == sigmoid.classes_[
        np.argmax(_generic_proba(sigmoid, probe), axis=1)].tolist()
    with pytest.raises(ValueError):
        binary.predict_proba([])  # no items: the estimator's own error, as before


def test_predicting_leaves_the_pickled_model_unchanged(fitted) -> None:
    fresh = clone(fitted).fit(ITEMS, LABELS)
    before = pickle.dumps(fresh)
    fresh.predict_proba(ITEMS[:5])
    tag_items(["Trust chair steps down"], fresh, TagConfig())
    assert pickle.dumps(fresh) == before  # the fast path's tables and caches are not saved
    refit = fresh.fit(ITEMS[:20], LABELS[:20])
    assert refit._fast_path().weights[0].shape[0] == len(refit.word_vectorizer_.vocabulary_)
