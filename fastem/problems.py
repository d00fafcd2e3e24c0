"""The synthetic problems fastem is demonstrated, measured and tested on, in one place.

* :func:`make_mixture`: the benchmark mixture (``fastem demo``'s data):
  moderately separated components with random correlated covariances.
* :func:`make_ill_conditioned`: correlated features whose covariances have
  eigenvalues from about 5e-5 to 4, where float32 meets its limits.
* :func:`remove_at_random`: a share of the values set to NaN, completely at
  random (incomplete data).
* :data:`PROBLEMS`: the named configurations the benchmarks report, each a
  :class:`Problem`; ``benchmarks/compare.py`` (against scikit-learn), the
  asv suite, ``benchmarks/missing_speed.py`` and ``benchmarks/float32_reach.py``
  take their defaults from here, and the tests build every one at a small size.
  A problem is named ``<data>-<covariance_type>-d<d>-k<k>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def make_mixture(n_samples, n_features, n_components, seed=0, dtype=np.float64):
    """Sample a random, moderately separated Gaussian mixture.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
    means : ndarray of shape (n_components, n_features)
    weights : ndarray of shape (n_components,)
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=1.0, size=(n_components, n_features))
    # Random correlated covariances with eigenvalues in [0.25, 1].
    q = np.linalg.qr(rng.normal(size=(n_components, n_features, n_features)))[0]
    eig = rng.uniform(0.25, 1.0, size=(n_components, n_features))
    chol = q * np.sqrt(eig)[:, None, :]
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = np.empty((n_samples, n_features), dtype=dtype)
    step = 1 << 18
    for start in range(0, n_samples, step):
        lab = labels[start:start + step]
        z = rng.standard_normal(size=(lab.size, n_features))
        out = np.empty_like(z)
        for j in range(n_components):  # one small matmul per component, no (n, d, d) temporary
            rows = lab == j
            out[rows] = means[j] + z[rows] @ chol[j].T
        X[start:start + step] = out
    return X, labels, means, weights


def make_ill_conditioned(n_samples, n_features, n_components, scale=1.0, seed=0):
    """A mixture whose covariances are ``A A^T``, ``A`` a random Gaussian
    ``d x d`` matrix scaled by 1/4 (eigenvalues from about 5e-5 to 4 at
    d = 16: strongly correlated features), means drawn with ``scale``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray of shape (n_components, n_features, n_features)
    """
    rng = np.random.default_rng(seed)
    k, d = n_components, n_features
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=scale, size=(k, d))
    A = rng.normal(size=(k, d, d)) / 4.0
    cov = A @ A.transpose(0, 2, 1)
    labels = rng.choice(k, size=n_samples, p=weights)
    X = np.empty((n_samples, d))
    for j in range(k):
        rows = labels == j
        X[rows] = means[j] + rng.standard_normal((int(rows.sum()), d)) @ np.linalg.cholesky(cov[j]).T
    return X, weights, means, cov


def remove_at_random(X, fraction, seed=1):
    """A copy of X with each value replaced by NaN with probability ``fraction``
    (missing completely at random)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}.")
    out = np.array(X, copy=True)
    out[np.random.default_rng(seed).random(out.shape) < fraction] = np.nan
    return out


@dataclass(frozen=True)
class Problem:
    """A named benchmark configuration: what to fit and on which data.

    Attributes
    ----------
    covariance_type : str
    n_samples, n_features, n_components : int
        ``n_samples`` is the benchmarks' default; :meth:`make` takes another.
    data : {'mixture', 'ill-conditioned'}
        The generator (:func:`make_mixture`, :func:`make_ill_conditioned`).
    missing : float
        Share of the values removed at random (:func:`remove_at_random`).
    """

    covariance_type: str
    n_samples: int
    n_features: int
    n_components: int
    data: str = "mixture"
    missing: float = 0.0

    def __post_init__(self):
        if self.data not in ("mixture", "ill-conditioned"):
            raise ValueError(f"data must be 'mixture' or 'ill-conditioned', got {self.data!r}.")
        if not 0.0 <= self.missing < 1.0:
            raise ValueError(f"missing must be in [0, 1), got {self.missing!r}.")

    @property
    def spec(self) -> str:
        """``type:n:d:k``, the configuration string of ``benchmarks/compare.py``."""
        return f"{self.covariance_type}:{self.n_samples}:{self.n_features}:{self.n_components}"

    def make(self, n_samples=None, dtype=np.float64, seed=0) -> np.ndarray:
        """The problem's rows, (n_samples, n_features) of ``dtype``."""
        n = self.n_samples if n_samples is None else n_samples
        if self.data == "mixture":
            X = make_mixture(n, self.n_features, self.n_components, seed, np.dtype(dtype))[0]
        else:
            X = make_ill_conditioned(n, self.n_features, self.n_components, seed=seed)[0]
            X = X.astype(dtype, copy=False)
        return remove_at_random(X, self.missing, seed + 1) if self.missing else X


def _named(problems):
    out = {}
    for p in problems:
        prefix = p.data if not p.missing else f"{p.data}-missing{round(100 * p.missing)}"
        out[f"{prefix}-{p.covariance_type}-d{p.n_features}-k{p.n_components}"] = p
    return out


#: Every benchmark configuration, by name.
PROBLEMS = _named([
    Problem("full", 1_000_000, 16, 16),  # the headline figure
    Problem("full", 1_000_000, 2, 8),  # few features: the pass is memory-bound
    Problem("diag", 1_000_000, 32, 64),  # many components
    Problem("full", 1_000_000, 32, 16),  # more features: the d^2 statistics dominate
    Problem("full", 1_000_000, 16, 16, data="ill-conditioned"),  # float32's reach
    Problem("full", 1_000_000, 16, 16, missing=0.2),  # EM for incomplete data
    Problem("diag", 1_000_000, 16, 16, missing=0.2),
])
