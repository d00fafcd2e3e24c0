"""Slow, obviously correct NumPy oracles for the kernels and the M-step.

Everything here works on whole arrays in float64 with explicit per-component
loops and textbook formulas (covariance matrices, ``np.linalg.inv``,
``slogdet``), independent of the Cholesky machinery under test.
"""

import numpy as np


def covariance_matrices(covariances, covariance_type, n_components, n_features):
    """Expand any covariance layout to (k, d, d) matrices."""
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov.copy()
    if covariance_type == "tied":
        return np.repeat(cov[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(n_features) * c for c in cov])


def weighted_log_prob(X, weights, means, cov_mats):
    """``log w_j + log N(x_i; mu_j, Sigma_j)`` from the textbook density, (n, k)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    out = np.empty((n, len(weights)))
    for j, (w, mu, cov) in enumerate(zip(weights, means, cov_mats)):
        inv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        diff = X - mu
        maha = np.einsum("ni,ij,nj->n", diff, inv, diff)
        with np.errstate(divide="ignore"):
            out[:, j] = np.log(w) - 0.5 * (d * np.log(2 * np.pi) + logdet + maha)
    return out


def log_sum_exp(a):
    """Row-wise log-sum-exp of (n, k), shape (n,)."""
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def _in_layout(covs, nk, covariance_type, reg_covar):
    """Per-component scatter matrices ``covs`` (k, d, d) / N_j as the M-step's
    covariances of ``covariance_type``, with ``reg_covar`` on the diagonal."""
    d = covs.shape[1]
    if covariance_type == "full":
        return covs + reg_covar * np.eye(d)
    if covariance_type == "tied":
        return np.einsum("k,kij->ij", nk, covs) / nk.sum() + reg_covar * np.eye(d)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covs]) + reg_covar
    return np.stack([np.diag(c).mean() for c in covs]) + reg_covar


def em_step(X, weights, means, cov_mats, covariance_type, reg_covar, sample_weight=None):
    """One EM iteration with raw (uncentred) textbook formulas.

    Returns
    -------
    mean_log_likelihood : float
        Under the input parameters (what scikit-learn records as lower bound).
    weights, means, covariances : new parameters, covariances in the layout of
        ``covariance_type``.
    resp_mass : ndarray of shape (k,), ``sum_i w_i r_ij``.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    wlp = weighted_log_prob(X, weights, means, cov_mats)
    lse = log_sum_exp(wlp)
    resp = np.exp(wlp - lse[:, None]) * sw[:, None]
    nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
    new_means = resp.T @ X / nk[:, None]
    covs = np.empty((len(nk), d, d))
    for j in range(len(nk)):
        diff = X - new_means[j]
        covs[j] = (resp[:, j, None] * diff).T @ diff / nk[j]
    new_cov = _in_layout(covs, nk, covariance_type, reg_covar)
    ll = float((sw * lse).sum() / sw.sum())
    return ll, nk / nk.sum(), new_means, new_cov, resp.sum(axis=0)


def incomplete_em_step(X, weights, means, cov_mats, covariance_type, reg_covar,
                       sample_weight=None):
    """One EM iteration for data with missing values (NaN), the textbook way:
    per row and component, the observed coordinates' marginal Gaussian and
    the missing ones' conditional Gaussian from explicit covariance blocks
    (``Sigma_mo inv(Sigma_oo)``), independent of the kernels' precision
    (Schur complement) route.

    Returns what :func:`em_step` returns; the log-likelihood is the observed
    data's, ``sum_i w_i log p(x_i,o) / sum_i w_i``.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    k = len(weights)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    wlp = np.empty((n, k))
    filled = np.empty((n, k, d))       # E[x_i | x_i,o, j]
    cond = np.zeros((n, k, d, d))      # Cov[x_i | x_i,o, j]
    for i in range(n):
        o = ~np.isnan(X[i])
        m = ~o
        for j in range(k):
            mu, cov = means[j], cov_mats[j]
            xo = X[i, o] - mu[o]
            soo = cov[np.ix_(o, o)]
            if o.any():
                _, logdet = np.linalg.slogdet(soo)
                maha = xo @ np.linalg.inv(soo) @ xo
                logpdf = -0.5 * (o.sum() * np.log(2 * np.pi) + logdet + maha)
            else:
                logpdf = 0.0
            with np.errstate(divide="ignore"):
                wlp[i, j] = np.log(weights[j]) + logpdf
            filled[i, j] = np.where(o, X[i], 0.0)
            gain = cov[np.ix_(m, o)] @ np.linalg.inv(soo) if o.any() else np.zeros((m.sum(), 0))
            filled[i, j, m] = mu[m] + gain @ xo
            cond[i, j][np.ix_(m, m)] = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
    lse = log_sum_exp(wlp)
    resp = np.exp(wlp - lse[:, None]) * sw[:, None]
    nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
    new_means = np.einsum("nk,nkd->kd", resp, filled) / nk[:, None]
    covs = np.empty((k, d, d))
    for j in range(k):
        diff = filled[:, j] - new_means[j]
        covs[j] = (np.einsum("n,na,nb->ab", resp[:, j], diff, diff)
                   + np.einsum("n,nab->ab", resp[:, j], cond[:, j])) / nk[j]
    new_cov = _in_layout(covs, nk, covariance_type, reg_covar)
    ll = float((sw * lse).sum() / sw.sum())
    return ll, nk / nk.sum(), new_means, new_cov, resp.sum(axis=0)


def marginal_log_density(X, weights, means, cov_mats):
    """``log p(x_i,o)`` of every row by brute force: the mixture's density
    integrated over the missing coordinates as the log-sum-exp of each
    component's Gaussian marginal (a row with nothing observed: 0)."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty(X.shape[0])
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        if not o.any():
            out[i] = 0.0
            continue
        parts = weighted_log_prob(x[o][None], weights, means[:, o],
                                  np.stack([c[np.ix_(o, o)] for c in cov_mats]))
        out[i] = log_sum_exp(parts)[0]
    return out
