"""Records: the hand-written ``Article.to_dict`` is exactly ``dataclasses.asdict``, and the hand-assembled
JSON lines (``to_json``) are exactly ``json.dumps`` of it, on any record (both are faster)."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ParseConfig
from pipeline.parse import parse_paths
from pipeline.records import Article, Reject, Source


def _filled(article: Article, i: int) -> Article:
    article.tokens = ["trust", f"t{i}"]
    article.amounts = [2e7] if i % 2 else []
    article.cluster, article.cluster_terms, article.cluster_score = i % 5, ["gp", "access"], 0.5 + i / 1e4
    article.category, article.confidence, article.uncertain = "finance", 0.75, bool(i % 3)
    article.scores = {"finance": 0.75, "workforce": 0.25}
    return article


def test_to_dict_equals_asdict_on_sample_pages(sample_pages):
    articles = parse_paths(sample_pages, ParseConfig()).articles
    bare = Article(id="x", headline="h", sources=[Source("f.txt", 3, 1), Source("g.txt", 9, 2)])
    for i, article in enumerate([*articles, bare, *(_filled(a, i) for i, a in enumerate(articles))]):
        expected = dataclasses.asdict(article)
        got = article.to_dict()
        assert list(got) == list(expected) and got == expected
        assert article.to_json() == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))


def test_to_dict_does_not_share_mutable_fields():
    article = _filled(Article(id="x", headline="h", systems=["Kent"], sources=[Source("f", 1, 1)]), 1)
    out = article.to_dict()
    out["tokens"].append("extra")
    out["scores"]["x"] = 1.0
    out["systems"].append("y")
    out["sources"][0]["line"] = 99
    assert article.tokens == ["trust", "t1"] and "x" not in article.scores
    assert article.systems == ["Kent"] and article.sources[0].line == 1


# ---- the hand-assembled JSON line equals json.dumps, on any record --------------------------------

# every code point, surrogates and controls included (json escapes some; UTF-8 writing is later)
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=30)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e16, 5e-324, 0.1])
ODD = st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, ANY_TEXT, st.tuples(ANY_TEXT),
                st.lists(st.integers(), max_size=2), st.dictionaries(st.integers(), FLOATS, max_size=2))
SOURCES = st.lists(st.builds(Source, ANY_TEXT, st.integers(), st.integers()), max_size=3)
# Articles with the declared field types (or None): the hand-assembled path.
TYPED = st.builds(
    Article,
    id=ANY_TEXT, headline=ANY_TEXT,
    standfirst=st.none() | ANY_TEXT, caption=st.none() | ANY_TEXT, kicker=st.none() | ANY_TEXT,
    series=st.none() | ANY_TEXT, systems=st.lists(ANY_TEXT, max_size=3), sources=SOURCES,
    tokens=st.none() | st.lists(ANY_TEXT, max_size=5), amounts=st.none() | st.lists(FLOATS, max_size=3),
    cluster=st.none() | st.integers(), cluster_terms=st.none() | st.lists(ANY_TEXT, max_size=3),
    cluster_score=st.none() | FLOATS, category=st.none() | ANY_TEXT, confidence=st.none() | FLOATS,
    uncertain=st.none() | st.booleans(), scores=st.none() | st.dictionaries(ANY_TEXT, FLOATS, max_size=4))
FIELDS = [f.name for f in dataclasses.fields(Article)]


@st.composite
def odd_articles(draw: st.DrawFn) -> Article:
    """A typed article with one field (or one source's line/position) of some other type."""
    article = draw(TYPED)
    name = draw(st.sampled_from(FIELDS + ["source.line", "source.position"]))
    if name.startswith("source."):
        article.sources = [*article.sources, Source("f", 1, 2)]
        setattr(article.sources[-1], name.split(".")[1], draw(st.booleans() | FLOATS | ANY_TEXT | st.none()))
    else:
        setattr(article, name, draw(ODD))
    return article


def _reference(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=500, deadline=None)
@given(TYPED)
def test_to_json_equals_json_dumps_on_any_article(article: Article) -> None:
    assert article.to_json() == _reference(article.to_dict())


@settings(max_examples=500, deadline=None)
@given(odd_articles())
def test_to_json_equals_json_dumps_when_a_field_has_another_type(article: Article) -> None:
    try:
        expected = _reference(article.to_dict())
    except Exception as exc:  # e.g. a non-JSON value, or sources that are not Sources: same error
        expected = repr(exc)
    try:
        got = article.to_json()
    except Exception as exc:
        got = repr(exc)
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT | ODD, st.integers() | st.booleans() | FLOATS, ANY_TEXT, st.none() | ANY_TEXT | ODD)
def test_reject_to_json_equals_json_dumps(file, line, reason, text) -> None:
    reject = Reject(file=file, line=line, reason=reason, text=text)
    assert reject.to_json() == _reference(dataclasses.asdict(reject))


def test_non_finite_and_unencodable_values_behave_like_json() -> None:
    article = Article(id="x", headline="h", amounts=[math.inf, -math.inf, math.nan, -0.0],
                      cluster_score=math.nan, confidence=-math.inf, scores={"a": math.inf})
    line = article.to_json()
    assert line == _reference(article.to_dict())
    assert '"amounts":[Infinity,-Infinity,NaN,-0.0]' in line and '"cluster_score":NaN' in line
    for bad in (Article(id="x", headline="h", tokens=[object()]), Article(id="x", headline=object())):
        try:
            expected = _reference(bad.to_dict())
        except TypeError as exc:
            expected = f"TypeError: {exc}"
        try:
            got = bad.to_json()
        except TypeError as exc:
            got = f"TypeError: {exc}"
        assert got == expected and got.startswith("TypeError")


def test_cycles_are_reported_like_json() -> None:
    loop: list = []
    loop.append(loop)
    article = Article(id="x", headline="h", tokens=loop)
    try:
        _reference(article.to_dict())
    except ValueError as exc:
        expected = str(exc)
    try:
        article.to_json()
    except ValueError as exc:
        assert str(exc) == expected
    else:
        raise AssertionError("a cyclic record was encoded")


LOOKALIKES = [True, False, 0, 1, 1.0, 0.0, -0.0, math.nan, math.inf, "1", None, 2**70, [1], {"a": True}]


@pytest.mark.parametrize("name", [f for f in FIELDS if f not in ("sources",)] + ["line", "position"])
def test_scalar_lookalikes_are_written_as_json_writes_them(name: str) -> None:
    """bool vs int vs float: 1, True and 1.0 are equal in Python but not in JSON."""
    for value in LOOKALIKES:
        article = Article(id="x", headline="h", sources=[Source("f", 1, 2)])
        setattr(article.sources[0] if name in ("line", "position") else article, name, value)
        try:
            expected = _reference(article.to_dict())
        except Exception as exc:
            expected = repr(exc)
        try:
            got = article.to_json()
        except Exception as exc:
            got = repr(exc)
        assert got == expected, (name, value)


# ---- normalise_key: the fast paths give the definition's result ----------------------------------

def _key_reference(text: str | None) -> str:
    """The definition: NFKC, straight quotes and plain spaces, whitespace runs as one space, casefold."""
    import unicodedata

    from pipeline.records import _QUOTES

    return " ".join(unicodedata.normalize("NFKC", text or "").translate(_QUOTES).split()).casefold()


ASCII_SPACEY = st.text(st.sampled_from(list("aZ9 .'-\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x7f")), max_size=12)


@settings(max_examples=400, deadline=None)
@given(ASCII_SPACEY | ANY_TEXT | st.none())
def test_normalise_key_equals_its_definition(text: str | None) -> None:
    from pipeline.records import normalise_key

    assert normalise_key(text) == _key_reference(text)
    assert normalise_key("  Trust\u2019s \u201cplan\u201d\u00a0now ") == "trust's \"plan\" now"
