"""Numba CPU kernels for rows with missing values (NaN): the E-step of EM for
incomplete data (Ghahramani & Jordan, 1994) and its log-densities.

A row's missing coordinates ``m`` are latent, like its component. Under
component ``j`` with mean ``mu`` and precision ``P = U U^T``, with ``o`` the
observed coordinates and ``delta0`` the deviation ``x - mu`` with zeros at
the missing coordinates:

* the missing coordinates given the observed ones are Gaussian, with mean
  ``mu_m - e``, ``e = P_mm^-1 z``, ``z = (P delta0)_m``, and covariance
  ``P_mm^-1`` (the Schur complement, read off the precision: only a
  ``|m| x |m|`` factorisation per row and component, cheap for the few
  missing values of a typical row);
* the completed deviation ``delta`` (``delta0``, and ``-e`` at the missing
  coordinates) has ``delta^T P delta = delta0^T P delta0 - z^T e``, the
  observed coordinates' marginal quadratic form, and ``log det Sigma_oo =
  log det Sigma + log det P_mm``; so the marginal log-density of ``x_o`` is
  the complete kernel's expression at ``delta0`` plus
  ``|m|/2 log 2pi - 1/2 log det P_mm + 1/2 z^T e``;
* the expected statistics add ``r_ij delta`` to the first moment and
  ``r_ij (delta delta^T + P_mm^-1)`` (the conditional covariance in the
  missing block) to the second.

For diagonal precisions the conditional mean is ``mu_m`` (``delta`` is
``delta0``) and the conditional variances are the component's own.
Statistics are centred on the component means (what the M-step's
``Stats.centres`` says), computed in float64 or in float32
(``fastem._precision``'s rule: rows centred on a reference in float64
first, as the complete data's float32 pass does; sums over a block in the
compute dtype, over blocks in float64).

How the work is laid out (blocks of ``BLOCK_ROWS`` rows, held transposed as
in :mod:`.gaussian`, the last block padded with weight-0 rows):

1. per component, the quadratic form ``delta0^T P delta0`` of the block's rows
   by the complete kernel's triangular product
   (:func:`.gaussian.block_log_prob_full` on the block itself, the
   component's mean written into its missing entries), vectorised over rows;
2. per row with missing values, everything that depends on its pattern of
   missing values — ``z``, the Cholesky factor of ``P_mm``, ``e``, the
   log-density's correction, then (in the pass) the row's responsibilities
   and its conditional covariance — **vectorised over components**: the
   pattern is the same for every component, so with the precisions stored
   component-last (``prec_t[a, b, j]``) every step is an explicit vector of
   components loaded from contiguous memory (in float64, 16 where there
   are more than 8, two registers' worth; in float32, 16 in one register;
   :func:`_condition_row` says why);
3. per component, the statistics of the completed deviations by the complete
   kernel's register tiles (:func:`.gaussian.block_stats_full` on the block
   with the component's conditional means in its missing entries), or a
   masked version of the diagonal ones.

Measured against the previous layout (blocks of 64 rows, the ``P_mm``
factorisations row by row and component by component, a full ``P delta0``
product per component, the statistics' sums left to LLVM and one
``math.exp`` per entry), an iteration on 400,000 x 16 rows, k = 16, 20 %
missing (``benchmarks/missing_speed.py``, two threads, Zen 1): 'full' 1.53
-> 0.56 s (6.0x -> 2.2x the complete-data iteration), 'diag' 0.200 -> 0.095
s (2.8x -> 1.4x). The price is compile time: from an empty cache the 'full'
pass driver compiles in about 13 s instead of 7 (it inlines the complete
kernel's register-tiled helpers). On Zen 4 (AVX-512), where the complete
kernels run faster, 1,000,000 x 16 rows: 'full' 3.6-4.1x -> 2.9-3.3x the
complete-data iteration with :func:`_fill_means` and the vectorised
log-determinants (:func:`_condition_row`), 'diag' 1.8-2.0x -> 1.56-1.58x
with the missing mass summed in the tiles (:func:`_block_stats_diag`).
Then, 1,000,000 x 16 rows on Zen 4 in the same runs (``missing_speed.py``,
three alternating rounds): 'full' 3.78x -> 3.16x and 'diag' 1.70x -> 1.53x
on a busy machine, 'full' 2.86-3.09x and 'diag' 1.49-1.53x on a quiet one,
from vectors of 16 components, :func:`_fill_means` as a blend, the missing
entries' indices unsigned (no wrap-around test on each,
:func:`_fill_conditional_means`) and the diagonal pass's rows transposed in
register tiles (:func:`_values_in_tiles`).

Threads as :mod:`.gaussian`: the layout (FULL for full and tied, DIAG for
diag and spherical) is a compile-time constant of each driver (``full``
inside them), parts of rows are
handed to threads one at a time, each part writes its own outputs and the
caller reduces them in a fixed order (bit-identical for any thread count).
A row with nothing observed has log-density ``log w_j`` under every
component (density 1); the estimators give it weight zero before a fit.
"""

import math

import numpy as np

from ..._covariance import Layout
from ...config import BLOCK_ROWS
from ._elementary import fast_exp, log_of_product, split_product
from ._jit import driver as _jit_driver, helper, stack_helper
from ._parts import next_part, run_parts
from ._simd import (LANES, lanes, like, vadd, vdiv, vfma, vlane, vload, vload_as, vmul, vsplat,
                    vsplat_as, vsqrt, vstore, vsub, vsum8, vtranspose, vzero, wzero)
from ._stack import panel_rows
from .gaussian import (_pass_buffers, block_log_prob_full, block_responsibilities,
                       block_stats_full)

B = BLOCK_ROWS
_FULL, _DIAG = int(Layout.FULL), int(Layout.DIAG)
LOG_2PI = math.log(2.0 * math.pi)
#: Components per step of the per-row conditioning where there are that many
#: (:func:`_condition_row` says why).
WIDE = 2 * LANES


@helper
def _values_by_feature(X, start, m, ref, xt, ot):
    """Rows ``start:start + m`` centred on ``ref`` (d,) in float64, then
    narrowed to the compute dtype, transposed into ``xt`` (d, B) with NaN as
    0, and ``ot`` (d, B): 1 observed, 0 missing; feature by feature (LLVM
    gathers each feature's strided values), with no branch on NaN: a fifth
    of the entries missing at random mispredicts too often. Row by row
    instead (a row's features 1 KiB apart in the block) lost: 9 against 18
    ms per 200,000 x 16 rows on Zen 1 (one thread), the 'diag' pass 0.028
    -> 0.032 s on Zen 4."""
    d = X.shape[1]
    for a in range(d):
        for i in range(m):
            v = X[start + i, a]
            gone = math.isnan(v)
            xt[a, i] = 0.0 if gone else np.float64(v) - ref[a]
            ot[a, i] = 0.0 if gone else 1.0


@helper
def _values_in_tiles(X, start, m, ref, xt, ot):
    """:func:`_values_by_feature` in square tiles of ``n x n`` values (``n``
    the vector lanes) transposed in registers (:func:`.._simd.vtranspose`),
    the rest value by value; then NaN to 0 and the centring, feature by
    feature over the contiguous block (X and the block of one dtype).

    The diagonal layout's pass 0.0276 -> 0.0246 s with it (200,000 x 16 rows,
    k = 16, 20 % missing, one thread, Zen 4, medians of 7 in three
    alternating runs): the gathers had taken a quarter of the pass. The
    'full' layout's pass ran 5 % slower with it (0.163 -> 0.172 s; why, not
    found) and keeps :func:`_values_by_feature`."""
    d = X.shape[1]
    n = lanes(xt)
    mt = m - m % n
    dt = d - d % n
    for i0 in range(0, mt, n):
        for a0 in range(0, dt, n):
            vtranspose(X, (start + i0) * d + a0, d, xt, a0 * B + i0, B)
    for a in range(dt, d):
        for i in range(mt):
            xt[a, i] = X[start + i, a]
    for a in range(d):
        for i in range(mt, m):
            xt[a, i] = X[start + i, a]
    for a in range(d):
        r = ref[a]
        for i in range(m):
            v = xt[a, i]
            gone = math.isnan(v)
            xt[a, i] = 0.0 if gone else np.float64(v) - r
            ot[a, i] = 0.0 if gone else 1.0


@helper
def _finish_block(X, start, stop, w, has_weights, xt, ot, mis, qs, offs, wb):
    """After the values of rows ``start:stop`` are in ``xt`` and ``ot``
    (:func:`_values_by_feature`, :func:`_values_in_tiles`): each row's
    missing indices into ``mis[i, :q]``, ``q`` into ``qs[i]`` and the running
    sum of the ``q`` (where the row's ``e`` starts in a block's ``E``) into
    ``offs[i]``; weights into ``wb``. Rows past ``stop`` repeat row ``start``
    with weight 0 and nothing missing (their NaN read as 0), so they are
    finite and add nothing. ``mis`` with no rows: no lists (the diagonal
    pass reads ``ot`` only)."""
    d = X.shape[1]
    m = stop - start
    lists = mis.shape[0] > 0
    off = 0
    for i in range(m):
        if lists:
            q = 0
            for a in range(d):
                mis[i, q] = a
                q += math.isnan(X[start + i, a])
            qs[i] = q
            offs[i] = off
            off += q
        wb[i] = w[start + i] if has_weights else 1.0
    for i in range(m, B):
        for a in range(d):
            xt[a, i] = xt[a, 0]
            ot[a, i] = 1.0
        if lists:
            qs[i] = 0
            offs[i] = off
        wb[i] = 0.0


@helper
def _missing_entries(mis, qs, m_feat, m_row):
    """The block's missing entries, row after row, in the order of the rows of
    ``E`` (:func:`_condition_row`): entry ``n`` is feature ``m_feat[n]`` of
    row ``m_row[n]``. Returns their number."""
    n = 0
    for i in range(B):
        for s in range(qs[i]):
            m_feat[n] = mis[i, s]
            m_row[n] = i
            n += 1
    return n


@helper
def _fill_means(xt, ot, means, j):
    """Component ``j``'s mean into each missing entry of the block ``xt``
    (where ``ot`` is 0), so that the complete kernels, which form ``x -
    mu_j``, see a deviation of exactly 0 there: the observed coordinates'
    quadratic form.

    As a blend over the whole block, ``d B`` vector-friendly writes per
    component, against a store into each missing entry (a scatter: a fifth
    as many writes): the 'full' pass 0.171 -> 0.160 s (200,000 x 16 rows,
    k = 16, 20 % missing, one thread, Zen 4, medians of 7 in three
    alternating runs). Before that, the stores had won, 0.245 -> 0.221 s
    (400,000 rows, two threads), against forming each component's deviations
    in a (d, B) buffer and handing the kernels zero means. The log-densities
    are bit-identical."""
    d = xt.shape[0]
    for a in range(d):
        mu = means[j, a]
        for i in range(B):
            xt[a, i] = xt[a, i] if ot[a, i] != 0.0 else mu


@helper
def _fill_conditional_means(xt, m_feat, m_row, nnz, means, j, E):
    """Component ``j``'s conditional mean ``mu_j - e`` of each missing entry
    into the block ``xt`` (``e`` in ``E``'s rows, :func:`_missing_entries`'
    order): the completed rows, whose deviations from ``mu_j`` the
    statistics sum. Against the deviations ``-e`` written into a buffer of
    zeros (as in :func:`_fill_means`) the statistics move by round-off: ``(mu
    - e) - mu`` for ``-e``, the precision of an observed value as large as
    the mean. (A blend as in :func:`_fill_means`, gathering ``E[n, j]``
    through a (d, B) map of entry numbers, lost: 0.163 -> 0.183 s.)"""
    for n in range(nnz):
        a = m_feat[n]
        xt[a, m_row[n]] = means[j, a] - E[n, j]


@helper
def _full_buffers(means_t, k, d):
    """One part's scratch for the 'full' layout, components last and padded
    to ``kp`` (a multiple of the vector lanes), of the compute dtype (that of
    ``means_t`` (d, kp)) but ``adj`` (float64): the row helpers' ``L`` (d, d,
    kp), ``dv`` (d, kp), ``adj``, ``corr``, ``col`` (kp,); ``E`` (B * d, kp)
    the block's ``e``, row after row; ``cond`` (d, d, kp) a block's
    conditional covariances; ``mis`` (B, d), ``qs``, ``offs`` (B,) int64;
    ``ot`` (d, B); ``m_feat``, ``m_row`` (B * d,) uint64 (:func:`_missing_entries`:
    unsigned, so that indexing with them skips Numba's test for negative
    indices, which cost the 'full' pass 5 %: 0.178 -> 0.169 s, as in
    :func:`_fill_means`);
    ``expo`` (kp,) int64 (:func:`_condition_row`'s exponents).
    ``col`` has ``max(k, kp)`` entries; those past ``k`` stay 0. (The
    imputation's diagonal driver uses the lists and ``ot``: its ``means_t``
    is empty, so ``d`` comes apart.)"""
    kp = means_t.shape[1]
    dt = means_t.dtype
    return (np.empty((d, d, kp), dt), np.empty((d, kp), dt), np.empty(kp), np.empty(kp, dt),
            np.zeros(max(k, kp), dt), np.empty((B * d, kp), dt), np.zeros((d, d, kp), dt),
            np.empty((B, d), dtype=np.int64), np.empty(B, dtype=np.int64),
            np.empty(B, dtype=np.int64), np.empty((d, B)), np.empty(B * d, dtype=np.uint64),
            np.empty(B * d, dtype=np.uint64), np.empty(kp, dtype=np.int64))


@helper
def _condition_lanes(i, q, m, off, xt, ot, means_t, prec_t, L, E, dv, corr, j0, zero):
    """:func:`_condition_row` for the components ``j0`` on, as many as
    ``zero`` has lanes (the vector type every step works in)."""
    d, kp = means_t.shape
    one = vsplat_as(1.0, zero)
    for a in range(d):  # delta0 of every component, 0 at the missing coordinates
        o = vsplat_as(ot[a, i], zero)
        x = vsplat_as(xt[a, i], zero)
        vstore(dv, a * kp + j0, vmul(o, vsub(x, vload_as(means_t, a * kp + j0, zero))))
    for s in range(0, q, 2):  # z = (P delta0)_m, two coordinates at a time
        s1 = min(s + 1, q - 1)  # (the last one twice when q is odd)
        row0 = m[s] * d * kp + j0
        row1 = m[s1] * d * kp + j0
        z0 = zero
        z1 = zero
        for a in range(d):
            v = vload_as(dv, a * kp + j0, zero)
            z0 = vfma(vload_as(prec_t, row0 + a * kp, zero), v, z0)
            z1 = vfma(vload_as(prec_t, row1 + a * kp, zero), v, z1)
        vstore(E, (off + s) * kp + j0, z0)
        vstore(E, (off + s1) * kp + j0, z1)
    for s in range(q):  # Cholesky of P_mm, a principal block of a positive-definite matrix
        for t in range(s + 1):
            v = vload_as(prec_t, (m[s] * d + m[t]) * kp + j0, zero)
            for c in range(t):
                v = vsub(v, vmul(vload_as(L, (s * d + c) * kp + j0, zero),
                                 vload_as(L, (t * d + c) * kp + j0, zero)))
            if s == t:
                v = vdiv(one, vsqrt(v))
            else:
                v = vmul(v, vload_as(L, (t * d + t) * kp + j0, zero))
            vstore(L, (s * d + t) * kp + j0, v)
    c2 = zero
    for s in range(q):  # L y = z, and ||y||^2 = z^T e
        v = vload_as(E, (off + s) * kp + j0, zero)
        for t in range(s):
            v = vsub(v, vmul(vload_as(L, (s * d + t) * kp + j0, zero),
                             vload_as(E, (off + t) * kp + j0, zero)))
        v = vmul(v, vload_as(L, (s * d + s) * kp + j0, zero))
        c2 = vfma(v, v, c2)
        vstore(E, (off + s) * kp + j0, v)
    vstore(corr, j0, vmul(vsplat_as(0.5, zero), c2))
    for s in range(q - 1, -1, -1):  # L^T e = y
        v = vload_as(E, (off + s) * kp + j0, zero)
        for t in range(s + 1, q):
            v = vsub(v, vmul(vload_as(L, (t * d + s) * kp + j0, zero),
                             vload_as(E, (off + t) * kp + j0, zero)))
        vstore(E, (off + s) * kp + j0, vmul(v, vload_as(L, (s * d + s) * kp + j0, zero)))


@helper
def _condition_row(i, q, m, off, xt, ot, means_t, prec_t, L, E, dv, adj, corr, expo, zero):
    """Row ``i``'s conditional of its ``q`` missing coordinates ``m`` under
    every component at once, in explicit vectors of components
    (``means_t`` (d, kp), ``prec_t`` (d, d, kp): components last, padded to
    ``kp`` with finite values; a padded lane's results are never read).

    Fills ``L[:q, :q, j]`` with the lower Cholesky factor of ``P_mm`` **with
    its diagonal stored inverted** (``1 / l_ss``: every solve then multiplies
    instead of dividing), ``E[off:off + q, j]`` with ``e = P_mm^-1 (P
    delta0)_m``, ``adj[j]`` with ``|m|/2 log 2pi - 1/2 log det P_mm`` and
    ``corr[j]`` with ``1/2 z^T e``: the row's log-density under component
    ``j`` is the complete kernel's at ``delta0`` plus ``adj + corr``.

    Why explicit vectors: the same loops over components written as scalar
    loops (LLVM vectorising each one, with run-time overlap checks and
    remainders) took 273 ms against these 175 ms per 200,000 x 16 rows
    (k = 16, 20 % missing, one thread, Zen 1); they compiled as fast.

    Why vectors of 16 components where there are 16 (:func:`.._simd.wzero`),
    and 8 for the rest: each step of a row waits for the last (the
    Cholesky's pivots, a square root and a division each, most of all), so
    a statement that issues two independent vector instructions runs almost
    as fast as one. With :func:`_condition_lanes` computing ``z`` for two
    coordinates at a time (four independent chains), the 'full' pass 0.200
    -> 0.178 s (200,000 x 16 rows, k = 16, 20 % missing, one thread, Zen 4,
    medians of 7 in three alternating runs; the same bits). For k <= 8 the
    second register would be padding: 20 % slower there, so those keep
    vectors of 8 (:func:`_pass_driver`). In float32 one register holds 16
    components, and every k works in those (:func:`padded_components`).

    Tried and dropped (same measurement): the Cholesky before ``z`` (to
    overlap its latency with ``z``'s arithmetic), 0.163 -> 0.169 s; ``L``
    stored with a row stride of ``q`` instead of ``d``, 0.170 -> 0.178 s;
    ``L^-1`` formed before the responsibilities, no change; every row
    conditioned first, then the block's responsibilities at once and the
    conditional covariances from a packed buffer of ``P_mm^-1``, 0.163 ->
    0.21 s."""
    d, kp = means_t.shape
    for j0 in range(0, kp, lanes(zero)):
        _condition_lanes(i, q, m, off, xt, ot, means_t, prec_t, L, E, dv, corr, j0, zero)
    # -1/2 log det P_mm = log prod_s L[s, s] (the diagonal holds 1 / l_ss): the product
    # as a mantissa and an exponent apart, then one logarithm of it, in loops
    # over components that vectorise. Against a libm logarithm per component
    # and row (the product rescaled whenever it left 1e+-150): the 'full'
    # pass 0.221 -> 0.209 s (as in _fill_means); log-densities within an
    # ulp of before
    for j in range(kp):
        adj[j] = 1.0
        expo[j] = 0
    for s in range(q):
        for j in range(kp):
            adj[j], expo[j] = split_product(adj[j], expo[j], L[s, s, j])
    half_q_log_2pi = 0.5 * q * LOG_2PI
    for j in range(kp):
        # a pivot that was not positive (a precision singular to round-off)
        # left NaN in the mantissa, which stays NaN here, as a logarithm's would
        adj[j] = half_q_log_2pi + log_of_product(adj[j], expo[j])


@helper
def _row_responsibilities(col, k, w):
    """``col[:k]``, a row's weighted log-densities, into ``w r_j`` in place
    (all 0 when every density is 0 or infinite); returns ``w log p(x)``
    (the log-density itself, unweighted, when ``w`` is 0 or 1)."""
    mx = -np.inf
    for j in range(k):
        mx = max(mx, col[j])
    if not (mx > -np.inf and mx < np.inf):
        for j in range(k):
            col[j] = 0.0
        return w * mx if w != 0.0 else 0.0
    s = 0.0
    for j in range(k):
        col[j] = fast_exp(col[j] - mx)
        s += col[j]
    scale = w / s
    for j in range(k):
        col[j] *= scale
    return w * (mx + math.log(s))


@helper
def _conditional_covariance_lanes(q, m, L, col, cond, j0, zero):
    """:func:`_add_conditional_covariance` for the components ``j0`` on, as
    many as ``zero`` has lanes."""
    d, _, kp = L.shape
    for s in range(q):
        ss = vload_as(L, (s * d + s) * kp + j0, zero)
        for t in range(s):  # L^-1[s, t] = -L^-1[s, s] sum_{c=t}^{s-1} L[s, c] L^-1[c, t]
            v = vmul(vload_as(L, (s * d + t) * kp + j0, zero),
                     vload_as(L, (t * d + t) * kp + j0, zero))
            for c in range(t + 1, s):
                v = vfma(vload_as(L, (s * d + c) * kp + j0, zero),
                         vload_as(L, (c * d + t) * kp + j0, zero), v)
            vstore(L, (s * d + t) * kp + j0, vmul(vsub(zero, ss), v))
    r = vload_as(col, j0, zero)
    for s in range(q):
        for t in range(s + 1):
            v = zero
            for c in range(s, q):
                v = vfma(vload_as(L, (c * d + s) * kp + j0, zero),
                         vload_as(L, (c * d + t) * kp + j0, zero), v)
            at = (m[s] * d + m[t]) * kp + j0
            vstore(cond, at, vfma(r, v, vload_as(cond, at, zero)))


@helper
def _add_conditional_covariance(q, m, L, col, cond, zero):
    """``cond[m_s, m_t, j] += col[j] (P_mm^-1)[s, t]`` for ``t <= s``, from
    the factor :func:`_condition_row` left in ``L`` (overwritten: its
    strictly lower part by that of ``L^-1``, whose diagonal it already
    holds), as ``P_mm^-1 = L^-T L^-1``; in vectors of components as there."""
    kp = L.shape[2]
    for j0 in range(0, kp, lanes(zero)):
        _conditional_covariance_lanes(q, m, L, col, cond, j0, zero)


@helper
def _block_rows(start, stop, densities, qs, mis, offs, xt, ot, means_t, prec_t, L, E, dv, adj,
                corr, expo, lp, col, wb, cond, out, zero):
    """The row by row part of :func:`_full_part` for one block: each row's
    conditioning (:func:`_condition_row`), log-densities (into ``lp``, or
    ``out``), responsibilities and conditional covariances, in vectors of
    ``zero``'s lanes; returns the block's ``sum_i w_i log p(x_i,o)``."""
    k = lp.shape[0]
    ll = 0.0
    for i in range(B):
        q = qs[i]
        if q > 0:
            _condition_row(i, q, mis[i], offs[i], xt, ot, means_t, prec_t, L, E, dv, adj, corr,
                           expo, zero)
            for j in range(k):
                col[j] = lp[j, i] + adj[j] + corr[j]
        else:
            for j in range(k):
                col[j] = lp[j, i]
        if densities:
            if start + i < stop:
                for j in range(k):
                    out[start + i, j] = col[j]
            continue
        ll += _row_responsibilities(col, k, wb[i])
        for j in range(k):
            lp[j, i] = col[j]
        if q > 0 and wb[i] != 0.0:
            _add_conditional_covariance(q, mis[i], L, col, cond, zero)
    return ll


@stack_helper
def _full_part(X, w, has_weights, means, means_t, factor, prec_t, log_const, ref, first_row,
               end_row, mass, first, second, out, zero):
    """Rows ``first_row:end_row`` of :func:`accumulate` for the 'full' layout,
    the rows conditioned in vectors of ``zero``'s lanes; returns their ``sum_i
    w_i log p(x_i,o)``. When ``out`` (n, k) has rows,
    the rows' weighted log-densities go to its rows ``first_row:end_row``
    instead, and nothing else is computed."""
    densities = out.shape[0] > 0
    k, d = means.shape
    xt, sd, sr, lp, wb, t, t2, qp, _, _ = _pass_buffers(means)
    L, dv, adj, corr, col, E, cond, mis, qs, offs, ot, m_feat, m_row, expo = _full_buffers(
        means_t, k, d)
    # the part's sums of the blocks' conditional covariances, in float64 as
    # the complete kernels' sums over blocks are
    cond_sum = np.zeros((d, d, means_t.shape[1]))
    ll = 0.0
    for start in range(first_row, end_row, B):
        stop = min(start + B, end_row)
        _values_by_feature(X, start, stop - start, ref, xt, ot)
        _finish_block(X, start, stop, w, has_weights, xt, ot, mis, qs, offs, wb)
        nnz = _missing_entries(mis, qs, m_feat, m_row)
        for j in range(k):
            _fill_means(xt, ot, means, j)
            block_log_prob_full(xt, means[j:j + 1], factor[j:j + 1], log_const[j:j + 1], t, t2,
                                qp, lp[j:j + 1])
        ll += _block_rows(start, stop, densities, qs, mis, offs, xt, ot, means_t, prec_t, L, E,
                          dv, adj, corr, expo, lp, col, wb, cond, out, zero)
        if densities:
            continue
        for j in range(k):
            _fill_conditional_means(xt, m_feat, m_row, nnz, means, j, E)
            block_stats_full(xt, means[j:j + 1], lp[j:j + 1], sd, sr, mass[j:j + 1],
                             first[j:j + 1], second[j:j + 1])
        if nnz > 0:
            _add_block_sums(cond, cond_sum)
    if not densities:
        for j in range(k):
            for a in range(d):
                for b in range(a + 1):
                    second[j, a * d + b] += cond_sum[a, b, j]
    return ll


@helper
def _add_block_sums(cond, cond_sum):
    """A block's conditional covariances ``cond`` (lower triangles) into the
    part's float64 ``cond_sum``, and ``cond`` to zero for the next block: a
    part's thousands of rows are not summed in float32. (In float64 the
    bits move by round-off against one sum over the part; the 'full' pass
    took as long.)"""
    d, _, kp = cond.shape
    for a in range(d):
        for b in range(a + 1):
            for j in range(kp):
                cond_sum[a, b, j] += cond[a, b, j]
                cond[a, b, j] = 0.0


@helper
def _hidden_terms(factor, log_const):
    """For :func:`_block_log_prob_diag`: ``two_h[j, a] = log 2pi - 2 log f_ja``,
    twice what a missing coordinate adds to a log-density where the complete
    density has ``-1/2 log 2pi + log f`` in ``log_const``, and ``c[j] =
    log_const[j] + 1/2 sum_a two_h[j, a]`` (the log-density of a row with
    nothing observed). Once per part: a logarithm per entry per block cost
    the diagonal pass a tenth of its time."""
    k, d = factor.shape
    two_h = np.empty((k, d), factor.dtype)
    c = np.empty(k)
    for j in range(k):
        total = 0.0
        for a in range(d):
            h = LOG_2PI - 2.0 * math.log(np.float64(factor[j, a]))
            two_h[j, a] = h
            total += h
        c[j] = log_const[j] + 0.5 * total
    return two_h, c


@helper
def _block_log_prob_diag(xt, ot, means, factor, two_h, c, q, lp):
    """Every component's marginal log-densities of the block's rows into
    ``lp`` (k, B), from :func:`_hidden_terms`'s ``two_h`` and ``c``: ``c - 1/2
    sum_a o_a ((x_a - mu_a)^2 f_a^2 + two_h_a)``. Written as the complete
    kernel's :func:`.gaussian.block_log_prob_diag` (register panels, ``q``
    one panel's stack accumulator), with ``o (x - mu)`` as ``x0 - o mu``
    (``x0``: 0 where missing), one FMA."""
    k, d = means.shape
    P = panel_rows(lp)
    for h in range(0, B, P):
        for j in range(k):
            for i in range(P):
                q[i] = 0.0
            for a in range(d):
                mu = means[j, a]
                f = factor[j, a]
                th = two_h[j, a]
                for i in range(P):
                    o = ot[a, h + i]
                    v = (xt[a, h + i] - o * mu) * f
                    q[i] += v * v + o * th
            cj = c[j]
            for i in range(P):
                lp[j, h + i] = cj - 0.5 * q[i]


@helper
def _masked_diag_tile(xt, ot, resp, j, a0, a1, mu0, mu1, like_arr):
    """Over the block: ``sum r e``, ``sum r e^2`` and ``sum r o`` of
    features ``a0``, ``a1`` (``e = o (x - mu)``, 0 where missing; ``o``, 0
    where missing), in lanes 0-1, 2-3 and 4-5 of one :func:`vsum8`."""
    f0 = vzero(like_arr)
    f1 = vzero(like_arr)
    s0 = vzero(like_arr)
    s1 = vzero(like_arr)
    u0 = vzero(like_arr)
    u1 = vzero(like_arr)
    for i in range(0, B, lanes(like_arr)):
        r = vload(resp, j * B + i)
        o0 = vload(ot, a0 * B + i)
        o1 = vload(ot, a1 * B + i)
        e0 = vsub(vload(xt, a0 * B + i), vmul(o0, mu0))  # x0 - o mu
        e1 = vsub(vload(xt, a1 * B + i), vmul(o1, mu1))
        r0 = vmul(r, e0)
        r1 = vmul(r, e1)
        f0 = vadd(f0, r0)
        f1 = vadd(f1, r1)
        s0 = vfma(r0, e0, s0)
        s1 = vfma(r1, e1, s1)
        u0 = vfma(r, o0, u0)
        u1 = vfma(r, o1, u1)
    return vsum8(f0, f1, s0, s1, u0, u1, u1, u1)


@helper
def _block_stats_diag(xt, ot, means, resp, mass, first, second, unseen):
    """The diagonal statistics of a block (weights ``resp`` (k, B)): centred
    moments of the observed entries into ``mass``, ``first``, ``second``, and
    each component's responsibility for the missing entries of each feature
    into ``unseen`` (d, k) (the caller adds ``unseen / f^2``, the expected
    square of a missing entry's deviation, to ``second``), as a third pair
    of sums in the register tiles (in :func:`vsum8` lanes that were idle):
    the block's mass less ``sum r o``, the observed entries' share. (Summing
    ``r (1 - o)`` took a subtraction more per entry: the pass 0.0244 ->
    0.0253 s, 200,000 x 16 rows, k = 16, 20 % missing, one thread, Zen 4,
    medians of five alternating runs; the statistics move by round-off.)

    Against summing ``unseen`` row by row over lists of each row's missing
    entries, which :func:`_finish_block` then had to build: the 'diag' pass
    0.035 -> 0.028 s (400,000 x 16 rows, k = 16, 20 % missing, two threads,
    Zen 4, medians of 7 in three alternating runs). On Zen 1 (AVX2) the
    third sum had lost, 18 against 11 ms of a 108 ms pass, when the lists
    were built anyway for the 'full' layout's sake."""
    k, d = means.shape
    for j in range(k):
        n = vzero(resp)
        for i in range(0, B, lanes(resp)):
            n = vadd(n, vload(resp, j * B + i))
        nj = vlane(vsum8(n, n, n, n, n, n, n, n), 0)
        if nj == 0.0:
            continue
        mass[j] += nj
        for a0 in range(0, d, 2):
            a1 = min(a0 + 1, d - 1)
            sums = _masked_diag_tile(xt, ot, resp, j, a0, a1, vsplat(means[j, a0]),
                                     vsplat(means[j, a1]), resp)
            first[j, a0] += vlane(sums, 0)
            second[j, a0] += vlane(sums, 2)
            unseen[a0, j] += nj - vlane(sums, 4)
            if a1 != a0:
                first[j, a1] += vlane(sums, 1)
                second[j, a1] += vlane(sums, 3)
                unseen[a1, j] += nj - vlane(sums, 5)


@stack_helper
def _diag_part(X, w, has_weights, means, factor, log_const, ref, first_row, end_row, mass,
               first, second, out):
    """Rows ``first_row:end_row`` of :func:`accumulate` for the diagonal
    layout: no row depends on another component's numbers, so everything
    runs over the block's rows; returns ``sum_i w_i log p(x_i,o)``, or
    writes the log-densities to ``out`` as :func:`_full_part` does."""
    densities = out.shape[0] > 0
    k, d = means.shape
    xt, _, _, lp, wb, _, _, qp, mx, s = _pass_buffers(means)
    # no lists of missing entries: the tiles sum what is missing from ``ot``
    mis = np.empty((0, d), dtype=np.int64)
    qs = np.empty(0, dtype=np.int64)
    offs = np.empty(0, dtype=np.int64)
    ot = np.empty((d, B), means.dtype)
    unseen = np.zeros((d, k))
    two_h, c = _hidden_terms(factor, log_const)
    ll = 0.0
    for start in range(first_row, end_row, B):
        stop = min(start + B, end_row)
        _values_in_tiles(X, start, stop - start, ref, xt, ot)
        _finish_block(X, start, stop, w, has_weights, xt, ot, mis, qs, offs, wb)
        _block_log_prob_diag(xt, ot, means, factor, two_h, c, qp, lp)
        if densities:
            for j in range(k):
                for i in range(stop - start):
                    out[start + i, j] = lp[j, i]
            continue
        ll += block_responsibilities(lp, wb, mx, s)
        _block_stats_diag(xt, ot, means, lp, mass, first, second, unseen)
    if not densities:
        for j in range(k):
            for a in range(d):
                f = factor[j, a]
                second[j, a] += unseen[a, j] / (f * f)
    return ll


def _make_accumulate(layout, wide=False):
    """The incomplete-data pass driver of one layout (``full`` a compile-time
    constant), for 'full' in vectors of 16 components (``wide``) or of 8."""
    full = layout == _FULL
    def driver(X, w, has_weights, means, means_t, factor, prec_t, log_const, ref, bounds, mass,
               first, second, loglik, out, counter):
        n_parts = bounds.shape[0] - 1
        if wide:
            zero = wzero(means_t)
        else:
            zero = vzero(means_t)
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            if full:
                loglik[p] = _full_part(X, w, has_weights, means, means_t, factor, prec_t,
                                       log_const, ref, bounds[p], bounds[p + 1], mass[p],
                                       first[p], second[p], out, zero)
            else:
                loglik[p] = _diag_part(X, w, has_weights, means, factor, log_const, ref,
                                       bounds[p], bounds[p + 1], mass[p], first[p], second[p],
                                       out)
    return _jit_driver(driver)


_accumulate_full = _make_accumulate(_FULL)
_accumulate_full_wide = _make_accumulate(_FULL, wide=True)
_accumulate_diag = _make_accumulate(_DIAG)


def padded_components(k, dtype):
    """``kp``, the components of the 'full' layout's conditioning padded to
    its vectors: of two float64 registers (``WIDE``) past one register's
    ``LANES``, else of one register (16 float32 components per step for
    any k: one more driver for k > 16 would cost seconds of compiling for
    few users)."""
    if np.dtype(dtype) != np.float64:
        step = 2 * LANES  # one register of float32
    else:
        step = WIDE if k > LANES else LANES
    return -(-k // step) * step


def _pass_driver(layout, means_t):
    """The pass driver for ``layout``; for float64 'full', in vectors of 16
    components when ``kp`` (``means_t.shape[1]``, :func:`padded_components`)
    is a multiple of 16 (:func:`_condition_row` says why). One driver each,
    compiled on first use: one holding both widths compiled for 27 % longer
    (a fit and a prediction from an empty cache, AMD EPYC Zen 4), and its
    wide row loop ran 4 % slower beside the other."""
    if layout != _FULL:
        return _accumulate_diag
    wide = means_t.dtype == np.float64 and means_t.shape[1] % WIDE == 0
    return _accumulate_full_wide if wide else _accumulate_full


def accumulate(X, w, has_weights, layout, means, means_t, factor, prec_t, log_const, ref, bounds,
               mass, first, second, loglik):
    """Expected statistics of rows with missing values, over row parts.

    The compute dtype is that of ``means`` and every array below said to be
    "of the compute dtype": float64, or float32 (float32 X, the means
    centred on ``ref``).

    Parameters
    ----------
    X : (n, d) float64 (float32 for a float32 pass), C-contiguous, NaN
        where a value is missing
    w : (n,) float64 sample weights, read only when ``has_weights``
    layout : Layout
        FULL for 'full' and 'tied', DIAG for 'diag' and 'spherical'.
    means : (k, d) of the compute dtype, centred on ``ref``
    means_t : (d, kp) of the compute dtype, ``means`` transposed, if FULL
        (else unused)
    factor : (k, d * d) flattened upper ``U_j`` if FULL, else (k, d)
        ``1/sigma``; of the compute dtype
    prec_t : (d, d, kp) precisions ``U_j U_j^T`` of the compute dtype,
        component last, if FULL (else unused); ``kp`` is
        :func:`padded_components`, the padding finite (zero means, identity
        precisions)
    log_const : (k,) of the compute dtype, ``log w_j - d/2 log 2pi + log
        det U_j`` (less a shift, for float32)
    ref : (d,) float64, subtracted from every row in float64 before it is
        narrowed to the compute dtype (zeros for a float64 pass)
    bounds : (n_parts + 1,) int64 row boundaries, multiples of ``BLOCK_ROWS``
    mass : (n_parts, k), first : (n_parts, k, d),
    second : (n_parts, k, d * d) (lower triangles) if FULL else (n_parts, k, d), loglik : (n_parts,)
        Outputs, zeroed by the caller; centred on ``means``.
    """
    driver = _pass_driver(layout, means_t)
    run_parts(driver, bounds.shape[0] - 1, X, w, has_weights, means, means_t, factor, prec_t,
              log_const, ref, bounds, mass, first, second, loglik, _NO_ROWS)


#: ``out`` of a statistics pass: no rows, so the pass computes statistics.
_NO_ROWS = np.empty((0, 0))


@helper
def _part_hidden_terms(full, factor, log_const):
    """:func:`_hidden_terms` for the diagonal layout, empty for 'full'."""
    if full:
        return np.empty((0, 0)), np.empty(0)
    return _hidden_terms(factor, log_const)


@stack_helper
def _block_densities(X, start, stop, full, means, means_t, factor, prec_t, log_const, ref, hidden,
                     xt, ot, mis, qs, offs, wb, L, E, dv, adj, corr, expo, t, t2, qp, lp, out):
    """Rows ``start:stop``'s weighted marginal log-densities into ``out``
    (rows, k) from row 0, with each row's ``e`` in the block's ``E`` and, for
    the last row with missing values conditioned, its factor in ``L``; the
    prediction drivers' shared first step (``hidden``: the part's
    :func:`_part_hidden_terms`, ``(two_h, c)``)."""
    k = means.shape[0]
    two_h, c = hidden
    no_weights = np.empty(0)
    # a run-time False: a literal one would compile _finish_block a second time
    no = no_weights.shape[0] > 0
    _values_by_feature(X, start, stop - start, ref, xt, ot)
    _finish_block(X, start, stop, no_weights, no, xt, ot, mis, qs, offs, wb)
    if full:
        for j in range(k):
            _fill_means(xt, ot, means, j)
            block_log_prob_full(xt, means[j:j + 1], factor[j:j + 1], log_const[j:j + 1], t, t2,
                                qp, lp[j:j + 1])
    else:
        _block_log_prob_diag(xt, ot, means, factor, two_h, c, qp, lp)
    for i in range(stop - start):
        for j in range(k):
            out[i, j] = lp[j, i]
        q = qs[i]
        if full and q > 0:
            _condition_row(i, q, mis[i], offs[i], xt, ot, means_t, prec_t, L, E, dv, adj, corr,
                           expo, vzero(E))
            for j in range(k):
                out[i, j] += adj[j] + corr[j]


def log_prob(X, layout, means, means_t, factor, prec_t, log_const, ref, bounds, out):
    """Weighted marginal log-densities ``log w_j + log N(x_o | j)`` of the
    observed coordinates of every row into ``out`` (n, k); arguments as in
    :func:`accumulate`.

    The pass drivers compute them on their way to the statistics, so they
    write them out here, with no weights and no statistics (as the complete
    data's :func:`.gaussian.log_prob`): a first ``predict`` after a fit then
    compiles nothing. A log-density driver of its own compiled for 1.5 s of
    the 8.6 s of compiling in a first fit, ``predict`` and ``score_samples``
    on data with NaN (from an empty cache, AMD EPYC Zen 4); writing them out
    costs the pass driver nothing measurable.
    """
    n_parts = bounds.shape[0] - 1
    driver = _pass_driver(layout, means_t)
    run_parts(driver, n_parts, X, np.empty(0), False, means, means_t, factor, prec_t, log_const,
              ref, bounds, np.empty((n_parts, 0)), np.empty((n_parts, 0, 0)),
              np.empty((n_parts, 0, 0)), np.empty(n_parts), out)


def _make_impute(layout):
    """The imputation driver of one layout."""
    full = layout == _FULL
    def driver(X, means, means_t, factor, prec_t, log_const, ref, u, eps, sample, bounds, out,
               counter):
        n_parts = bounds.shape[0] - 1
        k, d = means.shape
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            xt, _, _, lp, wb, t, t2, qp, _, _ = _pass_buffers(means)
            L, dv, adj, corr, col, E, _, mis, qs, offs, ot, _, _, expo = _full_buffers(
                means_t, k, d)
            hidden = _part_hidden_terms(full, factor, log_const)
            dens = np.empty((B, k))
            y = np.empty(d)
            for start in range(bounds[p], bounds[p + 1], B):
                stop = min(start + B, bounds[p + 1])
                # at most 30 arguments: CPython passes more as *args, which
                # Numba's IR inliner refuses
                _block_densities(X, start, stop, full, means, means_t, factor, prec_t,
                                 log_const, ref, hidden, xt, ot, mis, qs, offs, wb, L, E, dv, adj,
                                 corr, expo, t, t2, qp, lp, dens)
                for i in range(stop - start):
                    row = start + i
                    for a in range(d):
                        out[row, a] = X[row, a]
                    q = qs[i]
                    if q == 0:
                        continue
                    m = mis[i]
                    e = E[offs[i]:offs[i] + q]
                    for j in range(k):
                        col[j] = dens[i, j]
                    if not _row_responsibilities(col, k, 1.0) > -np.inf:
                        # no component's density reaches the row in float64:
                        # NaN, for the caller to refuse (not a value of 0)
                        for s in range(q):
                            out[row, m[s]] = np.nan
                        continue
                    if not sample:
                        for s in range(q):
                            v = 0.0
                            for j in range(k):
                                mean = means[j, m[s]] - e[s, j] if full else means[j, m[s]]
                                v += col[j] * mean
                            out[row, m[s]] = v
                        continue
                    pick, acc = k - 1, 0.0  # a component by its responsibility
                    for j in range(k):
                        acc += col[j]
                        if u[row] < acc:
                            pick = j
                            break
                    if full:  # its conditional: mean + L^-T eps, L L^T = P_mm
                        _condition_row(i, q, m, offs[i], xt, ot, means_t, prec_t, L, E, dv, adj,
                                       corr, expo, vzero(E))
                        for s in range(q - 1, -1, -1):
                            v = eps[row, m[s]]
                            for r in range(s + 1, q):
                                v -= L[r, s, pick] * y[r]
                            y[s] = v * L[s, s, pick]
                        for s in range(q):
                            out[row, m[s]] = means[pick, m[s]] - e[s, pick] + y[s]
                    else:
                        for s in range(q):
                            out[row, m[s]] = means[pick, m[s]] + eps[row, m[s]] / factor[pick, m[s]]
    return _jit_driver(driver)


_impute_full = _make_impute(_FULL)
_impute_diag = _make_impute(_DIAG)


def impute(X, layout, means, means_t, factor, prec_t, log_const, ref, u, eps, sample, bounds,
           out):
    """Every row of X into ``out`` (n, d) float64 with its missing values
    replaced by their conditional expectation under the mixture,
    ``sum_j r_ij E_j[x_m | x_o]`` (``r_ij`` the responsibilities of the
    observed coordinates), or with ``sample`` by a draw from the conditional
    distribution: a component by its responsibility (``u`` (n,) uniform),
    then its conditional Gaussian (``eps`` (n, d) standard normal draws;
    (0,) and (0, 0) arrays when not ``sample``). A row whose observed
    coordinates no component's density reaches in float64 (every squared
    distance overflows) gets NaN in its missing entries. Other arguments as
    in :func:`accumulate`."""
    driver = _impute_full if layout == _FULL else _impute_diag
    run_parts(driver, bounds.shape[0] - 1, X, means, means_t, factor, prec_t, log_const, ref, u,
              eps, sample, bounds, out)
