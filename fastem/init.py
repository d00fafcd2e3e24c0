"""Initial parameters: 'kmeans', 'k-means++', 'random', 'random_from_data'.

Every method follows scikit-learn's meaning: it yields responsibilities (soft
or one-hot), from which one M-step gives the initial parameters; user-given
``weights_init``, ``means_init`` and ``precisions_init`` override the result.
Nothing here builds an n x k array: soft responsibilities are drawn and folded
into statistics chunk by chunk.
"""

from __future__ import annotations

import numpy as np

from . import config
from ._model import (Params, Stats, m_step, precision_cholesky_from_covariances,
                     precision_cholesky_from_precisions, second_moment_is_full, total_weight)


def check_random_state(seed) -> np.random.RandomState:
    """None, an int or a RandomState -> RandomState (scikit-learn's rule)."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    return np.random.RandomState(seed)


def _weighted_column_mean(X, sample_weight):
    total = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], config.CHUNK_ROWS):
        xc = np.asarray(X[start:start + config.CHUNK_ROWS], dtype=np.float64)
        if sample_weight is None:
            total += xc.sum(axis=0)
        else:
            total += sample_weight[start:start + config.CHUNK_ROWS] @ xc
    return total / (X.shape[0] if sample_weight is None else sample_weight.sum())


def random_stats(X, sample_weight, n_components, covariance_type, rng):
    """Statistics of uniform random responsibilities, normalised per row.

    Draws the same random stream as scikit-learn's ``init_params='random'``
    (chunked draws of ``rng.uniform`` continue one stream), folding each chunk
    of responsibilities into statistics centred on the column mean, so no
    n x k array exists.
    """
    n, d = X.shape
    k = n_components
    full = second_moment_is_full(covariance_type)
    centre = _weighted_column_mean(X, sample_weight)
    mass = np.zeros(k)
    first = np.zeros((k, d))
    second = np.zeros((k, d, d) if full else (k, d))
    for start in range(0, n, config.CHUNK_ROWS):
        stop = min(n, start + config.CHUNK_ROWS)
        resp = rng.uniform(size=(stop - start, k))
        resp /= resp.sum(axis=1, keepdims=True)
        if sample_weight is not None:
            resp *= sample_weight[start:stop, None]
        diff = np.asarray(X[start:stop], dtype=np.float64) - centre
        mass += resp.sum(axis=0)
        first += resp.T @ diff
        if full:
            for j in range(k):
                second[j] += (resp[:, j, None] * diff).T @ diff
        else:
            second += resp.T @ (diff * diff)
    return Stats(mass, first, second, np.repeat(centre[None], k, axis=0), np.nan,
                 total_weight(n, sample_weight))


def point_stats(X, sample_weight, indices, covariance_type):
    """Statistics of one-hot responsibilities at rows ``indices`` (k,)."""
    k, d = len(indices), X.shape[1]
    full = second_moment_is_full(covariance_type)
    centres = np.asarray(X[indices], dtype=np.float64)
    mass = np.ones(k) if sample_weight is None else sample_weight[indices].astype(np.float64)
    second = np.zeros((k, d, d) if full else (k, d))
    return Stats(mass, np.zeros((k, d)), second, centres, np.nan,
                 total_weight(X.shape[0], sample_weight))


#: Up to this many rows, row sampling uses ``RandomState.choice`` (the same
#: stream as scikit-learn); it permutes all n rows, so beyond this it is
#: replaced by rejection sampling with O(size) memory.
PERMUTATION_MAX_ROWS = 10_000_000


def sample_rows(n_samples, size, rng):
    """``size`` distinct row indices drawn uniformly, in draw order.

    Matches ``rng.choice(n, size, replace=False)`` (scikit-learn's call) for
    ``n <= PERMUTATION_MAX_ROWS``; above that, draws with rejection of repeats so
    that memory stays O(size) instead of an O(n) permutation.
    """
    if n_samples <= PERMUTATION_MAX_ROWS or size > n_samples // 2:
        return rng.choice(n_samples, size=size, replace=False)
    chosen = []
    seen = set()
    while len(chosen) < size:
        for v in rng.randint(0, n_samples, size=size - len(chosen)):
            if v not in seen:
                seen.add(v)
                chosen.append(v)
    return np.asarray(chosen[:size], dtype=np.int64)


def choose_rows(n_samples, size, sample_weight, rng):
    """``size`` distinct rows, uniformly (as scikit-learn) or by sample weight."""
    if sample_weight is None:
        return sample_rows(n_samples, size, rng)
    positive = int(np.count_nonzero(sample_weight))
    if positive < size:
        raise ValueError(
            f"Only {positive} samples have positive sample_weight, fewer than n_components={size}."
        )
    return rng.choice(n_samples, size=size, replace=False, p=sample_weight / sample_weight.sum())


def initial_params(X, sample_weight, est, rng) -> tuple[Params, np.ndarray]:
    """Initial parameters for a fit of estimator ``est`` on X.

    Returns
    -------
    params : Params
    covariances : ndarray, shape by covariance type
    """
    from .kmeans import kmeans_init, kmeans_plusplus, nearest_stats

    k, ctype = est.n_components, est.covariance_type
    given = (est.weights_init is not None, est.means_init is not None, est.precisions_init is not None)
    weights = means = covariances = None
    if not all(given):
        method = est.init_params
        if method == "random":
            stats = random_stats(X, sample_weight, k, ctype, rng)
        elif method == "random_from_data":
            stats = point_stats(X, sample_weight, choose_rows(X.shape[0], k, sample_weight, rng), ctype)
        elif method == "k-means++":
            stats = point_stats(X, sample_weight, kmeans_plusplus(X, k, sample_weight, rng), ctype)
        else:
            centres = kmeans_init(X, k, sample_weight, rng)
            stats = nearest_stats(X, sample_weight, centres, ctype)
        weights, means, covariances = m_step(stats, ctype, est.reg_covar)
    if given[0]:
        # Used as given (within the validated tolerance of summing to 1), as
        # scikit-learn does; every M-step renormalises.
        weights = np.array(est.weights_init, dtype=np.float64)
    if given[1]:
        means = np.array(est.means_init, dtype=np.float64)
    if given[2]:
        prec_chol = precision_cholesky_from_precisions(est.precisions_init, ctype)
        covariances = None
    else:
        prec_chol = precision_cholesky_from_covariances(covariances, ctype)
    return Params(weights, means, prec_chol, ctype), covariances
