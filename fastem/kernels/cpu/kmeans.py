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


#: ``second_moments`` modes of :func:`assign_pass`.
NO_SECOND, FULL_SECOND, DIAG_SECOND = 0, 1, 2


@njit(parallel=True, **JIT_OPTIONS)
def assign_pass(X, w, has_weights, centres, bounds, write_labels, labels, second_moments,
                counts, sums, second, inertia, far_index, far_dist):
    """Assign each row to its nearest centre and accumulate the hard-assignment
    statistics centred on the centres: one Lloyd step, or (with second moments)
    the M-step input of a k-means initialisation.

    Parameters
    ----------
    X : (n, d) float32/float64 C-contiguous
    w : (n,) float64, read only when ``has_weights``
    centres : (k, d) float64
    bounds : (n_parts + 1,) int64 row boundaries, multiples of B
    write_labels : bool
        Whether to write ``labels`` (n,) int32 (it may be empty otherwise).
    second_moments : int
        NO_SECOND; FULL_SECOND, the lower triangle into ``second`` of shape
        (n_parts, k, d * d); or DIAG_SECOND, ``second`` of shape (n_parts, k, d).
    counts : (n_parts, k) out, weighted counts (the mass)
    sums : (n_parts, k, d) out, weighted sums of ``x - centres[label]``
    inertia : (n_parts,) out, weighted sum of squared distances
    far_index, far_dist : (n_parts,) out, the positive-weight row of each part
        farthest from its centre (ties: the first), for relocating empty clusters.
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
        origin = np.zeros(d)  # k-means runs in float64: rows are not re-centred
        tot = 0.0
        fi = bounds[p]
        fd = -1.0
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, w, has_weights, origin, xt, wb)
            block_nearest(xt, centres, best, arg, dist)
            for i in range(stop - start):
                j = arg[i]
                if write_labels:
                    labels[start + i] = j
                wi = wb[i]
                if wi == 0.0:
                    continue
                counts[p, j] += wi
                tot += wi * best[i]
                if best[i] > fd:
                    fd = best[i]
                    fi = start + i
                for a in range(d):
                    diff[a] = xt[a, i] - centres[j, a]
                    sums[p, j, a] += wi * diff[a]
                if second_moments == FULL_SECOND:
                    for a in range(d):
                        for b in range(a + 1):
                            second[p, j, a * d + b] += wi * diff[a] * diff[b]
                elif second_moments == DIAG_SECOND:
                    for a in range(d):
                        second[p, j, a] += wi * diff[a] * diff[a]
        inertia[p] = tot
        far_index[p] = fi
        far_dist[p] = fd


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
