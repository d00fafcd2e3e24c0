"""Model files and data files.

Model file format (``.npz``, read with ``allow_pickle=False``, so loading never
executes code): the fitted arrays of the model and ``metadata``, a UTF-8 JSON
document stored as a uint8 array::

    {"format": "fastem-gaussian-mixture", "format_version": 2,
     "model": "GaussianMixture" | "BayesianGaussianMixture",
     "fastem_version": "...", "params": {constructor parameters},
     "fitted": {"n_features_in_": ..., "converged_": ..., "n_iter_": ...,
                "lower_bound_": ..., "lower_bounds_": [...], "n_reseeds_": ...,
                scalar fitted attributes of the model,
                "feature_names_in_": [...] (only when fitted on named columns)}}

Which arrays and parameters a model stores is its class's ``_model_file``
(:class:`ModelFile`); the classes register themselves in ``MODEL_CLASSES``.
Version-1 files (no ``"model"``) are Gaussian mixtures and still load.

Arrays given to the constructor (``weights_init``, ``mean_prior``, ...) are not
stored: a loaded model predicts and continues fitting (``warm_start``) but
re-initialises from ``init_params`` on a cold fit. Writes go to a temporary
file in the target folder that is renamed at the end, so a failed write leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "fastem-gaussian-mixture"
FORMAT_VERSION = 2
_COMMON_FITTED = ("n_features_in_", "converged_", "n_iter_", "lower_bound_", "lower_bounds_",
                  "n_reseeds_")


@dataclass(frozen=True)
class ModelFile:
    """What a model class stores in its file.

    Attributes
    ----------
    arrays : fitted array attributes, name -> shape function ``(k, d, params)`` (params:
        the stored constructor parameters)
    scalars : fitted float attributes stored in the JSON
    unstored_params : constructor parameters that are arrays (initial values,
        priors given as arrays); every other constructor parameter is stored
    """

    arrays: dict
    scalars: tuple = ()
    unstored_params: tuple = ()

    def params(self, cls) -> list:
        """The constructor parameters of ``cls`` that the file stores."""
        return [p for p in cls._get_param_names() if p not in self.unstored_params]


#: Model classes by name, filled in by each class's module (no import of the
#: models from here, so ``io`` and the models do not import each other).
MODEL_CLASSES: dict = {}


def register_model(cls):
    """Class decorator: ``cls`` can be saved and loaded (it has ``_model_file``)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


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


def _json_scalar(name, value):
    if name == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
        return None  # a RandomState object is not data
    if name == "dtype" and value is not None:
        return np.dtype(value).name  # 'float32': the parameter accepts names
    return value.item() if isinstance(value, np.generic) else value


def save_model(model, path) -> None:
    """Save a fitted model to ``path`` (.npz; see module doc)."""
    from . import __version__

    model._check_fitted()
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{path}: model files are .npz archives; use a name ending in .npz")
    spec = type(model)._model_file
    if hasattr(model, "_file_contents"):  # a model that lays out its own arrays (the VAE)
        arrays, fitted = model._file_contents()
    else:
        convert = {"n_features_in_": int, "converged_": bool, "n_iter_": int,
                   "lower_bound_": float, "lower_bounds_": lambda v: [float(x) for x in v],
                   "n_reseeds_": int}
        fitted = {name: convert[name](getattr(model, name))
                  for name in _COMMON_FITTED if hasattr(model, name)}
        for name in spec.scalars:
            fitted[name] = float(getattr(model, name))
        arrays = {name: np.asarray(model._saved_array(name)) for name in spec.arrays}
    if hasattr(model, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(v) for v in model.feature_names_in_]
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": type(model).__name__,
        "fastem_version": __version__,
        "params": {name: _json_scalar(name, getattr(model, name))
                   for name in spec.params(type(model))},
        "fitted": fitted,
    }
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_model(path):
    """Load a model saved by :func:`save_model`; its class comes from the file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a fastem model, is damaged, or comes from a newer
        format version.
    """
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
    if "metadata" not in data:
        raise ValueError(f"{path} is not a fastem model file (missing metadata).")
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
    kind = meta.get("model", "GaussianMixture")  # version 1 held Gaussian mixtures only
    if kind not in MODEL_CLASSES:
        raise ValueError(f"{path}: unknown model kind {kind!r}; known: {sorted(MODEL_CLASSES)}.")
    cls = MODEL_CLASSES[kind]
    spec = cls._model_file
    missing = [k for k in spec.arrays if k not in data]
    if missing:
        raise ValueError(f"{path} is not a fastem model file (missing {', '.join(missing)}).")
    params, fitted = meta["params"], dict(meta["fitted"])
    stored = spec.params(cls)
    if hasattr(cls, "_from_file"):
        names = fitted.pop("feature_names_in_", None)
        model = cls._from_file(path, {k: v for k, v in params.items() if k in stored}, fitted,
                               data)
        if names is not None:
            model.feature_names_in_ = np.asarray(names, dtype=object)
        return model
    model = cls(**{k: v for k, v in params.items() if k in stored})
    k, d = params["n_components"], fitted["n_features_in_"]
    for name, shape_of in spec.arrays.items():
        arr, shape = data[name], shape_of(k, d, params)
        if arr.shape != shape or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            raise ValueError(f"{path}: damaged array {name!r} (shape {arr.shape}, expected {shape}).")
    names = fitted.pop("feature_names_in_", None)
    if names is not None:
        if (not isinstance(names, list) or len(names) != d
                or not all(isinstance(v, str) for v in names)):
            raise ValueError(f"{path}: damaged metadata (feature_names_in_ must be {d} strings).")
        model.feature_names_in_ = np.asarray(names, dtype=object)
    for name, value in fitted.items():
        if name in _COMMON_FITTED or name in spec.scalars:
            setattr(model, name, value)
    model._restore_arrays({name: data[name].astype(np.float64) for name in spec.arrays})
    return model


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
