"""Model files: save a fitted model, load it back, and trust nothing in between.

Format (``.npz``, read with ``allow_pickle=False``, so loading never executes
code): the fitted arrays of the model and ``metadata``, a UTF-8 JSON document
stored as a uint8 array::

    {"format": "fastem-gaussian-mixture", "format_version": 2,
     "model": "GaussianMixture" | "BayesianGaussianMixture" | "PPCA" | "VAE",
     "fastem_version": "...", "params": {constructor parameters},
     "fitted": {"n_features_in_": ..., "converged_": ..., "n_iter_": ...,
                "lower_bound_": ..., "lower_bounds_": [...], "n_reseeds_": ...,
                scalar fitted attributes of the model,
                "feature_names_in_": [...] (only when fitted on named columns)}}

Which arrays and parameters a model stores is its class's ``_model_file``
(:class:`ModelFile`); the classes register themselves in ``MODEL_CLASSES``.
Version-1 files (no ``"model"``) are Gaussian mixtures and still load.

A model file is untrusted input. :func:`load_model` reads only the members the
format names, checks each member's declared shape, dtype and size against the
metadata before reading it (a small file cannot make it allocate more than the
model it describes), and validates every parameter against the constraints a
fit produces (the class's ``_check_file_arrays``: weights on the simplex,
positive-definite factors, covariances consistent with precisions, ...). Any
defect is a ``ValueError`` that names the field. :func:`save_model` runs the
same checks before it writes, so it never writes a file that ``load`` refuses.

Arrays given to the constructor (``weights_init``, ``mean_prior``, ...) are not
stored: a loaded model predicts and continues fitting (``warm_start``) but
re-initialises from ``init_params`` on a cold fit. Writes go to a temporary
file in the target folder that is renamed at the end, so a failed write leaves
nothing behind.
"""

from __future__ import annotations

import json
import math
import numbers
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import atomic_write

FORMAT = "fastem-gaussian-mixture"
FORMAT_VERSION = 2
#: Largest metadata document read (bytes); feature names of a million columns fit.
MAX_METADATA_BYTES = 64 << 20
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
#: models from here, so this module and the models do not import each other).
MODEL_CLASSES: dict = {}


def register_model(cls):
    """Class decorator: ``cls`` can be saved and loaded (it has ``_model_file``)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


class FileError(ValueError):
    """A model file (or a model about to be saved) that breaks the format.

    ``field`` names what is wrong (``'weights'``, ``'metadata.params'``, ...).
    """

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


# ----------------------------------------------------------------------------
# Save
# ----------------------------------------------------------------------------

def _json_scalar(name, value):
    if name == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
        return None  # a RandomState object is not data
    if name == "dtype" and value is not None:
        return np.dtype(value).name  # 'float32': the parameter accepts names
    if isinstance(value, tuple):
        return [_json_scalar(name, v) for v in value]
    if isinstance(value, np.ndarray):  # a prior given per state (GaussianHMM): a JSON list
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def save_model(model, path) -> None:
    """Save a fitted model to ``path`` (.npz; see module doc).

    Raises
    ------
    ValueError
        When ``path`` does not end in .npz, or when the model's parameters no
        longer describe its fitted arrays (``set_params`` after ``fit``): such
        a file could not be loaded, so nothing is written.
    OSError
        When the file cannot be written (the message names ``path``).
    """
    atomic_write(path, model_writer(model, path))


def model_writer(model, path):
    """``write(tmp_path)`` that writes ``model``'s file, for :func:`fastem.io.write_together`;
    the model is checked (as :func:`save_model` says) before anything is written."""
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
    try:  # what load would refuse is not written
        _build(type(model), meta, _Members(arrays))
    except FileError as exc:
        raise ValueError(
            f"cannot save this {type(model).__name__} to {path}: its parameters no longer "
            f"describe the fitted model ({exc}); fit it again, or set the parameters back, "
            "before saving.") from None
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return write


# ----------------------------------------------------------------------------
# Load
# ----------------------------------------------------------------------------

class _Members:
    """Arrays by name, read only when asked for and only when their declared
    shape and dtype are the expected ones (the same interface over an open
    archive and over the dict that :func:`save_model` is about to write)."""

    def __init__(self, arrays):
        self._arrays = arrays

    def names(self):
        return set(self._arrays)

    def _declared(self, name):
        arr = self._arrays[name]
        return arr.shape, arr.dtype

    def _read(self, name):
        return self._arrays[name]

    def read(self, name, shape, kinds="f"):
        """Member ``name`` after checking its declared shape (a tuple, or None
        for any shape) and dtype kind; float members come back as float64."""
        if name not in self.names():
            raise FileError(name, "missing from the file")
        declared_shape, dtype = self._declared(name)
        if dtype.kind not in kinds or dtype.hasobject:
            raise FileError(name, f"has dtype {dtype}, expected "
                            + ("floating point" if kinds == "f" else f"kind {kinds!r}"))
        if shape is not None and tuple(declared_shape) != tuple(shape):
            raise FileError(name, f"has shape {tuple(declared_shape)}, expected {tuple(shape)}")
        arr = self._read(name)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                raise FileError(name, "contains NaN or infinity")
        return arr


class _Archive(_Members):
    """The members of an open ``.npz`` archive (a zip of ``.npy`` files)."""

    def __init__(self, zf: zipfile.ZipFile):
        self._zip = zf
        self._infos = {info.filename[:-4]: info for info in zf.infolist()
                       if info.filename.endswith(".npy")}

    def names(self):
        return set(self._infos)

    def _declared(self, name):
        fmt = np.lib.format
        with self._zip.open(self._infos[name]) as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise FileError(name, f"unsupported .npy version {version}")
            header_size = f.tell()
        size = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and self._infos[name].file_size != header_size + size:
            raise FileError(name, f"declares shape {shape} of {dtype} ({size} bytes) but "
                            f"holds {self._infos[name].file_size - header_size} bytes")
        return shape, dtype

    def _read(self, name):
        with self._zip.open(self._infos[name]) as f:
            return np.lib.format.read_array(f, allow_pickle=False)


def load_model(path):
    """Load a model saved by ``save``; its class comes from the file.

    Exported as ``fastem.load``. A model file is untrusted input: only the
    members the format names are read, each after its declared shape and size
    are checked, and every field is validated against what a fit produces.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file written by a model's ``save``.

    Returns
    -------
    model : GaussianMixture, BayesianGaussianMixture, PPCA or VAE
        The fitted model (a VAE on the CPU; see ``VAE.to_device``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a fastem model, is damaged or altered (the message
        names the field), or comes from a newer format version.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import fastem
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> fastem.GaussianMixture(2, random_state=0).fit(X).save(path)
    >>> type(fastem.load(path)).__name__
    'GaussianMixture'
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a fastem model file (not a readable .npz: {exc})") from None
    try:
        with zf:
            members = _Archive(zf)
            if "metadata" not in members.names():
                raise ValueError(f"{path} is not a fastem model file (missing metadata).")
            raw = members.read("metadata", None, kinds="u")
            if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_METADATA_BYTES:
                raise FileError("metadata", "must be a 1-D uint8 array of at most "
                                f"{MAX_METADATA_BYTES} bytes")
            try:
                meta = json.loads(raw.tobytes().decode())
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise FileError("metadata", f"not a UTF-8 JSON document ({exc})") from None
            _check_format(path, meta)
            kind = meta.get("model", "GaussianMixture")  # version 1 held Gaussian mixtures only
            if not isinstance(kind, str) or kind not in MODEL_CLASSES:
                raise FileError("metadata.model",
                                f"unknown model kind {kind!r}; known: {sorted(MODEL_CLASSES)}")
            return _build(MODEL_CLASSES[kind], meta, members)
    except FileError as exc:
        raise ValueError(f"{path} is a damaged or altered fastem model file ({exc}).") from None
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise ValueError(f"{path} is a damaged or altered fastem model file ({exc}).") from None


def _check_format(path, meta):
    if not isinstance(meta, dict):
        raise FileError("metadata", f"must be a JSON object, got a JSON {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastem model file (format {meta.get('format')!r}).")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileError("metadata.format_version",
                        f"must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in model format version {version} by fastem "
            f"{meta.get('fastem_version')}; this fastem reads versions up to {FORMAT_VERSION}. "
            "Upgrade fastem."
        )


def fitted_value(fitted, name, check, what):
    """``fitted[name]`` when ``check`` accepts it; else a FileError saying it must be ``what``."""
    value = fitted.get(name)
    if not check(value):
        raise FileError(f"metadata.fitted.{name}", f"must be {what}, got {value!r:.80}")
    return value


def is_int(low):
    """A predicate: a JSON integer (not a bool) >= low."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def is_float(v):
    """A predicate: a JSON number (not a bool; infinities allowed, NaN not)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v)


_FITTED_CHECKS = {
    "n_features_in_": (is_int(1), "an integer >= 1"),
    "converged_": (lambda v: isinstance(v, bool), "true or false"),
    "n_iter_": (is_int(0), "an integer >= 0"),
    "lower_bound_": (is_float, "a number"),
    "lower_bounds_": (lambda v: isinstance(v, list) and all(is_float(x) for x in v),
                      "a list of numbers"),
    "n_reseeds_": (is_int(0), "an integer >= 0"),
}


def _build(cls, meta, members):
    """The model ``meta`` and ``members`` describe, every field checked.

    Raises
    ------
    FileError
        Naming the first field that breaks the format or a fitted model's constraints.
    """
    params, fitted = meta.get("params"), meta.get("fitted")
    if not isinstance(params, dict):
        raise FileError("metadata.params", "missing, or not a JSON object")
    if not isinstance(fitted, dict):
        raise FileError("metadata.fitted", "missing, or not a JSON object")
    spec = cls._model_file
    stored = spec.params(cls)
    params = {k: v for k, v in params.items() if k in stored}
    try:
        model = cls(**params)
        model._check_params()
    except (ValueError, TypeError) as exc:
        raise FileError("metadata.params", str(exc)) from None
    d = fitted_value(fitted, "n_features_in_", *_FITTED_CHECKS["n_features_in_"])
    names = fitted.get("feature_names_in_")
    if names is not None and (not isinstance(names, list) or len(names) != d
                              or not all(isinstance(v, str) for v in names)):
        raise FileError("metadata.fitted.feature_names_in_", f"must be a list of {d} strings")
    if hasattr(cls, "_from_file"):  # a model that lays out its own arrays (the VAE)
        model = cls._from_file(model, fitted, members)
    else:
        for name in _COMMON_FITTED:
            if name in fitted:
                setattr(model, name, fitted_value(fitted, name, *_FITTED_CHECKS[name]))
        for name in spec.scalars:
            setattr(model, name, float(fitted_value(fitted, name, is_float, "a number")))
        k = model.n_components
        arrays = {name: members.read(name, shape_of(k, d, params))
                  for name, shape_of in spec.arrays.items()}
        model._check_file_arrays(arrays)
        model._restore_arrays(arrays)
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    return model


# ----------------------------------------------------------------------------
# Constraints shared by the models' ``_check_file_arrays``
# ----------------------------------------------------------------------------

def check_simplex(name, weights):
    """Non-negative weights summing to 1 (to 1e-6)."""
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-6:
        raise FileError(name, f"must be non-negative and sum to 1 (min {weights.min():.3g}, "
                        f"sum {weights.sum():.10g})")


def check_positive(name, values, above=0.0):
    """Every value greater than ``above``."""
    if not np.all(np.asarray(values) > above):
        raise FileError(name, f"must be greater than {above:g} (min {np.min(values):.3g})")


def check_factor_pair(covariances, precisions_cholesky, covariance_type):
    """Precision factors upper triangular with a positive diagonal (or positive),
    and covariances their inverse ``(U U^T)^-1`` to round-off."""
    if covariance_type in ("diag", "spherical"):
        check_positive("precisions_cholesky", precisions_cholesky)
        check_positive("covariances", covariances)
        gap = np.abs(covariances * precisions_cholesky**2 - 1.0).max()
        if gap > 1e-8:
            raise FileError("covariances", "inconsistent with precisions_cholesky "
                            f"(cov * prec_chol**2 differs from 1 by {gap:.3g})")
        return
    d = covariances.shape[-1]
    U, C = precisions_cholesky.reshape(-1, d, d), covariances.reshape(-1, d, d)
    if np.any(np.tril(U, -1) != 0) or not np.all(np.diagonal(U, axis1=1, axis2=2) > 0):
        raise FileError("precisions_cholesky",
                        "must be upper triangular with a positive diagonal")
    if np.any(C != np.swapaxes(C, 1, 2)):
        raise FileError("covariances", "must be symmetric")
    # U^T C U = I; round-off grows with the condition number, bounded here by
    # ||C||_F ||U U^T||_F (>= cond(C)).
    gap = np.abs(np.swapaxes(U, 1, 2) @ C @ U - np.eye(d)).max(axis=(1, 2))
    cond = np.linalg.norm(C, axis=(1, 2)) * np.linalg.norm(U @ np.swapaxes(U, 1, 2), axis=(1, 2))
    if np.any(gap > 1e-8 + 1e-12 * cond):
        raise FileError("covariances", "inconsistent with precisions_cholesky "
                        f"(U^T C U differs from the identity by {gap.max():.3g})")
