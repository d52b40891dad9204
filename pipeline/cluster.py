"""Cluster stage: group articles into topics and describe each topic in words.

Pipeline: merge identical TF-IDF rows -> LSA (TruncatedSVD + L2 normalisation) -> one of

- ``kmeans``: k-means (above ``minibatch_threshold`` distinct articles full-batch Lloyd steps from
  the sample's centres, over row blocks: :mod:`pipeline.cluster_blocks`), then
  (``refine = "nb"``) hard-EM refinement with multinomial naive Bayes in the full TF-IDF space,
  which LSA's 100 dimensions blur (on AG News it lifts NMI from about 0.52 to 0.58);
- ``agglomerative``: average-linkage cosine clustering; clusters smaller than
  ``min_cluster_size`` become outliers (-1);
- ``hdbscan``: density clustering that leaves outliers as -1 by itself (``n_clusters`` unused).

``n_clusters = "auto"`` searches k in ``[min_clusters, min(max_clusters, sqrt(distinct articles))]``
-- above 1,000 sampled articles a coarse grid, then both sides of the best at halving distances,
each k fitted once; below, every k with ``n_init`` restarts -- and keeps the best silhouette
(cosine), measured on a seeded sample of at most ``silhouette_sample`` articles so it stays fast
at 100k+; the final k-means starts from the chosen k's centres on that sample (with a fixed k it
uses ``n_init`` restarts). The naive Bayes refinement stops when at most ``REFINE_TOL`` (0.1%)
of the articles move in a step, or after ``refine_max_iter`` steps. Topic terms come from
class-based TF-IDF (terms frequent in the cluster *and* rare in the others), the representative
headline is the article closest to the centroid, and every article gets its cosine similarity to
its cluster's centroid. Articles whose vector is empty (only stop words or numbers) are outliers
with score 0.0. Clusters are numbered by size (desc), then first appearance, so output is stable.
The embedding and the naive Bayes scoring run in float32 and on one thread (see
:func:`cluster_articles`): at 100k articles the stage takes about 1.5 CPU seconds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from .config import ClusterConfig
from .errors import ConfigError
from .records import Article


@dataclass
class ClusterInfo:
    """One topic: its id, size (articles), distinguishing terms and representative headline."""

    id: int
    size: int
    terms: list[str]
    representative_id: str | None
    representative_headline: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "terms": list(self.terms),
                "representative_id": self.representative_id,
                "representative_headline": self.representative_headline}


@dataclass
class ClusterResult:
    """Labels per article (-1 = outlier/empty), topic descriptions, a 2-D map and how k was chosen."""

    labels: np.ndarray
    clusters: list[ClusterInfo]
    coords: np.ndarray
    scores: np.ndarray
    k: int
    method: str
    k_scores: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def readable(term: str) -> str:
    """Show a joined phrase token as words: "integrated_care_board" -> "integrated care board"."""
    return term.replace("_", " ")


def feature_names_of(source: Any, n_features: int) -> list[str]:
    """Column names from a fitted vectoriser (or a list), ``f0``... without one."""
    if source is None:
        return [f"f{i}" for i in range(n_features)]
    if hasattr(source, "get_feature_names_out"):
        source = source.get_feature_names_out()
    names = [str(t) for t in source]
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} columns")
    return names


def _unique_rows(X: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each group of identical rows, and each row's group (identical articles merge).

    Why a fingerprint: comparing every row's bytes in a Python loop was 0.2 s at 100k. Rows are
    bucketed by their entry count and two random projections (identical rows give bit-identical
    floats), and only rows sharing a bucket are compared byte for byte.
    """
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sub = X[rows]
    probe = np.random.RandomState(0).random_sample((X.shape[1], 2))
    keys = np.column_stack([np.diff(sub.indptr), sub @ probe])
    order = np.lexsort(keys.T[::-1])
    starts = np.r_[True, np.any(keys[order][1:] != keys[order][:-1], axis=1)]
    group = np.empty(n, dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    shared = np.flatnonzero(np.bincount(group)[group] > 1)
    if len(shared):  # confirm candidate duplicates exactly; a false match gets its own group
        seen: dict[tuple[int, bytes, bytes], int] = {}
        indptr, indices, data = X.indptr, X.indices, X.data
        for pos in shared:
            r = rows[pos]
            a, b = indptr[r], indptr[r + 1]
            key = (int(group[pos]), indices[a:b].tobytes(), data[a:b].tobytes())
            group[pos] = seen.setdefault(key, n + len(seen))
    _, first_pos, inv = np.unique(group, return_index=True, return_inverse=True)
    rank = np.empty(len(first_pos), dtype=np.int64)
    rank[np.argsort(first_pos, kind="stable")] = np.arange(len(first_pos))
    return np.asarray(rows, dtype=np.int64)[np.sort(first_pos)], rank[inv.ravel()]


# Above this many distinct articles the LSA basis is fitted on a seeded sample of this size and
# every row is projected onto it: randomized SVD of the whole matrix was 8 s of the 12 s cluster
# stage at 100k and grows linearly, while topic directions are already stable at 20k articles.
SVD_FIT_MAX = 20000
# Power iterations of the randomized SVD (sklearn's default). Fewer are cheaper but blur the
# basis: on AG News 2 iterations cost 0.02 NMI (k-means start 0.52 -> 0.48), 4 cost 0.007.
SVD_N_ITER = 5


def _embed(Xu: sp.csr_matrix, config: ClusterConfig) -> np.ndarray:
    """LSA: TruncatedSVD then L2 rows (cosine geometry), in float32 (half the memory traffic of
    the projections and of k-means; clustering needs no more precision). With no more distinct
    articles than LSA dimensions, a projection would only lose information: use the TF-IDF rows
    as they are."""
    m, n_features = Xu.shape
    n_components = min(config.lsa_components, n_features - 1)
    X32 = Xu.astype(np.float32)
    if m > config.lsa_components and n_components >= 2:
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=n_components, n_iter=SVD_N_ITER,
                           random_state=config.random_state)
        if m > SVD_FIT_MAX:  # the basis from a seeded sample; projecting every row is one product
            rows = np.sort(np.random.RandomState(config.random_state).choice(m, SVD_FIT_MAX, replace=False))
            Z = X32 @ np.ascontiguousarray(svd.fit(X32[rows]).components_.T)
        else:
            Z = svd.fit_transform(X32)
    else:
        Z = X32.toarray()
    return normalize(np.asarray(Z, dtype=np.float32))


# Full-batch k-means above ``minibatch_threshold``: Lloyd steps from the sample's centres until at
# most this share of the articles changes cluster (or LLOYD_MAX_ITER steps); the naive Bayes
# refinement does the fine work after it. On AG News forced through this path (threshold 1,000,
# 3 seeds) NMI is 0.568 +- 0.001 at 0.01 and at 0.001 (2 vs 9 steps at 100k), where the former
# MiniBatchKMeans gave 0.524 +- 0.064.
LLOYD_TOL = 0.01
LLOYD_MAX_ITER = 50


def _kmeans(Z: np.ndarray, k: int, weights: np.ndarray, config: ClusterConfig,
            init: np.ndarray | None = None) -> np.ndarray:
    """k-means labels; ``init`` (k x d centres, e.g. from the auto-k search) replaces restarts.

    Above ``minibatch_threshold`` distinct articles: Lloyd iterations over every article from
    ``init`` (else from k-means on a seeded sample, see :func:`sample_centres`), written over
    row blocks (:mod:`pipeline.cluster_blocks`). Below it, scikit-learn's KMeans.
    """
    if len(Z) > config.minibatch_threshold:
        from .cluster_blocks import Blocks, lloyd

        centres = init if init is not None else sample_centres(Z, weights, k, config)
        labels, _ = lloyd(Blocks(), [Z], [weights], centres.astype(Z.dtype), LLOYD_MAX_ITER, LLOYD_TOL)
        return labels[0]
    from sklearn.cluster import KMeans

    starts: Any = "k-means++" if init is None else init
    model = KMeans(n_clusters=k, random_state=config.random_state, init=starts,
                   n_init=config.n_init if init is None else 1)
    return model.fit_predict(Z, sample_weight=weights)


def k_sample_rows(m: int, config: ClusterConfig) -> np.ndarray:
    """The seeded sample of distinct articles on which k is chosen (all of them up to
    ``silhouette_sample``)."""
    if m <= config.silhouette_sample:
        return np.arange(m)
    return np.sort(np.random.RandomState(config.random_state).choice(m, config.silhouette_sample,
                                                                     replace=False))


def sample_centres(Z: np.ndarray, weights: np.ndarray, k: int, config: ClusterConfig) -> np.ndarray:
    """k-means centres (``n_init`` restarts) of the seeded k-sample: the start of full-batch
    k-means when k was given rather than searched."""
    rows = k_sample_rows(len(Z), config)
    return sample_centres_of(Z[rows], weights[rows], k, config)


def sample_centres_of(Zs: np.ndarray, ws: np.ndarray, k: int, config: ClusterConfig) -> np.ndarray:
    """:func:`sample_centres` given the sampled rows themselves."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=min(k, len(Zs)), random_state=config.random_state, n_init=config.n_init)
    return model.fit(Zs, sample_weight=ws).cluster_centers_.astype(Zs.dtype)


def _fit_labels(Z: np.ndarray, k: int, weights: np.ndarray, config: ClusterConfig,
                init: np.ndarray | None = None) -> np.ndarray:
    """Labels of the distinct articles for the configured method (-1 = outlier); ``init`` are
    k-means starting centres (ignored by the other methods)."""
    if config.method == "kmeans" or k <= 1 and config.method != "hdbscan":
        return _kmeans(Z, k, weights, config, init) if k > 1 else np.zeros(len(Z), dtype=np.int64)
    rng = np.random.RandomState(config.random_state)
    fit_rows = np.arange(len(Z))
    if len(Z) > config.exact_max:  # quadratic methods: fit a seeded sample, assign the rest
        fit_rows = np.sort(rng.choice(len(Z), config.exact_max, replace=False))
    Zf = Z[fit_rows]
    if config.method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        fitted = AgglomerativeClustering(n_clusters=min(k, len(Zf)), metric="cosine",
                                         linkage="average").fit_predict(Zf)
        sizes = np.bincount(fitted, weights=weights[fit_rows])
        fitted = np.where(sizes[fitted] >= config.min_cluster_size, fitted, -1)
    elif config.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        if len(Zf) < max(2, config.min_cluster_size):
            fitted = np.full(len(Zf), -1, dtype=np.int64)
        else:
            fitted = HDBSCAN(min_cluster_size=max(2, config.min_cluster_size),
                             copy=True).fit_predict(Zf)
    else:  # validated in config; kept for direct callers
        raise ConfigError(f"unknown method {config.method!r}", key="cluster.method")
    if len(fit_rows) == len(Z):
        return fitted.astype(np.int64)
    labels = np.full(len(Z), -1, dtype=np.int64)
    labels[fit_rows] = fitted
    ids = np.unique(fitted[fitted >= 0])
    if len(ids):
        centroids = normalize(np.vstack([Z[fit_rows][fitted == c].mean(axis=0) for c in ids]))
        rest = np.setdiff1d(np.arange(len(Z)), fit_rows)
        sims = Z[rest] @ centroids.T
        best = sims.argmax(axis=1)
        labels[rest] = np.where(sims[np.arange(len(rest)), best] >= config.outlier_similarity,
                                ids[best], -1)
    return labels


def cosine_silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine silhouette, equal to ``silhouette_score(Z, labels, metric="cosine")``.

    Why not sklearn's: it builds the n x n distance matrix (seconds per k at 5,000 rows, and
    auto k tries up to 29 k). With unit rows the summed cosine distance from a point to a
    cluster is ``size - u . (sum of the cluster's unit rows)``, so this is O(n k d).
    """
    Z = np.asarray(Z, dtype=np.float64)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    U = np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)
    _, inv = np.unique(labels, return_inverse=True)
    k = int(inv.max()) + 1 if len(inv) else 0
    sizes = np.bincount(inv, minlength=k).astype(np.float64)
    sums = np.zeros((k, U.shape[1]))
    np.add.at(sums, inv, U)
    dist_sum = sizes[None, :] - U @ sums.T  # n x k: summed cosine distance to each cluster
    rows = np.arange(len(U))
    own = sizes[inv]
    self_dist = 1.0 - np.einsum("ij,ij->i", U, U)  # 0 for unit rows, 1 for an all-zero row
    a = (dist_sum[rows, inv] - self_dist) / np.maximum(own - 1.0, 1.0)
    mean_other = dist_sum / sizes[None, :]
    mean_other[rows, inv] = np.inf
    b = mean_other.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.nan_to_num((b - a) / np.maximum(a, b))
    return float(np.where(own > 1, s, 0.0).mean())


# Naive Bayes hard-EM stops once at most this share of the distinct articles changes cluster in a
# step: on AG News the last such steps move NMI by under 0.001, while on the 100k scale corpus
# the changes shrink slowly (0.1% takes about 20 steps) and every step costs a full pass.
REFINE_TOL = 0.001


def _refine_nb(Xu: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray,
               config: ClusterConfig) -> tuple[np.ndarray, int]:
    """Hard-EM refinement in the full TF-IDF space (Nigam et al. style): fit a multinomial naive
    Bayes on the current clusters, relabel, repeat until (nearly) stable. Uniform priors stop a
    large cluster from swallowing the others; a step that would empty a cluster is not taken.

    This is ``MultinomialNB(alpha, fit_prior=False)`` written out (:func:`cluster_blocks.nb_refine`):
    sklearn's refits the class-term sums from scratch and
    re-validates the matrix every step; here the sums are updated from the rows that moved, and
    the scoring product runs in float32.
    """
    from .cluster_blocks import Blocks, nb_refine

    k = int(labels.max()) + 1
    if k < 2 or Xu.shape[1] == 0:
        return labels, 0
    refined, steps = nb_refine(Blocks(), [Xu.astype(np.float32)], [np.asarray(weights, dtype=np.float64)],
                               [labels], k, config.refine_alpha, config.refine_max_iter, REFINE_TOL)
    return refined[0], steps


def _class_sums(X: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """k x columns: the weighted sum of each cluster's rows (``X`` sparse or dense; float64)."""
    member = sp.csr_matrix((weights, (labels, np.arange(len(labels)))), shape=(k, X.shape[0]))
    sums = member @ X
    return np.asarray(sums.toarray() if sp.issparse(sums) else sums, dtype=np.float64)


def _choose_k(Z: np.ndarray, weights: np.ndarray, config: ClusterConfig,
              notes: list[str]) -> tuple[int, dict[int, float]]:
    """k from config, clamped to the distinct articles; or the best silhouette in the bounds."""
    k, scores, _ = _search_k(Z, weights, config, notes)
    return k, scores


def _search_k(Z: np.ndarray, weights: np.ndarray, config: ClusterConfig,
              notes: list[str]) -> tuple[int, dict[int, float], np.ndarray | None]:
    """:func:`_choose_k`, plus (k-means, auto k) the chosen k's centres on the sample, so the
    final fit starts from them instead of restarting k-means++ on every article."""
    return search_k(len(Z), lambda rows: (Z[rows], weights[rows]), config, notes)


def search_k(m: int, take: Any, config: ClusterConfig,
             notes: list[str]) -> tuple[int, dict[int, float], np.ndarray | None]:
    """:func:`_search_k` over ``m`` distinct articles whose sampled rows ``take(rows)`` returns as
    (embedded rows, weights), wherever the rows are kept."""
    if config.method == "hdbscan":
        return 0, {}, None
    if config.n_clusters != "auto":
        k = int(config.n_clusters)
        if k > m:
            notes.append(f"n_clusters={k} but only {m} distinct non-empty articles: using k={m}")
            k = m
        return k, {}, None
    lo = max(2, config.min_clusters)
    hi = min(config.max_clusters, m - 1, max(lo, int(math.sqrt(m))))
    if hi < lo:
        notes.append(f"auto k: {m} distinct non-empty articles are too few to compare k; using k=1")
        return 1, {}, None
    from threadpoolctl import threadpool_limits

    rows = k_sample_rows(m, config)
    Zs, ws = take(rows)
    small = len(rows) <= _EXHAUSTIVE_MAX  # cheap: every k, full restarts (noise matters more)
    search = config if config.method != "kmeans" or small else _search_config(config)
    scores: dict[int, float] = {}
    centres: dict[int, np.ndarray] = {}

    def score(k: int) -> None:
        if k in scores or not lo <= k <= hi:
            return
        labels = _fit_labels(Zs, k, ws, search)
        kept = labels >= 0
        scores[k] = (round(cosine_silhouette(Zs[kept], labels[kept]), 6)
                     if len(np.unique(labels[kept])) >= 2 else float("nan"))
        mass = np.bincount(labels[kept], ws[kept], k)
        if config.method == "kmeans" and mass.min() > 0:  # (rows that coincide can leave one empty)
            centres[k] = (_class_sums(Zs, labels, ws, k) / mass[:, None]).astype(Zs.dtype)

    # one thread: on a sample this small OpenMP threads only add spin-waiting (5x slower when
    # the cores are shared); labels do not depend on the thread count
    with threadpool_limits(limits=1):
        # coarse grid, then both sides of the best at half the distance, until next to it
        step = 1 if small else max(1, math.ceil((hi - lo) / _K_GRID_POINTS))
        for k in [*range(lo, hi + 1, step), hi]:
            score(k)
        best, step = _best_k(scores), step // 2
        while best is not None and step >= 1:
            score(best - step)
            score(best + step)
            best, step = _best_k(scores), step // 2
    scores = {k: v for k, v in sorted(scores.items()) if not math.isnan(v)}
    best = _best_k(scores)
    if best is None:
        notes.append("auto k: no k gave two or more clusters; using k=1")
        return 1, {}, None
    notes.append(f"auto k: best cosine silhouette {scores[best]:.4f} at k={best} "
                 f"(tried {len(scores)} k in {lo}..{hi} on {len(rows)} articles)")
    return best, scores, centres.get(best)


# auto k above _EXHAUSTIVE_MAX sampled articles: grid points before the halving steps around the
# best, and k-means restarts per tried k (8-9 fits in 2..30). Against every k with 10 restarts on
# the same sample (AG News at 2,500 and 7,600, the 10k and 100k scale corpora, 3 seeds) this picks
# the best or second-best k, as the former 7-point grid with every neighbour and 2 restarts did
# with 11 fits of twice the cost: silhouette rises almost monotonically in k on news text.
_K_GRID_POINTS = 5
_SEARCH_N_INIT = 1
_EXHAUSTIVE_MAX = 1000  # sampled articles up to which every k is tried with ``n_init`` restarts


def _search_config(config: ClusterConfig) -> ClusterConfig:
    from dataclasses import replace

    return replace(config, n_init=min(config.n_init, _SEARCH_N_INIT))


def _best_k(scores: dict[int, float]) -> int | None:
    valid = [k for k, v in scores.items() if not math.isnan(v)]
    return max(valid, key=lambda k: (scores[k], -k)) if valid else None


def _ctfidf_terms(B: sp.csr_matrix, labels: np.ndarray, k: int, names: list[str],
                  n_terms: int) -> list[list[str]]:
    """Topic terms of each cluster from the binary article x term matrix ``B``."""
    if B.shape[1] == 0 or k == 0:
        return [[] for _ in range(k)]
    kept = np.flatnonzero(labels >= 0)
    member = sp.csr_matrix((np.ones(len(kept)), (labels[kept], kept)), shape=(k, B.shape[0]))
    doc_counts = np.asarray((member @ B).todense(), dtype=np.float64)
    return terms_from_doc_counts(doc_counts, np.bincount(labels[kept], minlength=k), names, n_terms)


def terms_from_doc_counts(doc_counts: np.ndarray, sizes: np.ndarray, names: list[str],
                          n_terms: int) -> list[list[str]]:
    """Class-based TF-IDF (as in BERTopic) from k x V counts of the cluster's articles containing
    each term: term share in the cluster times log(1 + average cluster size in terms / the term's
    frequency over all clusters). Ties go to the alphabetically first term. Public so a caller
    that sums the counts itself (over partitions, say) gets the same terms as this stage."""
    tf = np.asarray(doc_counts, dtype=np.float64)
    k = tf.shape[0]
    if k == 0 or tf.shape[1] == 0:
        return [[] for _ in range(k)]
    totals = tf.sum(axis=1, keepdims=True)
    idf = np.log1p(totals.mean() / np.maximum(tf.sum(axis=0), 1.0))
    weight = np.divide(tf, np.maximum(totals, 1.0)) * idf
    rounded = np.round(weight, 12)  # near-equal weights tie, so the order is platform-stable
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    out: list[list[str]] = []
    for c in range(k):
        min_docs = 2 if sizes[c] >= 4 else 1  # a term of one article does not name a topic
        candidates = np.flatnonzero((tf[c] >= min_docs) & (weight[c] > 0))
        if len(candidates) == 0:
            candidates = np.flatnonzero(weight[c] > 0)
        top = candidates[np.lexsort((rank[candidates], -rounded[c, candidates]))[:n_terms]]
        out.append([readable(names[t]) for t in top])
    return out


def _empty_result(n: int, method: str, notes: list[str]) -> ClusterResult:
    return ClusterResult(labels=np.full(n, -1, dtype=np.int64), clusters=[],
                         coords=np.zeros((n, 2)), scores=np.zeros(n), k=0, method=method,
                         notes=notes, counts={"articles": n, "distinct": 0, "empty": n})


def cluster_articles(X: Any, articles: Sequence[Article], config: ClusterConfig | None = None,
                     feature_names: Any = None) -> ClusterResult:
    """Cluster the TF-IDF rows ``X`` (one per article) and fill ``cluster``, ``cluster_terms``
    and ``cluster_score`` on each article: :func:`cluster_matrix` then :func:`fill_clusters`."""
    result = cluster_matrix(X, articles, config, feature_names)
    fill_clusters(articles, result)
    return result


def cluster_matrix(X: Any, articles: Sequence[Article], config: ClusterConfig | None = None,
                   feature_names: Any = None) -> ClusterResult:
    """Cluster the TF-IDF rows ``X`` (one per article); changes nothing.

    Parameters
    ----------
    X: sparse TF-IDF matrix, rows aligned with ``articles``.
    articles: the records; only ids and headlines are read (for the representatives).
    config: the ``[cluster]`` section.
    feature_names: the fitted Vectoriser (anything with ``get_feature_names_out``) or a list.

    Returns
    -------
    ClusterResult; its ``notes`` say when k was clamped or chosen automatically, and why.
    """
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: on the shared 2-core target, threads spin-wait for a busy core
    # (10k articles: 10-11 s with the default threads, 2.3 s with one; 100k: 4.6 s either way),
    # and the result does not depend on the thread count.
    with threadpool_limits(limits=1):
        return _cluster_articles(X, articles, config or ClusterConfig(), feature_names)


def _cluster_articles(X: Any, articles: Sequence[Article], config: ClusterConfig,
                      feature_names: Any) -> ClusterResult:
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sort_indices()
    n = X.shape[0]
    if n != len(articles):
        raise ValueError(f"X has {n} rows but there are {len(articles)} articles")
    notes: list[str] = []
    names = feature_names_of(feature_names, X.shape[1])
    nonempty = np.flatnonzero(np.diff(X.indptr) > 0)
    n_empty = n - len(nonempty)
    if n_empty:
        notes.append(f"{n_empty} article(s) have no content words (empty vector): cluster -1")
    if len(nonempty) == 0:
        if n:
            notes.append("no article has content words: nothing to cluster")
        return _empty_result(n, config.method, notes)

    firsts, inverse = _unique_rows(X, nonempty)
    weights = np.bincount(inverse).astype(np.float64)
    if len(firsts) < len(nonempty):
        notes.append(f"{len(nonempty) - len(firsts)} identical article(s) merged before clustering")
    Xu = X[firsts]
    Z = _embed(Xu, config)
    k, k_scores, centres = _search_k(Z, weights, config, notes)
    if config.method == "hdbscan" and config.n_clusters != "auto":
        notes.append("hdbscan finds its own number of clusters; n_clusters is ignored")
    unique_labels = _fit_labels(Z, max(k, 1), weights, config, init=centres)
    if config.refine == "nb" and config.method == "kmeans":
        unique_labels, steps = _refine_nb(Xu, unique_labels, weights, config)
        notes.append(f"naive Bayes refinement: {steps} step(s)")

    unique_labels, k_final = renumber_by_size(unique_labels, inverse)
    n_outliers = int((unique_labels[inverse] < 0).sum())
    if n_outliers:
        notes.append(f"{n_outliers} article(s) left as outliers (-1) by {config.method}")
    unique_scores = _centroid_similarity(Z, unique_labels, weights, k_final)

    labels = np.full(n, -1, dtype=np.int64)
    scores = np.zeros(n)
    coords = np.zeros((n, 2))
    labels[nonempty] = unique_labels[inverse]
    scores[nonempty] = unique_scores[inverse]
    coords[nonempty] = _map_2d(Z, config.random_state)[inverse]
    coords = np.round(coords, 6)

    B = (X > 0).astype(np.float64).tocsr()
    terms = _ctfidf_terms(B, labels, k_final, names, config.n_terms)
    return describe(articles, labels, scores, coords, terms, k_final, config.method, k_scores, notes,
                    distinct=len(firsts), empty=n_empty)


def describe(articles: Sequence[Article], labels: np.ndarray, scores: np.ndarray, coords: np.ndarray,
             terms: list[list[str]], k: int, method: str, k_scores: dict[int, float], notes: list[str],
             *, distinct: int, empty: int) -> ClusterResult:
    """The result: each cluster's size, terms and representative (its best-scoring article; the
    first one on ties)."""
    clusters: list[ClusterInfo] = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        best = members[np.argmax(scores[members])]  # argmax: first appearance wins ties
        clusters.append(ClusterInfo(id=c, size=len(members), terms=terms[c],
                                    representative_id=articles[best].id,
                                    representative_headline=articles[best].headline))
    counts = {"articles": len(labels), "distinct": int(distinct), "empty": int(empty),
              "outliers": int((labels == -1).sum())}
    return ClusterResult(labels=labels, clusters=clusters, coords=coords, scores=scores,
                         k=k, method=method, k_scores=k_scores, notes=notes, counts=counts)


def renumber_by_size(labels: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, int]:
    """Clusters numbered by size (articles, duplicates counted) desc, then first appearance;
    -1 stays -1. Returns the new labels of the distinct rows and the number of clusters."""
    row_labels = labels[inverse]
    kept = row_labels >= 0
    found, first_pos, sizes = np.unique(row_labels[kept], return_index=True, return_counts=True)
    order = np.lexsort((first_pos, -sizes))
    remap = np.full(int(labels.max(initial=-1)) + 2, -1, dtype=np.int64)
    remap[found[order]] = np.arange(len(order))
    return remap[labels], len(order)  # -1 indexes the last slot, which stays -1


def _centroid_similarity(Z: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                         k: int) -> np.ndarray:
    """Cosine similarity of each row to its cluster's (weighted, normalised) centroid in the
    embedding, rounded to 4 places; outliers get their nearest centroid's."""
    if not k:
        return np.zeros(len(Z))
    own = labels >= 0
    sums = (_class_sums(Z, labels, weights, k) if own.all()
            else _class_sums(Z[own], labels[own], weights[own], k))
    return centroid_similarity(Z, labels, normalize(sums))


def centroid_similarity(Z: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """:func:`_centroid_similarity` given the normalised centroids (a block of rows at a time)."""
    scores = np.zeros(len(Z))
    if len(centroids):
        own = labels >= 0
        sims = np.asarray(Z @ centroids.T.astype(Z.dtype), dtype=np.float64)
        scores[own] = sims[np.flatnonzero(own), labels[own]]
        scores[~own] = sims[~own].max(axis=1)  # outliers: nearest topic
    return np.round(np.clip(scores, -1.0, 1.0), 4)


def _map_2d(Z, random_state: int, fit_rows: int = 20_000) -> np.ndarray:
    """2-D map of the embedded articles for the report: centred PCA of the embedding.

    The raw first two embedding dimensions are a poor map (the first LSA component is the corpus
    mean; for small corpora the embedding is TF-IDF itself, whose first two columns are just two
    words). PCA is fitted on a seeded sample of at most ``fit_rows`` rows, so it stays cheap at 1M.
    """
    n = Z.shape[0]
    out = np.zeros((n, 2))
    if n < 2:
        return out
    dense = Z.toarray() if sp.issparse(Z) and n * Z.shape[1] <= 5_000_000 else Z
    if sp.issparse(dense):  # very wide sparse input: fall back to a truncated SVD
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=min(2, Z.shape[1] - 1) or 1, random_state=random_state)
        proj = svd.fit_transform(dense)
        out[:, :proj.shape[1]] = proj
        return out
    pca = fit_map(dense[map_sample_rows(n, random_state, fit_rows)], random_state)
    return orient_map(pca.transform(dense))


def map_sample_rows(n: int, random_state: int, fit_rows: int = 20_000) -> Any:
    """The seeded rows the 2-D map's PCA is fitted on."""
    if n <= fit_rows:
        return slice(None)
    return np.sort(np.random.RandomState(random_state).choice(n, fit_rows, replace=False))


def fit_map(sample: np.ndarray, random_state: int) -> Any:
    """The 2-D map's PCA, fitted on a sample of embedded rows."""
    from sklearn.decomposition import PCA

    return PCA(n_components=min(2, sample.shape[1], len(sample)), random_state=random_state).fit(sample)


def orient_map(proj: np.ndarray) -> np.ndarray:
    """Map coordinates (n x 2) with each axis's sign fixed -- PCA's sign is arbitrary across
    library versions -- so the heavier side is positive."""
    out = np.zeros((len(proj), 2))
    signs = np.where(np.sum(proj ** 3, axis=0) < 0, -1.0, 1.0)
    out[:, :proj.shape[1]] = proj * signs
    return out


def fill_clusters(articles: Sequence[Article], result: ClusterResult) -> None:
    """The one writer of ``cluster``, ``cluster_terms`` and ``cluster_score``."""
    terms = [c.terms for c in result.clusters]
    for article, label, score in zip(articles, result.labels.tolist(), result.scores.tolist(), strict=True):
        article.cluster = int(label)
        article.cluster_terms = list(terms[label]) if label >= 0 else []
        article.cluster_score = float(score)


class ClusterStage:
    """The cluster stage as a component (:mod:`pipeline.stages`): topics of the vectorise
    stage's matrix. Corpus-wide: ``fit`` clusters every article at once; ``predict`` reads the
    fitted result; ``set_annotations`` writes the cluster fields."""

    name = "cluster"
    corpus_wide = True
    uses = ("vectorise",)

    def __init__(self, config: ClusterConfig | None = None, vectorise: Any = None) -> None:
        self.config = config or ClusterConfig()
        self.vectorise = vectorise
        self.result: ClusterResult | None = None
        self.notes: list[str] = []

    @classmethod
    def from_config(cls, section: ClusterConfig, vectorise: Any = None) -> ClusterStage:
        return cls(section, vectorise)

    def fit(self, articles: Sequence[Article]) -> ClusterStage:
        """Cluster the vectorise stage's matrix (rows aligned with ``articles``)."""
        products = self.vectorise.products()
        self.result = cluster_matrix(products["matrix"], articles, self.config, products["vectoriser"])
        self.notes = list(self.result.notes)
        return self

    def predict(self, articles: Sequence[Article]) -> ClusterResult:
        """The fitted result (corpus-wide: the batch is the corpus)."""
        if self.result is None or len(self.result.labels) != len(articles):
            raise ValueError("the cluster stage predicts the corpus it was fitted on")
        return self.result

    def set_annotations(self, articles: Sequence[Article], result: ClusterResult) -> dict[str, Any]:
        fill_clusters(articles, result)
        return {}

    def summary(self) -> dict[str, Any]:
        """Method, k, topics, outliers, and the fitted result's own counts."""
        result = self.result
        if result is None:
            return {}
        return {"method": result.method, "k": int(result.k), "clusters": len(result.clusters),
                "outliers": int((result.labels == -1).sum()),
                **{k: v for k, v in result.counts.items() if k not in ("articles", "outliers")}}

    def products(self) -> dict[str, Any]:
        result = self.result
        return {"clusters": list(result.clusters) if result else [], "coords": result.coords if result else None}
