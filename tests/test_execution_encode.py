"""The articles.jsonl encoder device: orjson where it spells a line as ``to_json`` does, ``to_json``
everywhere else, so the bytes never differ from the reference."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_outputs import _result
from test_records import FLOATS, TYPED, odd_articles

from pipeline.execution import encode
from pipeline.records import Article


def _articles(n: int) -> list[Article]:
    return _result(n, jobs=1).articles


def _expected_block(records: list) -> bytes | str:
    try:
        return "".join(r.to_json() + "\n" for r in records).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - the same kind of error must come out of the writer
        return type(exc).__name__


def _block(records: list) -> bytes | str:
    try:
        return encode.encode_block(records)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


@settings(max_examples=500, deadline=None)
@given(st.lists(TYPED, min_size=1, max_size=3))
def test_block_encoder_equals_to_json_on_any_article(records: list) -> None:
    assert _block(records) == _expected_block(records)


@settings(max_examples=300, deadline=None)
@given(st.lists(TYPED | odd_articles(), min_size=1, max_size=3))
def test_block_encoder_on_a_field_of_another_type_gives_to_json_or_valid_json(records: list) -> None:
    """A record the stages never make (a field of an undeclared type): the writer gives to_json's
    bytes or error, or -- where orjson encodes a value json.dumps cannot or spells it as valid
    JSON (NaN as null) -- a valid JSON line per record. Where both refuse the block, the error
    may come from another record: the writer encodes each line as it goes, the reference joins
    the text of all first."""
    got, expected = _block(records), _expected_block(records)
    if isinstance(expected, str):  # to_json refuses: the writer refuses too, or writes valid JSON
        if isinstance(got, str):
            return
    if got != expected:
        assert isinstance(got, bytes)
        lines = got.decode("utf-8").split("\n")
        assert lines[-1] == "" and len(lines) == len(records) + 1
        for line in lines[:-1]:
            json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS | st.floats(min_value=-1e-3, max_value=1e-3), min_size=1, max_size=4))
def test_block_encoder_spells_every_float_as_json_does(values: list) -> None:
    """Small magnitudes are where orjson and json.dumps spell floats differently."""
    article = Article(id="x", headline="h", amounts=values, cluster=0, cluster_terms=[], cluster_score=values[0],
                      confidence=values[-1], scores={str(i): v for i, v in enumerate(values)})
    assert _block([article]) == _expected_block([article])


def test_block_encoder_takes_the_fast_path_on_run_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ordinary records go through orjson (no to_json call), and text that looks like a small
    float sends the block to to_json, still with the same bytes."""
    if encode._orjson_dumps is None:
        pytest.skip("orjson is not installed")
    records = _articles(50)
    expected = _expected_block(records)
    calls = []
    real = Article.to_json
    monkeypatch.setattr(Article, "to_json", lambda self: calls.append(1) or real(self))
    assert encode.encode_block(records) == expected and not calls
    records[7].headline = "rates fell 0.00005 points, or 2e-5"
    assert encode.encode_block(records) == _expected_block(records) and calls
