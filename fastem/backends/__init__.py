"""Backends: drivers that run the fused pass and the log-densities on a device.

A backend implements ``accumulate(X, params, sample_weight) -> Stats`` and
``weighted_log_prob_chunks(X, params)``; it never sees the estimator.
"""

from .cpu import CPUBackend

_BACKENDS = {"cpu": CPUBackend}


def get_backend(name):
    """Return a backend instance by name ('cpu')."""
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ValueError(
            f"Invalid value for 'backend': {name!r}; expected one of {sorted(_BACKENDS)}."
        ) from None
