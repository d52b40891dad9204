"""Fast feature pieces of the classifier: each equals the plain computation it replaces."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.tag_features import CharNgramTfidf, KeyIndex, LexiconMatcher, TokenIds, Words, \
    ItemTypeError, TextInputError, WordTfidf, char_text, item_parts, word_key

SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
# hostile characters for the word splitter and the character view's repairs
ALPHABET = SPACES + list("ab&;#x9Q\\'\"-.é£—") + ["\u00a8", "\u0301", "\u2019", "\ud800",
                                                   "\U0001F600", "\u00df", "\ufb01", "\x00"]


def _split_words(texts: list[str]) -> list[list[str]] | None:
    words = Words.of(texts)
    if words is None:
        return None
    return [[words.word(k) for k in range(words.indptr[t], words.indptr[t + 1])]
            for t in range(len(texts))]


def test_every_whitespace_character_splits_words_as_str_split() -> None:
    texts = [f"a{space}b" for space in SPACES if space != "\x1e"] + \
        ["", "  ", "x", "£20m  NHS\u00a0trust"]
    assert _split_words(texts) == [t.split() for t in texts]
    assert _split_words(["a\x1eb", "c"]) is None  # the separator itself: split in Python


@given(st.lists(st.text(alphabet=st.sampled_from(ALPHABET + ["\x1e"]), max_size=30), max_size=8))
@settings(max_examples=300, deadline=None)
def test_words_of_texts_equal_str_split(texts: list[str]) -> None:
    split = _split_words(texts)
    if any("\x1e" in t for t in texts):  # the separator inside a text: the caller splits in Python
        assert split is None or split == [t.split() for t in texts]
    else:
        assert split == [t.split() for t in texts]


def test_word_keys_are_exact_and_match_the_batch_keys() -> None:
    words = ["a", "a\x00", "ab", "abcdefgh", "abcdefghi", "abcdefghijklmno", "£", "é", "\ud800",
             "abcdefghijklmnop"]
    keys = [word_key(w) for w in words]
    assert keys[-1] is None  # 16 bytes: no key, looked up by string
    assert len(set(keys[:-1])) == len(words) - 1  # distinct words, distinct keys
    located = Words.of([" ".join(words)])
    head, tail, keyed = located.keys()
    assert keyed.tolist() == [k is not None for k in keys]
    assert [(int(h), int(t)) for h, t, k in zip(head, tail, keyed) if k] == keys[:-1]


def test_key_index_finds_exactly_the_keys_it_holds() -> None:
    rng = np.random.default_rng(0)
    head = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    tail = np.arange(5000, dtype=np.uint64) % 7  # many shared tails
    index = KeyIndex()
    assert index.find(head[:3], tail[:3]).tolist() == [-1, -1, -1]  # empty
    index.add(head[:3000], tail[:3000], np.arange(3000))
    index.add(head[3000:4000], tail[3000:4000], np.arange(3000, 4000))  # grows
    found = index.find(head, tail)
    assert found[:4000].tolist() == list(range(4000))
    assert (found[4000:] == -1).all()
    assert index.find(head[:10], tail[:10] + np.uint64(1)).tolist() == [-1] * 10  # tail differs


def _pieces(extra: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(ALPHABET + extra), max_size=max_size).map("".join)


@given(_pieces(["&amp;", "&nbsp;", "#39;", "&#32;", "quot;", "&notin", "&#x2003;", "amp;", "&AMP",
                "&#10;", "&#0;"], 40))
@settings(max_examples=500, deadline=None)
def test_char_text_works_word_by_word(text: str) -> None:
    """What lets the character features be cached per raw word (CharNgramTfidf normalise)."""
    assert char_text(text).split() == [w for raw in text.split() for w in char_text(raw).split()]


@pytest.fixture(scope="module")
def char_vectorizer() -> CharNgramTfidf:
    fit = ["nhs trust deficit grows", "chief executive quits", "£20m savings plan", "trust's board",
           "integrated care board", "résumé café"]
    return CharNgramTfidf((2, 5), min_df=1).fit([char_text(t) for t in fit])


def _same(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


@given(st.lists(_pieces(["\x1e", "Trust", "NHS", "&amp;", "board", "£20m"], 25),
                min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_char_counts_of_raw_texts_equal_counts_of_normalised_texts(char_vectorizer, texts) -> None:
    plain = char_vectorizer.counts([char_text(t) for t in texts])
    _same(char_vectorizer.counts(texts, normalise=char_text), plain)
    _same(char_vectorizer.counts(texts, normalise=char_text), plain)  # again, from the cache
    _same(char_vectorizer.transform(texts, normalise=char_text),
          char_vectorizer.transform([char_text(t) for t in texts]))


def test_char_cache_is_bounded_and_not_saved(char_vectorizer) -> None:
    small = pickle.loads(pickle.dumps(char_vectorizer))
    assert small.cached_words(char_text) == 0
    small.cache_size = 5
    texts = ["nhs trust deficit grows", "Chief Executive quits the board", "trust board"]
    _same(small.counts(texts, normalise=char_text),
          char_vectorizer.counts([char_text(t) for t in texts]))
    assert small.cached_words(char_text) == 0  # the batch alone was over the bound: dropped
    _same(small.counts(texts[2:], normalise=char_text),
          char_vectorizer.counts([char_text(t) for t in texts[2:]]))
    assert small.cached_words(char_text) == 2


# -- token ids: word n-grams and lexicon matches ----------------------------------------------------

TOKEN_LISTS = [["chief executive", "quit"], ["chief", "executive quit"], ["chief", "executive"],
               ["trust", "deficit", "grow"], ["trust", "trust", "deficit"], [], ["unknown"],
               ["deficit"], ["icb", "chief executive", "quit", "trust"]]


def _ids(token_ids: TokenIds, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    ends = np.concatenate(([0], np.cumsum([len(t) for t in token_lists]))).astype(np.int64)
    return token_ids.lookup([t for tokens in token_lists for t in tokens]), ends


@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 1), (2, 2)])
def test_word_transform_ids_equals_transform(ngram_range) -> None:
    """Phrase tokens hold spaces, so "chief executive" + "quit" and "chief" + "executive quit"
    are the same bigram string, as in TfidfVectorizer."""
    words = WordTfidf(ngram_range).fit(TOKEN_LISTS[:5] + [["chief executive quit"]])
    assert words.supports_ids()
    token_ids = TokenIds(words.id_tokens())
    tables = words.id_tables(token_ids)
    probe = TOKEN_LISTS + [["quit", "chief"], ["executive quit", "trust"]]
    _same(words.transform_ids(*_ids(token_ids, probe), tables), words.transform(probe))
    assert not WordTfidf((1, 3)).supports_ids()


def test_lexicon_transform_ids_equals_transform() -> None:
    matcher = LexiconMatcher({"finance": [("deficit",), ("trust", "deficit"), ("deficit",)],
                              "leadership": [("chief executive",), ("chief", "executive"),
                                             ("chief executive", "quit")],
                              "other": [("trust", "trust", "deficit")]})
    token_ids = TokenIds(["padding"] + matcher.id_tokens())
    tables = matcher.id_tables(token_ids)
    probe = TOKEN_LISTS + [["trust"], ["trust", "trust"]]  # an entry may not run past its item
    np.testing.assert_array_equal(matcher.transform_ids(*_ids(token_ids, probe), tables, 0.25),
                                  matcher.transform(probe, 0.25).toarray())
    empty = matcher.transform_ids(*_ids(token_ids, [["unknown"], []]), tables)
    assert empty.shape == (2, 3) and not empty.any()


@pytest.mark.parametrize("ngram_range", [(2, 5), (4, 6), (3, 3), (1, 2), (1, 8)])
def test_word_rows_built_at_once_equal_rows_built_per_ngram(ngram_range) -> None:
    fit = [char_text(t) for t in ["nhs trust deficit grows", "a chief executive quits", "£20m cut",
                                  "résumé café 😀", "integrated care board ab abc"]]
    vectorizer = CharNgramTfidf(ngram_range, min_df=1).fit(fit)
    assert (vectorizer._gram_keys() is None) == (ngram_range == (1, 8))  # 8 characters: no key
    words = ["a", "ab", "abc", "trust", "Trust's", "£20m", "ca\u0301fe\u0301", "😀x", "&amp;",
             "\\", "nhs\u00a0trust", "zzz", "\ud800", "q" * 40]
    for normalise in (None, char_text):
        plain = [[w] for w in words] if normalise is None else \
            [normalise(w).split() for w in words]
        _same(vectorizer._rows_of(words, normalise), vectorizer._rows_of_pieces(plain))


def test_char_tfidf_shortcut_is_bit_identical_to_the_transformer(char_vectorizer) -> None:
    texts = ["trust trust trust deficit", "nhs nhs trust", "board", "", "ab ab ab ab ab café"]
    counts = char_vectorizer.counts([char_text(t) for t in texts], sort=True)
    assert (counts.data > 1).any() and (counts.data == 1).any()  # both branches are used
    expected = char_vectorizer.tfidf_.transform(counts.copy(), copy=False)
    _same(char_vectorizer._tfidf(counts.copy()), expected)


def test_char_counts_of_words_too_long_for_a_key(char_vectorizer) -> None:
    fresh = pickle.loads(pickle.dumps(char_vectorizer))
    texts = ["reconfigurations-of-services", "reconfigurations-of-services nhs", "x" * 16]
    for batch in (texts[:1], texts):  # a batch of long words only, then a mixed one
        _same(fresh.counts(batch, normalise=char_text),
              char_vectorizer.counts([char_text(t) for t in batch]))
    assert fresh.cached_words(char_text) == 3  # two long words and "nhs"


def test_distinct_pairs_in_order_of_appearance() -> None:
    from pipeline.tag_features import _distinct_pairs

    head = np.array([5, 1, 5, 5, 1, 2], dtype=np.uint64)
    tail = np.array([0, 0, 1, 0, 0, 0], dtype=np.uint64)
    first, group = _distinct_pairs(head, tail)
    assert first.tolist() == [0, 1, 2, 5]
    assert group.tolist() == [0, 1, 2, 0, 1, 3]
    empty = _distinct_pairs(head[:0], tail[:0])
    assert len(empty[0]) == 0 and len(empty[1]) == 0


def test_sparse_product_equals_scipy_matmul() -> None:
    import scipy.sparse as sp

    from pipeline.tag_features import sparse_product

    rng = np.random.default_rng(1)
    A = sp.random(300, 200, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    A.data[:] = rng.integers(1, 4, A.nnz)
    B = sp.random(200, 500, density=0.03, format="csr", dtype=np.float32, random_state=rng)
    for a in (A, A[:0], sp.csr_matrix((300, 200), dtype=np.float32)):
        expected = (a @ B).tocsr()
        got = sparse_product(a, B)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)  # same order: same kernel
        np.testing.assert_array_equal(got.data, expected.data)


def test_token_ids_of_a_large_batch_equal_dictionary_lookups() -> None:
    vocabulary = ["trust", "chief executive", "", "£m", "reconfiguration_of_services", "é", "a b"]
    token_ids = TokenIds(vocabulary)
    tokens = (vocabulary + ["unknown", "chief", "reconfiguration_of_servicez", "trust "]) * 200
    expected = [token_ids.ids.get(t, -1) for t in tokens]
    assert token_ids.lookup(tokens).tolist() == expected  # joined and looked up by key
    assert token_ids.lookup(tokens[:5]).tolist() == expected[:5]  # small: one by one
    assert token_ids.lookup(tokens + ["x\x1ey"]).tolist() == expected + [-1]  # separator inside


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
@settings(max_examples=400, deadline=None)
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
