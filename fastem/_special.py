"""The special functions of the variational bounds, without SciPy (not a
run-time dependency). They act on the small per-component arrays of the
M-step, never on data, so plain NumPy loops are fast enough.

Tested against ``scipy.special`` in ``tests/test_special.py``.
"""

from __future__ import annotations

import math

import numpy as np

_lgamma = np.frompyfunc(math.lgamma, 1, 1)

#: Bernoulli-number coefficients of the asymptotic series of digamma,
#: ``B_2n / (2n)`` for n = 1..7.
_DIGAMMA_SERIES = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)


def gammaln(x):
    """``log |Gamma(x)|`` element-wise (``math.lgamma``), float64, same shape as x."""
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(_lgamma(x), dtype=np.float64).reshape(x.shape)


def betaln(a, b):
    """``log B(a, b) = gammaln(a) + gammaln(b) - gammaln(a + b)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def digamma(x):
    """``psi(x) = d/dx log Gamma(x)`` for x > 0, element-wise, to ~1e-15 relative.

    The recurrence ``psi(x) = psi(x + 1) - 1/x`` lifts x to at least 10, where
    the asymptotic series ``log x - 1/(2x) - sum B_2n / (2n x^2n)`` (7 terms)
    is accurate to double precision.
    """
    x = np.array(x, dtype=np.float64)
    if np.any(~(x > 0)):
        raise ValueError("digamma is implemented for positive arguments only")
    shift = np.zeros_like(x)
    while True:
        small = x < 10.0
        if not small.any():
            break
        shift[small] -= 1.0 / x[small]
        x[small] += 1.0
    inv2 = 1.0 / (x * x)
    series = np.zeros_like(x)
    for c in reversed(_DIGAMMA_SERIES):
        series = (series + c) * inv2
    return shift + np.log(x) - 0.5 / x - series
