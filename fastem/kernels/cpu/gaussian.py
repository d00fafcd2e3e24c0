"""Numba CPU kernels: fused E-step + sufficient statistics, and log-densities.

Layout: rows are processed in blocks of ``BLOCK_ROWS`` points. Each block is
centred on a reference ``ref`` in float64 and transposed into a buffer ``xt``
of shape ``(d, BLOCK_ROWS)`` of the *compute dtype*, so that every inner loop
runs over points with a compile-time trip count and vectorises. The last,
partial block is padded by repeating its first row with weight 0, so padded
points are finite and contribute nothing.

Compute dtype: the kernels are dtype-generic and run in the dtype of
``means`` (float64, or float32 for twice the SIMD lanes). ``means``,
``factor`` and ``log_const`` are then relative to ``ref``: the caller passes
``means - ref`` narrowed after the float64 subtraction, so large offsets in
the data never meet float32 arithmetic. Sums over
one block's points run in the compute dtype; they are added to the float64
per-part statistics, and everything after the pass is float64. With float64
compute the caller passes ``ref = 0``, which changes no bit.

Two layouts (``fastem._covariance.Layout``) share one structure:

* ``*_full`` for 'full' and 'tied' (the upper Cholesky factor of each
  precision, flattened to ``(k, d * d)``; tied repeats the same factor),
* ``*_diag`` for 'diag' and 'spherical' (a ``(k, d)`` array of ``1/sigma``).

The drivers split rows into parts given by ``bounds`` (fixed by the data
shape, not the thread count); each part writes its own partial statistics,
which the caller sums in a fixed order. Hence bit-identical results for any
number of threads. Threads take the parts one at a time
(:func:`._parts.run_parts`); how drivers and helpers are compiled, and why,
is :mod:`._jit`.
"""

import numpy as np

from ..._covariance import Layout
from ...config import BLOCK_ROWS
from ._elementary import fast_exp
from ._jit import driver as _jit_driver, helper, stack_helper
from ._simd import (lanes, like, vadd, vadd2_into, vadd4_into, vfma, vlane, vload, vmul, vsplat,
                    vsub, vsum8, vzero)
from ._parts import next_part, run_parts
from ._stack import panel_rows, stack_panel

B = BLOCK_ROWS
#: The layouts a segmented pass is compiled for, as plain integers: every
#: model FULL, every model DIAG, or MIXED (each model's own, at run time).
_FULL, _DIAG, MIXED = int(Layout.FULL), int(Layout.DIAG), -1


@stack_helper
def load_block(X, start, stop, w, has_weights, ref, xt, wb):
    """Transpose rows ``start:stop`` of X, centred on ``ref`` (d,) in float64,
    into ``xt`` (d, B) of the compute dtype (narrowed after the subtraction).

    Rows past ``stop`` repeat row ``start`` and get weight 0 in ``wb`` (B,).
    """
    m = stop - start
    d = X.shape[1]
    for i in range(B):
        row = start + i if i < m else start
        for a in range(d):
            xt[a, i] = np.float64(X[row, a]) - ref[a]
        if i >= m:
            wb[i] = 0.0
        elif has_weights:
            wb[i] = w[row]
        else:
            wb[i] = 1.0


@helper
def block_log_prob_full(xt, means, factor, log_const, t, t2, q, logp):
    """Weighted log-densities ``log w_j + log N(x_i; mu_j, Sigma_j)`` of a block.

    ``y = (x - mu_j) @ U_j`` is built two columns at a time so that every load
    of ``x`` feeds two FMAs; ``U_j`` is upper triangular, so column ``a`` only
    needs rows ``b <= a``. ``x - mu`` is formed again at every use rather than
    stored once: the subtraction runs on the FP adders, which this loop leaves
    idle, while a stored difference cost a pass of stores (measured: 6.5 ->
    5.4 us per 64 points at d = k = 16, about the FMA bound). The values are
    the same either way.

    The block is walked in register panels of :func:`~._stack.panel_rows`
    points (8 vectors: 64 float64 or 128 float32), so that the three
    accumulators ``t``, ``t2``, ``q`` stay 24 registers for either dtype
    while the block itself is 128 points (whole-block loops over 128 float64
    points spilled them: 0.086 -> 0.108 s per 1M points, d = k = 16).

    Parameters
    ----------
    xt : (d, B) block of points, compute dtype
    means : (k, d)
    factor : (k, d * d) upper-triangular precision Cholesky factors, row-major
    log_const : (k,) ``log w_j - d/2 log 2pi + log det U_j``
    t, t2, q : (P,) scratch, one panel; pass stack buffers (``stack_panel``)
        so that LLVM keeps the accumulators in registers (see ``_stack.py``)
    logp : (k, B) output
    """
    k, d = means.shape
    half = like(0.5, logp)
    P = panel_rows(logp)
    for h in range(0, B, P):
        for j in range(k):
            for i in range(P):
                q[i] = 0.0
            a = 0
            while a + 1 < d:
                for i in range(P):
                    t[i] = 0.0
                    t2[i] = 0.0
                for b in range(a + 1):
                    u = factor[j, b * d + a]
                    u2 = factor[j, b * d + a + 1]
                    mu = means[j, b]
                    for i in range(P):
                        x = xt[b, h + i] - mu
                        t[i] += u * x
                        t2[i] += u2 * x
                u2 = factor[j, (a + 1) * d + a + 1]
                mu = means[j, a + 1]
                for i in range(P):
                    y2 = t2[i] + u2 * (xt[a + 1, h + i] - mu)
                    q[i] += t[i] * t[i] + y2 * y2
                a += 2
            if a < d:  # odd d: the last column alone
                for i in range(P):
                    t[i] = 0.0
                for b in range(a + 1):
                    u = factor[j, b * d + a]
                    mu = means[j, b]
                    for i in range(P):
                        t[i] += u * (xt[b, h + i] - mu)
                for i in range(P):
                    q[i] += t[i] * t[i]
            c = log_const[j]
            for i in range(P):
                logp[j, h + i] = c - half * q[i]


@helper
def block_log_prob_diag(xt, means, factor, log_const, q, logp):
    """Same as :func:`block_log_prob_full` for a (k, d) ``1/sigma`` factor.

    No ``x - mu`` scratch: each feature's term is squared as it is formed.
    ``q`` is the (P,) stack accumulator of one register panel.
    """
    k, d = means.shape
    half = like(0.5, logp)
    P = panel_rows(logp)
    for h in range(0, B, P):
        for j in range(k):
            for i in range(P):
                q[i] = 0.0
            for a in range(d):
                mu = means[j, a]
                p = factor[j, a]
                for i in range(P):
                    z = (xt[a, h + i] - mu) * p
                    q[i] += z * z
            c = log_const[j]
            for i in range(P):
                logp[j, h + i] = c - half * q[i]


@helper
def block_responsibilities(logp, wb, mx, s):
    """Turn ``logp`` (k, B) into weighted responsibilities ``w_i r_ij`` in
    place (a shared pass hands each model its own rows of ``logp``).

    Log-sum-exp with the max trick, one exponential per entry: ``r_ij =
    exp(logp_ij - max_i) / sum_j exp(logp_ij - max_i)``. A component at -inf
    gets responsibility 0. ``mx`` and ``s`` are (B,) scratch of the compute dtype.
    Returns ``sum_i w_i log p(x_i)`` over the block.
    """
    k = logp.shape[0]
    zero = like(0.0, logp)
    for i in range(B):
        mx[i] = -np.inf
    for j in range(k):
        for i in range(B):
            mx[i] = max(mx[i], logp[j, i])
    for i in range(B):
        s[i] = 0.0
        if mx[i] == -np.inf:  # every component impossible: keep it -inf, not NaN
            mx[i] = 0.0
    for j in range(k):
        for i in range(B):  # one pass: shift, exponential, running sum
            r = fast_exp(logp[j, i] - mx[i])
            logp[j, i] = r
            s[i] += r
    total = 0.0
    for i in range(B):
        if wb[i] != 0.0:
            total += wb[i] * (mx[i] + np.log(s[i]))
        # weight / normaliser, 0 for padded rows and impossible points
        s[i] = wb[i] / s[i] if s[i] > zero else zero
    for j in range(k):
        for i in range(B):
            logp[j, i] *= s[i]
    return total


@helper
def _first_moments8(sd, sr, a0, d, step, like_arr):
    """``sum_i sd[a, i] sr[i]`` of the 8 features from ``a0`` (the last one
    repeated past ``d``), in the lanes of one vector, reduced by :func:`vsum8`."""
    e = d - 1
    r0, r1, r2, r3 = a0 * B, min(a0 + 1, e) * B, min(a0 + 2, e) * B, min(a0 + 3, e) * B
    r4, r5, r6, r7 = (min(a0 + 4, e) * B, min(a0 + 5, e) * B, min(a0 + 6, e) * B,
                      min(a0 + 7, e) * B)
    f0 = vzero(like_arr)
    f1 = vzero(like_arr)
    f2 = vzero(like_arr)
    f3 = vzero(like_arr)
    f4 = vzero(like_arr)
    f5 = vzero(like_arr)
    f6 = vzero(like_arr)
    f7 = vzero(like_arr)
    for i in range(0, B, step):
        r = vload(sr, i)
        f0 = vfma(vload(sd, r0 + i), r, f0)
        f1 = vfma(vload(sd, r1 + i), r, f1)
        f2 = vfma(vload(sd, r2 + i), r, f2)
        f3 = vfma(vload(sd, r3 + i), r, f3)
        f4 = vfma(vload(sd, r4 + i), r, f4)
        f5 = vfma(vload(sd, r5 + i), r, f5)
        f6 = vfma(vload(sd, r6 + i), r, f6)
        f7 = vfma(vload(sd, r7 + i), r, f7)
    return vsum8(f0, f1, f2, f3, f4, f5, f6, f7)


@helper
def _diagonal_tile(sd, a0, a1, d, step, like_arr, second):
    """Entries (a0, a0), (a1, a0) and (a1, a1) of one component's ``second``
    (d * d,) from rows ``a0`` and ``a1`` of ``sd``: the diagonal 2 x 2 block,
    3 FMAs per vector of points where a 2 x 4 tile would run 8."""
    s00 = vzero(like_arr)
    s10 = vzero(like_arr)
    s11 = vzero(like_arr)
    for i in range(0, B, step):
        r0 = vload(sd, a0 * B + i)
        r1 = vload(sd, a1 * B + i)
        s00 = vfma(r0, r0, s00)
        s10 = vfma(r1, r0, s10)
        s11 = vfma(r1, r1, s11)
    sums = vsum8(s00, s10, s11, s11, s11, s11, s11, s11)
    second[a0 * d + a0] += vlane(sums, 0)
    if a1 != a0:
        second[a1 * d + a0] += vlane(sums, 1)
        second[a1 * d + a1] += vlane(sums, 2)


@helper
def block_stats_full(xt, means, resp, sd, sr, mass, first, second, steps=3):
    """Add a block's centred statistics to ``mass`` (k,), ``first`` (k, d) and
    the lower triangle of ``second`` (k, d * d), row-major.

    With ``s_ai = sqrt(r_i) (x_ai - mu_a)`` (stored once in ``sd``),
    ``second[a, b] += sum_i s_ai s_bi`` and ``first[a] += sum_i sqrt(r_i) s_ai``:
    one scratch array instead of ``x - mu`` and ``r (x - mu)``, and the
    products are symmetric. ``sd`` is (d, B) scratch and ``sr`` (B,).

    Every sum over the block's points is written with explicit vectors
    (``_simd.py``), in register tiles of 2 rows x 4 columns of ``second``
    (per vector of points: 6 loads feed 8 FMAs, against 4 loads per 4 FMAs
    in the 2 x 2 tiles this replaced) whose 8 accumulators one
    :func:`vsum8` reduces together, and 8 features at a time for ``first``.
    Why explicit: LLVM's own vectorisation of these reductions (with
    ``reassoc``) came out differently when a kernel was compiled in the
    process than when the same kernel was loaded from Numba's on-disk cache
    (the statistics differed in the last bits between a first run and every
    later one); the explicit vectors fix the order of every sum. Each tile's
    8 sums are two runs of 4 entries of ``second`` (rows a0 and a0 + 1), added
    with one vector add each (:func:`vadd4_into`) where the run lies inside
    the row; entries above the diagonal land in the upper triangle, which the
    caller ignores. Past the last feature a tile repeats it and does not write
    the repeat. Speed (``benchmarks/kernel_roofline.py``, one thread, seconds
    per 1M points, k=16; LLVM's 2 x 2 tiles -> these tiles with scalar
    updates -> with vector updates), Zen 4 AVX-512: d=16 float64 0.238 ->
    0.231 -> 0.201, float32 0.170 -> 0.175 -> 0.130; d=32 float64 0.742 ->
    0.754 -> 0.585, float32 0.574 -> 0.422 -> 0.436. Compiled for Zen 3
    (AVX2) the scalar-update tiles were no slower than LLVM's anywhere.

    ``steps`` < 3 stops after the masses and ``sd`` (1) or also the first
    moments (2): for ``benchmarks/kernel_roofline.py``, which times each
    step; the passes use the default. What limits the float64 kernel (about
    55 % of the one-thread dgemm peak at d=16): with blocks of 128 points the tiles
    run at 85-95 % of the FMA rate (their time did not change when the
    vsum8 reductions were left out), on 160 entries where the lower triangle
    has 136 at d = 16; building ``sd`` and the first moments take the rest
    (Zen 4, d = 16, float64, one thread: 0.042, 0.016 and 0.10 s of 0.15 s
    per 1M points). Where a row pair starts a column tile (``a0 % 4 == 0``)
    that tile is the diagonal 2 x 2 block (:func:`_diagonal_tile`), 144
    entries at d = 16: the same bits, 1.12x (d=16) and 1.08x (d=32) faster
    at float64, 1.09-1.10x at float32 (best of 2 rounds, Zen 4). Measured and lost: forming ``x - mu`` of the columns
    inside the tiles instead of storing ``sqrt(r) (x - mu)`` (no square
    roots; 0.84x), explicit vectors for ``sd`` (same speed), and a
    point-major, GEMM-like micro-kernel without per-tile reductions (4 x 16
    register tiles: 0.5-0.9x at d = 16, whose triangle wastes more of 8-wide
    column vectors).
    """
    k, d = means.shape
    zero = like(0.0, resp)
    step = lanes(resp)
    for j in range(k):
        nv = vzero(resp)
        for i in range(0, B, step):
            nv = vadd(nv, vload(resp, j * B + i))
        nj = vlane(vsum8(nv, nv, nv, nv, nv, nv, nv, nv), 0)
        if nj == zero:  # no mass here (all responsibilities underflowed)
            continue
        mass[j] += nj
        for i in range(B):
            sr[i] = np.sqrt(resp[j, i])
        for a in range(d):
            mu = means[j, a]
            for i in range(B):
                sd[a, i] = (xt[a, i] - mu) * sr[i]
        if steps < 2:
            continue
        for a0 in range(0, d, 8):
            sums = _first_moments8(sd, sr, a0, d, step, resp)
            for m in range(min(8, d - a0)):
                first[j, a0 + m] += vlane(sums, m)
        if steps < 3:
            continue
        for a0 in range(0, d, 2):
            a1 = min(a0 + 1, d - 1)
            for b0 in range(0, min(a0 + 2, d), 4):
                if b0 == a0:  # a 2 x 4 tile here would hold 3 wanted entries of 8
                    _diagonal_tile(sd, a0, a1, d, step, resp, second[j])
                    continue
                c1 = min(b0 + 1, d - 1) * B
                c2 = min(b0 + 2, d - 1) * B
                c3 = min(b0 + 3, d - 1) * B
                s00 = vzero(resp)
                s01 = vzero(resp)
                s02 = vzero(resp)
                s03 = vzero(resp)
                s10 = vzero(resp)
                s11 = vzero(resp)
                s12 = vzero(resp)
                s13 = vzero(resp)
                for i in range(0, B, step):
                    r0 = vload(sd, a0 * B + i)
                    r1 = vload(sd, a1 * B + i)
                    x0 = vload(sd, b0 * B + i)
                    x1 = vload(sd, c1 + i)
                    x2 = vload(sd, c2 + i)
                    x3 = vload(sd, c3 + i)
                    s00 = vfma(r0, x0, s00)
                    s01 = vfma(r0, x1, s01)
                    s02 = vfma(r0, x2, s02)
                    s03 = vfma(r0, x3, s03)
                    s10 = vfma(r1, x0, s10)
                    s11 = vfma(r1, x1, s11)
                    s12 = vfma(r1, x2, s12)
                    s13 = vfma(r1, x3, s13)
                sums = vsum8(s00, s01, s02, s03, s10, s11, s12, s13)
                if b0 + 4 <= d:  # whole rows of 4: one vector add each (the upper
                    # entries among them land in the upper triangle, which is ignored)
                    vadd4_into(second, j * d * d + a0 * d + b0, sums, 0)
                    if a1 != a0:
                        vadd4_into(second, j * d * d + a1 * d + b0, sums, 4)
                    continue
                for m in range(d - b0):
                    b = b0 + m
                    if b <= a0:
                        second[j, a0 * d + b] += vlane(sums, m)
                    if a1 != a0 and b <= a1:
                        second[j, a1 * d + b] += vlane(sums, 4 + m)


@helper
def _diag_entry(x, mu, r, f, q):
    """One entry's update from 8 points: ``f += r (x - mu)``, ``q += r (x - mu)**2``."""
    e = vsub(x, mu)  # subtract before multiplying
    re = vmul(r, e)
    return vadd(f, re), vfma(re, e, q)


@helper
def _diag_tile_points(xt, resp, a0, a1, j0, j1, m00, m01, m10, m11, f00, f01, f10, f11,
                      s00, s01, s10, s11):
    """One block's points added to a diag tile's 8 accumulators (returned)."""
    for i in range(0, B, lanes(resp)):
        x0 = vload(xt, a0 * B + i)
        x1 = vload(xt, a1 * B + i)
        r0 = vload(resp, j0 * B + i)
        r1 = vload(resp, j1 * B + i)
        f00, s00 = _diag_entry(x0, m00, r0, f00, s00)
        f01, s01 = _diag_entry(x1, m01, r0, f01, s01)
        f10, s10 = _diag_entry(x0, m10, r1, f10, s10)
        f11, s11 = _diag_entry(x1, m11, r1, f11, s11)
    return f00, f01, f10, f11, s00, s01, s10, s11


@helper
def _row_pair_sums(resp, j0, j1, n0, n1):
    """Rows ``j0`` and ``j1`` of a block's ``resp`` added to the vectors ``n0``, ``n1``."""
    for i in range(0, B, lanes(resp)):
        n0 = vadd(n0, vload(resp, j0 * B + i))
        n1 = vadd(n1, vload(resp, j1 * B + i))
    return n0, n1


@helper
def block_stats_diag(xt, means, resp, mass, first, second, xt2, resp2, two):
    """Same as :func:`block_stats_full` keeping only the diagonal: ``second``
    is (k, W) with W >= d (a shared pass's rows are wider) and only its first
    d columns are written. With ``two`` the sums run over the points of a
    second block (``xt2``, ``resp2``) as well, before one reduction.

    Register tiles of 2 components x 2 features, written with explicit
    8-lane vectors (``_simd.py``): per 8 points, 4 vector loads (two features
    of ``xt``, two rows of ``resp``) feed the updates of 4 entries, against 2
    loads per entry untiled, and the tile's 8 accumulators (``first`` and
    ``second`` of 4 entries) are reduced together by :func:`vsum8`, in 21
    instructions instead of 8 separate horizontal sums. With odd ``k`` or
    ``d`` the last tile repeats its last component or feature and does not
    write the repeat. Measured on 1M x 32, k=64: the pass took 0.24 s
    instead of 0.29 s with one reduction per entry. The 8 sums go into
    ``first`` and ``second`` as 4 two-lane vector adds (:func:`vadd2_into`)
    rather than 8 scalar ones: the same bits, the kernel 1.02-1.04x faster
    at float64 and 1.03-1.08x at float32 (one thread, one cached block, in
    one process; Zen 4).

    Why two blocks: the reductions, updates and masses took a third of this
    kernel at float32 (0.135 against 0.088 s per 1M points without them,
    d=32, k=64) and a sixth at float64; a float32 vector covers twice the
    points, so a block of 128 has half as many vector steps per reduction.
    The passes therefore hand two blocks to one call, while the E-step still
    runs block by block (blocks of 256 rows throughout were slower: the
    responsibilities of 64 components then outgrow L1). Per kernel, one
    thread, d=32, k=64: float32 0.130 -> 0.116 s and float64 0.215 -> 0.200 s
    per 1M points; whole passes (two threads, in one process against the
    unpaired pass): float32 1.06-1.11x and float64 1.04-1.05x faster.
    """
    k, d = means.shape
    ws = second.shape[1]  # d, or wider in a shared pass (only the first d entries are written)
    for j0 in range(0, k, 2):
        j1 = min(j0 + 1, k - 1)
        n0, n1 = _row_pair_sums(resp, j0, j1, vzero(resp), vzero(resp))
        if two:
            n0, n1 = _row_pair_sums(resp2, j0, j1, n0, n1)
        # Both masses from one vsum8 (lanes 2-7 unused): measured 1.2 us per
        # block faster (d=32, k=64) than two scalar reductions as in the full
        # kernel, which change how LLVM schedules the tile loop below.
        n = vsum8(n0, n1, n0, n0, n0, n0, n0, n0)
        if vlane(n, 0) == 0.0 and vlane(n, 1) == 0.0:
            continue  # no mass here (all responsibilities underflowed)
        mass[j0] += vlane(n, 0)
        if j1 != j0:
            mass[j1] += vlane(n, 1)
        for a0 in range(0, d, 2):
            a1 = min(a0 + 1, d - 1)
            m00 = vsplat(means[j0, a0])
            m01 = vsplat(means[j0, a1])
            m10 = vsplat(means[j1, a0])
            m11 = vsplat(means[j1, a1])
            z = vzero(resp)
            f00, f01, f10, f11, s00, s01, s10, s11 = _diag_tile_points(
                xt, resp, a0, a1, j0, j1, m00, m01, m10, m11, z, z, z, z, z, z, z, z)
            if two:
                f00, f01, f10, f11, s00, s01, s10, s11 = _diag_tile_points(
                    xt2, resp2, a0, a1, j0, j1, m00, m01, m10, m11, f00, f01, f10, f11,
                    s00, s01, s10, s11)
            sums = vsum8(f00, f01, f10, f11, s00, s01, s10, s11)
            if a1 != a0 and j1 != j0:  # two features of two components: 4 vector adds
                vadd2_into(first, j0 * d + a0, sums, 0)
                vadd2_into(first, j1 * d + a0, sums, 2)
                vadd2_into(second, j0 * ws + a0, sums, 4)
                vadd2_into(second, j1 * ws + a0, sums, 6)
                continue
            first[j0, a0] += vlane(sums, 0)
            second[j0, a0] += vlane(sums, 4)
            if a1 != a0:
                first[j0, a1] += vlane(sums, 1)
                second[j0, a1] += vlane(sums, 5)
            if j1 != j0:
                first[j1, a0] += vlane(sums, 2)
                second[j1, a0] += vlane(sums, 6)
                if a1 != a0:
                    first[j1, a1] += vlane(sums, 3)
                    second[j1, a1] += vlane(sums, 7)


@stack_helper
def _pass_buffers(means):
    """One part's scratch, of the compute dtype (that of ``means``).

    ``xt``, ``sd`` (d, B); ``sr``, ``wb`` (B,); ``logp`` (k, B); the log-density
    accumulators ``t``, ``t2``, ``q`` (one register panel) on the stack, where they stay in
    registers; the log-sum-exp scratch ``mx``, ``s`` (B,) on the heap (measured
    faster there).
    """
    k, d = means.shape
    dt = means.dtype
    return (np.empty((d, B), dt), np.empty((d, B), dt), np.empty(B, dt), np.empty((k, B), dt),
            np.empty(B, dt), stack_panel(means), stack_panel(means), stack_panel(means),
            np.empty(B, dt), np.empty(B, dt))


@stack_helper
def _second_block_buffers(means, paired):
    """``xt2`` (d, B), ``logp2`` (k, B) and ``wb2`` (B,) for the second block
    of a paired diag statistics call (:func:`block_stats_diag`); empty when
    ``paired`` is False (the FULL layout)."""
    k, d = means.shape
    n = B if paired else 0
    dt = means.dtype
    return np.empty((d, n), dt), np.empty((k, n), dt), np.empty(n, dt)


def _make_segments(layouts):
    """The pass driver for ``layouts``: every row part ``p`` of
    :func:`accumulate_segments` into its outputs ``mass[p]`` (K,), ``first[p]``
    (K, d), ``second[p]`` (K, W), each model's ``sum_i w_i log p(x_i)`` into
    ``loglik[p]`` (n_models,). When ``out`` (n, K) has rows, the part's
    weighted log-densities go to its rows instead, and nothing else is computed.

    ``layouts``: the Layout of every model (FULL or DIAG), or MIXED, each
    model's as ``layout[g]`` says; a closure constant, so a driver for one
    layout compiles only that layout's kernels. A pass with a
    diag model takes its blocks in pairs from the part's start: the E-step
    runs block by block, then one statistics call covers the pair
    (:func:`block_stats_diag`). Each kernel appears once in the loop body, so
    that it is inlined once.

    The part's code is the driver's own rather than a helper that Numba
    inlines into each driver: that inlining (Numba's untyped passes over the
    helper, at every call) was 0.3-0.5 s of the driver's 2 s of compiling,
    and without it the driver compiles for about 0.15 s less (lowering and
    LLVM take back part of it), with the same arithmetic, results and speed.
    """
    def driver(X, w, has_weights, layout, ref, reload, means, factor, log_const, segments, bounds,
               mass_parts, first_parts, second_parts, loglik_parts, out, counter):
        n_parts = bounds.shape[0] - 1
        d = means.shape[1]
        n_models = segments.shape[0] - 1
        # this thread's scratch, for every part it takes
        xt, sd, sr, logp, wb, t, t2, q, mx, s = _pass_buffers(means)
        paired = layouts != _FULL
        xt2, logp2, wb2 = _second_block_buffers(means, paired)
        densities = out.shape[0] > 0
        if layouts == MIXED:
            # the diag models' 1/sigma as C-contiguous rows, as a pass of their own
            # reads them: a column slice of the wider rows compiled the diag
            # kernel a second time
            sigma_inv = np.empty((factor.shape[0], d), factor.dtype)
            for j in range(factor.shape[0]):
                for a in range(d):
                    sigma_inv[j, a] = factor[j, a]
        else:
            sigma_inv = factor
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            first_row = bounds[p]
            end_row = bounds[p + 1]
            mass = mass_parts[p]
            first = first_parts[p]
            second = second_parts[p]
            loglik = loglik_parts[p]
            for start in range(first_row, end_row, 2 * B if paired else B):
                two = paired and start + B < end_row
                for g in range(n_models):
                    a = segments[g]
                    b = segments[g + 1]
                    is_full = layout[g] == _FULL if layouts == MIXED else layouts == _FULL
                    # this model's rows of everything, sliced once (each slice is code to compile)
                    mg, lg, rg, rg2 = means[a:b], log_const[a:b], logp[a:b], logp2[a:b]
                    load = g == 0 or reload[g]  # the block, centred on this model's reference
                    centre = ref[g]
                    for h in range(2 if two else 1):
                        bx = xt2 if h else xt
                        bp = rg2 if h else rg
                        bw = wb2 if h else wb
                        lo = start + h * B
                        hi = min(lo + B, end_row)
                        if load:
                            load_block(X, lo, hi, w, has_weights, centre, bx, bw)
                        if is_full:
                            block_log_prob_full(bx, mg, factor[a:b], lg, t, t2, q, bp)
                        else:
                            block_log_prob_diag(bx, mg, sigma_inv[a:b], lg, q, bp)
                        if densities:
                            for j in range(b - a):
                                for i in range(hi - lo):
                                    out[lo + i, a + j] = bp[j, i]
                            continue
                        loglik[g] += block_responsibilities(bp, bw, mx, s)
                        if is_full:
                            block_stats_full(bx, mg, bp, sd, sr, mass[a:b], first[a:b], second[a:b])
                    if not is_full and not densities:
                        block_stats_diag(xt, mg, rg, mass[a:b], first[a:b], second[a:b], xt2, rg2, two)
    return _jit_driver(driver)


_segments_mixed = _make_segments(MIXED)
_segments_full = _make_segments(_FULL)
_segments_diag = _make_segments(_DIAG)


def _segments_driver(layout):
    """The driver compiled for the models' ``layout`` (n_models,): every one
    FULL, every one DIAG, or MIXED. With both layouts' kernels inlined behind a run-time flag,
    the full pass took 0.44 s per 1M points (d = k = 16, one thread, Zen 4)
    against 0.36-0.38 s specialised."""
    full = layout == _FULL
    return _segments_full if full.all() else _segments_diag if not full.any() else _segments_mixed


def accumulate_segments(X, w, has_weights, layout, ref, reload, means, factor, log_const,
                        segments, bounds, mass, first, second, loglik):
    """Fused E-step and statistics over row parts, for one model or several
    in one pass over X.

    The models' components are concatenated (``segments``: (n_models + 1,)
    int64 component boundaries). Each block of rows is read once and each
    model then runs exactly the arithmetic of a pass of its own: its rows
    centred on its own reference, its own layout, its own
    responsibilities and statistics. So a model's numbers do not depend on
    the company it keeps (only on the part boundaries, as always).

    Parameters
    ----------
    X : (n, d) float32 or float64, C-contiguous
    w : (n,) float64 sample weights, read only when ``has_weights``
    layout : (n_models,) int64, each model's ``Layout``: FULL ('full', 'tied')
        or DIAG ('diag', 'spherical')
    ref : (n_models, d) float64, each model's centre of the rows (zeros for
        float64 compute)
    reload : (n_models,) bool, whether model g's reference differs from model
        g - 1's (the block is centred again; model 0 always loads it)
    means : (K, d) ``mu_j - ref``, float64 or float32: the compute dtype
    factor : (K, W) flattened upper ``U_j`` of the full models, ``1/sigma`` of
        the others in the first d entries of their rows; ``W = d * d`` when
        any model is full, else ``d``; compute dtype
    log_const : (K,) ``log w_j - d/2 log 2pi + log det U_j`` (any constant
        shift of a model's components is the caller's to add back); compute dtype
    bounds : (n_parts + 1,) int64 row boundaries, multiples of B
    mass : (n_parts, K), first : (n_parts, K, d), second : (n_parts, K, W):
        lower triangles of the full models, diagonals (first d entries) of the
        others; loglik : (n_parts, n_models)
        Outputs, zeroed by the caller; part ``p`` writes only index ``p``.
    """
    _run(X, w, has_weights, layout, ref, reload, means, factor, log_const, segments, bounds,
         mass, first, second, loglik, _NO_ROWS)


def _run(X, w, has_weights, layout, ref, reload, means, factor, log_const, segments, bounds,
         mass, first, second, loglik, out):
    """The pass driver for the models' layouts over every row part: the
    statistics, or with rows in ``out`` (n, K) the weighted log-densities."""
    run_parts(_segments_driver(layout), bounds.shape[0] - 1, X, w, has_weights, layout, ref,
              reload, means, factor, log_const, segments, bounds, mass, first, second, loglik,
              out)


def _one_model(layout, ref, means):
    """:func:`accumulate_segments`' per-model arguments for one model."""
    return (np.array([layout], dtype=np.int64), ref.reshape(1, -1), np.zeros(1, dtype=np.bool_),
            np.array([0, means.shape[0]], dtype=np.int64))


def accumulate(X, w, has_weights, layout, ref, means, factor, log_const, bounds,
               mass, first, second, loglik):
    """:func:`accumulate_segments` for one model: ``layout`` a ``Layout``,
    ``ref`` (d,) and ``loglik`` (n_parts,); the same compiled drivers.

    ``second`` is (n_parts, k, d * d) for FULL, else (n_parts, k, d).
    """
    models, refs, reload, segments = _one_model(layout, ref, means)
    _run(X, w, has_weights, models, refs, reload, means, factor, log_const, segments, bounds,
         mass, first, second, loglik.reshape(-1, 1), _NO_ROWS)


#: ``out`` of a statistics pass: no rows, so the pass computes statistics.
_NO_ROWS = np.empty((0, 0))


@stack_helper
def log_prob_rows(X, layout, ref, means, factor, log_const, first_row, end_row, out, out_row):
    """Log-densities of rows ``first_row:end_row`` into ``out`` from row ``out_row`` on
    (``layout`` a constant ``Layout`` value where the drivers inline it)."""
    k = means.shape[0]
    no_weights = np.empty(0, ref.dtype)  # float64, in a signature the pass compiles
    xt, _, _, logp, wb, t, t2, q, _, _ = _pass_buffers(means)
    for start in range(first_row, end_row, B):
        stop = min(start + B, end_row)
        load_block(X, start, stop, no_weights, False, ref, xt, wb)
        if layout == _FULL:
            block_log_prob_full(xt, means, factor, log_const, t, t2, q, logp)
        else:
            block_log_prob_diag(xt, means, factor, log_const, q, logp)
        row = out_row + start - first_row
        for i in range(stop - start):
            for j in range(k):
                out[row + i, j] = logp[j, i]


@stack_helper
def weighted_stats_rows(X, first_row, end_row, scale, layout, ref, means, weights, weights_row,
                        mass, first, second):
    """Statistics of rows ``first_row:end_row`` with given weights, added to
    ``mass`` (k,), ``first`` (k, d) and ``second`` as :func:`accumulate`'s:
    row ``i`` weighs ``scale * weights[weights_row + i - first_row, j]`` in
    component ``j`` (a hidden Markov model's state posteriors, where a
    mixture's pass computes its responsibilities)."""
    k = means.shape[0]
    no_weights = np.empty(0, ref.dtype)  # float64, in a signature the pass compiles
    xt, sd, sr, resp, wb, _, _, _, _, _ = _pass_buffers(means)
    xt2, resp2, _ = _second_block_buffers(means, False)
    # a run-time False: a literal one would compile block_stats_diag again
    two = resp2.shape[1] > 0  # resp2 is empty: False
    for start in range(first_row, end_row, B):
        stop = min(start + B, end_row)
        load_block(X, start, stop, no_weights, False, ref, xt, wb)
        row = weights_row + start - first_row
        for j in range(k):
            for i in range(stop - start):
                resp[j, i] = scale * weights[row + i, j]
            for i in range(stop - start, B):
                resp[j, i] = 0.0
        if layout == _FULL:
            block_stats_full(xt, means, resp, sd, sr, mass, first, second)
        else:
            block_stats_diag(xt, means, resp, mass, first, second, xt2, resp2, two)


def log_prob(X, layout, ref, means, factor, log_const, bounds, out):
    """Weighted log-densities ``log w_j + log N(x_i | j)`` into ``out`` (n, k)
    float64; arguments as in :func:`accumulate`.

    The pass drivers compute them on their way to the statistics, so they
    write them out here, with no weights and no statistics: a first
    ``predict`` after a fit then compiles nothing. A log-density driver of
    its own compiled for 0.6 s where writing them out costs the pass driver
    0.2 s (CPU s from an empty cache, default fit, AMD EPYC Zen 4), and ran
    no faster.
    """
    n_parts = bounds.shape[0] - 1
    models, refs, reload, segments = _one_model(layout, ref, means)
    _run(X, np.empty(0), False, models, refs, reload, means, factor, log_const, segments, bounds,
         np.empty((n_parts, 0)), np.empty((n_parts, 0, 0)), np.empty((n_parts, 0, 0)),
         np.empty((n_parts, 1)), out)


def _make_weighted_stats(layout):
    """The given-weights statistics driver of one layout."""
    def driver(X, ref, means, weights, bounds, mass, first, second, counter):
        n_parts = bounds.shape[0] - 1
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            weighted_stats_rows(X, bounds[p], bounds[p + 1], 1.0, layout, ref, means, weights,
                                bounds[p], mass[p], first[p], second[p])
    return _jit_driver(driver)


_weighted_stats_full = _make_weighted_stats(_FULL)
_weighted_stats_diag = _make_weighted_stats(_DIAG)


def weighted_stats(X, layout, ref, means, weights, bounds, mass, first, second):
    """Statistics of every row with given per-component weights ``weights``
    (n, k), float64, into per-part ``mass``, ``first``, ``second`` (zeroed by
    the caller); other arguments as in :func:`accumulate`."""
    driver = _weighted_stats_full if layout == _FULL else _weighted_stats_diag
    run_parts(driver, bounds.shape[0] - 1, X, ref, means, weights, bounds, mass, first, second)
