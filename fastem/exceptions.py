"""fastem's exception and warning classes.

When scikit-learn is installed they subclass scikit-learn's own
(``sklearn.exceptions.NotFittedError`` and ``ConvergenceWarning``), the way
LightGBM and XGBoost do, so code written for scikit-learn —
``pytest.raises(sklearn.exceptions.NotFittedError)``,
``warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)``
— catches fastem's too. scikit-learn stays optional.

The classes are built on first use, not at ``import fastem``: importing
scikit-learn takes about half a second (measured: 0.55 s on an AMD EPYC, most
of it ``sklearn.base``), which ``import fastem`` and the command line should
not pay when no error is raised. Access them as ``fastem.NotFittedError`` or
``fastem.exceptions.NotFittedError``.
"""

from __future__ import annotations

import os
import sys

_BUILT: dict = {}


def _sklearn_base(name):
    try:
        import sklearn.exceptions as sk
    except ImportError:
        return None
    return getattr(sk, name, None)


def _build(name):
    if name == "NotFittedError":
        base = _sklearn_base(name)
        bases = (base,) if base is not None else (ValueError, AttributeError)
        doc = "A method that needs a fitted model was called before ``fit``."
    else:
        base = _sklearn_base(name)
        bases = (base,) if base is not None else (UserWarning,)
        doc = "EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."
    cls = type(name, bases, {"__doc__": doc, "__module__": __name__})
    cls.__qualname__ = name
    return cls


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by this function's
    caller point at the first line outside the fastem package (the user's
    call), however deep inside fastem the caller is: the driver warns from
    the same line for a mixture, a model selection sweep and an HMM."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def __getattr__(name):
    if name in ("NotFittedError", "ConvergenceWarning"):
        if name not in _BUILT:
            _BUILT[name] = _build(name)
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NotFittedError", "ConvergenceWarning"]  # noqa: F822 (built by __getattr__)
