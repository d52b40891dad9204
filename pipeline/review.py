"""The review queue: which predicted articles a person should check first, in one order.

Used by ``hsj-pipeline review`` (a JSONL queue for people who label elsewhere) and by
``report.html`` (its "review queue" view), so both show the same articles in the same order.
Most informative first: uncertain articles before the rest, and within each group the lowest
margin between the two best category scores first, taken round-robin across clusters so one
large confusing cluster cannot fill the top of the queue. Gold articles (already training
labels) are not in the queue.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any


def score_margin(scores: Mapping[str, float] | None) -> float:
    """Best minus second-best category score (1.0 when there is no runner-up, 0.0 without scores)."""
    if not scores:
        return 0.0
    first = second = float("-inf")
    for value in scores.values():
        if value > first:
            first, second = value, first
        elif value > second:
            second = value
    return round(first - second, 4) if second != float("-inf") else 1.0


def queue_order(ids: Sequence[str], clusters: Sequence[int | None], margins: Sequence[float],
                uncertain: Sequence[bool], eligible: Sequence[bool]) -> list[int]:
    """Indices of the eligible items in review order (the one definition of the queue).

    Uncertain items come first, then the others. Within each group the items of each cluster are
    sorted by margin (then id); round r takes the r-th item of every cluster, and a round's items
    are ordered by margin (then id). Deterministic for a given input.
    """
    order: list[int] = []
    for want_uncertain in (True, False):
        per_cluster: dict[int, list[tuple[float, str, int]]] = defaultdict(list)
        for i, ok in enumerate(eligible):
            if ok and bool(uncertain[i]) is want_uncertain:
                cluster = clusters[i]
                per_cluster[-1 if cluster is None else cluster].append((margins[i], ids[i], i))
        lanes = [sorted(items) for items in per_cluster.values()]
        depth = max((len(lane) for lane in lanes), default=0)
        for r in range(depth):
            order.extend(i for _, _, i in sorted(lane[r] for lane in lanes if r < len(lane)))
    return order


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def review_queue(articles: Sequence[Any]) -> list[int]:
    """Review order of articles (records or dicts): every predicted (non-gold) article."""
    return queue_order([str(_get(a, "id")) for a in articles], [_get(a, "cluster") for a in articles],
                       [score_margin(_get(a, "scores")) for a in articles],
                       [bool(_get(a, "uncertain")) for a in articles],
                       [_get(a, "label_source") != "gold" for a in articles])


def queue_record(article: Any) -> dict[str, Any]:
    """One line of the review queue file; ``category`` is left empty for the labeller."""
    return {"id": _get(article, "id"), "headline": _get(article, "headline"),
            "standfirst": _get(article, "standfirst"), "predicted": _get(article, "category"),
            "confidence": _get(article, "confidence"), "margin": score_margin(_get(article, "scores")),
            "cluster": _get(article, "cluster"), "uncertain_reason": _get(article, "uncertain_reason"),
            "category": ""}
