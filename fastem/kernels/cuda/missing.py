"""numba.cuda kernels for rows with missing values (NaN): the twins of
``fastem.kernels.cpu.missing``'s pass and log-densities, with the same math
(read that module's docstring for it) laid out as ``fastem.kernels.cuda.gaussian``.

One CUDA block owns one row part and walks it in tiles of ``blockDim.x``
points; each thread stages its point in shared memory (float64, NaN kept),
computes the log-sum-exp over components online, then for every component
recomputes its point's marginal log-density, which leaves the completed
deviation in shared memory and the Cholesky factor of the missing block of
the component's precision in the thread's slot of a global scratch array.
After a barrier each thread sums whole statistic entries over the tile's
points in a fixed order (:func:`.gaussian.add_tile`), and the conditional
covariances (``r P_mm^-1``, or ``r / f^2`` for diagonal precisions), which
each point wrote to its scratch slot, are summed the same way. No atomics:
the same input gives the same bits on every run.

Compute dtype: float64 (``accumulate``, ``log_prob``) and float32
(``accumulate_f32``, ``log_prob_f32``; :func:`for_dtype` picks), with the
numerics of ``fastem.kernels.cuda.gaussian``'s float32 twins (constants
typed, a float literal being float64 in numba.cuda). Per thread the scratch
holds the missing indices (d) and ``d (d + 1) + d`` floats of the compute
dtype: the factor and the conditional covariance (each a packed lower
triangle) and ``z``.
"""

import math

import numpy as np
from numba import cuda, float32, float64

# CUDA_THREADS as gaussian.py read it: one block size for the static shared
# memory of every kernel, the one ``backends.cuda.block_threads`` checks against
from .gaussian import CUDA_THREADS, FULL, add_tile, block_total, lower_entry, smem_layout

LOG_2PI = math.log(2.0 * math.pi)


def scratch_width(n_features):
    """Floats of one thread's scratch slot: two packed triangles and a vector."""
    return n_features * (n_features + 1) + n_features


@cuda.jit(device=True)
def _tri(s):
    return s * (s + 1) // 2


@cuda.jit(device=True)
def missing_indices(smem, me, d, mis, g):
    """The NaN coordinates of the point staged at ``smem[me:me + d]`` into
    ``mis[g, :q]``, ascending; returns ``q``."""
    q = 0
    for a in range(d):
        if math.isnan(smem[me + a]):
            mis[g, q] = a
            q += 1
    return q


def _make(ftype):
    """The pass and log-density kernels computing in ``ftype`` (float64, or
    float32 with the CPU kernels' numerics: rows centred on ``ref`` in
    float64 before they are narrowed; log-densities, responsibilities and
    the factorisations in float32; log-determinants, every sum over a
    tile's points and the log-likelihood in float64)."""
    nb_type = float64 if ftype == np.float64 else float32
    ZERO = ftype(0.0)
    ONE = ftype(1.0)
    HALF = ftype(0.5)
    NEG_INF = ftype(-np.inf)

    @cuda.jit(device=True)
    def log_prob_point(smem, me, dev, j, layout, means, factor, prec, log_const, mis, q, fs, g):
        """The weighted marginal log-density of the observed coordinates of the
        point staged at ``smem[me:me + d]`` under component ``j``; its completed
        deviation (``x - mu_j`` observed, the conditional mean's ``-e``
        missing) into ``smem[dev:dev + d]`` and, for FULL, the Cholesky
        factor of ``P_mm`` (diagonal stored inverted) packed into ``fs[g, :]``."""
        d = means.shape[1]
        for a in range(d):
            x = smem[me + a]
            smem[dev + a] = ZERO if math.isnan(x) else x - means[j, a]
        quad = ZERO
        adj = 0.0  # float64: the log-determinant's terms
        if layout != FULL:
            for a in range(d):
                f = factor[j, a]
                if math.isnan(smem[me + a]):
                    adj += 0.5 * LOG_2PI - math.log(float64(f))
                else:
                    v = smem[dev + a] * f
                    quad += v * v
            return log_const[j] + nb_type(adj) - HALF * quad
        for c in range(d):  # ||U^T delta0||^2
            y = ZERO
            for a in range(c + 1):
                y += factor[j, a * d + c] * smem[dev + a]
            quad += y * y
        if q == 0:
            return log_const[j] - HALF * quad
        Z = d * (d + 1)  # z, then y, then e, after the two triangles
        for s in range(q):  # z = (P delta0)_m
            v = ZERO
            ms = mis[g, s]
            for a in range(d):
                v += prec[j, ms, a] * smem[dev + a]
            fs[g, Z + s] = v
        for s in range(q):  # Cholesky of P_mm
            for t in range(s + 1):
                v = prec[j, mis[g, s], mis[g, t]]
                for c in range(t):
                    v -= fs[g, _tri(s) + c] * fs[g, _tri(t) + c]
                if s == t:
                    fs[g, _tri(s) + s] = ONE / math.sqrt(v)
                else:
                    fs[g, _tri(s) + t] = v * fs[g, _tri(t) + t]
        total = 0.0
        prod = 1.0
        for s in range(q):  # L y = z; ||y||^2 = z^T e; 1/2 log det P_mm = -log prod L[s, s]
            v = fs[g, Z + s]
            for t in range(s):
                v -= fs[g, _tri(s) + t] * fs[g, Z + t]
            v *= fs[g, _tri(s) + s]
            fs[g, Z + s] = v
            quad -= v * v
            prod *= float64(fs[g, _tri(s) + s])
            if prod > 1e150 or prod < 1e-150:
                total += math.log(prod)
                prod = 1.0
        for s in range(q - 1, -1, -1):  # L^T e = y
            v = fs[g, Z + s]
            for t in range(s + 1, q):
                v -= fs[g, _tri(t) + s] * fs[g, Z + t]
            v *= fs[g, _tri(s) + s]
            fs[g, Z + s] = v
            smem[dev + mis[g, s]] = -v
        adj = 0.5 * q * LOG_2PI + total + math.log(prod)
        return log_const[j] + nb_type(adj) - HALF * quad

    @cuda.jit(device=True)
    def conditional_covariance(r, j, layout, d, factor, mis, q, fs, g):
        """``r`` times the point's conditional covariance under component ``j``
        into its scratch slot ``fs[g, C:C + n_second]``, ``C = d (d + 1) / 2``, at
        the positions of ``second`` (a packed lower triangle for FULL, else
        the diagonal), zeros elsewhere; for FULL from the factor
        :func:`log_prob_point` left (overwritten by ``L^-1``, as
        ``P_mm^-1 = L^-T L^-1``)."""
        C = d * (d + 1) // 2
        n_second = C if layout == FULL else d
        for f in range(n_second):
            fs[g, C + f] = ZERO
        if q == 0 or r == ZERO:
            return
        if layout != FULL:
            for s in range(q):
                a = mis[g, s]
                fa = factor[j, a]
                fs[g, C + a] = r / (fa * fa)
            return
        for s in range(q):  # L^-1[s, t] = -L^-1[s, s] sum_{c=t}^{s-1} L[s, c] L^-1[c, t]
            for t in range(s):
                v = fs[g, _tri(s) + t] * fs[g, _tri(t) + t]
                for c in range(t + 1, s):
                    v += fs[g, _tri(s) + c] * fs[g, _tri(c) + t]
                fs[g, _tri(s) + t] = -fs[g, _tri(s) + s] * v
        for s in range(q):
            for t in range(s + 1):
                v = ZERO
                for c in range(s, q):
                    v += fs[g, _tri(c) + s] * fs[g, _tri(c) + t]
                fs[g, C + _tri(mis[g, s]) + mis[g, t]] = r * v

    @cuda.jit
    def accumulate(X, w, has_weights, layout, ref, means, factor, prec, log_const, bounds, mis,
                   fs, mass, first, second, loglik):
        """Expected statistics of rows with missing values; block ``p`` writes
        partials ``[p]``, centred on ``ref + means``.

        Arguments as ``fastem.kernels.cpu.missing.accumulate`` (``ref``
        float64; ``means``, ``factor``, ``log_const`` and ``prec`` (k, d, d)
        the precisions, for FULL, in the compute dtype), and per thread of
        the launch (``p * blockDim.x + tid``) a row of the scratch ``mis``
        (n_parts * T, d) int64 and ``fs`` (n_parts * T, ``scratch_width(d)``)
        of the compute dtype. Launch with ``n_parts`` blocks and the dynamic
        shared memory of ``gaussian.shared_floats(d, threads)`` elements of
        the compute dtype.
        """
        p = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        k, d = means.shape
        smem = cuda.shared.array(0, dtype=nb_type)
        red = cuda.shared.array(CUDA_THREADS, dtype=float64)
        DF, RD, WT, LSE, RED = smem_layout(T, d)
        me = tid * d
        g0 = p * T
        g = g0 + tid
        ll = 0.0
        for start in range(bounds[p], bounds[p + 1], T):
            i = start + tid
            valid = i < bounds[p + 1]
            src = i if valid else start
            for a in range(d):  # (NaN stays NaN)
                smem[me + a] = float64(X[src, a]) - ref[a]
            smem[WT + tid] = (w[src] if has_weights else 1.0) if valid else 0.0
            q = missing_indices(smem, me, d, mis, g)
            m = NEG_INF
            s = ZERO
            for j in range(k):  # online log-sum-exp
                v = log_prob_point(smem, me, DF + me, j, layout, means, factor, prec, log_const,
                                   mis, q, fs, g)
                if v > m:
                    s = s * math.exp(m - v) + ONE if m > NEG_INF else ONE
                    m = v
                elif v > NEG_INF:
                    s += math.exp(v - m)
            lse = m + math.log(s) if s > ZERO else NEG_INF
            if smem[WT + tid] != ZERO:
                ll += float64(smem[WT + tid]) * float64(lse)
            cuda.syncthreads()
            n_tile = min(T, bounds[p + 1] - start)
            for j in range(k):
                v = log_prob_point(smem, me, DF + me, j, layout, means, factor, prec, log_const,
                                   mis, q, fs, g)
                r = smem[WT + tid] * math.exp(v - lse) if lse > NEG_INF else ZERO
                conditional_covariance(r, j, layout, d, factor, mis, q, fs, g)
                for a in range(d):
                    smem[RD + me + a] = r * smem[DF + me + a]
                smem[RED + tid] = r
                cuda.syncthreads()
                add_tile(smem, n_tile, layout, d, DF, RD, RED, p, j, mass, first, second)
                add_conditional(n_tile, layout, d, fs, g0, p, j, second)
                cuda.syncthreads()
        total = block_total(red, ll)
        if tid == 0:
            loglik[p] = total

    @cuda.jit
    def log_prob(X, layout, ref, means, factor, prec, log_const, bounds, mis, fs, out):
        """Weighted marginal log-densities of the observed coordinates of every
        row (less the caller's shift) into ``out`` (n, k) float64. Launch and
        scratch as :func:`accumulate`."""
        p = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        k, d = means.shape
        smem = cuda.shared.array(0, dtype=nb_type)
        DF, _, _, _, _ = smem_layout(T, d)
        me = tid * d
        g = p * T + tid
        for start in range(bounds[p], bounds[p + 1], T):
            i = start + tid
            if i < bounds[p + 1]:
                for a in range(d):
                    smem[me + a] = float64(X[i, a]) - ref[a]
                q = missing_indices(smem, me, d, mis, g)
                for j in range(k):
                    out[i, j] = log_prob_point(smem, me, DF + me, j, layout, means, factor, prec,
                                               log_const, mis, q, fs, g)

    return accumulate, log_prob


@cuda.jit(device=True)
def add_conditional(n_tile, layout, d, fs, g0, p, j, second):
    """Add the tile's conditional covariances (each point's scratch slot,
    :func:`conditional_covariance`) to block ``p``'s second moments of
    component ``j``: whole entries, summed in point order, in float64.

    Entry ``f`` of ``second`` belongs to the thread that :func:`.gaussian.add_tile`
    gave it (entry ``1 + d + f`` of that function's numbering), so each
    entry is read and written by one thread, in program order, with no
    barrier between the two calls. (Given to thread ``f % T``, as it once
    was, two threads added to one entry at once, and one of the two sums
    could be lost: the simulator caught it once its threads switched
    often enough, ``fastem/_cudasim.py``.)"""
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    C = d * (d + 1) // 2
    n_second = C if layout == FULL else d
    for e in range(tid, 1 + d + n_second, T):
        if e <= d:  # mass and first moments: no conditional part
            continue
        f = e - 1 - d
        acc = 0.0
        for t in range(n_tile):
            acc += float64(fs[g0 + t, C + f])
        if layout == FULL:
            a, b = lower_entry(f)
            second[p, j, a * d + b] += acc
        else:
            second[p, j, f] += acc


accumulate, log_prob = _make(np.float64)
accumulate_f32, log_prob_f32 = _make(np.float32)


def for_dtype(dtype):
    """``(accumulate, log_prob)`` computing in ``dtype`` (float32 or float64)."""
    return (accumulate_f32, log_prob_f32) if dtype == np.float32 else (accumulate, log_prob)


def signature(name, x_dtype):
    """The argument types with which the backend launches kernel ``name`` on
    rows of ``x_dtype`` ('float32' or 'float64'), for ``cuda.compile_ptx``."""
    from numba import types

    def arr(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    f64, i64, xdt = types.float64, types.int64, getattr(types, x_dtype)
    cdt = types.float32 if name.endswith("_f32") else f64
    if name.startswith("accumulate"):
        return (arr(xdt, 2), arr(f64, 1), types.boolean, types.int64, arr(f64, 1), arr(cdt, 2),
                arr(cdt, 2), arr(cdt, 3), arr(cdt, 1), arr(i64, 1), arr(i64, 2), arr(cdt, 2),
                arr(f64, 2), arr(f64, 3), arr(f64, 3), arr(f64, 1))
    return (arr(xdt, 2), types.int64, arr(f64, 1), arr(cdt, 2), arr(cdt, 2), arr(cdt, 3),
            arr(cdt, 1), arr(i64, 1), arr(i64, 2), arr(cdt, 2), arr(f64, 2))


#: Every kernel of this module, by name.
KERNELS = ("accumulate", "accumulate_f32", "log_prob", "log_prob_f32")
