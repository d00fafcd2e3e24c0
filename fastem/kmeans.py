"""k-means++ seeding and Lloyd iterations, the default GMM initialisation.

Cost model for large n: seeding and Lloyd run to convergence on a uniform
random sample of ``SAMPLE_ROWS`` rows, then at most ``FULL_PASSES`` Lloyd
passes over all rows refine the centres, so the initialisation costs a few
cheap O(n k d) passes instead of the O(n k d^2) of an EM iteration; a last
pass folds the nearest-centre assignment straight into the initial statistics,
so no per-row label array is kept. Reproducible with the RandomState and
independent of the thread count (fixed partition, fixed-order reductions).
"""

from __future__ import annotations

import numpy as np

from ._model import Stats, second_moment_is_full, total_weight
from .backends.cpu import kernel_input, part_bounds, reduce_partial_stats, weights_arg
from .init import sample_rows
from .kernels.cpu import launch
from .kernels.cpu import kmeans as kernels

#: Seeding + Lloyd runs on the sample; the run with the lowest inertia wins.
#: (scikit-learn's GMM runs one; a few cheap runs on the sample make the
#: default initialisation more reliable at negligible cost.)
N_RESTARTS = 3
#: Rows on which seeding and the first Lloyd iterations run (at least this many,
#: and 50 per component).
SAMPLE_ROWS = 20_000
#: Lloyd iterations on the sample, and then on all rows (scikit-learn: 300 on all).
SAMPLE_ITER = 300
FULL_PASSES = 10
#: Relative tolerance on the centre shift, scikit-learn's default ``tol``.
TOL = 1e-4


def kmeans_plusplus(X, n_clusters, sample_weight, rng) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; scikit-learn's variant).

    Parameters
    ----------
    X : (n, d) float32/float64 C-contiguous
    n_clusters : int
    sample_weight : (n,) float64 or None
    rng : numpy RandomState

    Returns
    -------
    indices : ndarray of shape (n_clusters,), int64
        Rows of X chosen as seeds.
    """
    X = kernel_input(X)
    n = X.shape[0]
    w, has_w = weights_arg(sample_weight)
    bounds = part_bounds(n, 1)
    n_trials = 2 + int(np.log(n_clusters))
    prob = None if sample_weight is None else sample_weight / sample_weight.sum()
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.choice(n, p=prob)
    closest = np.full(n, np.inf)
    pot = np.empty(bounds.shape[0] - 1)
    with launch():
        kernels.update_min_distance(X, w, has_w, np.asarray(X[indices[0]], dtype=np.float64),
                                    bounds, closest, pot)
    for c in range(1, n_clusters):
        weighted = closest * w if has_w else closest
        cumulative = np.cumsum(weighted)
        targets = rng.uniform(size=n_trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, targets), n - 1)
        best = None
        for cand in candidates:
            trial = closest.copy()
            with launch():
                kernels.update_min_distance(X, w, has_w, np.asarray(X[cand], dtype=np.float64),
                                            bounds, trial, pot)
            if best is None or pot.sum() < potential_best:
                best, potential_best, best_closest = cand, pot.sum(), trial
        indices[c] = best
        closest = best_closest
    return indices


def _assign(X, w, has_w, centres, bounds, labels=None, second_moments=kernels.NO_SECOND):
    """One :func:`kernels.assign_pass` over X with fresh per-part buffers.

    Returns
    -------
    counts : (n_parts, k), sums : (n_parts, k, d), second : (n_parts, k, width)
    inertia : float
    far_index, far_dist : (n_parts,)
    """
    k, d = centres.shape
    n_parts = bounds.shape[0] - 1
    width = {kernels.NO_SECOND: 0, kernels.FULL_SECOND: d * d, kernels.DIAG_SECOND: d}[second_moments]
    counts = np.zeros((n_parts, k))
    sums = np.zeros((n_parts, k, d))
    second = np.zeros((n_parts, k, width))
    inertia = np.zeros(n_parts)
    far_index = np.zeros(n_parts, dtype=np.int64)
    far_dist = np.zeros(n_parts)
    write_labels = labels is not None
    with launch():
        kernels.assign_pass(X, w, has_w, centres, bounds, write_labels,
                            labels if write_labels else np.empty(0, dtype=np.int32),
                            second_moments, counts, sums, second, inertia, far_index, far_dist)
    return counts, sums, second, inertia.sum(), far_index, far_dist


def lloyd(X, centres, sample_weight, max_iter, tol, return_labels=False, final_pass=True):
    """Lloyd iterations from ``centres`` until the squared shift is <= ``tol``.

    Empty clusters move to the points farthest from their centres.

    Parameters
    ----------
    final_pass : bool
        Assign the rows once more to the returned centres, for ``inertia`` and
        ``labels``. Callers that only need the centres skip that pass.

    Returns
    -------
    centres : (k, d) float64
    labels : (n,) int32 nearest centre of each row for the returned centres,
        or None unless ``return_labels`` (no O(n) array otherwise)
    n_iter : int
    inertia : float, weighted sum of squared distances to the returned centres
        (NaN without the final pass)
    """
    X = kernel_input(X)
    n, d = X.shape
    k = centres.shape[0]
    w, has_w = weights_arg(sample_weight)
    bounds = part_bounds(n, k * (d + 1))
    centres = np.array(centres, dtype=np.float64)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        counts, sums, _, _, far_index, far_dist = _assign(X, w, has_w, centres, bounds)
        count = counts.sum(axis=0)
        new = centres + sums.sum(axis=0) / np.maximum(count, np.finfo(np.float64).tiny)[:, None]
        empty = np.flatnonzero(count <= 0)
        if empty.size:
            order = np.argsort(-far_dist, kind="stable")
            far = far_index[order][far_dist[order] > 0]
            for e, idx in zip(empty, far):
                new[e] = X[idx]
        moved = float(((new - centres) ** 2).sum())
        centres = new
        if moved <= tol:
            break
    if not final_pass:
        return centres, None, n_iter, np.nan
    labels = np.empty(n, dtype=np.int32) if return_labels else None
    inertia = _assign(X, w, has_w, centres, bounds, labels)[3]
    return centres, labels, n_iter, inertia


def _tolerance(X, sample_weight):
    """scikit-learn's tolerance: ``TOL`` times the mean feature variance."""
    Xf = np.asarray(X, dtype=np.float64)
    if sample_weight is None:
        var = Xf.var(axis=0)
    else:
        mean = sample_weight @ Xf / sample_weight.sum()
        var = sample_weight @ (Xf - mean) ** 2 / sample_weight.sum()
    return TOL * float(var.mean())


def kmeans_init(X, n_clusters, sample_weight, rng):
    """k-means centres for initialising a mixture.

    Returns
    -------
    centres : (k, d) float64
    """
    n = X.shape[0]
    m = min(n, max(SAMPLE_ROWS, 50 * n_clusters))
    if m < n:
        rows = np.sort(sample_rows(n, m, rng))
        Xs = np.ascontiguousarray(X[rows])
        sws = None if sample_weight is None else sample_weight[rows]
        if sws is not None and not sws.sum() > 0:
            Xs, sws = X, sample_weight
    else:
        Xs, sws = X, sample_weight
    tol = _tolerance(Xs, sws)
    best = None
    for _ in range(N_RESTARTS):
        seeds = Xs[kmeans_plusplus(Xs, n_clusters, sws, rng)]
        run = lloyd(Xs, seeds, sws, SAMPLE_ITER, tol)
        if best is None or run[3] < best[3]:
            best = run
    centres = best[0]
    if Xs is not X:
        # nearest_stats assigns the rows once more; no final Lloyd pass needed.
        centres = lloyd(X, centres, sample_weight, FULL_PASSES, tol, final_pass=False)[0]
    return centres


def nearest_stats(X, sample_weight, centres, covariance_type) -> Stats:
    """Centred statistics of assigning every row to its nearest centre (the
    one-hot responsibilities of k-means), in one pass without labels."""
    X = kernel_input(X)
    n, d = X.shape
    full = second_moment_is_full(covariance_type)
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    k = centres.shape[0]
    w, has_w = weights_arg(sample_weight)
    bounds = part_bounds(n, k * ((d * d if full else d) + d + 1))
    mode = kernels.FULL_SECOND if full else kernels.DIAG_SECOND
    mass, first, second, _, _, _ = _assign(X, w, has_w, centres, bounds, second_moments=mode)
    mass, first, second = reduce_partial_stats(mass, first, second, d, full)
    return Stats(mass, first, second, centres, np.nan, total_weight(n, sample_weight))
