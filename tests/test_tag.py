"""CategoryClassifier: estimator API, batch independence, series handling, errors, calibration,
scope, gold labels, tag_articles."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score

from pipeline.config import TagConfig
from pipeline.records import Article
from pipeline.tag import CategoryClassifier, confidence_threshold, cross_validate_classifier, \
    evaluate_predictions, expected_calibration_error, fit_temperature, reliability_table, \
    round4, tag_articles, tag_columns, tag_items
from pipeline.tag_features import ItemTypeError, TextInputError, article_text, char_text, item_texts

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


def test_estimator_api_get_params_clone_and_cross_val_score() -> None:
    clf = CategoryClassifier(C=0.7, char_min_df=3)
    params = clf.get_params()
    assert params["C"] == 0.7 and params["char_min_df"] == 3 and params["headline_weight"] == 0.7
    copy = clone(clf)
    assert copy.get_params()["C"] == 0.7 and not hasattr(copy, "classes_")
    scores = cross_val_score(clf, np.array(ITEMS, dtype=object), np.array(LABELS),
                             cv=StratifiedKFold(2, shuffle=True, random_state=0))
    assert scores.shape == (2,) and scores.mean() > 0.5  # three classes: chance is 0.33


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
    clf = CategoryClassifier().fit(ITEMS, LABELS)
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


def test_pickle_round_trip_keeps_predictions(fitted: CategoryClassifier) -> None:
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict_proba(ITEMS[:6]), fitted.predict_proba(ITEMS[:6]))


def test_tag_articles_fills_fields_and_flags_uncertain(fitted: CategoryClassifier) -> None:
    articles = [Article(id=str(i), headline=h) for i, h in enumerate(ITEMS[::5])]
    counts = tag_articles(articles, fitted, TagConfig(min_confidence=0.0))
    assert counts["uncertain"] == 0 and counts["tagged"] == len(articles)
    assert counts["gold"] == len(articles)  # training items keep their training labels
    assert all(a.label_source == "gold" and a.confidence == 1.0 for a in articles)
    assert sum(counts["categories"].values()) == len(articles)
    for article, label in zip(articles, LABELS[::5]):
        assert article.category == label
        assert list(article.scores) == fitted.classes_.tolist()
    unseen = [Article(id=f"u{i}", headline=h) for i, h in enumerate(
        ["Chair steps down", "Budget row", "Nurses strike", "Weather warning issued for weekend",
         "Board papers published late", "Trust deficit grows as chief quits"])]
    tag_articles(unseen, fitted, TagConfig())
    threshold = sorted(a.confidence for a in unseen)[3]
    counts = tag_articles(unseen, fitted, TagConfig(min_confidence=threshold))
    assert 0 < counts["uncertain"] == sum(a.confidence < threshold for a in unseen) < len(unseen)
    assert all(a.uncertain == (a.confidence < threshold) for a in unseen)
    assert all(a.category == max(a.scores, key=a.scores.get) for a in unseen)
    assert all(a.uncertain_reason == ("low_confidence" if a.uncertain else None) for a in unseen)
    assert all(a.label_source == "model" for a in unseen)
    assert tag_articles([], fitted, TagConfig()) == {"categories": {c: 0 for c in fitted.classes_},
                                                     "uncertain": 0, "out_of_scope": 0, "gold": 0,
                                                     "tagged": 0}


def test_tag_items_matches_tag_articles(fitted: CategoryClassifier) -> None:
    article = Article(id="x", headline="Chair steps down", standfirst="After a row about pay",
                      series=None)
    tag_articles([article], fitted, TagConfig())
    (item,) = tag_items([{"headline": "Chair steps down", "standfirst": "After a row about pay"}],
                        fitted, TagConfig())
    assert item == {"category": article.category, "confidence": article.confidence,
                    "uncertain": article.uncertain, "uncertain_reason": article.uncertain_reason,
                    "label_source": article.label_source, "scores": article.scores}


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
    assert 0.4 < result["macro_f1"] <= 1.0  # 15 training items per fold; chance is 0.33
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

def test_training_items_are_gold_whatever_the_model_predicts() -> None:
    """A training example the model gets wrong still comes out with its training label."""
    odd = "Nurses vote to strike over pay award"  # worded as workforce, labelled finance here
    labels = [("finance" if item == odd else label) for item, label in zip(ITEMS, LABELS)]
    clf = CategoryClassifier().fit(ITEMS, labels)
    (tag,) = tag_items([odd], clf)
    assert tag["label_source"] == "gold" and tag["category"] == "finance" and not tag["uncertain"]
    # kicker, case, spacing and quotes do not matter; another standfirst does
    (same,) = tag_items([{"headline": "Exclusive:  nurses vote to strike over PAY award"}], clf)
    assert same["label_source"] == "gold"
    (other,) = tag_items([{"headline": odd, "standfirst": "A new ballot."}], clf)
    assert other["label_source"] == "model"


def test_out_of_scope_items_are_flagged_with_their_reason() -> None:
    outside = ["Manchester United win the league on the final day",
               "Stock markets fall as oil prices climb", "New smartphone unveiled at launch event",
               "Heavy rain and flooding forecast for the weekend", "Film festival opens with premiere",
               "Tennis star reaches the final after five sets", "Election called in Italy",
               "Bank raises interest rates again", "Football club sacks its manager",
               "Rocket launch delayed by high winds", "Cricket side collapses on day two",
               "Band announces reunion tour dates", "Car maker recalls thousands of vehicles",
               "Olympic champion retires from athletics", "Parliament in Spain dissolved"]
    clf = CategoryClassifier().fit(ITEMS, LABELS, X_outside=outside)
    scope = clf.scope_proba(["Golf: Open champion wins by four shots", "Trust chief executive steps down"])
    assert scope[0] < 0.5 < scope[1]
    tags = tag_items(["Golf: Open champion wins by four shots", "Trust chief executive quits"], clf,
                     TagConfig(min_confidence=0.0))
    assert tags[0]["uncertain"] and tags[0]["uncertain_reason"] == "out_of_scope"
    assert not tags[1]["uncertain"] and tags[1]["uncertain_reason"] is None
    assert CategoryClassifier().fit(ITEMS, LABELS).scope_proba(["anything"]) is None


def test_temperature_is_fitted_on_the_calibration_set() -> None:
    margins = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]] * 5)
    right = np.array(["a", "b"] * 10)
    half = np.array(["a", "b", "b", "a"] * 5)  # half wrong: the best temperature flattens
    assert fit_temperature(margins, right, np.array(["a", "b"])) < 0.1  # always right: sharpen
    assert fit_temperature(margins, half, np.array(["a", "b"])) > 50  # a coin toss: flatten
    mostly = np.array(["a", "b", "a", "b", "a", "b", "a", "b", "b", "a"] * 2)  # 80% right
    t = fit_temperature(margins, mostly, np.array(["a", "b"]))
    p = 1 / (1 + np.exp(-2.0 / t))  # softmax of (2, 0) / t
    assert abs(p - 0.8) < 1e-3
    assert fit_temperature(margins[:0], right[:0], np.array(["a", "b"])) == 1.0
    cal = CategoryClassifier().fit(ITEMS, LABELS, X_calibration=ITEMS[:15],
                                   y_calibration=["workforce"] * 15)  # all wrong: flat
    assert cal.predict_proba(ITEMS[:1]).max() < CategoryClassifier().fit(ITEMS, LABELS).predict_proba(ITEMS[:1]).max()


def test_confidence_threshold_flags_the_share_of_errors_asked_for() -> None:
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([True, False, True, True, False, True, False, False])
    # errors at 0.95, 0.7, 0.5, 0.4: half of them are below 0.51
    assert confidence_threshold(confidence, correct, 0.5) == 0.51
    assert confidence_threshold(confidence, correct, 0.75) == 0.71
    assert confidence_threshold(confidence, correct, 1.0) == 0.96
    assert confidence_threshold(confidence, np.ones(8, bool), 0.5) == 0.5


def test_reliability_table_and_ece() -> None:
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False])
    table = reliability_table(confidence, correct)
    assert [(r["low"], r["n"], r["accuracy"]) for r in table] == [(0.5, 2, 0.5), (0.9, 2, 1.0)]
    assert expected_calibration_error(confidence, correct) == pytest.approx((0.05 * 2 + 0.05 * 2) / 4)
    result = evaluate_predictions(["a", "b"], ["a", "a"], ["a", "b"], np.array([[0.9, 0.1], [0.6, 0.4]]))
    assert result["ece"] == pytest.approx((0.1 + 0.6) / 2, abs=1e-4)
    assert result["mean_confidence"] == 0.75


def test_continuous_or_missing_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="continuous"):
        CategoryClassifier().fit(ITEMS[:4], [0.5, 1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match="y is required"):
        CategoryClassifier().fit(ITEMS[:4], None)


def test_tag_columns_join_equals_one_batch(fitted: CategoryClassifier) -> None:
    from pipeline.tag import TagColumns

    items = ITEMS[::3] + ["Board meets in private", "Chair steps down"]
    whole = tag_columns(items, fitted)
    joined = TagColumns.join([tag_columns(items[:4], fitted), tag_columns(items[4:], fitted)])
    assert joined.categories == whole.categories and joined.reasons == whole.reasons
    assert joined.sources == whole.sources and joined.score_dicts() == whole.score_dicts()


def test_the_run_threshold_defaults_to_the_model_s_own(fitted: CategoryClassifier) -> None:
    from pipeline.tag import min_confidence_of

    assert min_confidence_of(fitted, TagConfig()) == fitted.min_confidence_
    assert min_confidence_of(fitted, TagConfig(min_confidence=0.3)) == 0.3


def test_round4_equals_python_round() -> None:
    rng = np.random.default_rng(0)
    values = np.r_[rng.random(20000), np.arange(0, 1, 1e-4) + 5e-5]
    assert round4(values).tolist() == [round(float(v), 4) for v in values]


def test_predicting_changes_nothing_in_the_model(fitted: CategoryClassifier) -> None:
    before = pickle.dumps(fitted)
    fitted.predict_proba(ITEMS[:3] + ["never seen words here"])
    tag_items(["Chair steps down"], fitted)
    assert pickle.dumps(fitted) == before




def test_scikit_learn_estimator_contract() -> None:
    """check_estimator runs what applies to a text estimator (it declares string, non-2-D input);
    the rest of the contract is checked here: parameters stored unchanged, learned state only in
    fit (names ending in "_"), set_params/clone round trips, fit returns self, bad y refused."""
    import inspect
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(CategoryClassifier(), on_fail=None)
    assert results and not [r for r in results if r["status"] == "failed"]
    clf = CategoryClassifier(C=0.3, headline_weight=0.0)
    names = list(inspect.signature(CategoryClassifier).parameters)
    assert sorted(vars(clf)) == sorted(names)  # __init__ stores the parameters and nothing else
    assert clone(clf).set_params(C=2.0).get_params()["C"] == 2.0 and clf.C == 0.3
    assert clf.fit(ITEMS, LABELS) is clf
    learned = set(vars(clf)) - set(names)
    assert learned and all(name.endswith("_") for name in learned)
    assert clf.__sklearn_tags__().input_tags.string and not clf.__sklearn_tags__().input_tags.two_d_array


@pytest.mark.parametrize("item", ["Trust \ud800 deficit", {"headline": "Trust", "standfirst": "gap \udfff"}])
def test_a_lone_surrogate_is_a_clear_input_error(fitted: CategoryClassifier, item) -> None:
    """Regression: it reached the gold-key hash and raised UnicodeEncodeError."""
    from pipeline.tag import tag_items
    from pipeline.tag_features import TextInputError

    with pytest.raises(TextInputError, match="item 1: .*lone surrogate"):
        tag_items(["Trust board approves plan", item], fitted)
