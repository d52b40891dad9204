"""Cluster stage: group articles into topics and describe each topic in words.

Pipeline: merge identical TF-IDF rows -> LSA (TruncatedSVD + L2 normalisation) -> one of

- ``kmeans``: k-means (MiniBatchKMeans above ``minibatch_threshold`` distinct articles), then
  (``refine = "nb"``) hard-EM refinement with multinomial naive Bayes in the full TF-IDF space,
  which LSA's 100 dimensions blur (on AG News it lifts NMI from about 0.52 to 0.58);
- ``agglomerative``: average-linkage cosine clustering; clusters smaller than
  ``min_cluster_size`` become outliers (-1);
- ``hdbscan``: density clustering that leaves outliers as -1 by itself (``n_clusters`` unused).

``n_clusters = "auto"`` searches k in ``[min_clusters, min(max_clusters, sqrt(distinct articles))]``
-- above 1,000 sampled articles a coarse grid, then every k next to the best grid point, each
fitted with 2 restarts; below, every k with ``n_init`` restarts -- and
keeps the best silhouette (cosine), measured on a seeded sample of at most ``silhouette_sample``
articles so it stays fast at 100k+; the final fit uses ``n_init`` restarts. Topic terms come from class-based
TF-IDF (terms frequent in the cluster *and* rare in the others), the representative headline is
the article closest to the centroid, and every article gets its cosine similarity to its
cluster's centroid. Articles whose vector is empty (only stop words or numbers) are outliers with
score 0.0. Clusters are numbered by size (desc), then first appearance, so output is stable.
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


def _feature_names(source: Any, n_features: int) -> list[str]:
    if source is None:
        return [f"f{i}" for i in range(n_features)]
    if hasattr(source, "get_feature_names_out"):
        source = source.get_feature_names_out()
    names = [str(t) for t in source]
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} columns")
    return names


def _unique_rows(X: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each group of identical rows, and each row's group (identical articles merge)."""
    seen: dict[bytes, int] = {}
    firsts: list[int] = []
    inverse = np.empty(len(rows), dtype=np.int64)
    indptr, indices, data = X.indptr, X.indices, X.data
    for pos, r in enumerate(rows):
        a, b = indptr[r], indptr[r + 1]
        key = indices[a:b].tobytes() + b"|" + data[a:b].tobytes()
        group = seen.get(key)
        if group is None:
            group = seen[key] = len(firsts)
            firsts.append(int(r))
        inverse[pos] = group
    return np.asarray(firsts, dtype=np.int64), inverse


# Above this many distinct articles the LSA basis is fitted on a seeded sample of this size and
# every row is projected onto it: randomized SVD of the whole matrix was 8 s of the 12 s cluster
# stage at 100k and grows linearly, while topic directions are already stable at 20k articles.
SVD_FIT_MAX = 20000


def _embed(Xu: sp.csr_matrix, config: ClusterConfig) -> np.ndarray:
    """LSA: TruncatedSVD then L2 rows (cosine geometry). With no more distinct articles than
    LSA dimensions, a projection would only lose information: use the TF-IDF rows as they are."""
    m, n_features = Xu.shape
    n_components = min(config.lsa_components, n_features - 1)
    if m > config.lsa_components and n_components >= 2:
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=n_components, random_state=config.random_state)
        if m > SVD_FIT_MAX:  # the basis from a seeded sample; projecting every row is one product
            rows = np.sort(np.random.RandomState(config.random_state).choice(m, SVD_FIT_MAX, replace=False))
            Z = svd.fit(Xu[rows]).transform(Xu)
        else:
            Z = svd.fit_transform(Xu)
    else:
        Z = Xu.toarray()
    return normalize(Z.astype(np.float64))


def _kmeans(Z: np.ndarray, k: int, weights: np.ndarray, config: ClusterConfig) -> np.ndarray:
    if len(Z) > config.minibatch_threshold:
        from sklearn.cluster import MiniBatchKMeans

        model = MiniBatchKMeans(n_clusters=k, random_state=config.random_state, n_init=3,
                                batch_size=4096)
    else:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, random_state=config.random_state, n_init=config.n_init)
    return model.fit_predict(Z, sample_weight=weights)


def _fit_labels(Z: np.ndarray, k: int, weights: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Labels of the distinct articles for the configured method (-1 = outlier)."""
    if config.method == "kmeans" or k <= 1 and config.method != "hdbscan":
        return _kmeans(Z, k, weights, config) if k > 1 else np.zeros(len(Z), dtype=np.int64)
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


def _refine_nb(Xu: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray,
               config: ClusterConfig) -> tuple[np.ndarray, int]:
    """Hard-EM refinement in the full TF-IDF space (Nigam et al. style): fit a multinomial naive
    Bayes on the current clusters, relabel, repeat until stable. Uniform priors stop a large
    cluster from swallowing the others; a step that would empty a cluster is not taken."""
    from sklearn.naive_bayes import MultinomialNB

    k = int(labels.max()) + 1
    if k < 2 or Xu.shape[1] == 0:
        return labels, 0
    steps = 0
    for steps in range(1, config.refine_max_iter + 1):
        model = MultinomialNB(alpha=config.refine_alpha, fit_prior=False)
        new = model.fit(Xu, labels, sample_weight=weights).predict(Xu)
        if len(np.unique(new)) < k or np.array_equal(new, labels):
            break
        labels = new.astype(np.int64)
    return labels, steps


def _choose_k(Z: np.ndarray, weights: np.ndarray, config: ClusterConfig,
              notes: list[str]) -> tuple[int, dict[int, float]]:
    """k from config, clamped to the distinct articles; or the best silhouette in the bounds."""
    m = len(Z)
    if config.method == "hdbscan":
        return 0, {}
    if config.n_clusters != "auto":
        k = int(config.n_clusters)
        if k > m:
            notes.append(f"n_clusters={k} but only {m} distinct non-empty articles: using k={m}")
            k = m
        return k, {}
    lo = max(2, config.min_clusters)
    hi = min(config.max_clusters, m - 1, max(lo, int(math.sqrt(m))))
    if hi < lo:
        notes.append(f"auto k: {m} distinct non-empty articles are too few to compare k; using k=1")
        return 1, {}
    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(config.random_state)
    rows = np.arange(m)
    if m > config.silhouette_sample:
        rows = np.sort(rng.choice(m, config.silhouette_sample, replace=False))
    Zs, ws = Z[rows], weights[rows]
    small = len(rows) <= _EXHAUSTIVE_MAX  # cheap: every k, full restarts (noise matters more)
    search = config if config.method != "kmeans" or small else _search_config(config)
    scores: dict[int, float] = {}

    def score(k: int) -> None:
        if k in scores or not lo <= k <= hi:
            return
        # one thread: on a sample this small OpenMP threads only add spin-waiting (5x slower
        # when the cores are shared); labels do not depend on the thread count
        with threadpool_limits(limits=1):
            labels = _fit_labels(Zs, k, ws, search)
        kept = labels >= 0
        scores[k] = (round(cosine_silhouette(Zs[kept], labels[kept]), 6)
                     if len(np.unique(labels[kept])) >= 2 else float("nan"))

    # coarse grid, then every k around the best of it: about half the fits of trying them all
    step = 1 if small else max(1, math.ceil((hi - lo) / _K_GRID_POINTS))
    for k in [*range(lo, hi + 1, step), hi]:
        score(k)
    best = _best_k(scores)
    if best is not None:
        for k in range(best - step + 1, best + step):
            score(k)
    scores = {k: v for k, v in sorted(scores.items()) if not math.isnan(v)}
    best = _best_k(scores)
    if best is None:
        notes.append("auto k: no k gave two or more clusters; using k=1")
        return 1, {}
    notes.append(f"auto k: best cosine silhouette {scores[best]:.4f} at k={best} "
                 f"(tried {len(scores)} k in {lo}..{hi} on {len(rows)} articles)")
    return best, scores


# auto k above _EXHAUSTIVE_MAX sampled articles: grid points before refining around the best, and
# k-means restarts per tried k (the final fit uses ``n_init``). On AG News (2,500 and 7,600) and
# the 10k/100k scale corpora this picks the same k as trying every k with 10 restarts.
_K_GRID_POINTS = 7
_SEARCH_N_INIT = 2
_EXHAUSTIVE_MAX = 1000  # sampled articles up to which every k is tried with ``n_init`` restarts


def _search_config(config: ClusterConfig) -> ClusterConfig:
    from dataclasses import replace

    return replace(config, n_init=min(config.n_init, _SEARCH_N_INIT))


def _best_k(scores: dict[int, float]) -> int | None:
    valid = [k for k, v in scores.items() if not math.isnan(v)]
    return max(valid, key=lambda k: (scores[k], -k)) if valid else None


def _ctfidf_terms(B: sp.csr_matrix, labels: np.ndarray, k: int, names: list[str],
                  n_terms: int) -> list[list[str]]:
    """Class-based TF-IDF (as in BERTopic): per cluster, term share in the cluster times
    log(1 + average cluster size in terms / the term's frequency over all clusters)."""
    if B.shape[1] == 0 or k == 0:
        return [[] for _ in range(k)]
    kept = labels >= 0
    member = sp.csr_matrix((np.ones(int(kept.sum())), (labels[kept], np.flatnonzero(kept))),
                           shape=(k, B.shape[0]))
    tf = np.asarray((member @ B).todense(), dtype=np.float64)  # k x V documents containing term
    totals = tf.sum(axis=1, keepdims=True)
    freq = tf.sum(axis=0)
    average = totals.mean()
    idf = np.log1p(average / np.maximum(freq, 1.0))
    weight = np.divide(tf, np.maximum(totals, 1.0)) * idf
    sizes = np.bincount(labels[kept], minlength=k)
    order_names = np.argsort(np.asarray(names, dtype=object), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order_names] = np.arange(len(names))
    out: list[list[str]] = []
    for c in range(k):
        min_docs = 2 if sizes[c] >= 4 else 1  # a term of one article does not name a topic
        candidates = np.flatnonzero((tf[c] >= min_docs) & (weight[c] > 0))
        if len(candidates) == 0:
            candidates = np.flatnonzero(weight[c] > 0)
        order = sorted(candidates, key=lambda t: (-round(weight[c, t], 12), rank[t]))
        out.append([readable(names[t]) for t in order[:n_terms]])
    return out


def _empty_result(n: int, method: str, notes: list[str]) -> ClusterResult:
    return ClusterResult(labels=np.full(n, -1, dtype=np.int64), clusters=[],
                         coords=np.zeros((n, 2)), scores=np.zeros(n), k=0, method=method,
                         notes=notes, counts={"articles": n, "distinct": 0, "empty": n})


def cluster_articles(X: Any, articles: Sequence[Article], config: ClusterConfig | None = None,
                     feature_names: Any = None) -> ClusterResult:
    """Cluster the TF-IDF rows ``X`` (one per article) and fill ``cluster``, ``cluster_terms``
    and ``cluster_score`` on each article.

    Parameters
    ----------
    X: sparse TF-IDF matrix, rows aligned with ``articles``.
    articles: the records; only ids and headlines are read, cluster fields are written.
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
    names = _feature_names(feature_names, X.shape[1])
    nonempty = np.flatnonzero(np.diff(X.indptr) > 0)
    n_empty = n - len(nonempty)
    if n_empty:
        notes.append(f"{n_empty} article(s) have no content words (empty vector): cluster -1")
    if len(nonempty) == 0:
        if n:
            notes.append("no article has content words: nothing to cluster")
        result = _empty_result(n, config.method, notes)
        _fill(articles, result.labels, result.scores, [])
        return result

    firsts, inverse = _unique_rows(X, nonempty)
    weights = np.bincount(inverse).astype(np.float64)
    if len(firsts) < len(nonempty):
        notes.append(f"{len(nonempty) - len(firsts)} identical article(s) merged before clustering")
    Z = _embed(X[firsts], config)
    k, k_scores = _choose_k(Z, weights, config, notes)
    if config.method == "hdbscan" and config.n_clusters != "auto":
        notes.append("hdbscan finds its own number of clusters; n_clusters is ignored")
    unique_labels = _fit_labels(Z, max(k, 1), weights, config)
    if config.refine == "nb" and config.method == "kmeans":
        unique_labels, steps = _refine_nb(X[firsts], unique_labels, weights, config)
        notes.append(f"naive Bayes refinement: {steps} step(s)")

    # renumber: size (articles, duplicates counted) desc, then first appearance
    row_labels = unique_labels[inverse]
    found = [c for c in np.unique(row_labels) if c >= 0]
    first_pos = {c: int(np.flatnonzero(row_labels == c)[0]) for c in found}
    sizes = {c: int((row_labels == c).sum()) for c in found}
    order = sorted(found, key=lambda c: (-sizes[c], first_pos[c]))
    remap = np.full(max(found, default=-1) + 2, -1, dtype=np.int64)
    for new, old in enumerate(order):
        remap[old] = new
    unique_labels = remap[unique_labels]  # -1 maps to the last slot, which stays -1
    k_final = len(order)
    n_outliers = int((unique_labels[inverse] < 0).sum())
    if n_outliers:
        notes.append(f"{n_outliers} article(s) left as outliers (-1) by {config.method}")

    # centroids and similarities in the LSA space
    centroids = np.zeros((k_final, Z.shape[1]))
    for c in range(k_final):
        members = unique_labels == c
        centroids[c] = np.average(Z[members], axis=0, weights=weights[members])
    centroids = normalize(centroids) if k_final else centroids
    sims = Z @ centroids.T if k_final else np.zeros((len(Z), 0))
    unique_scores = np.zeros(len(Z))
    if k_final:
        own = unique_labels >= 0
        unique_scores[own] = sims[np.flatnonzero(own), unique_labels[own]]
        unique_scores[~own] = sims[~own].max(axis=1)  # outliers: nearest topic
    unique_scores = np.round(np.clip(unique_scores, -1.0, 1.0), 4)

    labels = np.full(n, -1, dtype=np.int64)
    scores = np.zeros(n)
    coords = np.zeros((n, 2))
    labels[nonempty] = unique_labels[inverse]
    scores[nonempty] = unique_scores[inverse]
    coords[nonempty] = _map_2d(Z, config.random_state)[inverse]
    coords = np.round(coords, 6)

    B = (X > 0).astype(np.float64).tocsr()
    terms = _ctfidf_terms(B, labels, k_final, names, config.n_terms)
    clusters: list[ClusterInfo] = []
    for c in range(k_final):
        members = np.flatnonzero(labels == c)
        best = members[np.argmax(scores[members])]  # argmax: first appearance wins ties
        clusters.append(ClusterInfo(id=c, size=len(members), terms=terms[c],
                                    representative_id=articles[best].id,
                                    representative_headline=articles[best].headline))
    _fill(articles, labels, scores, terms)
    counts = {"articles": n, "distinct": int(len(firsts)), "empty": int(n_empty),
              "outliers": int((labels == -1).sum())}
    return ClusterResult(labels=labels, clusters=clusters, coords=coords, scores=scores,
                         k=k_final, method=config.method, k_scores=k_scores, notes=notes,
                         counts=counts)


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
    from sklearn.decomposition import PCA

    dims = min(2, dense.shape[1], n)
    rng = np.random.RandomState(random_state)
    sample = np.sort(rng.choice(n, fit_rows, replace=False)) if n > fit_rows else slice(None)
    pca = PCA(n_components=dims, random_state=random_state).fit(dense[sample])
    proj = pca.transform(dense)
    # fix each axis's sign (PCA's sign is arbitrary across library versions): heavier side positive
    signs = np.where(np.sum(proj ** 3, axis=0) < 0, -1.0, 1.0)
    out[:, :dims] = proj * signs
    return out


def _fill(articles: Sequence[Article], labels: np.ndarray, scores: np.ndarray,
          terms: list[list[str]]) -> None:
    for article, label, score in zip(articles, labels, scores):
        article.cluster = int(label)
        article.cluster_terms = list(terms[label]) if label >= 0 else []
        article.cluster_score = float(score)
