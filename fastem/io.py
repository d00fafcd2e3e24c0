"""Model files and data files.

Model file format (``.npz``, read with ``allow_pickle=False``, so loading never
executes code): arrays ``weights``, ``means``, ``covariances``,
``precisions_cholesky`` and ``metadata``, a UTF-8 JSON document stored as a
uint8 array::

    {"format": "fastem-gaussian-mixture", "format_version": 1,
     "fastem_version": "...", "params": {constructor parameters},
     "fitted": {"n_features_in_": ..., "converged_": ..., "n_iter_": ...,
                "lower_bound_": ..., "lower_bounds_": [...], "n_reseeds_": ...,
                "feature_names_in_": [...] (only when fitted on named columns)}}

Initial arrays (``weights_init`` and friends) are not stored: a loaded model
predicts and continues fitting (``warm_start``) but re-initialises from
``init_params`` on a cold fit. Writes go to a temporary file in the target
folder that is renamed at the end, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "fastem-gaussian-mixture"
FORMAT_VERSION = 1
_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")
_SCALAR_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                  "init_params", "random_state", "warm_start", "verbose", "verbose_interval",
                  "backend")


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and rename the result to ``path``; clean up on error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp",
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(gm, path) -> None:
    """Save a fitted GaussianMixture to ``path`` (.npz; see module doc)."""
    from . import __version__

    gm._check_fitted()
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{path}: model files are .npz archives; use a name ending in .npz")
    params = {}
    for name in _SCALAR_PARAMS:
        value = getattr(gm, name)
        if name == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            value = None  # a RandomState object is not data
        params[name] = value.item() if isinstance(value, np.generic) else value
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "fastem_version": __version__,
        "params": params,
        "fitted": {"n_features_in_": int(gm.n_features_in_), "converged_": bool(gm.converged_),
                   "n_iter_": int(gm.n_iter_), "lower_bound_": float(gm.lower_bound_),
                   "lower_bounds_": [float(v) for v in gm.lower_bounds_],
                   "n_reseeds_": int(getattr(gm, "n_reseeds_", 0))},
    }
    if hasattr(gm, "feature_names_in_"):
        meta["fitted"]["feature_names_in_"] = [str(v) for v in gm.feature_names_in_]
    arrays = {"weights": gm.weights_, "means": gm.means_, "covariances": gm.covariances_,
              "precisions_cholesky": gm.precisions_cholesky_,
              "metadata": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})

    atomic_write(path, write)


def load_model(path):
    """Load a model saved by :func:`save_model`.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a fastem model, is damaged, or comes from a newer
        format version.
    """
    from ._model import precisions_from_cholesky
    from .mixture import GaussianMixture

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a fastem model file (not a readable .npz: {exc})") from None
    if not hasattr(loaded, "files"):  # a plain .npy array
        raise ValueError(f"{path} is not a fastem model file (an .npy array, not an .npz archive).")
    try:
        with loaded as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a fastem model file (damaged .npz: {exc})") from None
    missing = [k for k in (*_ARRAYS, "metadata") if k not in data]
    if missing:
        raise ValueError(f"{path} is not a fastem model file (missing {', '.join(missing)}).")
    try:
        meta = json.loads(data["metadata"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged metadata ({exc}).") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastem model file (format {meta.get('format')!r}).")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in model format version {version} by fastem "
            f"{meta.get('fastem_version')}; this fastem reads versions up to {FORMAT_VERSION}. "
            "Upgrade fastem."
        )
    params, fitted = meta["params"], meta["fitted"]
    gm = GaussianMixture(**{k: v for k, v in params.items() if k in _SCALAR_PARAMS})
    k, d, ctype = params["n_components"], fitted["n_features_in_"], params["covariance_type"]
    shapes = {"weights": (k,), "means": (k, d),
              "covariances": {"full": (k, d, d), "tied": (d, d), "diag": (k, d),
                              "spherical": (k,)}[ctype]}
    shapes["precisions_cholesky"] = shapes["covariances"]
    for name, shape in shapes.items():
        arr = data[name]
        if arr.shape != shape or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            raise ValueError(f"{path}: damaged array {name!r} (shape {arr.shape}, expected {shape}).")
    gm.weights_ = data["weights"].astype(np.float64)
    gm.means_ = data["means"].astype(np.float64)
    gm.covariances_ = data["covariances"].astype(np.float64)
    gm.precisions_cholesky_ = data["precisions_cholesky"].astype(np.float64)
    gm.precisions_ = precisions_from_cholesky(gm.precisions_cholesky_, ctype)
    names = fitted.pop("feature_names_in_", None)
    if names is not None:
        if (not isinstance(names, list) or len(names) != d
                or not all(isinstance(v, str) for v in names)):
            raise ValueError(f"{path}: damaged metadata (feature_names_in_ must be {d} strings).")
        gm.feature_names_in_ = np.asarray(names, dtype=object)
    for name, value in fitted.items():
        setattr(gm, name, value)
    return gm


# ----------------------------------------------------------------------------
# Data files for the command line
# ----------------------------------------------------------------------------

class NamedColumns:
    """A 2-D array with column names, read by the estimators as a dataframe.

    ``columns`` gives ``feature_names_in_`` on fit and is checked on predict;
    ``np.asarray`` gives the array itself (no copy).

    Attributes
    ----------
    array : ndarray of shape (n_samples, n_features)
    columns : list of str, length n_features
    """

    def __init__(self, array, columns):
        self.array = array
        self.columns = list(columns)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype, copy=False)

    @property
    def shape(self):
        return self.array.shape

    @property
    def ndim(self):
        return self.array.ndim


def read_data(path):
    """Read a data matrix: .npy (memory-mapped), .csv, or .parquet (pyarrow).

    A CSV header line and parquet column names become the column names that
    a model is fitted with (``feature_names_in_``) and checked against.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) (a read-only memory map for
        .npy), or :class:`NamedColumns` when the file names its columns
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy file ({exc})") from None
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("reading .parquet files needs pyarrow: pip install pyarrow") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
        try:
            X = np.column_stack([col.to_numpy(zero_copy_only=False).astype(np.float64)
                                 for col in table.columns])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: parquet columns must be numeric ({exc})") from None
        return NamedColumns(X, [str(c) for c in table.column_names])
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .csv or .parquet.")


def _read_csv(path):
    """Numeric CSV, optionally with one header line of column names; ragged rows
    are an error."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if not first.strip():
        raise ValueError(f"{path}: empty CSV file")
    cells = first.strip().split(",")
    try:
        [float(v) for v in cells]
        header = None
    except ValueError:
        header = [c.strip().strip('"') for c in cells]
    try:
        X = np.loadtxt(path, delimiter=",", skiprows=0 if header is None else 1, ndmin=2,
                       dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    if header is None or X.shape[0] == 0:
        return X  # an empty file is reported by the estimator's input check
    if len(header) != X.shape[1]:
        raise ValueError(f"{path}: the header names {len(header)} columns, the rows have "
                         f"{X.shape[1]}.")
    return NamedColumns(X, header)


def write_array(path, array):
    """Write ``array`` as .npy or .csv (by suffix), atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        fmt = "%d" if np.issubdtype(array.dtype, np.integer) else "%.17g"
        atomic_write(path, lambda tmp: np.savetxt(tmp, array, delimiter=",", fmt=fmt))
    elif path.suffix.lower() == ".npy":
        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, array)
        atomic_write(path, write)
    else:
        raise ValueError(f"{path}: output must end in .npy or .csv")
