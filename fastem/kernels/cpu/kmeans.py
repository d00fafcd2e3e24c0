"""Numba CPU kernels for k-means initialisation.

Same row partition as the EM pass (parts of whole blocks, partial results per
part, reduced by the caller in a fixed order), so results do not depend on the
thread count. No n x k distance matrix is built.
"""

import numpy as np
from numba import njit, prange

from ...config import HELPER_JIT_OPTIONS, JIT_OPTIONS
from .gaussian import B, load_block


@njit(**HELPER_JIT_OPTIONS)
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


@njit(parallel=True, **JIT_OPTIONS)
def lloyd_pass(X, w, has_weights, centres, bounds, write_labels, labels, sums, counts,
               inertia, far_index, far_dist):
    """Assign each row to its nearest centre and accumulate the new centroids.

    Parameters
    ----------
    X : (n, d) float32/float64 C-contiguous
    w : (n,) float64, read only when ``has_weights``
    centres : (k, d) float64
    bounds : (n_parts + 1,) int64 row boundaries, multiples of B
    write_labels : bool
        Whether to write ``labels`` (n,) int32 (it may be empty otherwise).
    sums : (n_parts, k, d) out, weighted sum of ``x - centres[label]``
    counts : (n_parts, k) out, weighted counts
    inertia : (n_parts,) out, weighted sum of squared distances
    far_index, far_dist : (n_parts,) out, the row of each part farthest from
        its centre (ties: the first), for relocating empty clusters.
    """
    k, d = centres.shape
    n_parts = bounds.shape[0] - 1
    for p in prange(n_parts):
        xt = np.empty((d, B))
        wb = np.empty(B)
        best = np.empty(B)
        arg = np.empty(B, dtype=np.int64)
        dist = np.empty(B)
        tot = 0.0
        fi = bounds[p]
        fd = -1.0
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, w, has_weights, xt, wb)
            block_nearest(xt, centres, best, arg, dist)
            for i in range(stop - start):
                j = arg[i]
                if write_labels:
                    labels[start + i] = j
                counts[p, j] += wb[i]
                tot += wb[i] * best[i]
                if wb[i] > 0.0 and best[i] > fd:
                    fd = best[i]
                    fi = start + i
                for a in range(d):
                    sums[p, j, a] += wb[i] * (xt[a, i] - centres[j, a])
        inertia[p] = tot
        far_index[p] = fi
        far_dist[p] = fd


@njit(parallel=True, **JIT_OPTIONS)
def nearest_stats(X, w, has_weights, full, centres, bounds, mass, first, second):
    """Centred statistics of the hard assignment of every row to its nearest
    centre (the M-step input of a k-means initialisation), without labels.

    ``second`` is (n_parts, k, d * d) (lower triangle) if ``full`` else
    (n_parts, k, d); other arguments as in :func:`lloyd_pass`.
    """
    k, d = centres.shape
    n_parts = bounds.shape[0] - 1
    for p in prange(n_parts):
        xt = np.empty((d, B))
        wb = np.empty(B)
        best = np.empty(B)
        arg = np.empty(B, dtype=np.int64)
        dist = np.empty(B)
        diff = np.empty(d)
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, w, has_weights, xt, wb)
            block_nearest(xt, centres, best, arg, dist)
            for i in range(stop - start):
                wi = wb[i]
                if wi == 0.0:
                    continue
                j = arg[i]
                mass[p, j] += wi
                for a in range(d):
                    diff[a] = xt[a, i] - centres[j, a]
                    first[p, j, a] += wi * diff[a]
                if full:
                    for a in range(d):
                        for b in range(a + 1):
                            second[p, j, a * d + b] += wi * diff[a] * diff[b]
                else:
                    for a in range(d):
                        second[p, j, a] += wi * diff[a] * diff[a]


@njit(parallel=True, **JIT_OPTIONS)
def update_min_distance(X, w, has_weights, centre, bounds, closest, potential):
    """``closest = min(closest, ||x - centre||^2)`` row-wise; per-part potential.

    Parameters
    ----------
    X : (n, d), centre : (d,) float64, closest : (n,) float64 in/out
    potential : (n_parts,) out, ``sum_i w_i closest_i`` per part
    """
    d = X.shape[1]
    n_parts = bounds.shape[0] - 1
    for p in prange(n_parts):
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
