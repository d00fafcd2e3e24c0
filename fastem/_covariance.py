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

Below the estimators and their families, a covariance type is only its
:class:`Layout`: how the passes store its statistics and precision factors.
"""

from __future__ import annotations

import enum

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class Layout(enum.IntEnum):
    """How a pass stores a model's second moments and precision factors: the
    one thing the backends and kernels know of a covariance type (each CPU
    kernel driver is compiled for one layout, a constant in it).
    A low-rank + diagonal layout would be a third value.

    ``NONE``: no second moments (a k-means assignment); ``FULL``: (d, d)
    second moments (lower triangles in the passes) and upper-triangular
    factors (d * d), for 'full' and 'tied'; ``DIAG``: (d,) second moments and
    a ``1/sigma`` per feature, for 'diag' and 'spherical'.
    """

    NONE = 0
    FULL = 1
    DIAG = 2


def parameter_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def layout_of(covariance_type: str) -> Layout:
    """The :class:`Layout` of a covariance type's statistics."""
    return Layout.FULL if covariance_type in ("full", "tied") else Layout.DIAG


def n_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Free parameters of a Gaussian mixture, as scikit-learn counts them."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) / 2, "diag": k * d,
           "tied": d * (d + 1) / 2, "spherical": k}[covariance_type]
    return int(cov + k * d + k - 1)
