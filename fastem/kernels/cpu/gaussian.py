"""Numba CPU kernels: fused E-step + sufficient statistics, and log-densities.

Layout: rows are processed in blocks of ``BLOCK_ROWS`` points. Each block is
transposed into a float64 buffer ``xt`` of shape ``(d, BLOCK_ROWS)`` so that
every inner loop runs over points with a compile-time trip count and
vectorises. The last, partial block is padded by repeating its first row with
weight 0, so padded points are finite and contribute nothing.

Two families share one structure:

* ``*_full`` for 'full' and 'tied' (the upper Cholesky factor of each
  precision, flattened to ``(k, d * d)``; tied repeats the same factor),
* ``*_diag`` for 'diag' and 'spherical' (a ``(k, d)`` array of ``1/sigma``).

The parallel drivers split rows into parts given by ``bounds`` (fixed by the
data shape, not the thread count); each part writes its own partial
statistics, which the caller sums in a fixed order. Hence bit-identical
results for any number of threads.
"""

import numpy as np
from numba import njit, prange

from ...config import BLOCK_ROWS, JIT_OPTIONS

B = BLOCK_ROWS


@njit(**JIT_OPTIONS)
def load_block(X, start, stop, w, has_weights, xt, wb):
    """Transpose rows ``start:stop`` of X into ``xt`` (d, B) as float64.

    Rows past ``stop`` repeat row ``start`` and get weight 0 in ``wb`` (B,).
    """
    m = stop - start
    d = X.shape[1]
    for i in range(B):
        row = start + i if i < m else start
        for a in range(d):
            xt[a, i] = X[row, a]
        if i >= m:
            wb[i] = 0.0
        elif has_weights:
            wb[i] = w[row]
        else:
            wb[i] = 1.0


@njit(**JIT_OPTIONS)
def block_log_prob_full(xt, means, factor, log_const, diff, t, q, logp):
    """Weighted log-densities ``log w_j + log N(x_i; mu_j, Sigma_j)`` of a block.

    Parameters
    ----------
    xt : (d, B) float64 block of points
    means : (k, d)
    factor : (k, d * d) upper-triangular precision Cholesky factors, row-major
    log_const : (k,) ``log w_j - d/2 log 2pi + log det U_j``
    diff, t, q : scratch of shapes (d, B), (B,), (B,)
    logp : (k, B) output
    """
    k, d = means.shape
    for j in range(k):
        for a in range(d):
            mu = means[j, a]
            for i in range(B):
                diff[a, i] = xt[a, i] - mu  # subtract before multiplying
        for i in range(B):
            q[i] = 0.0
        for a in range(d):
            for i in range(B):
                t[i] = 0.0
            for b in range(a + 1):  # U is upper triangular: U[b, a] = 0 for b > a
                u = factor[j, b * d + a]
                for i in range(B):
                    t[i] += u * diff[b, i]
            for i in range(B):
                q[i] += t[i] * t[i]
        c = log_const[j]
        for i in range(B):
            logp[j, i] = c - 0.5 * q[i]


@njit(**JIT_OPTIONS)
def block_log_prob_diag(xt, means, factor, log_const, diff, t, q, logp):
    """Same as :func:`block_log_prob_full` for a (k, d) ``1/sigma`` factor."""
    k, d = means.shape
    for j in range(k):
        for i in range(B):
            q[i] = 0.0
        for a in range(d):
            mu = means[j, a]
            p = factor[j, a]
            for i in range(B):
                z = (xt[a, i] - mu) * p
                q[i] += z * z
        c = log_const[j]
        for i in range(B):
            logp[j, i] = c - 0.5 * q[i]


@njit(**JIT_OPTIONS)
def block_responsibilities(logp, wb, mx, s):
    """Turn ``logp`` (k, B) into weighted responsibilities ``w_i r_ij`` in place.

    Log-sum-exp with the max trick; a component at -inf gets responsibility 0.
    Returns ``sum_i w_i log p(x_i)`` over the block.
    """
    k = logp.shape[0]
    for i in range(B):
        mx[i] = -np.inf
    for j in range(k):
        for i in range(B):
            if logp[j, i] > mx[i]:
                mx[i] = logp[j, i]
    for i in range(B):
        s[i] = 0.0
        if mx[i] == -np.inf:  # every component impossible: keep it -inf, not NaN
            mx[i] = 0.0
    for j in range(k):
        for i in range(B):
            s[i] += np.exp(logp[j, i] - mx[i])
    total = 0.0
    for i in range(B):
        lse = mx[i] + np.log(s[i])
        s[i] = lse
        if wb[i] != 0.0:
            total += wb[i] * lse
    for j in range(k):
        for i in range(B):
            if s[i] == -np.inf:
                logp[j, i] = 0.0
            else:
                logp[j, i] = np.exp(logp[j, i] - s[i]) * wb[i]
    return total


@njit(**JIT_OPTIONS)
def block_stats_full(xt, means, resp, diff, mass, first, second):
    """Add a block's centred statistics to ``mass`` (k,), ``first`` (k, d) and
    the lower triangle of ``second`` (k, d * d), row-major."""
    k, d = means.shape
    for j in range(k):
        nj = 0.0
        for i in range(B):
            nj += resp[j, i]
        if nj == 0.0:  # no mass here (all responsibilities underflowed)
            continue
        mass[j] += nj
        for a in range(d):
            mu = means[j, a]
            sa = 0.0
            for i in range(B):
                dv = xt[a, i] - mu
                sa += resp[j, i] * dv
                diff[a, i] = dv
            first[j, a] += sa
        for a in range(d):
            for b in range(a + 1):
                acc = 0.0
                for i in range(B):
                    acc += resp[j, i] * diff[a, i] * diff[b, i]
                second[j, a * d + b] += acc


@njit(**JIT_OPTIONS)
def block_stats_diag(xt, means, resp, diff, mass, first, second):
    """Same as :func:`block_stats_full` keeping only the diagonal, ``second`` (k, d)."""
    k, d = means.shape
    for j in range(k):
        nj = 0.0
        for i in range(B):
            nj += resp[j, i]
        if nj == 0.0:
            continue
        mass[j] += nj
        for a in range(d):
            mu = means[j, a]
            sa = 0.0
            sq = 0.0
            for i in range(B):
                rd = resp[j, i] * (xt[a, i] - mu)
                sa += rd
                sq += rd * (xt[a, i] - mu)
            first[j, a] += sa
            second[j, a] += sq


@njit(parallel=True, **JIT_OPTIONS)
def accumulate(X, w, has_weights, full, means, factor, log_const, bounds,
               mass, first, second, loglik):
    """Fused E-step and statistics over row parts.

    Parameters
    ----------
    X : (n, d) float32 or float64, C-contiguous
    w : (n,) float64 sample weights, read only when ``has_weights``
    full : bool
        True for the full/tied family, False for diag/spherical.
    means : (k, d)
    factor : (k, d * d) flattened upper ``U_j`` if ``full``, else (k, d) ``1/sigma``
    log_const : (k,) ``log w_j - d/2 log 2pi + log det U_j``
    bounds : (n_parts + 1,) int64 row boundaries, multiples of B
    mass : (n_parts, k), first : (n_parts, k, d),
    second : (n_parts, k, d * d) if ``full`` else (n_parts, k, d), loglik : (n_parts,)
        Outputs, zeroed by the caller; part ``p`` writes only index ``p``.
    """
    k, d = means.shape
    n_parts = bounds.shape[0] - 1
    for p in prange(n_parts):
        xt = np.empty((d, B))
        diff = np.empty((d, B))
        logp = np.empty((k, B))
        wb = np.empty(B)
        t = np.empty(B)
        q = np.empty(B)
        ll = 0.0
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, w, has_weights, xt, wb)
            if full:
                block_log_prob_full(xt, means, factor, log_const, diff, t, q, logp)
            else:
                block_log_prob_diag(xt, means, factor, log_const, diff, t, q, logp)
            ll += block_responsibilities(logp, wb, t, q)
            if full:
                block_stats_full(xt, means, logp, diff, mass[p], first[p], second[p])
            else:
                block_stats_diag(xt, means, logp, diff, mass[p], first[p], second[p])
        loglik[p] = ll


@njit(parallel=True, **JIT_OPTIONS)
def log_prob(X, full, means, factor, log_const, bounds, out):
    """Weighted log-densities ``log w_j + log N(x_i | j)`` into ``out`` (n, k).

    Arguments as in :func:`accumulate`.
    """
    k, d = means.shape
    n_parts = bounds.shape[0] - 1
    no_weights = np.empty(0)
    for p in prange(n_parts):
        xt = np.empty((d, B))
        diff = np.empty((d, B))
        logp = np.empty((k, B))
        wb = np.empty(B)
        t = np.empty(B)
        q = np.empty(B)
        for start in range(bounds[p], bounds[p + 1], B):
            stop = min(start + B, bounds[p + 1])
            load_block(X, start, stop, no_weights, False, xt, wb)
            if full:
                block_log_prob_full(xt, means, factor, log_const, diff, t, q, logp)
            else:
                block_log_prob_diag(xt, means, factor, log_const, diff, t, q, logp)
            for i in range(stop - start):
                for j in range(k):
                    out[start + i, j] = logp[j, i]
