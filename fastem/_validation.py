"""Input checks with clear messages. Nothing here runs inside jitted code."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import config
from ._covariance import COVARIANCE_TYPES, parameter_shape
from ._precision import check_dtype

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def _all_finite(X: np.ndarray) -> bool:
    """Chunked finiteness test: no n-sized temporary for large or mapped X."""
    step = config.CHUNK_ROWS
    for start in range(0, X.shape[0], step):
        if not np.isfinite(X[start:start + step]).all():
            return False
    return True


def check_shape(shape, name: str = "X") -> None:
    """A data matrix's shape: 2-D with at least one sample and one feature.

    The messages keep scikit-learn's phrases ("Reshape your data", "0
    feature(s) (shape=...) while a minimum of 1 is required"), which code and
    tests written for scikit-learn look for.
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) != 2:
        hint = (" Reshape your data either using X.reshape(-1, 1) if it has a single feature"
                " or X.reshape(1, -1) if it contains a single sample." if len(shape) == 1 else "")
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got {len(shape)}-D shape {shape}.{hint}")
    for count, what in ((shape[0], "sample(s)"), (shape[1], "feature(s)")):
        if count == 0:
            raise ValueError(
                f"{name} is empty: found array with 0 {what} (shape={shape}) while a minimum "
                "of 1 is required; need at least one sample and one feature.")


def check_n_features(n_features_seen: int, n_features: int | None, name: str = "X",
                     estimator: str = "GaussianMixture") -> None:
    """A fitted model's inputs keep its number of features (scikit-learn's message)."""
    if n_features is not None and n_features_seen != n_features:
        raise ValueError(
            f"{name} has {n_features_seen} features, but {estimator} is expecting {n_features} "
            "features as input (the number it was fitted with).")


def reject_complex(dtype, name: str = "X") -> None:
    if np.dtype(dtype).kind == "c":
        raise ValueError(f"{name} has complex dtype {dtype}: Complex data not supported.")


def check_array(X, name: str = "X", n_features: int | None = None,
                estimator: str = "GaussianMixture", allow_nan: bool = False) -> np.ndarray:
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
    allow_nan : bool
        Leave the finiteness test to the caller (``fastem._missing.scan``, for
        the estimators that fit missing values).

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
    if isinstance(X, np.ma.MaskedArray):
        if np.ma.getmaskarray(X).any():  # np.asarray would fit the values under the mask
            raise TypeError(f"{name} is a masked array with masked entries, which fastem does "
                            f"not read as missing: pass {name}.filled(np.nan) to fit them as "
                            f"missing values (NaN), or {name}.data to use the values under the "
                            "mask.")
        X = np.ma.getdata(X)
    if type(X).__module__.startswith("pandas") and hasattr(X, "columns"):
        # Dates and durations would become nanosecond counts (1.6e18), not numbers to fit.
        timed = [str(c) for c, t in X.dtypes.items() if getattr(t, "kind", None) in ("m", "M")]
        if timed:
            raise TypeError(f"{name} has date or duration columns ({', '.join(timed[:5])}): "
                            "convert them to numbers first.")
        # A pandas dataframe: missing values (NaN, pd.NA, None) are named as
        # NaN, as scikit-learn names them, not as non-numeric objects.
        missing = X.isna()
        if missing.to_numpy().any():
            if not allow_nan:
                raise ValueError(f"{name} contains NaN or infinity (missing values in the "
                                 "dataframe).")
            X = X.astype(object).where(~missing, np.nan)  # pd.NA, None -> NaN
        try:
            X = X.to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} contains non-numeric values: {exc}") from None
    if not isinstance(X, np.ndarray):
        if hasattr(X, "__cuda_array_interface__") and not hasattr(X, "__array__"):
            raise TypeError(f"{name} is a GPU array; the 'cpu' backend needs host data.")
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be converted to a 2-D numeric array: {exc}") from None
    kind = X.dtype.kind
    reject_complex(X.dtype, name)
    if kind == "O":
        try:
            X = X.astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} contains non-numeric values (dtype object): {exc}") from None
    elif kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
    check_shape(X.shape, name)
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    elif X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not allow_nan and not _all_finite(X):
        raise ValueError(f"{name} contains NaN or infinity.")
    check_n_features(X.shape[1], n_features, name, estimator)
    return X


def is_device_array(X) -> bool:
    """Whether X is a GPU array: ``__cuda_array_interface__`` (not numpy), or a
    device array of numba's CUDA simulator (which lacks the interface)."""
    if isinstance(X, np.ndarray):
        return False
    return hasattr(X, "__cuda_array_interface__") or type(X).__name__ == "FakeCUDAArray"


def check_device_array(X, n_features: int | None = None, estimator: str = "GaussianMixture"):
    """Validate a GPU array from its ``__cuda_array_interface__`` (no host copy).

    Checks dimensions, emptiness, dtype (float32/float64) and the feature
    count; finiteness is checked on the device by the CUDA backend.
    """
    if hasattr(X, "__cuda_array_interface__"):
        iface = X.__cuda_array_interface__
        shape, typestr = tuple(iface["shape"]), iface["typestr"]
    else:  # simulator device array
        shape, typestr = tuple(X.shape), np.dtype(X.dtype).str
    check_shape(shape)
    if typestr[1:] not in ("f4", "f8"):
        raise TypeError(f"GPU input must be float32 or float64, got typestr {typestr!r}.")
    check_n_features(shape[1], n_features, estimator=estimator)
    return X


def check_sample_weight(sample_weight, n_samples: int, matching="matching X"):
    """Validate ``sample_weight`` (``matching`` says what its length follows,
    for the error); return float64 (n_samples,) or None."""
    if sample_weight is None:
        return None
    try:
        sw = np.asarray(sample_weight)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sample_weight could not be converted to an array: {exc}") from None
    if sw.dtype.kind not in "fiub":
        if hasattr(sample_weight, "toarray") and hasattr(sample_weight, "nnz"):
            raise TypeError("sample_weight is a sparse matrix; pass a dense 1-D array "
                            "(sample_weight.toarray().ravel()).")
        raise TypeError(f"sample_weight must be numeric, got dtype {sw.dtype}.")
    sw = np.array(sw, dtype=np.float64, copy=True)
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), {matching}, got {sw.shape}."
        )
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative; found negative values.")
    total = sw.sum()
    if not total > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs positive weight.")
    if not np.isfinite(total):
        # the statistics are sums of weighted rows: they would overflow too
        raise ValueError(f"sample_weight sums to more than float64 holds (its largest value is "
                         f"{sw.max():.3g}); divide it by a constant.")
    return sw


def _check_int(value, name, low, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"Invalid value for '{name}': {value!r}; expected an integer >= {low}.")


def _check_real(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < low:
        raise ValueError(f"Invalid value for '{name}': {value!r}; expected a finite number >= {low}.")


def check_backend(name) -> None:
    """The ``backend`` parameter: 'cpu' or 'cuda' (whether a GPU is present is
    checked when a pass needs it)."""
    if not isinstance(name, str) or name not in ("cpu", "cuda"):
        raise ValueError(f"Invalid value for 'backend': {name!r}; expected one of "
                         "['cpu', 'cuda'].")


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
    if getattr(est, "batch_size", None) is not None:
        _check_int(est.batch_size, "batch_size", 1)
    decay = getattr(est, "learning_decay", 0.7)
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.5 < decay <= 1.0:
        raise ValueError(f"Invalid value for 'learning_decay': {decay!r}; expected a number in "
                         "(0.5, 1] (partial_fit's steps must sum to infinity, their squares not).")
    _check_real(getattr(est, "learning_offset", 10.0), "learning_offset", 0.0)
    check_dtype(getattr(est, "dtype", None))
    check_backend(est.backend)
    check_random_state_param(est.random_state)


def check_random_state_param(rs) -> None:
    """The ``random_state`` parameter: None, an int or a numpy RandomState."""
    if not (rs is None or isinstance(rs, (numbers.Integral, np.random.RandomState))) or isinstance(rs, bool):
        raise ValueError(
            f"Invalid value for 'random_state': {rs!r}; expected None, an int or a numpy RandomState."
        )


# scikit-learn names the initial arrays 'weights', 'means' and '<type> precision'
# in its messages; code written for it matches those phrases, so fastem's
# messages start with scikit-learn's sentence and name the parameter too.

def _as_float_array(value, name, label, shape):
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise TypeError(f"'{name}' must be a numeric array of shape {shape}.") from None
    if arr.shape != shape:
        raise ValueError(f"The parameter '{label}' should have the shape of {shape}, but got "
                         f"{arr.shape} ('{name}').")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"'{name}' contains NaN or infinity.")
    return arr


#: Largest asymmetry ``max|A - A^T|`` accepted, relative to ``max|A|``: an
#: inverse computed in float64 of a matrix with condition number 1e8 is
#: symmetric only to about that (an element-wise rtol refused the inverse of
#: strongly anisotropic covariances over an asymmetry of 4e-13 of the norm).
SYMMETRY_RTOL = 1e-8


def _symmetric_positive_definite(mats):
    """``(symmetric, positive_definite)`` of a stack of matrices (m, d, d);
    symmetric to :data:`SYMMETRY_RTOL` of each matrix's largest element."""
    gap = np.abs(mats - np.swapaxes(mats, 1, 2)).max(axis=(1, 2))
    symmetric = bool(np.all(gap <= SYMMETRY_RTOL * np.abs(mats).max(axis=(1, 2))))
    try:
        np.linalg.cholesky(mats)
        return symmetric, True
    except np.linalg.LinAlgError:
        return symmetric, False


def check_weights(weights, n_components, name="weights_init"):
    """User-given mixing weights (``name``: the parameter or attribute): in
    [0, 1] and summing to 1."""
    given = np.asarray(weights)
    w = _as_float_array(weights, name, "weights", (n_components,))
    # float32 weights sum to 1 only to float32 precision.
    atol = max(1e-8, 8 * np.finfo(given.dtype).eps) if given.dtype.kind == "f" else 1e-8
    if np.any(w < 0) or np.any(w > 1):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got min value "
            f"{w.min():.5f}, max value {w.max():.5f} ('{name}')."
        )
    if not np.isclose(w.sum(), 1.0, rtol=0, atol=atol):
        raise ValueError("The parameter 'weights' should be normalized, but got sum(weights) = "
                         f"{w.sum():.5f} ('{name}' sums to {w.sum():.10g}).")
    return w


def check_means(means, n_components, n_features):
    """User-given means of shape (n_components, n_features)."""
    return _as_float_array(means, "means_init", "means", (n_components, n_features))


def check_precisions(precisions, covariance_type, n_components, n_features):
    """User-given precisions: shape by covariance type, positive definite."""
    shape = parameter_shape(covariance_type, n_components, n_features)
    label = f"{covariance_type} precision"
    p = _as_float_array(precisions, "precisions_init", label, shape)
    if covariance_type in ("diag", "spherical"):
        if np.any(p <= 0):
            raise ValueError(f"'{label}' should be positive ('precisions_init').")
        return p
    symmetric, positive = _symmetric_positive_definite(p.reshape(-1, n_features, n_features))
    if not (symmetric and positive):
        what = "symmetric" if not symmetric else "positive-definite"
        raise ValueError(f"'{label}' should be symmetric, positive-definite ('precisions_init' "
                         f"is not {what}).")
    return 0.5 * (p + np.swapaxes(p, -1, -2))  # symmetric to round-off: exactly, now


# --------------------------------------------------------------------------
# Priors of the variational mixture
# --------------------------------------------------------------------------

def check_positive_real(value, name, above=0.0):
    """A finite real number strictly greater than ``above``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value)
            or not value > above):
        raise ValueError(f"The parameter '{name}' should be greater than {above:g}, but got "
                         f"{_as_sklearn_writes(value)}.")


def _as_sklearn_writes(value):
    """A number as scikit-learn's messages write it (``%.3f``), exact value added
    when three decimals hide it; anything else as its repr."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return repr(value)
    text = f"{value:.3f}"
    return text if float(text) == value else f"{text} ({value!r})"


def check_vector(value, name, n_features):
    """A finite float vector of shape (n_features,)."""
    return _as_float_array(value, name, name, (n_features,))


def check_covariance_prior(value, covariance_type, n_features):
    """``covariance_prior``: (d, d) symmetric positive-definite for 'full'/'tied',
    (d,) positive for 'diag', a positive float for 'spherical'."""
    name = "covariance_prior"
    if covariance_type == "spherical":
        check_positive_real(value, name)
        return float(value)
    shape = (n_features, n_features) if covariance_type in ("full", "tied") else (n_features,)
    arr = _as_float_array(value, name, f"{covariance_type} covariance_prior", shape)
    if covariance_type == "diag":
        if np.any(arr <= 0):
            raise ValueError(f"'{covariance_type} covariance_prior' should be positive.")
        return arr
    symmetric, positive = _symmetric_positive_definite(arr[None])
    if not (symmetric and positive):
        raise ValueError(f"'{covariance_type} covariance_prior' should be symmetric, "
                         "positive-definite.")
    return 0.5 * (arr + arr.T)


# --------------------------------------------------------------------------
# Feature names (scikit-learn's ``feature_names_in_`` semantics)
# --------------------------------------------------------------------------

def feature_names_of(X):
    """String column names of a dataframe, as an object array; None otherwise.

    Any container with a ``columns`` attribute (pandas, polars, modin, cuDF)
    or the dataframe interchange protocol (``__dataframe__``, e.g. pyarrow)
    counts, as in scikit-learn. Names that are all non-strings (pandas' default
    integer columns) give None, like an array.

    Raises
    ------
    TypeError
        When some names are strings and others are not.
    """
    if isinstance(X, np.ndarray):
        return None
    columns = getattr(X, "columns", None)
    if columns is not None and not callable(columns):
        columns = list(columns)
        if not all(isinstance(v, (str, numbers.Number)) for v in columns):
            columns = None  # e.g. pyarrow's Table.columns holds the column arrays
    else:
        columns = None
    if columns is None and hasattr(X, "__dataframe__"):
        try:
            columns = list(X.__dataframe__().column_names())
        except Exception:  # an object that only claims the protocol
            columns = None
    if columns is None:
        return None
    names = np.asarray(columns, dtype=object)
    is_str = [isinstance(v, str) for v in names]
    if names.size and all(is_str):
        return names
    if any(is_str):
        types = sorted({type(v).__qualname__ for v in names})
        raise TypeError(
            "Feature names are only supported if all input features have string names, but "
            f"your input has {types} as feature name / column name types. If you want feature "
            "names to be stored and validated, you must convert them all to strings, by using "
            "X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / "
            "column names from your input data, or convert them all to a non-string data type."
        )
    return None


def check_feature_names(fitted, given, estimator: str = "GaussianMixture") -> None:
    """Compare the names a model was fitted with to those of new input.

    Parameters
    ----------
    fitted : object array of str or None
        The model's ``feature_names_in_`` (None: fitted without names).
    given : object array of str or None
        The new input's names (:func:`feature_names_of`).

    Raises
    ------
    ValueError
        Both have names and they differ in content or order: scoring such
        columns would be silently wrong.

    Warns
    -----
    UserWarning
        Exactly one of the two has names (scikit-learn's behaviour).
    """
    if fitted is None and given is None:
        return
    if given is None:
        warnings.warn(f"X does not have valid feature names, but {estimator} was fitted with "
                      "feature names", UserWarning, stacklevel=5)
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {estimator} was fitted without feature names",
                      UserWarning, stacklevel=5)
        return
    if len(fitted) == len(given) and all(a == b for a, b in zip(fitted, given)):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = [v for v in given if v not in set(fitted)]
    missing = [v for v in fitted if v not in set(given)]

    def listing(names, max_n=5):
        more = ["- ..."] if len(names) > max_n else []
        return "".join(f"- {v}\n" for v in names[:max_n]) + "".join(f"{m}\n" for m in more)

    if unseen:
        message += "Feature names unseen at fit time:\n" + listing(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
