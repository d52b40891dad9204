"""A faster encoder for ``articles.jsonl`` that gives ``Article.to_json``'s bytes (a speed device).

Why: encoding 100k article lines with ``json.dumps`` (what ``Article.to_json`` is, the reference)
is about a second on the critical path; orjson does it in less than half. It stays while it saves
at least 5% end to end (``benchmarks/README.md``, "Speed devices"; switched off with
``HSJ_DEVICES_OFF=orjson``).

Exactness: orjson spells strings, integers and containers as ``json.dumps(ensure_ascii=False,
separators=(",", ":"))`` does, and floats too except magnitudes below 1e-4 (json writes 1e-05,
orjson 0.00001) and non-finite values (json NaN, orjson null). So only articles with finite
floats go through orjson, and a block holding either spelling of a small float anywhere -- a
float, or text that merely looks like one -- is encoded again by ``to_json``. Anything orjson
refuses (a lone surrogate, a huge integer) goes through ``to_json`` too, which gives the right
line or the right error. Tested against ``to_json`` on generated records of every kind.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..records import Article
from . import DEVICES_OFF

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - a declared dependency; without it, the exact path only
    _orjson_dumps = None
if _orjson_dumps is not None and _orjson_dumps([1e16, 1e22]) != b"[1e+16,1e+22]":  # pragma: no cover
    _orjson_dumps = None  # before 3.12 orjson wrote 1e16: then the exact path only
if "orjson" in DEVICES_OFF:
    _orjson_dumps = None

# Records per encoded block: large enough to amortise the join, small enough to stream.
BLOCK_RECORDS = 1024
_DIGITS = frozenset(b"0123456789")


def floats_spelled_alike(block: bytes) -> bool:
    """No "0.0000" and no "<digit>e-<digit>" in ``block`` (a find loop: 100x a regex here)."""
    if b"0.0000" in block:
        return False
    find, digits = block.find, _DIGITS
    at = find(b"e-", 1)
    while at >= 0:
        if block[at - 1] in digits and at + 2 < len(block) and block[at + 2] in digits:
            return False
        at = find(b"e-", at + 2)
    return True


def _finite_floats(article: Article) -> bool:
    """Whether the float fields are finite numbers. Any other type or a missing value: False."""
    try:
        total = article.cluster_score + article.confidence + sum(article.scores.values())
        if article.amounts:
            total += sum(article.amounts)
        return total - total == 0.0
    except Exception:  # noqa: BLE001 - None or an odd type: let to_json decide
        return False


def encode_block(records: Sequence[Any]) -> bytes:
    """Newline-terminated JSON lines, byte for byte ``record.to_json()`` of each record."""
    if _orjson_dumps is not None:
        lines: list[bytes] = []
        for record in records:
            if type(record) is Article and _finite_floats(record):
                try:
                    lines.append(_orjson_dumps(record))
                    continue
                except Exception:  # noqa: BLE001 - to_json gives the right line or the right error
                    pass
            lines.append(record.to_json().encode("utf-8"))
        lines.append(b"")
        block = b"\n".join(lines)
        if floats_spelled_alike(block):
            return block
    text = [record.to_json() for record in records]
    text.append("")
    return "\n".join(text).encode("utf-8")


def encoded_blocks(records: Sequence[Any]) -> Iterator[bytes]:
    """``records`` as blocks of JSON lines (see :func:`encode_block`)."""
    for i in range(0, len(records), BLOCK_RECORDS):
        yield encode_block(records[i:i + BLOCK_RECORDS])
