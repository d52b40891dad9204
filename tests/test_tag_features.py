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


# -- fast prediction path: equal, bit for bit, to counting n-gram by n-gram ------------------------

REPO = Path(__file__).resolve().parent.parent
ODD_TEXTS = ["", "a", "I", "x" * 300, "naïve café — £20m ‘quoted’ “twice”", "ßtraße ﬁnance ＮＨＳ",
             "emoji \U0001F600 and lone \ud800 surrogate", "tab\tand\nnew line\x0b\x1c", "a\x00b \x00",
             "under_score co-op trust's (nhs) 50% £1.2bn", "&amp; &#39; quot; back\\slash",
             "Ἀθῆναι Ελλάδα ΣΑΣ", "عربي 中文 日本語", "  leading and trailing  "]


def _old_char_counts(vec: NgramTfidf, texts: list[str]) -> sp.csr_matrix:
    """The former per-n-gram count: scikit-learn's analyzer per distinct word, dict lookups."""
    per_text = [t.split() for t in texts]
    table: dict[str, int] = {}
    ids = [table.setdefault(w, len(table)) for ws in per_text for w in ws]
    rows = [i for i, ws in enumerate(per_text) for _ in ws]
    docs = sp.csr_matrix((np.ones(len(ids)), (rows, ids)), shape=(len(texts), len(table)))
    docs.sum_duplicates()
    analyse = vec._analyzer()
    indptr, indices = [0], []
    for word in table:
        indices.extend(k for k in map(vec._index.get, analyse(word)) if k is not None)
        indptr.append(len(indices))
    grams = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(table), len(vec)))
    grams.sum_duplicates()
    return (docs @ grams).tocsr()


def _old_transform(vec: NgramTfidf, texts: list[str]) -> sp.csr_matrix:
    """The former transform: counts, then ``@ sp.diags(idf)`` and sklearn's normalize."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    if vec.kind == "word":
        counts = CountVectorizer(analyzer=vec._analyzer(), vocabulary=vec._index).transform(texts)
    else:
        counts = _old_char_counts(vec, texts)
    counts = counts.astype(np.float64)
    counts.data = 1.0 + np.log(counts.data)
    weighted = sp.csr_matrix(counts @ sp.diags(vec.idf))
    return weighted if weighted.shape[0] == 0 else normalize(weighted, norm="l2", copy=False)


def _old_features(clf, parts: list[tuple[str, str]]) -> sp.csr_matrix:
    heads = [char_text(h) for h, _ in parts]
    whole = [f"{h} {char_text(s)}" if s else h for h, (_, s) in zip(heads, parts)]
    vecs = [v for v in (clf.word_vectoriser_, clf.char_vectoriser_) if v is not None]
    blocks = [_old_transform(v, whole) for v in vecs]
    if clf.headline_weight:
        blocks += [clf.headline_weight * _old_transform(v, heads) for v in vecs]
    return sp.hstack(blocks, format="csr")


def _identical(new: sp.csr_matrix, old: sp.csr_matrix) -> None:
    """Same values in the same stored order: the row norms and margins sum in that order."""
    assert new.shape == old.shape
    np.testing.assert_array_equal(new.indptr, old.indptr)
    np.testing.assert_array_equal(new.indices, old.indices)
    assert new.data.tobytes() == old.data.tobytes()


@pytest.fixture(scope="module")
def shipped():
    from pipeline.model_store import load_classifier

    return load_classifier()


@pytest.fixture(scope="module")
def mixed_items() -> list[dict]:
    """Generated HSJ-style articles, the sample pages' articles, labelled examples, odd texts."""
    import sys

    from pipeline.parse import parse_paths
    from pipeline.tag import article_item

    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate_corpus import generate

    generated = [{"headline": h, "standfirst": s, "series": None}
                 for _, _, h, s in (slot for slot, _ in zip(generate(300, seed=3), range(300)))]
    samples = [article_item(a) for a in
               parse_paths(sorted((REPO / "data" / "samples").glob("*.txt"))).articles]
    labelled = read_labels(LABELS[:2]).items[:150]
    # a lone surrogate is refused as an item (test_tag); the vectoriser tests above still count it
    texts = [t for t in ODD_TEXTS if "\ud800" not in t]
    odd = [{"headline": h or "x", "standfirst": s} for h in texts for s in (None, *texts[::3])]
    return generated + samples + labelled + odd


def test_features_equal_the_former_count_bit_for_bit(shipped, mixed_items) -> None:
    parts = item_parts(mixed_items)
    _identical(shipped._features_of(parts), _old_features(shipped, parts))
    _identical(shipped._features_of(parts[:1]), _old_features(shipped, parts[:1]))
    assert shipped._features_of([]).shape == (0, shipped.n_features_)


@pytest.mark.parametrize("params", [
    {"word_ngram_range": (1, 3), "char_ngram_range": (1, 3)},  # the fallbacks: no tables
    {"headline_weight": 0.0, "char_ngram_range": (3, 4)},
    {"char_ngram_range": None, "word_ngram_range": (1, 1)},
])
def test_other_settings_equal_the_former_count(params, mixed_items) -> None:
    from pipeline.tag import CategoryClassifier

    labelled = read_labels(LABELS[:3])
    clf = CategoryClassifier(**params).fit(labelled.items[:200], labelled.labels[:200])
    parts = item_parts(mixed_items)
    _identical(clf._features_of(parts), _old_features(clf, parts))


def test_analyse_equals_the_former_path_whatever_the_block(shipped, mixed_items, monkeypatch) -> None:
    import scipy.special

    import pipeline.tag as tag

    parts = item_parts(mixed_items)
    features = _old_features(shipped, parts)
    margins = np.asarray(features @ shipped.coef_.T, dtype=np.float64) + shipped.intercept_
    proba = scipy.special.softmax(margins / shipped.temperature_, axis=1)
    z = np.asarray(features @ shipped.scope_coef_, dtype=np.float64) + shipped.scope_intercept_
    for block in (7, 1000):
        monkeypatch.setattr(tag, "FEATURE_BLOCK", block)
        got, scope, _ = shipped.analyse(mixed_items)
        assert got.tobytes() == proba.tobytes()
        assert scope.tobytes() == (1.0 / (1.0 + np.exp(-z))).tobytes()


@given(st.lists(_pieces(["ab", "the", "\u00a0", "trust", "nhs"], 12), min_size=0, max_size=6),
       st.lists(_pieces([" the", "board"], 30), min_size=6, max_size=6))
@settings(max_examples=100, deadline=None)
def test_batch_transform_equals_the_former_on_any_text(shipped, heads: list[str], rests: list[str]) -> None:
    from pipeline.tag_features import TextBatch

    rests = rests[:len(heads)]
    whole = [f"{h} {r}" if r else h for h, r in zip(heads, rests)]
    for vec in (shipped.word_vectoriser_, shipped.char_vectoriser_):
        got = vec.transform_batch(TextBatch(heads, rests))
        _identical(got[0], _old_transform(vec, whole))
        _identical(got[1], _old_transform(vec, heads))
        _identical(vec.transform(whole), _old_transform(vec, whole))


@given(st.lists(_pieces(["\x00", "ab", "nhs"], 20), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_char_gram_tables_count_like_scikit_learn(words_texts: list[str]) -> None:
    """The trie's counts of a batch's words equal CountVectorizer's on the same vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer

    from pipeline.tag_features import CharGramTables

    fit = ["the trust board", "a deficit of £20m", *words_texts]
    ours = NgramTfidf("char_wb", (2, 5))
    ours.fit_transform(fit)
    words = list(dict.fromkeys(w for t in words_texts for w in t.split()))
    tables = CharGramTables.build(ours.terms, (2, 5))
    got = tables.word_grams(words, len(ours))
    want = CountVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False,
                           vocabulary=ours._index).transform(words)
    assert got.has_canonical_format
    want.sort_indices()
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)


def test_char_gram_tables_decline_what_they_cannot_count() -> None:
    from pipeline.tag_features import CharGramTables

    assert CharGramTables.build("abcd\nbcde", (4, 5)) is None  # scikit-learn counts short words whole
    assert CharGramTables.build("a\n b", (1, 2)) is None  # a padding space in every word
    assert CharGramTables.build("\n".join(chr(0x4E00 + i) * 2 for i in range(4000)), (2, 5)) is None
    ours = NgramTfidf("char_wb", (4, 5))  # without tables: the analyzer, same counts
    reference = _reference("char_wb", (4, 5), 1).fit(["ab abcdef", "xyz"])
    ours.fit_transform(["ab abcdef", "xyz"])
    _same(ours.transform(["ab abcdefg", "xy"]), reference.transform(["ab abcdefg", "xy"]))
