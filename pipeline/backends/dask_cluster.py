"""Dask-native clustering: the local cluster stage's k-means path without gathering the matrix.

Why: the TF-IDF matrix of a corpus that outgrows one machine does not fit on the client. Here
the matrix stays on the workers, block by block, and only small things travel: 16-byte row
digests (to merge identical articles), seeded samples (the LSA basis, the auto-k search and the
map are fitted on at most 20,000 rows, as locally), per-cluster sums (k x 100 for k-means,
k x vocabulary for naive Bayes and topic terms) and the per-article outputs.

Every step is the local one (:func:`pipeline.cluster.cluster_articles`, ``method = "kmeans"``)
on the same rows with the same seeds: identical rows merged (weights = copies), LSA fitted on
the same seeded sample and applied per block, k searched on the same sample, full-batch Lloyd
k-means and the naive Bayes refinement run by :mod:`pipeline.cluster_blocks` over the workers'
blocks instead of one block. The only difference is the order in which block sums are added, so
labels equal the local ones except, rarely, an article on a floating-point tie (ARI >= 0.9 is the
tested contract; at 10k generated articles the labels were identical).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..cluster_blocks import Blocks
from ..config import ClusterConfig
from ..records import Article


class DaskBlocks(Blocks):
    """:class:`~pipeline.cluster_blocks.Blocks` on a Dask cluster: per-block work runs where the
    block lives, results stay there until gathered, constants are broadcast once."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def keep(self, fn: Any, blocks: Sequence[Sequence[Any]], *consts: Any) -> list[Any]:
        return [self.client.submit(fn, *args, *consts, pure=False) for args in zip(*blocks, strict=True)]

    def run(self, fn: Any, blocks: Sequence[Sequence[Any]], *consts: Any) -> list[Any]:
        return self.client.gather(self.keep(fn, blocks, *consts))

    def share(self, value: Any) -> Any:
        return self.client.scatter(value, broadcast=True)


# ---- on the workers ----------------------------------------------------------------------------


def block_digests(X: sp.csr_matrix) -> tuple[int, np.ndarray, np.ndarray]:
    """Columns, the non-empty rows and a 16-byte digest of each (identical rows, identical digest;
    the local stage compares the same bytes: column indices and values)."""
    import hashlib

    X = sp.csr_matrix(X, dtype=np.float64)
    X.sort_indices()
    rows = np.flatnonzero(np.diff(X.indptr) > 0)
    indptr, indices, data = X.indptr, X.indices, X.data
    digests = b"".join(hashlib.blake2b(indices[indptr[r]:indptr[r + 1]].tobytes() + b"|"
                                       + data[indptr[r]:indptr[r + 1]].tobytes(), digest_size=16).digest()
                       for r in rows)
    return int(X.shape[1]), rows, np.frombuffer(digests, dtype="V16")


def block_rows(X: Any, rows: np.ndarray) -> Any:
    """Some rows of a block (sparse or dense), sorted CSR as the local stage uses."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sort_indices()
    return X[rows]


def block_float32(X: sp.csr_matrix) -> sp.csr_matrix:
    return X.astype(np.float32)


def block_embed(Xu: sp.csr_matrix, basis: np.ndarray) -> np.ndarray:
    """LSA rows as the local ``_embed``: float32 product with the basis, then L2-normalised."""
    from sklearn.preprocessing import normalize

    return normalize(np.asarray(Xu.astype(np.float32) @ basis, dtype=np.float32))


def block_similarity(Z: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    from ..cluster import centroid_similarity

    return centroid_similarity(Z, labels, centroids)


def block_map(Z: np.ndarray, pca: Any) -> np.ndarray:
    return pca.transform(Z)


def block_doc_counts(X: sp.csr_matrix, labels: np.ndarray, k: int) -> np.ndarray:
    """k x vocabulary counts of each cluster's articles containing each term (topic terms)."""
    from ..cluster_blocks import block_term_sums

    B = (X > 0).astype(np.float64).tocsr()
    return block_term_sums(B, np.ones(B.shape[0]), labels, k)


def block_labels(labels: np.ndarray, remap: np.ndarray) -> np.ndarray:
    return remap[labels]


# ---- on the client -------------------------------------------------------------------------------


class _Layout:
    """Where the distinct articles (in order of first appearance) live: block and row in block."""

    def __init__(self, firsts_per_block: list[np.ndarray]) -> None:
        self.sizes = [len(f) for f in firsts_per_block]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def split(self, distinct_rows: np.ndarray) -> list[np.ndarray]:
        """Global distinct-row positions (sorted) -> positions within each block."""
        rows = np.asarray(distinct_rows, dtype=np.int64)
        return [rows[(rows >= a) & (rows < b)] - a for a, b in zip(self.starts[:-1], self.starts[1:])]

    def blocks_of(self, values: np.ndarray) -> list[np.ndarray]:
        return [values[a:b] for a, b in zip(self.starts[:-1], self.starts[1:])]


def _take(blocks: DaskBlocks, parts: list[Any], layout: _Layout, rows: np.ndarray) -> Any:
    """Rows (global distinct positions, sorted) gathered from the blocks, stacked in order."""
    picked = [(p, r) for p, r in zip(parts, layout.split(rows)) if len(r)]
    got = blocks.run(block_rows, [[p for p, _ in picked], [r for _, r in picked]])
    return sp.vstack(got, format="csr") if sp.issparse(got[0]) else np.vstack(got)


def cluster_blocks_native(client: Any, parts: list[Any], articles: Sequence[Article],
                          config: ClusterConfig, feature_names: Any, min_distinct: int) -> Any:
    """Cluster the TF-IDF blocks ``parts`` (futures; their rows, in order, are ``articles``).

    Returns a :class:`pipeline.cluster.ClusterResult`, or ``None`` when there are no more than
    ``min_distinct`` distinct non-empty articles: then the caller gathers the matrix and runs the
    local stage (below the sampling thresholds every row is "the sample", so that is cheap).
    """
    from .. import cluster as local
    from ..cluster_blocks import lloyd, nb_refine

    blocks = DaskBlocks(client)
    described = blocks.run(block_digests, [parts])
    n_features = described[0][0]
    sizes = client.gather([client.submit(_n_rows, p, pure=False) for p in parts])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    nonempty = np.concatenate([rows + off for (_, rows, _), off in zip(described, offsets[:-1])])
    digests = np.concatenate([d for _, _, d in described]) if len(nonempty) else np.zeros(0, "V16")
    n = int(offsets[-1])
    if len(nonempty) == 0:
        return None
    _, first_pos, inverse = np.unique(digests, return_index=True, return_inverse=True)
    rank = np.empty(len(first_pos), dtype=np.int64)
    rank[np.argsort(first_pos, kind="stable")] = np.arange(len(first_pos))
    inverse = rank[inverse.ravel()]
    firsts = nonempty[np.sort(first_pos)]
    m = len(firsts)
    if m <= min_distinct:
        return None
    weights = np.bincount(inverse).astype(np.float64)
    notes = [f"dask-native k-means over {len(parts)} blocks (the matrix stays on the workers)"]
    if n - len(nonempty):
        notes.append(f"{n - len(nonempty)} article(s) have no content words (empty vector): cluster -1")
    if m < len(nonempty):
        notes.append(f"{len(nonempty) - m} identical article(s) merged before clustering")

    # the distinct rows, block by block; weights beside them
    firsts_local = [firsts[(firsts >= a) & (firsts < b)] - a for a, b in zip(offsets[:-1], offsets[1:])]
    layout = _Layout(firsts_local)
    Xu = blocks.keep(block_rows, [parts, firsts_local])
    W = [client.scatter(w) for w in layout.blocks_of(weights)]

    # LSA basis on the local stage's seeded sample, applied per block
    from sklearn.decomposition import TruncatedSVD

    n_components = min(config.lsa_components, n_features - 1)
    rows = np.sort(np.random.RandomState(config.random_state).choice(m, min(m, local.SVD_FIT_MAX),
                                                                     replace=False))
    svd = TruncatedSVD(n_components=n_components, n_iter=local.SVD_N_ITER, random_state=config.random_state)
    svd.fit(_take(blocks, Xu, layout, rows).astype(np.float32))
    Z = blocks.keep(block_embed, [Xu], blocks.share(np.ascontiguousarray(svd.components_.T)))

    # k on the same sample, then k-means and naive Bayes over the blocks
    def take(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _take(blocks, Z, layout, sample), weights[sample]

    k, k_scores, centres = local.search_k(m, take, config, notes)
    if k > 1:
        if centres is None:
            centres = local.sample_centres_of(*take(local.k_sample_rows(m, config)), k, config)
        labels, _ = lloyd(blocks, Z, W, centres.astype(np.float32), local.LLOYD_MAX_ITER, local.LLOYD_TOL)
    else:
        labels = [client.scatter(np.zeros(s, dtype=np.int64)) for s in layout.sizes]
    unique = np.concatenate(client.gather(labels))
    if config.refine == "nb":
        steps = 0
        if int(unique.max()) + 1 >= 2 and n_features:
            labels, steps = nb_refine(blocks, blocks.keep(block_float32, [Xu]), W, labels,
                                      int(unique.max()) + 1, config.refine_alpha,
                                      config.refine_max_iter, local.REFINE_TOL)
            unique = np.concatenate(client.gather(labels))
        notes.append(f"naive Bayes refinement: {steps} step(s)")

    unique, k_final = local.renumber_by_size(unique, inverse)
    labels = [client.scatter(b) for b in layout.blocks_of(unique)]
    from ..cluster_blocks import block_centre_sums

    sums = sum(s for s, _ in blocks.run(block_centre_sums, [Z, W, labels], k_final)) if k_final else None
    from sklearn.preprocessing import normalize

    unique_scores = (np.concatenate(blocks.run(block_similarity, [Z, labels], blocks.share(normalize(sums))))
                     if k_final else np.zeros(m))
    pca = local.fit_map(_take(blocks, Z, layout, np.arange(m)[local.map_sample_rows(m, config.random_state)]),
                        config.random_state) if m >= 2 else None
    unique_coords = (local.orient_map(np.vstack(blocks.run(block_map, [Z], blocks.share(pca)))) if pca is not None
                     else np.zeros((m, 2)))

    row_labels = np.full(n, -1, dtype=np.int64)
    scores = np.zeros(n)
    coords = np.zeros((n, 2))
    row_labels[nonempty] = unique[inverse]
    scores[nonempty] = unique_scores[inverse]
    coords[nonempty] = unique_coords[inverse]
    coords = np.round(coords, 6)
    names = local.feature_names_of(feature_names, n_features)
    terms: list[list[str]] = []
    if k_final:
        per_block = [client.scatter(row_labels[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
        doc_counts = sum(blocks.run(block_doc_counts, [parts, per_block], k_final))
        kept = row_labels >= 0
        terms = local.terms_from_doc_counts(doc_counts, np.bincount(row_labels[kept], minlength=k_final),
                                            names, config.n_terms)
    return local.describe(articles, row_labels, scores, coords, terms, k_final, config.method, k_scores,
                          notes, distinct=m, empty=n - len(nonempty))


def _n_rows(X: Any) -> int:
    return int(X.shape[0])
