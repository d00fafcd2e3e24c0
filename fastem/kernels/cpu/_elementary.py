"""``exp`` (and a logarithm) written so that a loop calling it vectorises.

Numba's ``np.exp`` is a scalar libm call: in a loop over a block's points
(the responsibilities) or over a hidden Markov model's states (the
forward-backward recursions) it costs more than the arithmetic around it.
:func:`fast_exp` is straight-line IEEE arithmetic and bit casts, with no
branches, so LLVM turns a loop of it into vector instructions. Accuracy
against NumPy (``tests/test_simd.py``): 1e-15 relative in float64, 4e-7 in
float32.

:func:`log_of_product` is the logarithm of a product kept as a mantissa
and an exponent apart, for the log-determinants of the incomplete-data
pass (one per row and component). (A vectorisable ``log`` of a plain float
served a log-space forward-backward that lost to the rescaled one in
``kernels/cpu/hmm.py``, and was removed.)

Numba's on-disk cache checks only the source file of a cached kernel, not the
modules it inlines: after editing this file, delete
``fastem/kernels/cpu/__pycache__``.
"""

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import helper
from ._simd import bits_from_f32, bits_from_f64, f32_from_bits, f64_from_bits

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693147180369123816490  # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0  # below this exp underflows; the kernels return exactly 0
#: 1.5 * 2**52: adding it to an integer-valued double puts the integer in the
#: low mantissa bits, a vectorisable float -> int conversion (AVX2 has no
#: vector double -> int64 instruction, and a scalar one per lane cost the
#: diag pass a third of its time on Zen 3).
_SHIFT64 = 6755399441055744.0
_SHIFT64_BITS = 0x4338000000000000

_LOG2E_F = np.float32(_LOG2E)
_LN2_HI_F = np.float32(0.693359375)  # 9 significant bits: n * _LN2_HI_F is exact
_LN2_LO_F = np.float32(-2.12194440e-4)
_EXP_MIN_F = np.float32(-87.0)  # exp(-87) is above float32's smallest normal
_SHIFT32 = np.float32(12582912.0)  # 1.5 * 2**23
_SHIFT32_BITS = np.int32(0x4B400000)
_HALF_F = np.float32(0.5)
_ONE_F = np.float32(1.0)
_ZERO_F = np.float32(0.0)


@helper(ordered=True)
def _exp_f64(x):
    """Cody-Waite range reduction ``x = n ln2 + r`` (|r| <= ln2 / 2) with a
    degree-12 Taylor polynomial (truncation error < 3e-16 relative) scaled by
    ``2**n`` built from the exponent bits."""
    v = max(x, _EXP_MIN)
    n = np.floor(v * _LOG2E + 0.5)
    r = (v - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    n_bits = bits_from_f64(n + _SHIFT64) - _SHIFT64_BITS  # the integer n, exactly
    scale = f64_from_bits((n_bits + 1023) << 52)
    return p * scale if x >= _EXP_MIN else 0.0


@helper(ordered=True)
def _exp_f32(x):
    """The float32 twin of :func:`_exp_f64`: a degree-7 Taylor polynomial
    (truncation error < 6e-9, below float32's rounding); inputs below -87
    (including -inf) give exactly 0."""
    v = max(x, _EXP_MIN_F)
    n = np.floor(v * _LOG2E_F + _HALF_F)
    r = (v - n * _LN2_HI_F) - n * _LN2_LO_F
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + _HALF_F
    p = p * r + _ONE_F
    p = p * r + _ONE_F
    n_bits = bits_from_f32(n + _SHIFT32) - _SHIFT32_BITS
    scale = f32_from_bits((n_bits + np.int32(127)) << np.int32(23))
    return p * scale if x >= _EXP_MIN_F else _ZERO_F


def fast_exp(x):
    """``exp(x)`` for ``x <= 709`` (float64) or ``x <= 88`` (float32), in the
    dtype of ``x``, written so that a loop calling it vectorises (Numba's
    ``np.exp`` is a scalar libm call). Inputs below the underflow limit
    (including -inf) give exactly 0. Jitted code only."""
    raise NotImplementedError("fast_exp() is a jitted helper")


@overload(fast_exp, inline="always")
def _fast_exp(x):
    if x == types.float32:
        return lambda x: _exp_f32(x)
    if x == types.float64:
        return lambda x: _exp_f64(x)
    return None


_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
_SQRT2 = 1.4142135623730951


@helper(ordered=True)
def split_product(m, e, factor):
    """``m 2**e`` times ``factor`` (positive, normal) as a new ``(m, e)``,
    ``m`` in [1, 2): a product of any number of factors without overflow.
    Straight-line bit arithmetic, so that a loop of it vectorises. A factor
    that is NaN or infinite makes ``m`` NaN from then on, as it would the
    product (``0 * v`` is NaN then, 0 otherwise)."""
    v = m * factor
    b = bits_from_f64(v)
    return f64_from_bits((b & _MANTISSA) | _ONE_BITS) + 0.0 * v, e + ((b >> 52) & 0x7FF) - 1023


@helper(ordered=True)
def log_of_product(m, e):
    """``log(m 2**e)`` for ``m`` in [1, 2) from :func:`split_product`: ``m``
    halved above sqrt(2), so that ``u = (m - 1) / (m + 1)`` has ``|u| <
    0.172``, and ``log m = 2 atanh u`` by its series to ``u**23`` (truncation
    below 1e-19 relative); ``e ln 2`` in two parts. Within 1e-16 of NumPy's
    ``log`` (``tests/test_simd.py``)."""
    high = m > _SQRT2
    m = 0.5 * m if high else m
    e = e + 1 if high else e
    u = (m - 1.0) / (m + 1.0)
    u2 = u * u
    p = 1.0 / 23.0
    p = p * u2 + 1.0 / 21.0
    p = p * u2 + 1.0 / 19.0
    p = p * u2 + 1.0 / 17.0
    p = p * u2 + 1.0 / 15.0
    p = p * u2 + 1.0 / 13.0
    p = p * u2 + 1.0 / 11.0
    p = p * u2 + 1.0 / 9.0
    p = p * u2 + 1.0 / 7.0
    p = p * u2 + 1.0 / 5.0
    p = p * u2 + 1.0 / 3.0
    n = f64_from_bits(e + _SHIFT64_BITS) - _SHIFT64  # float(e), vectorisable on AVX2 too
    return n * _LN2_HI + (n * _LN2_LO + 2.0 * u + 2.0 * u * (u2 * p))
