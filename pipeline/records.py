"""Typed records: the single source of truth for the output schema.

The JSON Schema shipped in ``pipeline/schema/article.schema.json`` is generated from
:class:`Article` (``python -m pipeline.records`` rewrites it; a test checks it is current).
Dataclasses rather than pydantic models keep a million records cheap; pydantic is only
used to derive the schema.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

SCHEMA_PATH = Path(__file__).with_name("schema") / "article.schema.json"

Kicker = Literal["Exclusive", "Revealed"]


@dataclass(slots=True)
class Source:
    """Where one occurrence of an article was read: file, 1-based line of its headline, slot on the page."""

    file: str
    line: int
    position: int


@dataclass(slots=True)
class Article:
    """One unique article, carried through every stage; later stages fill the optional fields."""

    id: str
    headline: str
    standfirst: str | None = None
    caption: str | None = None
    kicker: str | None = None
    series: str | None = None
    systems: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    # clean
    tokens: list[str] | None = None
    amounts: list[float] | None = None
    # cluster
    cluster: int | None = None
    cluster_terms: list[str] | None = None
    cluster_score: float | None = None
    # tag
    category: str | None = None
    confidence: float | None = None
    uncertain: bool | None = None
    # why uncertain: "out_of_scope" (not NHS or health-system news) or "low_confidence"
    uncertain_reason: str | None = None
    # "gold": the article is in the model's training data and carries its training label;
    # "model": the category was predicted
    label_source: str | None = None
    scores: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in field order (the JSONL line), equal to ``dataclasses.asdict(self)``.

        Written out because ``asdict`` deep-copies recursively: it was 10 s of writing 100k
        articles. Lists and dicts are copied one level (their items are str/float, or Sources).
        """
        row = self._row()
        for name, value in row.items():
            if type(value) is list and name != "sources":  # _row made sources afresh
                row[name] = list(value)
            elif type(value) is dict:
                row[name] = dict(value)
        return row

    def to_json(self) -> str:
        """One JSON line: ``json.dumps`` of :meth:`to_dict` (UTF-8 text, no spaces); key order is
        the field order, so output is byte-stable. The one encoder of output records.

        It encodes :meth:`_row`, which shares the record's lists (the encoder only reads them):
        copying them as ``to_dict`` does was a third of writing ``articles.jsonl``.
        """
        return _dumps(self._row())

    def _row(self) -> dict[str, Any]:
        """The fields in order, sources as dicts, other lists and dicts shared with the record."""
        row = {name: getattr(self, name) for name in _ARTICLE_FIELDS}
        row["sources"] = [{"file": s.file, "line": s.line, "position": s.position} for s in self.sources]
        return row


_ARTICLE_FIELDS = tuple(f.name for f in fields(Article))
# json.dumps with these options builds a new encoder on every call; this is the same encoder, once
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(slots=True)
class Reject:
    """Something read that could not become an article, with the reason (never silently dropped)."""

    file: str
    line: int
    reason: str
    text: str | None = None

    def to_json(self) -> str:
        """One JSON line: ``json.dumps`` of ``asdict``, as :meth:`Article.to_json`."""
        return _dumps(asdict(self))


_WS = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_QUOTE_PAIRS = tuple((chr(k), v) for k, v in _QUOTES.items())


def normalise_key(text: str | None) -> str:
    """Case-, quote- and whitespace-insensitive form of a text, used for identity and merging."""
    if not text:
        return ""
    if text.isascii():  # NFKC and the quote table leave ASCII as it is; casefold() is lower()
        # printable ASCII with single inner spaces is already split and joined: most texts are,
        # and the split and join was nine tenths of the time (250k calls in a 100k parse)
        if not (text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " "):
            text = " ".join(text.split())
        return text.lower()
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # same result as .translate(_QUOTES), about 20x faster on news text
        for old, new in _QUOTE_PAIRS:
            if old in text:
                text = text.replace(old, new)
    return " ".join(text.split()).casefold()  # same as _WS.sub(" ", text).strip() (\s == isspace)


def article_id(headline: str, standfirst: str | None) -> str:
    """Stable id from the normalised headline and standfirst (16 hex chars of SHA-256)."""
    key = normalise_key(headline) + "\n" + normalise_key(standfirst)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def article_schema() -> dict[str, Any]:
    """JSON Schema of one output line, derived from :class:`Article`."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Article).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "HSJ pipeline article record"
    schema["additionalProperties"] = False
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Regenerate the shipped schema file from the record model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(article_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
