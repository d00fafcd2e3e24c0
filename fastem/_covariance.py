"""The facts of each covariance type, in one table.

============  =====================  ==================  ===================================
type          covariances /          second-moment       free covariance parameters
              precisions_cholesky    statistics
============  =====================  ==================  ===================================
'full'        (k, d, d)              (k, d, d)           k d (d + 1) / 2
'tied'        (d, d)                 (k, d, d)           d (d + 1) / 2
'diag'        (k, d)                 (k, d)              k d
'spherical'   (k,)                   (k, d)              k
============  =====================  ==================  ===================================

(``k`` components, ``d`` features; 'diag' and 'spherical' keep only the
diagonal of the second moments.)
"""

from __future__ import annotations

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def parameter_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def second_moment_is_full(covariance_type: str) -> bool:
    """Whether the statistics keep full (d, d) second moments."""
    return covariance_type in ("full", "tied")


def n_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Free parameters of a Gaussian mixture, as scikit-learn counts them."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) / 2, "diag": k * d,
           "tied": d * (d + 1) / 2, "spherical": k}[covariance_type]
    return int(cov + k * d + k - 1)
