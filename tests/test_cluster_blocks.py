"""k-means and naive Bayes over row blocks: splitting the rows into blocks changes nothing, and the
naive Bayes steps are scikit-learn's MultinomialNB (uniform priors, sample weights)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pipeline.cluster_blocks import Blocks, block_nearest, lloyd, nb_refine


def _blobs(seed: int = 0, k: int = 4, per: int = 150) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=6.0, size=(k, 5))
    Z = np.vstack([c + rng.normal(size=(per, 5)) for c in centres])
    return Z, np.repeat(np.arange(k), per)


def _split(arr, cuts):
    return [arr[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def _counts(seed: int = 0, n: int = 400, vocab: int = 60, k: int = 3) -> tuple[sp.csr_matrix, np.ndarray]:
    """Documents drawn from k word distributions, so naive Bayes has structure to find."""
    rng = np.random.RandomState(seed)
    topics = rng.dirichlet(np.full(vocab, 0.1), size=k)
    truth = rng.randint(0, k, n)
    rows = [rng.multinomial(12, topics[t]) for t in truth]
    return sp.csr_matrix(np.array(rows, dtype=np.float64)), truth


def test_lloyd_finds_separated_blobs_and_stops_at_a_fixed_point() -> None:
    Z, truth = _blobs()
    start = Z[[0, 150, 300, 450]] + 0.5  # one rough start per blob
    labels, iterations = lloyd(Blocks(), [Z], [np.ones(len(Z))], start, max_iter=50, tol=0.0)
    assert np.array_equal(labels[0], truth)
    assert iterations < 50


def test_lloyd_and_nb_are_the_same_over_any_blocking() -> None:
    Z, _ = _blobs(seed=1)
    w = np.random.RandomState(2).randint(1, 4, len(Z)).astype(np.float64)
    start = Z[np.random.RandomState(3).choice(len(Z), 4, replace=False)]
    whole, _ = lloyd(Blocks(), [Z], [w], start, 50, 0.0)
    cuts = [0, 7, 200, 201, 600]
    parts, _ = lloyd(Blocks(), _split(Z, cuts), _split(w, cuts), start, 50, 0.0)
    assert np.array_equal(whole[0], np.concatenate(parts))

    X, _ = _counts()
    wx = np.ones(X.shape[0])
    labels = np.random.RandomState(4).randint(0, 3, X.shape[0])
    one, steps_one = nb_refine(Blocks(), [X], [wx], [labels], 3, 0.3, 20, 0.0)
    cuts = [0, 1, 150, 399, 400]
    many, steps_many = nb_refine(Blocks(), _split(X, cuts), _split(wx, cuts), _split(labels, cuts), 3, 0.3, 20, 0.0)
    assert np.array_equal(one[0], np.concatenate(many)) and steps_one == steps_many


def test_nb_refine_is_multinomial_nb_with_uniform_priors() -> None:
    from sklearn.naive_bayes import MultinomialNB

    X, truth = _counts(seed=5)
    w = np.random.RandomState(6).randint(1, 3, X.shape[0]).astype(np.float64)
    labels = np.random.RandomState(7).randint(0, 3, X.shape[0])
    expected = labels
    for _ in range(20):
        new = MultinomialNB(alpha=0.3, fit_prior=False).fit(X, expected, sample_weight=w).predict(X)
        if len(np.unique(new)) < 3 or np.array_equal(new, expected):
            break
        expected = new
    ours, _ = nb_refine(Blocks(), [X], [w], [labels], 3, 0.3, 20, 0.0)
    assert np.array_equal(ours[0], expected)


@pytest.mark.parametrize("tol", [0.0, 0.05])
def test_nb_refine_stops_early_within_tolerance(tol: float) -> None:
    X, _ = _counts(seed=8, n=600)
    labels = np.random.RandomState(9).randint(0, 3, X.shape[0])
    _, exact_steps = nb_refine(Blocks(), [X], [np.ones(X.shape[0])], [labels], 3, 0.3, 50, 0.0)
    _, steps = nb_refine(Blocks(), [X], [np.ones(X.shape[0])], [labels], 3, 0.3, 50, tol)
    assert steps <= exact_steps and (tol == 0.0) == (steps == exact_steps)


def test_nearest_centre_is_squared_euclidean() -> None:
    Z, _ = _blobs(seed=10)
    centres = Z[:4] * 1.3
    expected = ((Z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    assert np.array_equal(block_nearest(Z, centres), expected)
