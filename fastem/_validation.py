"""Input checks with clear messages. Nothing here runs inside jitted code."""

from __future__ import annotations

import numbers

import numpy as np

from . import config
from ._model import COVARIANCE_TYPES

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def _all_finite(X: np.ndarray) -> bool:
    """Chunked finiteness test: no n-sized temporary for large or mapped X."""
    step = config.CHUNK_ROWS
    for start in range(0, X.shape[0], step):
        if not np.isfinite(X[start:start + step]).all():
            return False
    return True


def check_array(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Validate a data matrix and return it as float32 or float64 ndarray.

    float32 and float64 arrays (memory-mapped ones included) are returned
    without a copy; integer and boolean input becomes float64, float16 becomes
    float32.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    name : str
        Used in error messages.
    n_features : int, optional
        Expected number of columns (a fitted model's ``n_features_in_``).

    Raises
    ------
    TypeError
        For non-numeric or complex data.
    ValueError
        For a wrong number of dimensions, an empty array, NaN or inf, or a
        wrong number of features.
    """
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be an array-like of numbers, got {type(X).__name__}.")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy.sparse
        raise TypeError(f"{name} is a sparse matrix; fastem needs dense data (use {name}.toarray()).")
    if isinstance(X, np.matrix):
        X = np.asarray(X)
    if not isinstance(X, np.ndarray):
        if hasattr(X, "__cuda_array_interface__") and not hasattr(X, "__array__"):
            raise TypeError(f"{name} is a GPU array; the 'cpu' backend needs host data.")
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be converted to a 2-D numeric array: {exc}") from None
    kind = X.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} has complex dtype {X.dtype}; complex data is not supported.")
    if kind == "O":
        try:
            X = X.astype(np.float64)
        except (ValueError, TypeError):
            raise TypeError(f"{name} contains non-numeric values (dtype object).") from None
    elif kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
    if X.ndim != 2:
        hint = " Reshape with X.reshape(-1, 1) for a single feature." if X.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D shape {X.shape}.{hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {X.shape}; need at least one sample and one feature.")
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    elif X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not _all_finite(X):
        raise ValueError(f"{name} contains NaN or infinity.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the model was fitted with {n_features} features."
        )
    return X


def is_device_array(X) -> bool:
    """Whether X is a GPU array: ``__cuda_array_interface__`` (not numpy), or a
    device array of numba's CUDA simulator (which lacks the interface)."""
    if isinstance(X, np.ndarray):
        return False
    return hasattr(X, "__cuda_array_interface__") or type(X).__name__ == "FakeCUDAArray"


def check_device_array(X, n_features: int | None = None):
    """Validate a GPU array from its ``__cuda_array_interface__`` (no host copy).

    Checks dimensions, emptiness, dtype (float32/float64) and the feature
    count; finiteness is checked on the device by the CUDA backend.
    """
    if hasattr(X, "__cuda_array_interface__"):
        iface = X.__cuda_array_interface__
        shape, typestr = tuple(iface["shape"]), iface["typestr"]
    else:  # simulator device array
        shape, typestr = tuple(X.shape), np.dtype(X.dtype).str
    if len(shape) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {len(shape)}-D shape {shape}.")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"X is empty: shape {shape}; need at least one sample and one feature.")
    if typestr[1:] not in ("f4", "f8"):
        raise TypeError(f"GPU input must be float32 or float64, got typestr {typestr!r}.")
    if n_features is not None and shape[1] != n_features:
        raise ValueError(
            f"X has {shape[1]} features, but the model was fitted with {n_features} features."
        )
    return X


def check_sample_weight(sample_weight, n_samples: int):
    """Validate ``sample_weight``; return float64 (n_samples,) or None."""
    if sample_weight is None:
        return None
    try:
        sw = np.asarray(sample_weight)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sample_weight could not be converted to an array: {exc}") from None
    if sw.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must be numeric, got dtype {sw.dtype}.")
    sw = np.array(sw, dtype=np.float64, copy=True)
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), matching X, got {sw.shape}."
        )
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative; found negative values.")
    if not sw.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs positive weight.")
    return sw


def _check_int(value, name, low, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"Invalid value for '{name}': {value!r}; expected an integer >= {low}.")


def _check_real(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < low:
        raise ValueError(f"Invalid value for '{name}': {value!r}; expected a finite number >= {low}.")


def check_estimator_params(est) -> None:
    """Check the scalar constructor parameters of a GaussianMixture."""
    _check_int(est.n_components, "n_components", 1)
    if est.covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"Invalid value for 'covariance_type': {est.covariance_type!r}; "
            f"expected one of {list(COVARIANCE_TYPES)}."
        )
    _check_real(est.tol, "tol", 0.0)
    _check_real(est.reg_covar, "reg_covar", 0.0)
    _check_int(est.max_iter, "max_iter", 0)
    _check_int(est.n_init, "n_init", 1)
    if est.init_params not in INIT_PARAMS:
        raise ValueError(
            f"Invalid value for 'init_params': {est.init_params!r}; expected one of {list(INIT_PARAMS)}."
        )
    _check_int(est.verbose, "verbose", 0)
    _check_int(est.verbose_interval, "verbose_interval", 1)
    if not isinstance(est.warm_start, (bool, np.bool_)):
        raise ValueError(f"Invalid value for 'warm_start': {est.warm_start!r}; expected a bool.")
    rs = est.random_state
    if not (rs is None or isinstance(rs, (numbers.Integral, np.random.RandomState))) or isinstance(rs, bool):
        raise ValueError(
            f"Invalid value for 'random_state': {rs!r}; expected None, an int or a numpy RandomState."
        )


def _as_float_array(value, name, shape):
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise TypeError(f"'{name}' must be a numeric array of shape {shape}.") from None
    if arr.shape != shape:
        raise ValueError(f"'{name}' must have shape {shape}, got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"'{name}' contains NaN or infinity.")
    return arr


def check_weights(weights, n_components):
    """User-given mixing weights: in [0, 1] and summing to 1."""
    given = np.asarray(weights)
    w = _as_float_array(weights, "weights_init", (n_components,))
    # float32 weights sum to 1 only to float32 precision.
    atol = max(1e-8, 8 * np.finfo(given.dtype).eps) if given.dtype.kind == "f" else 1e-8
    if np.any(w < 0) or np.any(w > 1):
        raise ValueError(
            f"'weights_init' must be in [0, 1], got min {w.min():.5g} and max {w.max():.5g}."
        )
    if not np.isclose(w.sum(), 1.0, rtol=0, atol=atol):
        raise ValueError(f"'weights_init' must sum to 1, got sum {w.sum():.10g}.")
    return w


def check_means(means, n_components, n_features):
    """User-given means of shape (n_components, n_features)."""
    return _as_float_array(means, "means_init", (n_components, n_features))


def check_precisions(precisions, covariance_type, n_components, n_features):
    """User-given precisions: shape by covariance type, positive definite."""
    shape = {"full": (n_components, n_features, n_features),
             "tied": (n_features, n_features),
             "diag": (n_components, n_features),
             "spherical": (n_components,)}[covariance_type]
    p = _as_float_array(precisions, "precisions_init", shape)
    if covariance_type in ("diag", "spherical"):
        if np.any(p <= 0):
            raise ValueError(f"'precisions_init' for '{covariance_type}' must be positive.")
        return p
    mats = p.reshape(-1, n_features, n_features)
    if not np.allclose(mats, np.swapaxes(mats, 1, 2), rtol=1e-10, atol=0):
        raise ValueError(f"'precisions_init' for '{covariance_type}' must be symmetric.")
    try:
        np.linalg.cholesky(mats)
    except np.linalg.LinAlgError:
        raise ValueError(f"'precisions_init' for '{covariance_type}' must be positive-definite.") from None
    return p
