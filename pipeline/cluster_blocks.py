"""k-means (Lloyd) and naive Bayes hard-EM written as statistics of row blocks that combine.

Why: every step needs only per-block sums (k x dims for k-means, k x vocabulary for naive
Bayes), so the two iterative steps are written once against a tiny :class:`Blocks` interface
(the stage protocol's ``partial``/``combine`` at the scale of one iteration). The cluster stage
runs them on one block, the whole matrix, in its own process; an executor that keeps blocks
elsewhere could run the per-block functions there, with only the order of the floating-point
block sums differing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp


class Blocks:
    """Runs a function on every block, in this process.

    ``keep`` returns handles to per-block results that stay where they were computed (here the
    values themselves); ``run`` returns the results; ``share`` makes a constant available to
    every block (here the value itself).
    """

    def keep(self, fn: Callable[..., Any], blocks: Sequence[Sequence[Any]], *consts: Any) -> list[Any]:
        return [fn(*args, *consts) for args in zip(*blocks, strict=True)]

    def run(self, fn: Callable[..., Any], blocks: Sequence[Sequence[Any]], *consts: Any) -> list[Any]:
        return self.keep(fn, blocks, *consts)

    def share(self, value: Any) -> Any:
        return value


# ---- per block ------------------------------------------------------------------------------------


def _one_hot(labels: np.ndarray, k: int, weights: np.ndarray) -> sp.csr_matrix:
    """k x n matrix with each labelled row's weight in its cluster's row (-1 rows left out)."""
    kept = np.flatnonzero(labels >= 0)
    return sp.csr_matrix((weights[kept], (labels[kept], kept)), shape=(k, len(labels)))


def block_nearest(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) of each row."""
    if len(Z) == 0:
        return np.zeros(0, dtype=np.int64)
    distances = (centres * centres).sum(axis=1)[None, :] - 2.0 * (Z @ centres.T)
    return np.argmin(distances, axis=1).astype(np.int64)


def block_centre_sums(Z: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted per-cluster sums of the rows and weights per cluster."""
    member = _one_hot(labels, k, weights)
    return np.asarray(member @ Z), np.asarray(member.sum(axis=1)).ravel()


def block_changed(old: np.ndarray, new: np.ndarray) -> int:
    return int(np.count_nonzero(old != new))


def block_label_counts(labels: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(labels[labels >= 0], minlength=k)


def block_term_sums(X: sp.csr_matrix, weights: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """k x vocabulary weighted term sums per cluster (naive Bayes' feature counts), float64."""
    sums = _one_hot(labels, k, weights) @ X
    return np.asarray(sums.toarray() if sp.issparse(sums) else sums, dtype=np.float64)


def block_moved_sums(X: sp.csr_matrix, weights: np.ndarray, old: np.ndarray,
                     new: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Term sums of the rows that changed cluster, under their ``new`` and their ``old`` cluster."""
    moved = np.flatnonzero(old != new)
    X_moved, w_moved = X[moved], weights[moved]
    return (block_term_sums(X_moved, w_moved, new[moved], k),
            block_term_sums(X_moved, w_moved, old[moved], k))


def block_nb_labels(X: sp.csr_matrix, labels: np.ndarray, log_prob: np.ndarray) -> np.ndarray:
    """Most likely cluster of each labelled row under uniform priors (scored in ``X``'s dtype,
    float32 in the cluster stage); -1 rows stay -1."""
    out = labels.copy()
    kept = np.flatnonzero(labels >= 0)
    if len(kept) == len(labels):
        out = np.asarray(X @ log_prob.T.astype(X.dtype)).argmax(axis=1).astype(np.int64)
    elif len(kept):
        out[kept] = np.asarray(X[kept] @ log_prob.T.astype(X.dtype)).argmax(axis=1)
    return out


# ---- the iterations ---------------------------------------------------------------------------------


def lloyd(blocks: Blocks, Z: Sequence[Any], weights: Sequence[Any], centres: np.ndarray,
          max_iter: int, tol: float) -> tuple[list[Any], int]:
    """Weighted Lloyd iterations (full-batch k-means) from ``centres``.

    Stops when at most ``tol`` of the rows change cluster in a step, or after ``max_iter``;
    a cluster that loses every row keeps its previous centre. Returns label handles per block
    and the iterations run.
    """
    k = len(centres)
    n_rows = sum(blocks.run(len, [Z]))
    labels = blocks.keep(block_nearest, [Z], blocks.share(centres))
    iterations = 0
    for iterations in range(1, max_iter + 1):
        parts = blocks.run(block_centre_sums, [Z, weights, labels], k)
        sums = sum(p[0] for p in parts)
        mass = sum(p[1] for p in parts)
        centres = centres.copy()
        filled = mass > 0
        centres[filled] = (sums[filled] / mass[filled, None]).astype(centres.dtype)
        new = blocks.keep(block_nearest, [Z], blocks.share(centres))
        changed = sum(blocks.run(block_changed, [labels, new]))
        labels = new
        if changed <= tol * n_rows:
            break
    return labels, iterations


def nb_refine(blocks: Blocks, X: Sequence[Any], weights: Sequence[Any], labels: list[Any], k: int,
              alpha: float, max_iter: int, tol: float) -> tuple[list[Any], int]:
    """Hard-EM with a multinomial naive Bayes: ``MultinomialNB(alpha, fit_prior=False)`` fitted
    with sample weights, then predicting, written out over blocks.

    Each step relabels every row under the current model; a step that would empty a cluster is
    not taken, and it stops when nothing moves, when at most ``tol`` of the rows moved (that
    step kept), or after ``max_iter``. The class-term sums are updated from the rows that moved
    rather than refitted. Returns label handles per block and the steps run.
    """
    n_rows = sum(blocks.run(len, [labels]))
    sums = sum(blocks.run(block_term_sums, [X, weights, labels], k))
    steps = 0
    for steps in range(1, max_iter + 1):
        smoothed = sums + alpha
        log_prob = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
        new = blocks.keep(block_nb_labels, [X, labels], blocks.share(log_prob))
        if np.min(sum(blocks.run(block_label_counts, [new], k))) == 0:
            break
        moved = sum(blocks.run(block_changed, [labels, new]))
        if moved == 0:
            break
        moved_sums = blocks.run(block_moved_sums, [X, weights, labels, new], k)
        sums = sums + sum(m[0] for m in moved_sums)  # added, then removed: the same rounding
        sums -= sum(m[1] for m in moved_sums)        # as one process updating in place
        labels = new
        if moved <= tol * n_rows:
            break
    return labels, steps
