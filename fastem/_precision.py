"""The compute dtype of a pass, and the kernel inputs narrowed to it.

float32 input computes in float32 by default (twice the SIMD lanes) without
the raw-moment trap:

- every row is centred on a reference ``ref`` in float64 before it is
  narrowed, so an offset such as ``1e4 + 0.01 * noise`` never meets float32
  arithmetic; the reference is the mean of the pass's component means, which
  lies inside the data's range;
- the means go to the kernel as ``mu_j - ref`` (subtracted in float64, then
  narrowed), and the statistics are centred on exactly what the kernel used,
  ``ref + float32(mu_j - ref)`` in float64;
- the per-component constants lose their largest value (``shift``) before they
  are narrowed, so float32 rounds the small differences that decide the
  responsibilities rather than a large common offset; ``shift`` is added back
  to every log-density in float64;
- sums over one block's points run in float32, everything after it in float64;
- a pass whose model float32 cannot resolve computes in float64 instead
  (:func:`float32_amplification`): float32 places a row to ``6e-8`` of its
  distance from ``ref``, and a component's precision factor magnifies that
  error by its largest singular value, so a narrow component far from
  ``ref`` (or one collapsing onto a few rows) would see its log-densities
  rounded coarsely, and the bound of the fit would wobble by more than
  float32's usual round-off.

The estimators' ``dtype`` parameter chooses: None (the input's dtype),
``numpy.float64`` (always float64, as scikit-learn computes float64 input) or
``numpy.float32``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import config

#: Accepted values of the estimators' ``dtype`` parameter.
COMPUTE_DTYPES = (None, np.float32, np.float64)


def check_dtype(value, name="dtype"):
    """The compute dtype a parameter asks for: None, np.float32 or np.float64.

    Accepts the NumPy types, their dtypes and their names ('float32').

    Raises
    ------
    ValueError
        For anything else.
    """
    if value is None:
        return None
    try:
        dt = np.dtype(value)
    except Exception:  # noqa: BLE001 -- np.dtype("f8,,") raises SyntaxError (found by fuzzing model files)
        dt = None
    # (``dt is None`` first: NumPy compares None equal to float64)
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"Invalid value for '{name}': {value!r}; expected None, "
                         "numpy.float32 or numpy.float64.")
    return dt.type


def compute_dtype(data_dtype, requested=None):
    """The dtype a pass over data of ``data_dtype`` computes in."""
    if requested is not None:
        return np.dtype(requested).type
    return np.float32 if np.dtype(data_dtype) == np.float32 else np.float64


@dataclass
class PassArrays:
    """A model's kernel inputs as one pass of a given compute dtype takes them.

    Attributes
    ----------
    ref : ndarray of shape (d,), float64
        Centre of the rows, subtracted in float64 (zeros for float64 compute).
    means : ndarray of shape (k, d), compute dtype: ``mu_j - ref``
    factor : ndarray, compute dtype (shape as ``KernelInputs.factor``)
    log_const : ndarray of shape (k,), compute dtype: ``c_j - shift``
    shift : float
        Added back to every row's log-density (and ``shift * sum_i w_i`` to the
        log-likelihood of a pass).
    centres : ndarray of shape (k, d), float64
        What the statistics are centred on: ``ref + means`` exactly.
    round_off : float
        Relative round-off of the pass's log-likelihood (0 for float64: the
        driver's own slack applies).
    """

    ref: np.ndarray
    means: np.ndarray
    factor: np.ndarray
    log_const: np.ndarray
    shift: float
    centres: np.ndarray
    round_off: float

    def log_likelihood(self, kernel_sum, weight_sum) -> float:
        """A pass's ``sum_i w_i log p(x_i)`` from the kernels' sum (without ``shift``)."""
        return float(kernel_sum) + self.shift * weight_sum


def for_pass(inputs, data_dtype, requested=None) -> PassArrays:
    """``inputs`` (``fastem._model.KernelInputs``) narrowed for a pass over
    data of ``data_dtype`` under a backend's ``dtype`` setting ``requested``."""
    return pass_arrays(inputs.means, inputs.factor, inputs.log_const,
                       compute_dtype(data_dtype, requested))


def float32_amplification(means, factor, ref) -> float:
    """By how much the model magnifies float32's placement of a row, relative to
    a component's own scale: ``max_j (||mu_j - ref||_inf + sigma_max_j) *
    ||U_j||_2``, where ``sigma_max_j`` is the component's largest standard
    deviation (1 / the smallest singular value of ``U_j``).

    Parameters
    ----------
    means : (k, d) float64
    factor : (k, d * d) upper factors, or (k, d) per-feature scales
    ref : (d,) float64
    """
    k, d = means.shape
    if factor.shape[1] == d * d:
        sv = np.linalg.svd(factor.reshape(k, d, d), compute_uv=False)
    else:
        sv = np.abs(factor)
    largest, smallest = sv.max(axis=1), sv.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        extent = np.abs(means - ref).max(axis=1) + 1.0 / smallest
        amp = extent * largest
    return float(np.nanmax(amp)) if np.all(np.isfinite(amp)) else np.inf


def pass_arrays(means, factor, log_const, dtype) -> PassArrays:
    """Narrow ``(means, factor, log_const)`` (float64) for a pass in ``dtype``
    (float64 when float32 cannot resolve the model, see :func:`float32_amplification`)."""
    d = means.shape[1]
    ref = means.mean(axis=0)
    if (dtype == np.float64
            or float32_amplification(means, factor, ref) > config.FLOAT32_MAX_AMPLIFICATION):
        return PassArrays(np.zeros(d), means, factor, log_const, 0.0, means.copy(), 0.0)
    narrowed = np.ascontiguousarray(means - ref, dtype=dtype)
    finite = log_const[np.isfinite(log_const)]
    shift = float(finite.max()) if finite.size else 0.0
    return PassArrays(ref, narrowed, np.ascontiguousarray(factor, dtype=dtype),
                      np.ascontiguousarray(log_const - shift, dtype=dtype), shift,
                      ref + narrowed.astype(np.float64), config.FLOAT32_BOUND_ROUND_OFF)
