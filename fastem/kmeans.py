"""k-means++ seeding and Lloyd iterations, the default GMM initialisation.

Cost model for large n: seeding and Lloyd run to convergence on a uniform
random sample of ``config.KMEANS_SAMPLE_ROWS`` rows, then at most
``config.KMEANS_FULL_PASSES`` Lloyd
passes over all rows refine the centres, so the initialisation costs a few
cheap O(n k d) passes instead of the O(n k d^2) of an EM iteration; a last
pass folds the nearest-centre assignment straight into the initial statistics,
so no per-row label array is kept. Reproducible with the RandomState and
independent of the thread count (fixed partition, fixed-order reductions).

Every pass over all rows is a backend pass (``backend.map_chunks``: the same
CPU kernel on each row chunk where the chunk lives, results summed in row
order) and every row pick is ``backend.take_rows``, with all random draws on
the client. So a NumPy array, a memory map, a Dask array and a GPU array give
the same initial model, to round-off. Functions take X as a host array, or as a
backend's data with ``backend=`` given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import config
from ._model import Stats, full_from_lower, Layout, layout_of, total_weight
from ._sampling import sample_rows
from ._steps import run_alone
from .backends._common import part_bounds, weights_arg
from .backends.cpu import CPUBackend
from .kernels.cpu import launch
from .kernels.cpu import kmeans as kernels



# --------------------------------------------------------------------------
# Per-chunk work (runs where the rows live; module-level so Dask can ship it)
# --------------------------------------------------------------------------

@dataclass
class Assignment:
    """Hard-assignment sums of one pass (or one chunk of it), centred on the centres.

    Attributes
    ----------
    counts : (k,) weighted counts; sums : (k, d) sums of ``x - c``
    second : (k, d*d) lower triangle, (k, d) diagonal, or (k, 0)
    inertia : float, weighted sum of squared distances
    far_index, far_dist : the positive-weight row farthest from its centre
        (ties: the lowest row), for relocating an empty cluster; ``far_dist``
        is -1 when no row has positive weight
    labels : (m,) int32 nearest centre per row, or None
    """

    counts: np.ndarray
    sums: np.ndarray
    second: np.ndarray
    inertia: float
    far_index: int
    far_dist: float
    labels: object = None


def _second_width(mode, d):
    return {Layout.NONE: 0, Layout.FULL: d * d, Layout.DIAG: d}[mode]


def _sum_parts(a):
    """``a.sum(axis=0)`` row after row, whatever the shape: NumPy sums a single
    column pairwise and several column-wise in sequence, and one model's sums
    must not depend on how many models shared its pass."""
    total = a[0].copy()
    for part in a[1:]:
        total += part
    return total


def assign_chunk(X, w, requests, want_labels):
    """One :func:`kernels.assign_pass` over a chunk for every request
    ``(centres, second_moments)``, parts summed in order; a list of
    :class:`Assignment` (``far_index`` relative to the chunk)."""
    n, d = X.shape
    ks = [c.shape[0] for c, _ in requests]
    modes = np.array([m for _, m in requests], dtype=np.int64)
    widths = [k * _second_width(m, d) for k, (_, m) in zip(ks, requests)]
    segments = np.cumsum([0] + ks).astype(np.int64)
    offsets = np.cumsum([0] + widths[:-1]).astype(np.int64)
    centres = np.ascontiguousarray(np.concatenate([c for c, _ in requests]), dtype=np.float64)
    g = len(requests)
    bounds = part_bounds(n, int(segments[-1]) * (d + 1) + sum(widths) + 3 * g)
    n_parts = bounds.shape[0] - 1
    wa, has_w = weights_arg(w)
    counts = np.zeros((n_parts, segments[-1]))
    sums = np.zeros((n_parts, segments[-1], d))
    second = np.zeros((n_parts, sum(widths)))
    inertia = np.zeros((n_parts, g))
    far_index = np.zeros((n_parts, g), dtype=np.int64)
    far_dist = np.zeros((n_parts, g))
    labels = np.empty(n, dtype=np.int32) if want_labels else np.empty(0, dtype=np.int32)
    with launch():
        kernels.assign_pass(X, wa, has_w, centres, segments, modes, offsets, bounds, want_labels,
                            labels, counts, sums, second, inertia, far_index, far_dist)
    counts, sums, second = _sum_parts(counts), _sum_parts(sums), _sum_parts(second)
    out = []
    for m in range(g):
        a, b = segments[m], segments[m + 1]
        p = int(np.argmax(far_dist[:, m]))  # the first part holding the farthest row
        out.append(Assignment(counts[a:b], sums[a:b],
                              second[offsets[m]:offsets[m] + widths[m]].reshape(
                                  b - a, _second_width(modes[m], d)),
                              float(_sum_parts(inertia[:, m])), int(far_index[p, m]),
                              float(far_dist[p, m]), labels if want_labels and m == 0 else None))
    return out


def min_distance_chunk(X, w, centre, closest):
    """``min(closest, ||x - centre||^2)`` of a chunk (a new array) and its
    weighted sum, the k-means++ potential."""
    closest = np.array(closest, dtype=np.float64)
    wa, has_w = weights_arg(w)
    bounds = part_bounds(X.shape[0], 1)
    pot = np.empty(bounds.shape[0] - 1)
    with launch():
        kernels.update_min_distance(X, wa, has_w, centre, bounds, closest, pot)
    return closest, float(pot.sum())


# --------------------------------------------------------------------------
# Passes over all rows
# --------------------------------------------------------------------------

@dataclass
class AssignPass:
    """A nearest-centre pass over all rows that an initialisation asks for
    (see :mod:`fastem._steps`): the centres of one model, and the second
    moments its statistics need. Answered with an :class:`Assignment`."""

    centres: np.ndarray
    second_moments: Layout = Layout.NONE

    def run(self, backend, X, sample_weight):
        return assign_many(backend, X, [self], sample_weight)[0]

    @staticmethod
    def run_many(backend, X, sample_weight, requests):
        return assign_many(backend, X, requests, sample_weight)


def assign_many(backend, X, requests, sample_weight, want_labels=False) -> list:
    """:class:`AssignPass` requests answered in one pass over X (each chunk read
    once, where it lives), each result combined over the chunks in row order.

    Returns
    -------
    list of Assignment, one per request
    """
    args = [(np.ascontiguousarray(r.centres, dtype=np.float64), r.second_moments)
            for r in requests]
    chunks = backend.map_chunks(X, assign_chunk, sample_weight, args=(args, want_labels))
    totals = []
    for m in range(len(requests)):
        total = None
        for start, _, parts in chunks:
            a = parts[m]
            a.far_index += start
            if total is None:
                total = a
                continue
            total.counts = total.counts + a.counts
            total.sums = total.sums + a.sums
            total.second = total.second + a.second
            total.inertia += a.inertia
            if a.far_dist > total.far_dist:  # strictly: ties keep the earlier row
                total.far_index, total.far_dist = a.far_index, a.far_dist
        totals.append(total)
    if want_labels:
        totals[0].labels = np.concatenate([parts[0].labels for _, _, parts in chunks])
    return totals


def _assign(backend, X, centres, sample_weight, second_moments=Layout.NONE,
            want_labels=False) -> Assignment:
    """One model's :func:`assign_many`."""
    return assign_many(backend, X, [AssignPass(centres, second_moments)], sample_weight,
                       want_labels)[0]


def _n_rows(X) -> int:
    return int(X.shape[0])


def kmeans_plusplus(X, n_clusters, sample_weight, rng, *, backend=None,
                    sklearn_stream=False) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; scikit-learn's variant).

    Parameters
    ----------
    X : (n, d) host array, or a backend's data when ``backend`` is given
    n_clusters : int
    sample_weight : (n,) float64 or None
    rng : numpy RandomState
    backend : a backend, default the CPU one
    sklearn_stream : bool
        Draw the first seed as ``rng.choice(n, p=weights / sum)`` with uniform
        weights when there are none, as ``sklearn.cluster.kmeans_plusplus``
        does, so ``init_params='k-means++'`` picks scikit-learn's seeds from the
        same ``random_state`` (the later draws already follow its stream; only
        distances tied to round-off could choose differently). The default
        k-means initialisation keeps ``rng.choice(n)`` for its sample seeding.

    Returns
    -------
    indices : ndarray of shape (n_clusters,), int64
        Rows of X chosen as seeds.

    Notes
    -----
    The n distances to the nearest seed live on the client (8 bytes a row);
    each candidate is one backend pass.
    """
    backend = backend or CPUBackend()
    n = _n_rows(X)
    n_trials = 2 + int(np.log(n_clusters))
    if sample_weight is not None:
        prob = sample_weight / sample_weight.sum()
    else:
        prob = np.full(n, 1.0 / n) if sklearn_stream else None

    def with_centre(centre, closest):
        parts = backend.map_chunks(X, min_distance_chunk, sample_weight, args=(centre,),
                                   chunk_args=lambda a, b: (closest[a:b],))
        new = parts[0][2][0] if len(parts) == 1 else np.concatenate([c for _, _, (c, _) in parts])
        potential = 0.0
        for _, _, (_, pot) in parts:
            potential += pot
        return new, potential

    def rows(indices):
        return np.asarray(backend.take_rows(X, indices), dtype=np.float64)

    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = rng.choice(n, p=prob)
    closest, _ = with_centre(rows([indices[0]])[0], np.full(n, np.inf))
    for c in range(1, n_clusters):
        weighted = closest * sample_weight if sample_weight is not None else closest
        cumulative = np.cumsum(weighted)
        targets = rng.uniform(size=n_trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, targets), n - 1)
        best, best_potential, best_closest = None, np.inf, None
        for cand, centre in zip(candidates, rows(candidates)):
            trial, potential = with_centre(centre, closest)
            if best is None or potential < best_potential:
                best, best_potential, best_closest = cand, potential, trial
        indices[c] = best
        closest = best_closest
    return indices


def lloyd(X, centres, sample_weight, max_iter, tol, return_labels=False, final_pass=True, *,
          backend=None):
    """Lloyd iterations from ``centres`` until the squared shift is <= ``tol``.

    An empty cluster moves to the row farthest from its centre (one per
    iteration: the farthest row of the whole pass, ties to the lowest row, so
    the choice does not depend on how the rows are chunked); another empty
    cluster keeps its centre until a later iteration.

    Parameters
    ----------
    X : (n, d) host array, or a backend's data when ``backend`` is given
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
    backend = backend or CPUBackend()
    centres, n_iter = run_alone(lloyd_steps(X, centres, max_iter, tol, backend=backend),
                                backend, X, sample_weight)
    if not final_pass:
        return centres, None, n_iter, np.nan
    a = _assign(backend, X, centres, sample_weight, want_labels=return_labels)
    return centres, a.labels, n_iter, a.inertia


def lloyd_steps(X, centres, max_iter, tol, *, backend):
    """:func:`lloyd` without the final pass, as steps (:mod:`fastem._steps`):
    yields an :class:`AssignPass` per iteration; returns ``(centres, n_iter)``."""
    centres = np.array(centres, dtype=np.float64)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        a = yield AssignPass(centres)
        new = centres + a.sums / np.maximum(a.counts, np.finfo(np.float64).tiny)[:, None]
        empty = np.flatnonzero(a.counts <= 0)
        if empty.size and a.far_dist > 0:
            new[empty[0]] = backend.take_rows(X, [a.far_index])[0]
        moved = float(((new - centres) ** 2).sum())
        centres = new
        if moved <= tol:
            break
    return centres, n_iter


def _tolerance(X, sample_weight):
    """scikit-learn's tolerance: ``config.KMEANS_TOL`` times the mean feature variance."""
    Xf = np.asarray(X, dtype=np.float64)
    if sample_weight is None:
        var = Xf.var(axis=0)
    else:
        mean = sample_weight @ Xf / sample_weight.sum()
        var = sample_weight @ (Xf - mean) ** 2 / sample_weight.sum()
    return config.KMEANS_TOL * float(var.mean())


def kmeans_init(X, n_clusters, sample_weight, rng, *, backend=None):
    """k-means centres for initialising a mixture.

    Parameters
    ----------
    X : (n, d) host array, or a backend's data when ``backend`` is given

    Returns
    -------
    centres : (k, d) float64
    """
    backend = backend or CPUBackend()
    return run_alone(kmeans_init_steps(X, n_clusters, sample_weight, rng, backend=backend),
                     backend, X, sample_weight)


#: Relative difference of two restarts' inertia below which they tie.
_INERTIA_TIE = 1e-9


def kmeans_init_steps(X, n_clusters, sample_weight, rng, *, backend):
    """:func:`kmeans_init` as steps (:mod:`fastem._steps`). Every draw from
    ``rng`` comes before the first request (the passes over all rows draw
    nothing), so initialisations sharing one stream can share passes."""
    n = _n_rows(X)
    m = min(n, max(config.KMEANS_SAMPLE_ROWS, 50 * n_clusters))
    sampled = m < n
    if sampled:
        rows = np.sort(sample_rows(n, m, rng))
        Xs = backend.take_rows(X, rows)
        sws = None if sample_weight is None else sample_weight[rows]
        if sws is not None and not sws.sum() > 0:
            sampled = False  # every sampled row has weight 0: seed on all rows
    if not sampled:
        Xs, sws = backend.take_rows(X), sample_weight
    tol = _tolerance(Xs, sws)
    best = None
    for _ in range(config.KMEANS_RESTARTS):
        seeds = Xs[kmeans_plusplus(Xs, n_clusters, sws, rng)]
        run = lloyd(Xs, seeds, sws, config.KMEANS_SAMPLE_ITER, tol)
        # Restarts reaching the same partition tie up to round-off, which a
        # rescaling of the weights can tip either way (the same model in
        # another order): a tie within _INERTIA_TIE goes to the first.
        if best is None or run[3] < best[3] * (1.0 - _INERTIA_TIE):
            best = run
    centres = best[0]
    if sampled:
        # nearest_stats assigns the rows once more; no final Lloyd pass needed.
        centres, _ = yield from lloyd_steps(X, centres, config.KMEANS_FULL_PASSES, tol,
                                            backend=backend)
    return centres


def nearest_stats(X, sample_weight, centres, covariance_type, *, backend=None) -> Stats:
    """Centred statistics of assigning every row to its nearest centre (the
    one-hot responsibilities of k-means), in one pass without labels."""
    backend = backend or CPUBackend()
    return run_alone(nearest_stats_steps(X, sample_weight, centres, covariance_type),
                     backend, X, sample_weight)


def nearest_stats_steps(X, sample_weight, centres, covariance_type):
    """:func:`nearest_stats` as steps (:mod:`fastem._steps`): one request."""
    layout = layout_of(covariance_type)
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    d = centres.shape[1]
    a = yield AssignPass(centres, layout)
    second = full_from_lower(a.second, d) if layout is Layout.FULL else a.second
    return Stats(a.counts, a.sums, second, centres, np.nan,
                 total_weight(_n_rows(X), sample_weight), rows=_n_rows(X))
