"""Numba CPU kernels for rows with missing values (NaN): the E-step of EM for
incomplete data (Ghahramani & Jordan, 1994) and its log-densities.

A row's missing coordinates ``m`` are latent, like its component. Under
component ``j`` with mean ``mu`` and precision ``P = U U^T``, with ``o`` the
observed coordinates and ``delta_o = x_o - mu_o``:

* the missing coordinates given the observed ones are Gaussian, with mean
  ``mu_m - P_mm^-1 P_mo delta_o`` and covariance ``P_mm^-1`` (the Schur
  complement, read off the precision: only a ``|m| x |m|`` factorisation per
  row and component, cheap for the few missing values of a typical row);
* the completed deviation ``delta`` (``delta_o``, and the conditional mean's
  ``-P_mm^-1 P_mo delta_o``) has ``delta^T P delta = delta_o^T Sigma_oo^-1
  delta_o``, the observed coordinates' marginal quadratic form, and
  ``log det Sigma_oo = log det Sigma + log det P_mm``; so the marginal
  log-density of ``x_o`` is the complete kernel's expression at ``delta`` with
  the constant ``log_const + |m|/2 log 2pi - 1/2 log det P_mm``;
* the expected statistics add ``r_ij delta`` to the first moment and
  ``r_ij (delta delta^T + P_mm^-1)`` (the conditional covariance in the
  missing block) to the second.

For diagonal precisions the conditional mean is ``mu_m`` and the conditional
variances are the component's own. Statistics are centred on the component
means (what the M-step's ``Stats.centres`` says) and computed in float64 for
either input dtype.

Layout and threads as :mod:`.gaussian`: ``full`` (full and tied) or not (diag
and spherical) is a compile-time constant of each driver, parts of rows are
handed to threads one at a time, each part writes its own outputs and the
caller reduces them in a fixed order (bit-identical for any thread count).
A row with nothing observed has log-density 0 under every component; the
estimators give it weight zero before a fit.
"""

import math

import numpy as np

from ._jit import driver as _jit_driver, helper
from ._parts import next_part, run_parts

LOG_2PI = math.log(2.0 * math.pi)


@helper
def _missing_index(x, mis):
    """Indices of the NaN coordinates of row ``x`` into ``mis``, ascending; their count."""
    q = 0
    for a in range(x.shape[0]):
        if math.isnan(x[a]):
            mis[q] = a
            q += 1
    return q


@helper
def _cholesky_missing(P, mis, q, L):
    """Lower Cholesky factor of ``P[mis, mis]`` into ``L[:q, :q]``; returns
    ``1/2 log det P[mis, mis]`` (a principal block of a positive-definite
    precision is positive definite)."""
    half_log_det = 0.0
    for s in range(q):
        for t in range(s + 1):
            v = P[mis[s], mis[t]]
            for c in range(t):
                v -= L[s, c] * L[t, c]
            if s == t:
                v = math.sqrt(v)
                L[s, s] = v
                half_log_det += math.log(v)
            else:
                L[s, t] = v / L[t, t]
    return half_log_det


@helper
def _component(x, full, means, factor, prec, log_const, mis, q, j, delta, chol, z):
    """Row ``x``'s marginal log-density under component ``j`` (weighted: plus
    ``log_const[j]``'s log weight); fills ``delta[j]`` and, for ``full``,
    ``chol[j, :q, :q]``. ``z``: scratch of length d."""
    d = x.shape[0]
    for a in range(d):
        delta[j, a] = 0.0 if math.isnan(x[a]) else x[a] - means[j, a]
    adjust = 0.5 * q * LOG_2PI
    quad = 0.0
    if full:
        if q > 0:
            adjust -= _cholesky_missing(prec[j], mis, q, chol[j])
            # z = P_mo delta_o (delta is 0 on the missing coordinates)
            for s in range(q):
                v = 0.0
                for a in range(d):
                    v += prec[j, mis[s], a] * delta[j, a]
                z[s] = v
            L = chol[j]
            for s in range(q):  # L y = z
                v = z[s]
                for t in range(s):
                    v -= L[s, t] * z[t]
                z[s] = v / L[s, s]
            for s in range(q - 1, -1, -1):  # L^T y' = y
                v = z[s]
                for t in range(s + 1, q):
                    v -= L[t, s] * z[t]
                z[s] = v / L[s, s]
            for s in range(q):
                delta[j, mis[s]] = -z[s]
        # ||U^T delta||^2, U upper triangular (row-major, flattened)
        for c in range(d):
            v = 0.0
            for a in range(c + 1):
                v += factor[j, a * d + c] * delta[j, a]
            quad += v * v
    else:
        for a in range(d):
            f = factor[j, a]
            if math.isnan(x[a]):
                adjust -= math.log(f)
            else:
                v = delta[j, a] * f
                quad += v * v
    return log_const[j] + adjust - 0.5 * quad


@helper
def _log_densities(x, full, means, factor, prec, log_const, mis, delta, chol, z, lp):
    """Every component's :func:`_component` into ``lp``; returns the row's missing count."""
    q = _missing_index(x, mis)
    for j in range(means.shape[0]):
        lp[j] = _component(x, full, means, factor, prec, log_const, mis, q, j, delta, chol, z)
    return q


@helper
def _log_sum_exp(lp):
    mx = -np.inf
    for j in range(lp.shape[0]):
        if lp[j] > mx:
            mx = lp[j]
    if not mx > -np.inf:
        return mx
    s = 0.0
    for j in range(lp.shape[0]):
        s += math.exp(lp[j] - mx)
    return mx + math.log(s)


@helper
def _add_row(wr, j, full, factor, mis, q, delta, chol, inv, mass, first, second):
    """Row statistics of component ``j`` with weight ``wr = w_i r_ij``."""
    d = delta.shape[1]
    mass[j] += wr
    for a in range(d):
        first[j, a] += wr * delta[j, a]
    if full:
        for a in range(d):
            va = wr * delta[j, a]
            for c in range(a + 1):
                second[j, a * d + c] += va * delta[j, c]
        if q > 0:
            # inv(L) into inv, then P_mm^-1 = inv(L)^T inv(L), lower triangle
            L = chol[j]
            for s in range(q):
                inv[s, s] = 1.0 / L[s, s]
                for t in range(s):
                    v = 0.0
                    for c in range(t, s):
                        v += L[s, c] * inv[c, t]
                    inv[s, t] = -v / L[s, s]
            for s in range(q):
                for t in range(s + 1):
                    v = 0.0
                    for c in range(s, q):
                        v += inv[c, s] * inv[c, t]
                    second[j, mis[s] * d + mis[t]] += wr * v
    else:
        for a in range(d):
            second[j, a] += wr * delta[j, a] * delta[j, a]
        for s in range(q):
            f = factor[j, mis[s]]
            second[j, mis[s]] += wr / (f * f)


def _make_accumulate(full):
    """The incomplete-data pass driver of one family (``full`` a compile-time constant)."""
    def driver(X, w, has_weights, means, factor, prec, log_const, bounds, mass, first, second,
               loglik, counter):
        n_parts = bounds.shape[0] - 1
        k, d = means.shape
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            mis = np.empty(d, dtype=np.int64)
            delta = np.empty((k, d))
            chol = np.empty((k, d, d))
            inv = np.empty((d, d))
            z = np.empty(d)
            lp = np.empty(k)
            ll = 0.0
            for i in range(bounds[p], bounds[p + 1]):
                wi = w[i] if has_weights else 1.0
                if wi == 0.0:
                    continue
                x = X[i]
                q = _log_densities(x, full, means, factor, prec, log_const, mis, delta, chol, z,
                                   lp)
                lse = _log_sum_exp(lp)
                ll += wi * lse
                if not (lse > -np.inf and lse < np.inf):
                    continue
                for j in range(k):
                    wr = wi * math.exp(lp[j] - lse)
                    if wr > 0.0:
                        _add_row(wr, j, full, factor, mis, q, delta, chol, inv, mass[p],
                                 first[p], second[p])
            loglik[p] = ll
    return _jit_driver(driver)


_accumulate_full = _make_accumulate(True)
_accumulate_diag = _make_accumulate(False)


def accumulate(X, w, has_weights, full, means, factor, prec, log_const, bounds, mass, first,
               second, loglik):
    """Expected statistics of rows with missing values, over row parts.

    Parameters
    ----------
    X : (n, d) float32 or float64, C-contiguous, NaN where a value is missing
    w : (n,) float64 sample weights, read only when ``has_weights``
    full : bool
        True for 'full' and 'tied', False for 'diag' and 'spherical'.
    means : (k, d) float64
    factor : (k, d * d) flattened upper ``U_j`` if ``full``, else (k, d) ``1/sigma``; float64
    prec : (k, d, d) float64 precisions ``U_j U_j^T`` if ``full`` (else unused, any shape)
    log_const : (k,) float64 ``log w_j - d/2 log 2pi + log det U_j``
    bounds : (n_parts + 1,) int64 row boundaries
    mass : (n_parts, k), first : (n_parts, k, d),
    second : (n_parts, k, d * d) (lower triangles) if ``full`` else (n_parts, k, d), loglik : (n_parts,)
        Outputs, zeroed by the caller; centred on ``means``.
    """
    driver = _accumulate_full if full else _accumulate_diag
    run_parts(driver, bounds.shape[0] - 1, X, w, has_weights, means, factor, prec, log_const,
              bounds, mass, first, second, loglik)


def _make_log_prob(full):
    """The incomplete-data log-density driver of one family."""
    def driver(X, means, factor, prec, log_const, bounds, out, counter):
        n_parts = bounds.shape[0] - 1
        k, d = means.shape
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            mis = np.empty(d, dtype=np.int64)
            delta = np.empty((k, d))
            chol = np.empty((k, d, d))
            z = np.empty(d)
            for i in range(bounds[p], bounds[p + 1]):
                _log_densities(X[i], full, means, factor, prec, log_const, mis, delta, chol, z,
                               out[i])
    return _jit_driver(driver)


_log_prob_full = _make_log_prob(True)
_log_prob_diag = _make_log_prob(False)


def log_prob(X, full, means, factor, prec, log_const, bounds, out):
    """Weighted marginal log-densities ``log w_j + log N(x_o | j)`` of the
    observed coordinates of every row into ``out`` (n, k); arguments as in
    :func:`accumulate`."""
    driver = _log_prob_full if full else _log_prob_diag
    run_parts(driver, bounds.shape[0] - 1, X, means, factor, prec, log_const, bounds, out)


def _make_impute(full):
    """The imputation driver of one family."""
    def driver(X, means, factor, prec, log_const, u, eps, sample, bounds, out, counter):
        n_parts = bounds.shape[0] - 1
        k, d = means.shape
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            mis = np.empty(d, dtype=np.int64)
            delta = np.empty((k, d))
            chol = np.empty((k, d, d))
            z = np.empty(d)
            lp = np.empty(k)
            for i in range(bounds[p], bounds[p + 1]):
                x = X[i]
                for a in range(d):
                    out[i, a] = x[a]
                q = _log_densities(x, full, means, factor, prec, log_const, mis, delta, chol, z,
                                   lp)
                if q == 0:
                    continue
                lse = _log_sum_exp(lp)
                if sample:
                    _draw_missing(i, full, means, factor, mis, q, delta, chol, lp, lse, u, eps,
                                  z, out)
                    continue
                for s in range(q):
                    out[i, mis[s]] = 0.0
                for j in range(k):
                    r = math.exp(lp[j] - lse)
                    for s in range(q):
                        a = mis[s]
                        out[i, a] += r * (means[j, a] + delta[j, a])
    return _jit_driver(driver)


@helper
def _draw_missing(i, full, means, factor, mis, q, delta, chol, lp, lse, u, eps, z, out):
    """Row ``i``'s missing values drawn from their conditional distribution:
    a component by its responsibility (``u[i]`` uniform), then its
    conditional Gaussian, ``mean + L^-T eps`` with ``L L^T = P_mm`` (or
    ``eps * sigma`` for diagonal covariances; ``eps[i]`` standard normal)."""
    k = means.shape[0]
    j, acc = k - 1, 0.0
    for c in range(k):
        acc += math.exp(lp[c] - lse)
        if u[i] < acc:
            j = c
            break
    if full:
        L = chol[j]
        for s in range(q - 1, -1, -1):  # L^T y = eps_m
            v = eps[i, mis[s]]
            for t in range(s + 1, q):
                v -= L[t, s] * z[t]
            z[s] = v / L[s, s]
    else:
        for s in range(q):
            z[s] = eps[i, mis[s]] / factor[j, mis[s]]
    for s in range(q):
        a = mis[s]
        out[i, a] = means[j, a] + delta[j, a] + z[s]


_impute_full = _make_impute(True)
_impute_diag = _make_impute(False)


def impute(X, full, means, factor, prec, log_const, u, eps, sample, bounds, out):
    """Every row of X into ``out`` (n, d) float64 with its missing values
    replaced by their conditional expectation under the mixture,
    ``sum_j r_ij E_j[x_m | x_o]`` (``r_ij`` the responsibilities of the
    observed coordinates), or with ``sample`` by a draw from the conditional
    distribution (``u`` (n,) uniform, ``eps`` (n, d) standard normal draws;
    (0,) and (0, 0) arrays when not ``sample``). Other arguments as in
    :func:`accumulate`."""
    driver = _impute_full if full else _impute_diag
    run_parts(driver, bounds.shape[0] - 1, X, means, factor, prec, log_const, u, eps, sample,
              bounds, out)
