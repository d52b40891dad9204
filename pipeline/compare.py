"""Runs over time: what changed between two runs, and topics that keep their identity.

Why a module of its own: a weekly batch run stands alone (cluster numbers are reassigned every
run), so an analyst needs (a) a comparison of two output directories -- articles new and gone,
overall and per ICS page, category counts per ICS before and after, topics matched between the
runs, articles whose category changed -- and (b) a run that gives its topics the ids of the
previous run's matching topics. Both use the one topic matcher here, :func:`match_topics`.

Article identity: ``Article.id`` is 16 hex characters of SHA-256 over the normalised headline
and standfirst (``pipeline.records.article_id``), or the ``id`` given by a JSONL/CSV input; it does
not depend on the page, the position or the run, so articles are matched by id.

Topic matching: each topic (cluster) becomes a profile: its size and, per term, how many of its
articles contain the term (from the ``tokens`` every output line carries). The two runs have
different vocabularies, so both runs' profiles are put in one space over the union of their
terms: weight = share of the topic's articles with the term x idf over both runs' articles, L2
normalised. Cosine similarity between old and new topics, then one optimal one-to-one assignment
(``scipy.optimize.linear_sum_assignment``); an assigned pair counts as the same topic when its
similarity is at least ``[compare] min_similarity``. The old run's ``vectoriser.joblib`` is not
used: loading a pickle from an output directory would run code from it.

This module reads output directories (``read_run``) but never prints or writes; the CLI formats.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from .execution.collector import paused_gc
from .config import CompareConfig
from .errors import InputError
from .outputs import OUTPUT_FORMAT

# ---- one run, as compare needs it ---------------------------------------------------------------


@dataclass
class Topic:
    """One topic of a run: id, size, terms, and per term the number of its articles containing it."""

    id: int
    size: int
    terms: list[str]
    term_counts: Counter = field(default_factory=Counter)


@dataclass
class RunSnapshot:
    """What a comparison needs of one run: article identities, pages, categories and topics.

    Built from an output directory (:func:`read_run`) or from a run in memory
    (:func:`snapshot_of`), so ``compare`` and ``run --previous`` share every step after it.
    """

    path: str | None
    manifest: dict[str, Any]
    categories: dict[str, str | None]  # article id -> category, every article of the run
    headlines: dict[str, str]
    systems: dict[str, set[str]]  # ICS page title -> ids of the articles it carried
    topics: dict[int, Topic]  # cluster id -> topic (outliers, -1, are not a topic)
    outlier_terms: Counter  # term counts of the articles outside any topic (for idf only)
    articles_sha256: str | None = None

    @property
    def n_articles(self) -> int:
        """Number of unique articles in the run."""
        return len(self.categories)

    def next_topic_id(self) -> int:
        """The smallest topic id never used by this run or, through ``--previous``, its ancestors."""
        recorded = self.manifest.get("next_topic_id")
        highest = max(self.topics, default=-1) + 1
        return max(highest, recorded) if isinstance(recorded, int) and not isinstance(recorded, bool) else highest


# One article as the snapshot reads it: id, headline, systems, category, cluster, cluster terms, tokens.
Row = tuple[str, str, Sequence[str], "str | None", "int | None", "Sequence[str] | None", "Sequence[str] | None"]


def _snapshot(rows: Iterable[Row], path: str | None, manifest: dict[str, Any],
              sha256: str | None) -> RunSnapshot:
    """Accumulate articles into a :class:`RunSnapshot`: the one definition for disk and memory.

    The collector is paused while 100k token sets pile up (they make no cycles; its passes over
    them found nothing and cost a third of the read).
    """
    categories: dict[str, str | None] = {}
    headlines: dict[str, str] = {}
    systems: dict[str, set[str]] = {}
    tokens_by_topic: dict[int, list[set[str]]] = {}
    terms: dict[int, list[str]] = {}
    with paused_gc():
        for article_id, headline, pages, category, cluster, cluster_terms, tokens in rows:
            categories[article_id] = category
            headlines[article_id] = headline
            for system in pages:
                found = systems.get(system)
                if found is None:
                    found = systems[system] = set()
                found.add(article_id)
            key = -1 if cluster is None or cluster < 0 else cluster
            group = tokens_by_topic.get(key)
            if group is None:
                group = tokens_by_topic[key] = []
                if key >= 0:
                    terms[key] = list(cluster_terms or [])
            group.append(set(tokens or ()))
        topics: dict[int, Topic] = {}
        outliers: Counter = Counter()
        for key in sorted(tokens_by_topic):
            groups = tokens_by_topic.pop(key)
            counts: Counter = Counter(chain.from_iterable(groups))  # counted in C
            if key < 0:
                outliers = counts
            else:
                topics[key] = Topic(key, len(groups), terms.get(key, []), counts)
    return RunSnapshot(path, manifest, categories, headlines, systems, topics, outliers, sha256)


def snapshot_of(articles: Iterable[Any], manifest: dict[str, Any], path: str | None = None) -> RunSnapshot:
    """A snapshot of a run in memory (``RunResult.articles``)."""
    rows = ((a.id, a.headline, a.systems or (), a.category, a.cluster, a.cluster_terms, a.tokens)
            for a in articles)
    return _snapshot(rows, path, manifest, None)


def _loads() -> Any:
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - a declared dependency
        from json import loads
    return loads


def _not_a_run(path: Path, why: str) -> InputError:
    return InputError(f"not an hsj-pipeline output directory: {why}", file=str(path))


def read_manifest(directory: Path) -> dict[str, Any]:
    """``run.json`` of an output directory, checked to be one this version can read."""
    import json

    directory = Path(directory)
    if not directory.exists():
        raise InputError("run directory not found", file=str(directory))
    if not directory.is_dir():
        raise _not_a_run(directory, "not a directory")
    run_json = directory / "run.json"
    if not run_json.is_file():
        raise _not_a_run(directory, "no run.json")
    try:
        manifest = json.loads(run_json.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("run.json is not UTF-8 text", file=str(run_json)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"run.json is not valid JSON: {exc.msg}", file=str(run_json), line=exc.lineno) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(run_json)) from None
    if not isinstance(manifest, dict) or manifest.get("tool") != "hsj-pipeline":
        raise InputError("run.json was not written by hsj-pipeline (no \"tool\": \"hsj-pipeline\")",
                         file=str(run_json))
    version = manifest.get("version")
    # runs written before the field existed have the layout of format 1
    fmt = manifest.get("output_format", 1)
    if fmt != OUTPUT_FORMAT:
        raise InputError(f"made by hsj-pipeline {version} (output format {fmt}); this version reads "
                         f"output format {OUTPUT_FORMAT}: compare runs made by compatible versions, "
                         "or rerun the old inputs", file=str(run_json))
    return manifest


def read_run(directory: str | Path) -> RunSnapshot:
    """Read an output directory's ``run.json`` and ``articles.jsonl`` into a :class:`RunSnapshot`.

    ``articles.jsonl`` must be the file ``run.json`` names (same SHA-256), so a half-published or
    edited directory is refused rather than compared. Raises :class:`InputError` naming the file
    (and line) for anything that is not a readable run of a compatible version.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    articles = directory / "articles.jsonl"
    if not articles.is_file():
        raise _not_a_run(directory, "no articles.jsonl")
    try:
        data = articles.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(articles)) from None
    digest = hashlib.sha256(data).hexdigest()
    recorded = ((manifest.get("outputs") or {}).get("articles.jsonl") or {}).get("sha256")
    if recorded is not None and recorded != digest:
        raise InputError("does not match the checksum in run.json (edited, or left by an "
                         "interrupted run): rerun to make a consistent directory", file=str(articles))
    return _snapshot(_rows(data, str(articles)), str(directory), manifest, digest)


def _rows(data: bytes, name: str) -> Iterator[Row]:
    """The articles of an ``articles.jsonl`` as snapshot rows; a line that is not an article
    record of this format is an :class:`InputError` naming the file and line."""
    loads = _loads()
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except ValueError:
            raise InputError("not valid JSON", file=name, line=lineno) from None
        try:
            row = (record["id"], record.get("headline") or "", record["systems"], record["category"],
                   record["cluster"], record.get("cluster_terms"), record["tokens"])
        except (KeyError, TypeError, AttributeError):
            row = None
        if (row is None or type(row[0]) is not str or type(row[2]) is not list
                or not (row[4] is None or type(row[4]) is int) or not (row[6] is None or type(row[6]) is list)):
            raise InputError("not an article record of this output format (needs id, systems, "
                             "category, cluster, tokens)", file=name, line=lineno)
        yield row


# ---- topic matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicMatch:
    """An old topic and the new topic assigned to it, with their cosine similarity."""

    old_id: int
    new_id: int
    similarity: float


def _topic_matrix(topics: Sequence[Topic], vocab: dict[str, int], n_terms: int) -> tuple[Any, Any]:
    """(topics x terms sparse matrix of article shares, document frequency of every term)."""
    import numpy as np
    import scipy.sparse as sp

    lengths = [len(t.term_counts) for t in topics]
    total = sum(lengths)
    cols = np.fromiter(chain.from_iterable(map(vocab.__getitem__, t.term_counts) for t in topics),
                       dtype=np.int64, count=total)
    counts = np.fromiter(chain.from_iterable(t.term_counts.values() for t in topics),
                         dtype=np.float64, count=total)
    rows = np.repeat(np.arange(len(topics), dtype=np.int64), lengths)
    sizes = np.array([max(t.size, 1) for t in topics], dtype=np.float64)
    matrix = sp.csr_matrix((counts / sizes[rows] if total else counts, (rows, cols)),
                           shape=(len(topics), n_terms))
    return matrix, np.bincount(cols, weights=counts, minlength=n_terms)


def _normalised(matrix: Any, idf: Any) -> Any:
    import numpy as np
    import scipy.sparse as sp

    matrix = matrix.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ matrix


def topic_similarity(old: RunSnapshot, new: RunSnapshot) -> tuple[list[int], list[int], Any]:
    """(old topic ids, new topic ids, cosine similarity matrix old x new) in the shared term space.

    idf is taken over both runs' articles together (outliers included), so a term common to
    everything weighs little in either run.
    """
    import numpy as np

    old_topics = [old.topics[k] for k in sorted(old.topics)]
    new_topics = [new.topics[k] for k in sorted(new.topics)]
    outliers = [Topic(-1, 1, [], old.outlier_terms), Topic(-1, 1, [], new.outlier_terms)]
    terms = sorted(set().union(*(t.term_counts.keys() for t in chain(old_topics, new_topics, outliers))))
    vocab = {term: i for i, term in enumerate(terms)}
    a, df_a = _topic_matrix(old_topics, vocab, len(terms))
    b, df_b = _topic_matrix(new_topics, vocab, len(terms))
    _, df_o = _topic_matrix(outliers, vocab, len(terms))
    n_docs = old.n_articles + new.n_articles
    idf = np.log((1.0 + n_docs) / (1.0 + df_a + df_b + df_o)) + 1.0
    if not old_topics or not new_topics:
        return [t.id for t in old_topics], [t.id for t in new_topics], np.zeros((len(old_topics), len(new_topics)))
    sim = (_normalised(a, idf) @ _normalised(b, idf).T).toarray()
    return [t.id for t in old_topics], [t.id for t in new_topics], sim


def match_topics(old: RunSnapshot, new: RunSnapshot, min_similarity: float) -> list[TopicMatch]:
    """The one-to-one assignment of old to new topics maximising total similarity, keeping the
    pairs with similarity >= ``min_similarity``; sorted by old id. Deterministic."""
    from scipy.optimize import linear_sum_assignment

    old_ids, new_ids, sim = topic_similarity(old, new)
    if not old_ids or not new_ids:
        return []
    rows, cols = linear_sum_assignment(sim, maximize=True)
    matches = [TopicMatch(old_ids[r], new_ids[c], round(float(sim[r, c]), 4))
               for r, c in zip(rows, cols) if sim[r, c] >= min_similarity]
    return sorted(matches, key=lambda m: m.old_id)


def carried_ids(old: RunSnapshot, new: RunSnapshot, matches: Sequence[TopicMatch]) -> dict[int, int]:
    """New topic id -> the id it keeps: a matched topic takes its old topic's id; the others get
    fresh ids from ``old.next_topic_id()`` on, in their current id order (largest first), so an
    id is never given to two different topics along a chain of ``--previous`` runs."""
    matched = {m.new_id: m.old_id for m in matches}
    fresh = old.next_topic_id()
    mapping: dict[int, int] = {}
    for topic_id in sorted(new.topics):
        if topic_id in matched:
            mapping[topic_id] = matched[topic_id]
        else:
            mapping[topic_id] = fresh
            fresh += 1
    return mapping


# ---- the comparison ---------------------------------------------------------------------------------


@dataclass
class TopicChange:
    """A topic in either run: matched (same, grown, shrunk), only new (new) or only old (faded)."""

    status: str
    old_id: int | None = None
    new_id: int | None = None
    old_size: int | None = None
    new_size: int | None = None
    old_terms: list[str] | None = None
    new_terms: list[str] | None = None
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "old_id": self.old_id, "new_id": self.new_id,
                "old_size": self.old_size, "new_size": self.new_size, "old_terms": self.old_terms,
                "new_terms": self.new_terms, "similarity": self.similarity}


@dataclass
class SystemChange:
    """One ICS page: its articles new and gone, and its category counts before and after."""

    new: list[str]
    gone: list[str]
    articles: tuple[int, int]
    categories: dict[str, tuple[int, int]]

    def to_dict(self) -> dict[str, Any]:
        return {"new": self.new, "gone": self.gone, "articles": list(self.articles),
                "categories": {k: list(v) for k, v in self.categories.items()}}


@dataclass
class Comparison:
    """Everything that changed between an old and a new run (``to_dict`` is the ``--json`` file)."""

    old: dict[str, Any]
    new: dict[str, Any]
    new_ids: list[str]
    gone_ids: list[str]
    kept: int
    systems: dict[str, SystemChange]
    topics: list[TopicChange]
    category_changed: list[dict[str, Any]]
    settings: dict[str, float]
    # the two runs compared (kept for callers that want more; not in to_dict)
    old_run: RunSnapshot | None = field(default=None, repr=False)
    new_run: RunSnapshot | None = field(default=None, repr=False)

    def topic_counts(self) -> dict[str, int]:
        """Topics per status, every status listed."""
        counts = Counter(t.status for t in self.topics)
        return {s: counts.get(s, 0) for s in TOPIC_STATUSES}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; every list sorted, so the file is deterministic."""
        return {
            "runs": {"old": self.old, "new": self.new}, "new": self.new_ids, "gone": self.gone_ids,
            "counts": {"old_articles": self.old.get("articles"), "new_articles": self.new.get("articles"),
                       "new": len(self.new_ids), "gone": len(self.gone_ids), "kept": self.kept,
                       "category_changed": len(self.category_changed), "topics": self.topic_counts()},
            "systems": {s: c.to_dict() for s, c in sorted(self.systems.items())},
            "topics": [t.to_dict() for t in self.topics],
            "category_changed": self.category_changed,
            "settings": self.settings,
        }


TOPIC_STATUSES = ("same", "grown", "shrunk", "new", "faded")


def _run_info(snapshot: RunSnapshot) -> dict[str, Any]:
    m = snapshot.manifest
    model = m.get("model") if isinstance(m.get("model"), dict) else {}
    return {"path": snapshot.path, "version": m.get("version"), "started": m.get("started"),
            "articles": snapshot.n_articles, "topics": len(snapshot.topics),
            "model_sha256": model.get("sha256"), "articles_sha256": snapshot.articles_sha256}


def size_status(old_size: int, new_size: int, tolerance: float) -> str:
    """same / grown / shrunk: grown when the new size exceeds the old by more than ``tolerance``
    (a fraction of the old size), shrunk when it falls short by more than that."""
    if new_size > old_size * (1.0 + tolerance):
        return "grown"
    if new_size < old_size * (1.0 - tolerance):
        return "shrunk"
    return "same"


def compare(old: RunSnapshot, new: RunSnapshot, config: CompareConfig | None = None,
            matches: Sequence[TopicMatch] | None = None) -> Comparison:
    """Compare two runs: articles new and gone (overall and per ICS page), category counts per ICS
    before and after, matched topics with a status, and articles whose category changed.
    ``matches``: the topic matching already made (else :func:`match_topics`)."""
    config = config or CompareConfig()
    old_ids, new_ids = old.categories.keys(), new.categories.keys()
    systems: dict[str, SystemChange] = {}
    for system in sorted(set(old.systems) | set(new.systems)):
        before, after = old.systems.get(system, set()), new.systems.get(system, set())
        cb = Counter(old.categories[i] for i in before)
        ca = Counter(new.categories[i] for i in after)
        cats = {str(c): (cb.get(c, 0), ca.get(c, 0)) for c in sorted(set(cb) | set(ca), key=str)}
        systems[system] = SystemChange(sorted(after - before), sorted(before - after),
                                       (len(before), len(after)), cats)
    changed = [{"id": i, "old": old.categories[i], "new": new.categories[i], "headline": new.headlines.get(i, "")}
               for i in sorted(old_ids & new_ids) if old.categories[i] != new.categories[i]]
    topics: list[TopicChange] = []
    matched_old: set[int] = set()
    matched_new: set[int] = set()
    for m in matches if matches is not None else match_topics(old, new, config.min_similarity):
        o, n = old.topics[m.old_id], new.topics[m.new_id]
        topics.append(TopicChange(size_status(o.size, n.size, config.size_tolerance), o.id, n.id,
                                  o.size, n.size, o.terms, n.terms, m.similarity))
        matched_old.add(o.id)
        matched_new.add(n.id)
    topics += [TopicChange("new", new_id=t.id, new_size=t.size, new_terms=t.terms)
               for k, t in sorted(new.topics.items()) if k not in matched_new]
    topics += [TopicChange("faded", old_id=t.id, old_size=t.size, old_terms=t.terms)
               for k, t in sorted(old.topics.items()) if k not in matched_old]
    big = math.inf
    topics.sort(key=lambda t: (t.new_id if t.new_id is not None else big,
                               t.old_id if t.old_id is not None else big))
    return Comparison(_run_info(old), _run_info(new), sorted(new_ids - old_ids), sorted(old_ids - new_ids),
                      len(old_ids & new_ids), systems, topics, changed,
                      {"min_similarity": config.min_similarity, "size_tolerance": config.size_tolerance},
                      old, new)


def same_directory(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same directory (after symlinks)."""
    return os.path.realpath(a) == os.path.realpath(b)


def compare_dirs(old_dir: str | Path, new_dir: str | Path, config: CompareConfig | None = None) -> Comparison:
    """Read two output directories and compare them (the library side of ``hsj-pipeline compare``)."""
    if same_directory(old_dir, new_dir):
        raise InputError("the same run directory given twice: compare needs two different runs",
                         file=str(new_dir))
    old = read_run(old_dir)
    new = read_run(new_dir)
    return compare(old, new, config)


def carry_forward(articles: Sequence[Any], clusters: Sequence[Any], manifest: dict[str, Any],
                  previous: RunSnapshot, config: CompareConfig) -> Comparison:
    """``run --previous``: give this run's topics the ids of the previous run's matching topics
    (fresh ids above any the previous runs used for the others), in place on ``articles``
    (``cluster``) and ``clusters`` (``id``); record the previous run in ``manifest``; return the
    comparison of the previous run with this one for the report."""
    current = snapshot_of(articles, manifest)
    matches = match_topics(previous, current, config.min_similarity)
    mapping = carried_ids(previous, current, matches)
    for a in articles:
        if a.cluster is not None and a.cluster >= 0:
            a.cluster = mapping[a.cluster]
    for c in clusters:
        c.id = mapping.get(c.id, c.id)
    current.topics = {mapping[k]: Topic(mapping[k], t.size, t.terms, t.term_counts)
                      for k, t in current.topics.items()}
    matches = [TopicMatch(m.old_id, mapping[m.new_id], m.similarity) for m in matches]
    comparison = compare(previous, current, config, matches)
    manifest["next_topic_id"] = max([previous.next_topic_id(), *(v + 1 for v in mapping.values())])
    manifest["previous"] = {
        "path": previous.path, "version": previous.manifest.get("version"),
        "started": previous.manifest.get("started"), "articles_sha256": previous.articles_sha256,
        "articles": previous.n_articles, "new": len(comparison.new_ids), "gone": len(comparison.gone_ids),
        "topics": comparison.topic_counts(), "topic_ids_kept": len(matches),
        "min_similarity": config.min_similarity}
    return comparison
