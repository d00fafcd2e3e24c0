"""Backends: drivers that run the fused pass and the log-densities on a device.

A backend implements ``accumulate(X, params, sample_weight) -> Stats`` and
``weighted_log_prob_chunks(X, params)``; it never sees the estimator.
"""

from .cpu import CPUBackend

BACKENDS = ("cpu", "cuda")


def get_backend(name):
    """Return a backend instance by name: 'cpu' or 'cuda'.

    Raises
    ------
    ValueError
        For an unknown name, or 'cuda' without a usable GPU (or simulator).
    """
    if name == "cpu":
        return CPUBackend()
    if name == "cuda":
        from .cuda import CUDABackend  # imports numba.cuda only when asked for
        return CUDABackend()
    raise ValueError(f"Invalid value for 'backend': {name!r}; expected one of {list(BACKENDS)}.")
