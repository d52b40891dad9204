"""Records: the hand-written ``Article.to_dict`` is exactly ``dataclasses.asdict`` (faster)."""
from __future__ import annotations

import dataclasses
import json

from pipeline.config import ParseConfig
from pipeline.parse import parse_paths
from pipeline.records import Article, Source


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
