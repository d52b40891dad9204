"""Feature pieces of the classifier: the n-gram TF-IDF equals scikit-learn's, keeps array state,
and the text normalisation behaves word by word."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.model_store import read_labels
from pipeline.tag_features import ItemTypeError, NgramTfidf, TextInputError, char_text, item_parts, \
    item_texts

SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
ALPHABET = SPACES + list("ab&;#x9Q\\'\"-.é£—") + ["\u00a8", "\u0301", "\u2019", "\ud800",
                                                   "\U0001F600", "\u00df", "\ufb01", "\x00"]
LABELS = sorted((Path(__file__).resolve().parent.parent / "data" / "labels").glob("*.jsonl"))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [char_text(t) for t in item_texts(read_labels(LABELS[:4]).items)]


def _reference(kind: str, ngram_range: tuple[int, int], min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=kind, ngram_range=ngram_range, min_df=min_df, lowercase=False,
                           sublinear_tf=True)


def _same(a: sp.spmatrix, b: sp.spmatrix) -> None:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind, ngram_range, min_df", [("word", (1, 2), 1), ("word", (1, 1), 2),
                                                       ("char_wb", (2, 5), 2), ("char_wb", (1, 3), 1)])
def test_equals_scikit_learn_tfidf_vectorizer(texts, kind, ngram_range, min_df) -> None:
    fit, new = texts[:300], texts[300:500] + ["never seen words zzqx", "a"]
    ours = NgramTfidf(kind, ngram_range, min_df)
    reference = _reference(kind, ngram_range, min_df).fit(fit)
    _same(ours.fit_transform(fit), reference.transform(fit))
    assert ours.vocabulary() == reference.get_feature_names_out().tolist()
    np.testing.assert_allclose(ours.idf, reference.idf_)
    _same(ours.transform(new), reference.transform(new))


@given(st.lists(st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_char_counts_by_words_equal_scikit_learn_on_any_text(batch: list[str]) -> None:
    """Per-word counting is exact for any whitespace, surrogates and odd characters."""
    fit = ["the trust board", "a deficit of £20m", *batch]
    ours = NgramTfidf("char_wb", (2, 4))
    reference = _reference("char_wb", (2, 4), 1).fit(fit)
    _same(ours.fit_transform(fit), reference.transform(fit))
    _same(ours.transform(batch), reference.transform(batch))


def test_state_is_strings_and_arrays_and_round_trips(texts) -> None:
    ours = NgramTfidf("char_wb", (2, 5), 2)
    ours.fit_transform(texts[:200])
    state = ours.__getstate__()
    assert set(state) == {"kind", "ngram_range", "min_df", "terms", "idf"}
    assert isinstance(state["terms"], str) and isinstance(state["idf"], np.ndarray)
    copy = pickle.loads(pickle.dumps(ours))
    _same(copy.transform(texts[200:260]), ours.transform(texts[200:260]))
    assert len(copy) == len(ours) == len(ours.vocabulary())


def test_empty_batch_and_unknown_kind() -> None:
    ours = NgramTfidf("char_wb", (2, 3))
    ours.fit_transform(["ab cd", "cd ef"])
    assert ours.transform([]).shape == (0, len(ours))
    with pytest.raises(ValueError, match="kind"):
        NgramTfidf("char", (2, 3))


def _pieces(extra: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(ALPHABET + extra), max_size=max_size).map("".join)


@given(_pieces(["&amp;", "&nbsp;", "#39;", "&#32;", "quot;", "&notin", "&#x2003;", "amp;", "&AMP",
                "&#10;", "&#0;"], 40))
@settings(max_examples=300, deadline=None)
def test_char_text_works_word_by_word(text: str) -> None:
    """Normalising a text equals normalising its words one by one."""
    assert char_text(text).split() == [w for raw in text.split() for w in char_text(raw).split()]


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
@settings(max_examples=300, deadline=None)
def test_char_text_shortcut_for_ascii_equals_the_full_repair(text: str) -> None:
    from pipeline.records import normalise_key
    from pipeline.tag_features import undo_encoding

    assert char_text(text) == normalise_key(undo_encoding(text))
    assert char_text(text + "Ab\x0bC") == normalise_key(undo_encoding(text + "Ab\x0bC"))


@pytest.mark.parametrize("items, message", [
    (["ok", " "], "item 1: empty or whitespace-only text"),
    ([{"headline": ""}], "item 0: empty or whitespace-only headline"),
    ([{"headline": 3}], "item 0: needs a 'headline' string, got int"),
    ([{"headline": "x", "standfirst": 1}], "item 0: 'standfirst' must be a string or null, got int"),
    (["ok", 5], "item 1: expected a headline string or a mapping with 'headline', got int"),
])
def test_item_errors_name_the_item_once(items, message) -> None:
    with pytest.raises((TextInputError, ItemTypeError)) as info:
        item_parts(items)
    assert str(info.value) == message  # once: the key is the prefix, not also the message
