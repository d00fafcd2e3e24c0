"""numba.cuda kernels: the fused E-step + statistics pass and log-densities.

Twins of ``fastem.kernels.cpu.gaussian`` with the same names and argument
order. One CUDA block owns one row part ``bounds[p]:bounds[p + 1]`` (a
partition fixed by the data shape) and walks it in tiles of ``blockDim.x``
points:

1. each thread stages its point, centred on ``ref`` in float64 and narrowed
   to the compute dtype, in shared memory and computes the log-sum-exp over
   components online (max and rescaled sum in one sweep);
2. for every component, each thread recomputes its point's log-density (the
   n x k responsibilities are never stored, only recomputed, as in Flash-GMM),
   writes ``diff`` and ``r * diff`` to shared memory, and after a barrier each
   thread sums whole statistic entries over the tile's points in a fixed order
   into this block's partial statistics in global memory.

No atomics and fixed summation orders everywhere: the same input gives the
same bits on every run. Only shared-memory arrays and ``syncthreads`` are
used, so the kernels run under ``NUMBA_ENABLE_CUDASIM=1``.

Compute dtype: the kernels exist for float64 (``accumulate``, ``log_prob``)
and float32 (``accumulate_f32``, ``log_prob_f32``; :func:`for_dtype` picks).
The float32 twins keep the CPU kernels' numerics (``fastem._precision``):
rows centred in float64 before they are narrowed, log-densities and
responsibilities in float32, and every sum over a tile's points, the tile
sums and the log-likelihood in float64. Constants are typed (a float literal
in numba.cuda is float64 and would widen the float32 arithmetic).
"""

import math

import numpy as np
from numba import cuda, float32, float64

from ..._covariance import Layout
from ...config import CUDA_THREADS

#: ``layout``, the kernels' argument: a ``Layout`` as an int64, FULL or DIAG.
FULL = int(Layout.FULL)

# Per-thread slots in dynamic shared memory: the point, diff, r*diff (3 d)
# plus weight, log-sum-exp and a reduction slot.
SHARED_SLOTS_FIXED = 3


def shared_floats(n_features, threads):
    """Dynamic shared-memory size (element count) for a launch."""
    return (3 * n_features + SHARED_SLOTS_FIXED) * threads


def shared_bytes(n_features, threads, dtype):
    """Shared memory of a launch in bytes: the dynamic part in the compute
    dtype, plus the static float64 log-likelihood reduction."""
    return shared_floats(n_features, threads) * np.dtype(dtype).itemsize + 8 * CUDA_THREADS


@cuda.jit(device=True)
def smem_layout(T, d):
    """Offsets in a block's dynamic shared memory (``shared_floats``): after
    the T staged points (T, d) come ``diff`` (T, d), ``r * diff`` (T, d),
    weight (T), log-sum-exp (T) and responsibility (T): ``(DF, RD, WT, LSE,
    RED)``. The one place of this layout for every kernel that stages tiles."""
    return T * d, 2 * T * d, 3 * T * d, 3 * T * d + T, 3 * T * d + 2 * T


@cuda.jit(device=True)
def lower_entry(f):
    """Row ``a`` and column ``b <= a`` of the ``f``-th entry of a lower
    triangle stored row-major (``f = a (a + 1) / 2 + b``)."""
    a = int((math.sqrt(8.0 * f + 1.0) - 1.0) * 0.5)
    while a * (a + 1) // 2 > f:
        a -= 1
    while (a + 1) * (a + 2) // 2 <= f:
        a += 1
    return a, f - a * (a + 1) // 2


@cuda.jit(device=True)
def add_tile(smem, n_tile, layout, d, DF, RD, RED, p, j, mass, first, second):
    """Add a staged tile's statistics of component ``j`` to block ``p``'s.

    ``smem`` holds, per point of the tile, ``x - mu_j`` at ``DF``, ``r (x - mu_j)``
    at ``RD`` (d each, point-major) and ``r`` at ``RED``; each thread sums
    whole entries over the tile's ``n_tile`` points."""
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    n_second = d * (d + 1) // 2 if layout == FULL else d
    n_entries = 1 + d + n_second
    # Entry e: 0 -> mass, 1..d -> first[a], then second (lower triangle
    # row-major for FULL, the diagonal for DIAG), summed over the tile
    # in point order, in float64.
    for e in range(tid, n_entries, T):
        acc = 0.0
        if e == 0:
            for t in range(n_tile):
                acc += float64(smem[RED + t])
            mass[p, j] += acc
        elif e <= d:
            a = e - 1
            for t in range(n_tile):
                acc += float64(smem[RD + t * d + a])
            first[p, j, a] += acc
        else:
            f = e - 1 - d
            if layout == FULL:
                a, b = lower_entry(f)
                for t in range(n_tile):
                    acc += float64(smem[RD + t * d + a] * smem[DF + t * d + b])
                second[p, j, a * d + b] += acc
            else:
                for t in range(n_tile):
                    acc += float64(smem[RD + t * d + f] * smem[DF + t * d + f])
                second[p, j, f] += acc


@cuda.jit(device=True)
def block_total(red, value):
    """The sum of every thread's ``value`` over the block, by a tree in a
    fixed order in the shared float64 array ``red`` (one slot per thread);
    every thread of the block calls it, and thread 0 gets the total."""
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    red[tid] = value
    cuda.syncthreads()
    step = 1
    while step < T:
        if tid % (2 * step) == 0 and tid + step < T:
            red[tid] += red[tid + step]
        step *= 2
        cuda.syncthreads()
    return red[0]


def _make(ftype):
    """The pass and log-density kernels computing in ``ftype``."""
    nb_type = float64 if ftype == np.float64 else float32
    ZERO = ftype(0.0)
    ONE = ftype(1.0)
    HALF = ftype(0.5)
    NEG_INF = ftype(-np.inf)

    @cuda.jit(device=True)
    def log_prob_point(smem, base, j, layout, means, factor, log_const):
        """``log w_j + log N(x | j)`` of the point staged at ``smem[base:base + d]``."""
        d = means.shape[1]
        q = ZERO
        if layout == FULL:
            for a in range(d):
                y = ZERO
                for b in range(a + 1):  # U is upper triangular
                    y += (smem[base + b] - means[j, b]) * factor[j, b * d + a]
                q += y * y
        else:
            for a in range(d):
                z = (smem[base + a] - means[j, a]) * factor[j, a]
                q += z * z
        return log_const[j] - HALF * q

    @cuda.jit(device=True)
    def add_component(smem, me, j, r, n_tile, layout, means, DF, RD, RED, p, mass, first, second):
        """Stage this thread's ``x - mu_j`` and ``r (x - mu_j)`` (its point at
        ``smem[me:me + d]``, its weight ``r``), then add the tile's statistics
        of component ``j`` (:func:`add_tile`). Every thread of the block calls
        it: it holds the barriers around the tile sums."""
        tid = cuda.threadIdx.x
        d = means.shape[1]
        for a in range(d):
            dv = smem[me + a] - means[j, a]
            smem[DF + me + a] = dv
            smem[RD + me + a] = r * dv
        smem[RED + tid] = r
        cuda.syncthreads()
        add_tile(smem, n_tile, layout, d, DF, RD, RED, p, j, mass, first, second)
        cuda.syncthreads()

    @cuda.jit
    def accumulate(X, w, has_weights, layout, ref, means, factor, log_const, bounds,
                   mass, first, second, loglik):
        """Fused E-step and statistics; block ``p`` writes partials ``[p]``.

        Arguments as in the CPU kernel (``ref`` float64, ``means``, ``factor``,
        ``log_const`` in the compute dtype); ``mass``, ``first``, ``second``
        and ``loglik`` are float64 device arrays with a leading n_parts axis,
        zeroed by the caller. Launch with ``n_parts`` blocks of at most
        CUDA_THREADS threads and dynamic shared memory of
        ``shared_floats(d, threads)`` elements of the compute dtype.
        """
        p = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        k, d = means.shape
        # Dynamic shared memory, flat (smem_layout).
        smem = cuda.shared.array(0, dtype=nb_type)
        # The log-likelihood's tree reduction stays float64 in both dtypes.
        red = cuda.shared.array(CUDA_THREADS, dtype=float64)
        DF, RD, WT, LSE, RED = smem_layout(T, d)
        me = tid * d

        ll = 0.0
        for start in range(bounds[p], bounds[p + 1], T):
            i = start + tid
            valid = i < bounds[p + 1]
            # Stage the point (rows past the part repeat the tile's first row with weight 0).
            src = i if valid else start
            for a in range(d):
                smem[me + a] = float64(X[src, a]) - ref[a]
            smem[WT + tid] = (w[src] if has_weights else 1.0) if valid else 0.0
            # Online log-sum-exp over components.
            m = NEG_INF
            s = ZERO
            for j in range(k):
                v = log_prob_point(smem, me, j, layout, means, factor, log_const)
                if v > m:
                    s = s * math.exp(m - v) + ONE if m > NEG_INF else ONE
                    m = v
                elif v > NEG_INF:
                    s += math.exp(v - m)
            smem[LSE + tid] = m + math.log(s) if s > ZERO else NEG_INF
            if smem[WT + tid] != ZERO:
                ll += float64(smem[WT + tid]) * float64(smem[LSE + tid])
            cuda.syncthreads()
            n_tile = min(T, bounds[p + 1] - start)
            for j in range(k):
                v = log_prob_point(smem, me, j, layout, means, factor, log_const)
                lp = smem[LSE + tid]
                r = smem[WT + tid] * math.exp(v - lp) if lp > NEG_INF else ZERO
                add_component(smem, me, j, r, n_tile, layout, means, DF, RD, RED, p, mass, first,
                              second)
        total = block_total(red, ll)  # of the per-thread log-likelihoods
        if tid == 0:
            loglik[p] = total

    @cuda.jit
    def log_prob(X, layout, ref, means, factor, log_const, bounds, out):
        """Weighted log-densities ``log w_j + log N(x_i | j)`` (less the caller's
        shift) into ``out`` (n, k) float64. Same launch as ``accumulate``."""
        p = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        k, d = means.shape
        smem = cuda.shared.array(0, dtype=nb_type)
        me = tid * d
        for start in range(bounds[p], bounds[p + 1], T):
            i = start + tid
            if i < bounds[p + 1]:
                for a in range(d):
                    smem[me + a] = float64(X[i, a]) - ref[a]
                for j in range(k):
                    out[i, j] = log_prob_point(smem, me, j, layout, means, factor, log_const)

    @cuda.jit
    def weighted_stats(X, layout, ref, means, weights, bounds, mass, first, second):
        """``accumulate``'s statistics with given weights instead of the
        responsibilities: row ``i`` counts ``weights[i, j]`` (n, k) float64
        for component ``j`` (a hidden Markov model's weighted state
        posteriors). Same launch and outputs as ``accumulate``."""
        p = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        k, d = means.shape
        smem = cuda.shared.array(0, dtype=nb_type)
        DF, RD, _, _, RED = smem_layout(T, d)
        me = tid * d
        for start in range(bounds[p], bounds[p + 1], T):
            i = start + tid
            valid = i < bounds[p + 1]
            src = i if valid else start
            for a in range(d):
                smem[me + a] = float64(X[src, a]) - ref[a]
            n_tile = min(T, bounds[p + 1] - start)
            for j in range(k):
                r = nb_type(weights[src, j]) if valid else ZERO
                add_component(smem, me, j, r, n_tile, layout, means, DF, RD, RED, p, mass, first,
                              second)

    return accumulate, log_prob, weighted_stats


accumulate, log_prob, weighted_stats = _make(np.float64)
accumulate_f32, log_prob_f32, weighted_stats_f32 = _make(np.float32)


def for_dtype(dtype):
    """``(accumulate, log_prob)`` computing in ``dtype`` (float32 or float64)."""
    return (accumulate_f32, log_prob_f32) if dtype == np.float32 else (accumulate, log_prob)


def weighted_stats_for(dtype):
    """``weighted_stats`` computing in ``dtype`` (float32 or float64)."""
    return weighted_stats_f32 if dtype == np.float32 else weighted_stats


@cuda.jit
def reduce_parts(parts, out):
    """``out[e] = sum_p parts[p, e]`` in increasing ``p`` (deterministic).

    ``parts`` is (n_parts, m) and ``out`` (m,); one thread per entry.
    """
    e = cuda.grid(1)
    if e < out.shape[0]:
        acc = 0.0
        for p in range(parts.shape[0]):
            acc += parts[p, e]
        out[e] = acc


@cuda.jit
def count_nonfinite(X, out):
    """``out[0]`` += number of NaN or infinite entries of X (n, d)."""
    i = cuda.grid(1)
    if i < X.shape[0]:
        bad = 0
        for a in range(X.shape[1]):
            v = X[i, a]
            if not (v - v == 0.0):  # NaN and +-inf give NaN here
                bad += 1
        if bad:
            cuda.atomic.add(out, 0, bad)


def signature(name, x_dtype):
    """The argument types (a tuple of Numba types) with which the backend
    launches kernel ``name`` on rows of ``x_dtype`` ('float32' or 'float64'):
    what ``cuda.compile_ptx`` needs to compile a kernel ahead of a launch
    (the PTX test, ``benchmarks/cuda_compile.py``)."""
    from numba import types

    def arr(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    f64, xdt = types.float64, getattr(types, x_dtype)

    def accumulate_types(cdt):
        return (arr(xdt, 2), arr(f64, 1), types.boolean, types.int64, arr(f64, 1),
                arr(cdt, 2), arr(cdt, 2), arr(cdt, 1), arr(types.int64, 1),
                arr(f64, 2), arr(f64, 3), arr(f64, 3), arr(f64, 1))

    def log_prob_types(cdt):
        return (arr(xdt, 2), types.int64, arr(f64, 1), arr(cdt, 2), arr(cdt, 2),
                arr(cdt, 1), arr(types.int64, 1), arr(f64, 2))

    def weighted_stats_types(cdt):
        return (arr(xdt, 2), types.int64, arr(f64, 1), arr(cdt, 2), arr(f64, 2),
                arr(types.int64, 1), arr(f64, 2), arr(f64, 3), arr(f64, 3))

    table = {
        "accumulate": lambda: accumulate_types(f64),
        "accumulate_f32": lambda: accumulate_types(types.float32),
        "log_prob": lambda: log_prob_types(f64),
        "log_prob_f32": lambda: log_prob_types(types.float32),
        "weighted_stats": lambda: weighted_stats_types(f64),
        "weighted_stats_f32": lambda: weighted_stats_types(types.float32),
        "reduce_parts": lambda: (arr(f64, 2), arr(f64, 1)),
        "count_nonfinite": lambda: (arr(xdt, 2), arr(types.int64, 1)),
    }
    return table[name]()


#: Every kernel of this module, by name.
KERNELS = ("accumulate", "accumulate_f32", "log_prob", "log_prob_f32", "weighted_stats",
           "weighted_stats_f32", "reduce_parts", "count_nonfinite")
