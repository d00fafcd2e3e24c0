"""Initial parameters: 'kmeans', 'k-means++', 'random', 'random_from_data'.

Every method follows scikit-learn's meaning: it yields responsibilities (soft
or one-hot), from which one M-step gives the initial parameters; user-given
``weights_init``, ``means_init`` and ``precisions_init`` override the result.
Nothing here builds an n x k array: soft responsibilities are drawn and folded
into statistics chunk by chunk.

Every pass runs through the backend (``map_chunks``, ``take_rows``) and every
random draw happens here, on the client, in row order: the same rows and the
same stream whatever holds X, hence the same model on every backend.
"""

from __future__ import annotations

import numpy as np

from . import config
from ._model import (Params, Stats, m_step, precision_cholesky_from_covariances,
                     precision_cholesky_from_precisions, Layout, layout_of, total_weight)
from ._sampling import choose_rows
from .kmeans import kmeans_init_steps, kmeans_plusplus, nearest_stats_steps


def column_sum_chunk(X, w):
    """Weighted column sums of a chunk, as a 1-tuple of shape (d,)."""
    xc = np.asarray(X, dtype=np.float64)
    return (xc.sum(axis=0) if w is None else w @ xc,)


def random_stats_chunk(X, w, centre, layout, resp):
    """Statistics of a chunk's random responsibilities ``resp`` (m, k),
    normalised per row and weighted, centred on ``centre``."""
    k, d = resp.shape[1], X.shape[1]
    resp = resp / resp.sum(axis=1, keepdims=True)
    if w is not None:
        resp *= w[:, None]
    diff = np.asarray(X, dtype=np.float64) - centre
    if layout is Layout.FULL:
        second = np.empty((k, d, d))
        for j in range(k):
            second[j] = (resp[:, j, None] * diff).T @ diff
    else:
        second = resp.T @ (diff * diff)
    return resp.sum(axis=0), resp.T @ diff, second


def _sum_in_order(parts):
    """Element-wise sum of a list of equal-structure tuples, in list order."""
    total = None
    for _, _, p in parts:
        total = p if total is None else tuple(a + b for a, b in zip(total, p))
    return total


def random_stats(X, sample_weight, n_components, covariance_type, rng, *, backend):
    """Statistics of uniform random responsibilities, normalised per row.

    Draws the same random stream as scikit-learn's ``init_params='random'``:
    ``rng.uniform`` is drawn chunk by chunk in row order, which continues one
    stream, and each chunk is folded into statistics centred on the column mean
    where its rows live, so no n x k array exists.
    """
    n, d = X.shape
    k = n_components
    (column_sum,) = _sum_in_order(backend.map_chunks(
        X, column_sum_chunk, sample_weight, max_rows=config.CHUNK_ROWS))
    centre = column_sum / total_weight(n, sample_weight)
    parts = backend.map_chunks(
        X, random_stats_chunk, sample_weight,
        args=(centre, layout_of(covariance_type)),
        chunk_args=lambda a, b: (rng.uniform(size=(b - a, k)),), max_rows=config.CHUNK_ROWS)
    mass, first, second = _sum_in_order(parts)
    return Stats(mass, first, second, np.repeat(centre[None], k, axis=0), np.nan,
                 total_weight(n, sample_weight), rows=n)


def point_stats(X, sample_weight, indices, covariance_type, *, backend) -> Stats:
    """Statistics of one-hot responsibilities at rows ``indices`` (k,)."""
    k, d = len(indices), X.shape[1]
    layout = layout_of(covariance_type)
    centres = np.asarray(backend.take_rows(X, indices), dtype=np.float64)
    mass = np.ones(k) if sample_weight is None else sample_weight[indices].astype(np.float64)
    second = np.zeros((k, d, d) if layout is Layout.FULL else (k, d))
    return Stats(mass, np.zeros((k, d)), second, centres, np.nan,
                 total_weight(X.shape[0], sample_weight), rows=X.shape[0])


def initial_stats_steps(X, sample_weight, n_components, covariance_type, init_params, rng,
                        backend):
    """Statistics of the initial responsibilities of ``init_params``, as steps
    (:mod:`fastem._steps`; ``run_alone`` gives them directly): the k-means
    passes over all rows are requests that several initialisations can share;
    the other methods make their (few) passes directly.

    Parameters
    ----------
    X : a backend's data (what ``backend.prepare`` returned)
    sample_weight : (n,) float64 or None
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    rng : numpy RandomState
    backend : the backend holding X

    Returns
    -------
    Stats
        One M-step of any family turns them into initial parameters.
    """
    k, ctype = n_components, covariance_type
    if init_params == "random":
        return random_stats(X, sample_weight, k, ctype, rng, backend=backend)
    if init_params == "random_from_data":
        rows = choose_rows(X.shape[0], k, sample_weight, rng)
        return point_stats(X, sample_weight, rows, ctype, backend=backend)
    if init_params == "k-means++":
        rows = kmeans_plusplus(X, k, sample_weight, rng, backend=backend, sklearn_stream=True)
        return point_stats(X, sample_weight, rows, ctype, backend=backend)
    centres = yield from kmeans_init_steps(X, k, sample_weight, rng, backend=backend)
    return (yield from nearest_stats_steps(X, sample_weight, centres, ctype))


def initial_params_steps(X, sample_weight, est, rng, backend):
    """Initial parameters of a Gaussian mixture fitted by EM, as steps
    (:mod:`fastem._steps`; ``run_alone`` gives them directly).

    Parameters
    ----------
    X : a backend's data (what ``backend.prepare`` returned)
    sample_weight : (n,) float64 or None
    est : the estimator (its ``n_components``, ``covariance_type``, ``init_params``,
        ``reg_covar`` and ``*_init`` arrays)
    rng : numpy RandomState
    backend : the backend holding X

    Returns
    -------
    params : Params
    covariances : ndarray, shape by covariance type
    """
    k, ctype = est.n_components, est.covariance_type
    given = (est.weights_init is not None, est.means_init is not None, est.precisions_init is not None)
    weights = means = covariances = None
    if not all(given):
        stats = yield from initial_stats_steps(X, sample_weight, k, ctype, est.init_params, rng,
                                               backend)
        weights, means, covariances = m_step(stats, ctype, est.reg_covar)
    if given[0]:
        # Used as given (within the validated tolerance of summing to 1), as
        # scikit-learn does; every M-step renormalises.
        weights = np.array(est.weights_init, dtype=np.float64)
    if given[1]:
        means = np.array(est.means_init, dtype=np.float64)
    if given[2]:
        precisions = np.array(est.precisions_init, dtype=np.float64)
        if ctype in ("full", "tied"):  # checked symmetric to round-off; made exactly so
            precisions = 0.5 * (precisions + np.swapaxes(precisions, -1, -2))
        prec_chol = precision_cholesky_from_precisions(precisions, ctype)
        covariances = None
    else:
        prec_chol = precision_cholesky_from_covariances(covariances, ctype)
    return Params(weights, means, prec_chol, ctype), covariances
