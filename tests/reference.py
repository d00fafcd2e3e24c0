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
    if covariance_type == "full":
        new_cov = covs + reg_covar * np.eye(d)
    elif covariance_type == "tied":
        new_cov = np.einsum("k,kij->ij", nk, covs) / nk.sum() + reg_covar * np.eye(d)
    elif covariance_type == "diag":
        new_cov = np.stack([np.diag(c) for c in covs]) + reg_covar
    else:
        new_cov = np.stack([np.diag(c).mean() for c in covs]) + reg_covar
    ll = float((sw * lse).sum() / sw.sum())
    return ll, nk / nk.sum(), new_means, new_cov, resp.sum(axis=0)
