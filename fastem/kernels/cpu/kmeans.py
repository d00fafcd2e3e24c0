"""Numba CPU kernels for k-means initialisation.

Same row partition as the EM pass (parts of whole blocks, partial results per
part, reduced by the caller in a fixed order), so results do not depend on the
thread count. No n x k distance matrix is built.
"""

import numpy as np

from ._jit import driver, helper
from ._parts import next_part, run_parts
from .gaussian import _DIAG, _FULL, B, load_block


@helper
def block_nearest(xt, centres, best, arg, dist):
    """Nearest centre of each of the B points in ``xt`` (d, B).

    Writes the squared distance to ``best`` (B,) and the centre index to ``arg``
    (B,) int64 (ties: the lowest index); ``dist`` is (B,) scratch.
    """
    k, d = centres.shape
    for i in range(B):
        best[i] = np.inf
        arg[i] = 0
    for j in range(k):
        for i in range(B):
            dist[i] = 0.0
        for a in range(d):
            c = centres[j, a]
            for i in range(B):
                z = xt[a, i] - c
                dist[i] += z * z
        for i in range(B):
            if dist[i] < best[i]:
                best[i] = dist[i]
                arg[i] = j


def assign_pass(X, w, has_weights, centres, segments, second_moments, second_offsets, bounds,
                write_labels, labels, counts, sums, second, inertia, far_index, far_dist):
    """Assign each row to its nearest centre of every model and accumulate each
    model's hard-assignment statistics, centred on the centres: one Lloyd step,
    or (with second moments) the M-step input of a k-means initialisation.

    Several models share the pass (their centres concatenated, ``segments``
    their boundaries): a row is read and transposed once, then assigned within
    each model. A model's numbers are those of a pass of its own (the same
    distances, the same per-part order of the sums), so sharing changes no
    assignment.

    Parameters
    ----------
    X : (n, d) float32/float64 C-contiguous
    w : (n,) float64, read only when ``has_weights``
    centres : (K, d) float64, every model's centres one after the other
    segments : (n_models + 1,) int64 boundaries of the models in ``centres``
    second_moments : (n_models,) int64, per model a ``Layout``: NONE, no second
        moments; FULL, the lower triangles (k_g, d * d); DIAG, the diagonals (k_g, d)
    second_offsets : (n_models,) int64, where model g's second moments start
        in a row of ``second``
    bounds : (n_parts + 1,) int64 row boundaries, multiples of B
    write_labels : bool
        Whether to write ``labels`` (n,) int32, the nearest centre within the
        first model (it may be empty otherwise).
    counts : (n_parts, K) out, weighted counts (the mass)
    sums : (n_parts, K, d) out, weighted sums of ``x - centres[label]``
    second : (n_parts, total) out, the second moments of every model
    inertia : (n_parts, n_models) out, weighted sums of squared distances
    far_index, far_dist : (n_parts, n_models) out, the positive-weight row of
        each part farthest from its centre (ties: the first), for relocating
        empty clusters; ``far_dist`` is -1 when the part has no such row.
    """
    run_parts(_assign_parts, bounds.shape[0] - 1, X, w, has_weights, centres, segments,
              second_moments, second_offsets, bounds, write_labels, labels, counts, sums, second,
              inertia, far_index, far_dist)


@driver
def _assign_parts(X, w, has_weights, centres, segments, second_moments, second_offsets, bounds,
                  write_labels, labels, counts, sums, second, inertia, far_index, far_dist, counter):
    """The parts of :func:`assign_pass` that ``counter`` hands this thread."""
    d = centres.shape[1]
    n_models = segments.shape[0] - 1
    n_parts = bounds.shape[0] - 1
    while True:
        p = next_part(counter)
        if p >= n_parts:
            break
        # Scratch of the shapes and dtypes the EM pass's buffers have
        # (``np.empty`` compiles once per signature, ``np.zeros`` and ``np.full``
        # on top of it).
        f64 = centres.dtype
        xt = np.empty((d, B), f64)
        wb = np.empty(B, f64)
        best = np.empty(B, f64)
        arg = np.empty(B, np.int64)
        dist = np.empty(B, f64)
        diff = np.empty(d, f64)
        origin = np.empty(d, f64)  # zeros: k-means runs in float64, rows are not re-centred
        for a in range(d):
            origin[a] = 0.0
        tot = np.empty(n_models, f64)
        fi = np.empty(n_models, np.int64)
        fd = np.empty(n_models, f64)
        for g in range(n_models):
            tot[g] = 0.0
            fi[g] = bounds[p]
            fd[g] = -1.0
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, w, has_weights, origin, xt, wb)
            for g in range(n_models):
                first = segments[g]
                block_nearest(xt, centres[first:segments[g + 1]], best, arg, dist)
                mode = second_moments[g]
                for i in range(stop - start):
                    local = arg[i]
                    j = first + local
                    if write_labels and g == 0:
                        labels[start + i] = local
                    wi = wb[i]
                    if wi == 0.0:
                        continue
                    counts[p, j] += wi
                    tot[g] += wi * best[i]
                    if best[i] > fd[g]:
                        fd[g] = best[i]
                        fi[g] = start + i
                    for a in range(d):
                        diff[a] = xt[a, i] - centres[j, a]
                        sums[p, j, a] += wi * diff[a]
                    if mode == _FULL:
                        o = second_offsets[g] + local * d * d
                        for a in range(d):
                            for b in range(a + 1):
                                second[p, o + a * d + b] += wi * diff[a] * diff[b]
                    elif mode == _DIAG:
                        o = second_offsets[g] + local * d
                        for a in range(d):
                            second[p, o + a] += wi * diff[a] * diff[a]
        for g in range(n_models):
            inertia[p, g] = tot[g]
            far_index[p, g] = fi[g]
            far_dist[p, g] = fd[g]


def update_min_distance(X, w, has_weights, centre, bounds, closest, potential):
    """``closest = min(closest, ||x - centre||^2)`` row-wise; per-part potential.

    Parameters
    ----------
    X : (n, d), centre : (d,) float64, closest : (n,) float64 in/out
    potential : (n_parts,) out, ``sum_i w_i closest_i`` per part
    """
    run_parts(_min_distance_parts, bounds.shape[0] - 1, X, w, has_weights, centre, bounds, closest,
              potential)


@driver
def _min_distance_parts(X, w, has_weights, centre, bounds, closest, potential, counter):
    """The parts of :func:`update_min_distance` that ``counter`` hands this thread."""
    d = X.shape[1]
    n_parts = bounds.shape[0] - 1
    while True:
        p = next_part(counter)
        if p >= n_parts:
            break
        tot = 0.0
        for i in range(bounds[p], bounds[p + 1]):
            s = 0.0
            for a in range(d):
                z = X[i, a] - centre[a]
                s += z * z
            if s < closest[i]:
                closest[i] = s
            tot += closest[i] * (w[i] if has_weights else 1.0)
        potential[p] = tot
