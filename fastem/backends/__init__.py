"""Backends: drivers that run the fused pass and the log-densities on a device.

The protocol, the same for cpu, cuda and dask (``backend_for`` picks one):

- ``check_input(X, n_features, estimator)``: X validated (clear errors);
- ``prepare(X)``: the data as the backend holds it during a fit;
- ``accumulate(data, inputs, sample_weight) -> Stats``: the fused pass
  (E-step under ``inputs``, a ``KernelInputs``, and centred
  sufficient statistics);
- ``map_rows(data, inputs, reduce, out_columns, dtype)``: ``reduce`` of the
  weighted log-densities, chunk by chunk (predict / score; lazy for Dask);
- ``map_chunks(data, fn, ...)`` and ``take_rows(data, rows)``: the passes and
  row picks of initialisation and re-seeding;
- ``in_float64()``: the same backend computing every pass in float64 (for a
  float32 pass that lost rows, see ``fastem._steps.GaussianPass``);
- ``sequence_passes(data, inputs, startprob, transmat)``: a hidden Markov
  model's passes over sequences (``estep``, ``scores``, ``viterbi``; see
  ``cpu_hmm.py``), for ``fastem.hmm.SequencePass``.

A backend never sees an estimator or a model family.
"""

from .cpu import CPUBackend

BACKENDS = ("cpu", "cuda")


def backend_for(X, name, dtype=None):
    """The backend for input X and the estimator's ``backend`` parameter:
    Dask arrays run on the Dask scheduler (with the CPU kernels). ``dtype`` is
    the compute dtype of the passes (None: the data's; see ``fastem._precision``)."""
    from .dask import is_dask_array

    if is_dask_array(X):
        if name != "cpu":
            raise ValueError("dask arrays run the CPU kernels on the Dask workers; "
                             "use backend='cpu' with dask input.")
        from .dask import DaskBackend
        return DaskBackend(dtype)
    return get_backend(name, dtype)


def get_backend(name, dtype=None):
    """Return a backend instance by name: 'cpu' or 'cuda'.

    Raises
    ------
    ValueError
        For an unknown name, or 'cuda' without a usable GPU (or simulator).
    """
    if name == "cpu":
        return CPUBackend(dtype)
    if name == "cuda":
        from .cuda import CUDABackend  # imports numba.cuda only when asked for
        return CUDABackend(dtype)
    raise ValueError(f"Invalid value for 'backend': {name!r}; expected one of {list(BACKENDS)}.")
