"""Dask driver: each EM pass runs as tasks on the active Dask scheduler.

Every row chunk of a dask array computes its statistics with the same Numba
kernel as the CPU backend, on the worker that holds it; the per-chunk
``Stats`` are tree-reduced pairwise in a fixed order, and only the small
reduced statistics come back to the client. X is never collected. With a
``distributed.Client`` active, ``dask.compute`` runs on its cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import config
from .._model import KernelInputs, Stats
from ._common import kernel_input
from .cpu import CPUBackend
from .cpu_hmm import add_stats


def is_dask_array(X) -> bool:
    """Whether X is a dask array (without importing dask when it is not)."""
    return type(X).__module__.startswith("dask.array") and hasattr(X, "dask")


@dataclass
class DaskData:
    """A validated dask array with row chunks only (all columns in one chunk)."""

    array: object
    shape: tuple
    dtype: np.dtype


def check_dask_array(X, n_features=None, estimator="GaussianMixture", allow_nan=False):
    """Validate a dask array lazily where possible; one pass checks finiteness.

    Returns
    -------
    X : dask array, float32 or float64, chunked by rows only, known chunk sizes
    """
    import dask.array as da

    from .._validation import check_n_features, check_shape, reject_complex

    if X.ndim != 2:
        check_shape(X.shape)
    kind = X.dtype.kind
    reject_complex(X.dtype)
    if kind not in "fiub":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    check_shape(X.shape)
    check_n_features(X.shape[1], n_features, estimator=estimator)
    X = X.rechunk({1: -1})
    if not allow_nan and not bool(da.isfinite(X).all().compute()):
        raise ValueError("X contains NaN or infinity.")
    return X


def _chunk_stats(block, weights, inputs, dtype=None):
    """Statistics of one chunk, on the worker, with the CPU kernel."""
    block = np.ascontiguousarray(block)
    return CPUBackend(dtype).accumulate(block, inputs, weights)


def _chunk_stats_many(block, weights, inputs_list, dtype=None):
    """Several models' statistics of one chunk, on the worker, in one pass."""
    return CPUBackend(dtype).accumulate_many(np.ascontiguousarray(block), inputs_list, weights)


def _add_lists(a, b):
    return [x + y for x, y in zip(a, b)]


def _chunk_map(block, weights, fn, args):
    """``fn`` of :meth:`DaskBackend.map_chunks` on one chunk, on the worker."""
    return fn(kernel_input(np.ascontiguousarray(block)), weights, *args)


def _nbytes(args) -> int:
    return sum(getattr(a, "nbytes", 0) for a in args)


def _add(a, b):
    return a + b


def _tree_sum(items, add=_add):
    """Pairwise delayed sums in a fixed order (deterministic)."""
    import dask

    add = dask.delayed(add, pure=True)
    while len(items) > 1:
        nxt = [add(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


class DaskBackend:
    """Runs the fused pass chunk by chunk as Dask tasks (CPU kernels on workers).

    Predictions on dask input are lazy dask arrays built by :func:`lazy_map`
    instead of the eager ``weighted_log_prob_chunks`` of the other backends.
    """

    name = "dask"

    def __init__(self, dtype=None):
        self.dtype = dtype  # compute dtype of the CPU kernels on the workers

    def in_float64(self):
        """This backend computing every pass in float64."""
        return type(self)(np.float64)

    #: The CPU kernels on the workers integrate missing values out.
    fits_missing = True

    def check_input(self, X, n_features=None, estimator="GaussianMixture", allow_nan=False):
        """Validate a dask array lazily (one pass checks finiteness, unless
        ``allow_nan``: then the caller's ``fastem._missing.scan`` does)."""
        return check_dask_array(X, n_features=n_features, estimator=estimator,
                                allow_nan=allow_nan)

    def prepare(self, X) -> DaskData:
        return DaskData(X, tuple(X.shape), np.dtype(X.dtype))

    def _bounds(self, data):
        """``(start, stop)`` of every row chunk, in row order."""
        edges = np.cumsum((0,) + tuple(data.array.chunks[0]))
        return list(zip(edges[:-1].tolist(), edges[1:].tolist()))

    def _weight_blocks(self, data, sample_weight):
        return [None if sample_weight is None else sample_weight[a:b]
                for a, b in self._bounds(data)]

    def map_chunks(self, data: DaskData, fn, sample_weight=None, args=(), chunk_args=None,
                   max_rows=None):
        """``fn`` on every row chunk as a task on the worker that holds it.

        Same contract as the CPU backend's (``fastem.backends._common.map_host_chunks``);
        the chunks are the dask array's own (``max_rows`` is not applied).
        Tasks are computed in batches whose per-chunk arguments (random
        responsibilities, k-means++ distances) total at most
        ``config.DASK_BATCH_BYTES``, so those never pile up on the client.
        """
        import dask

        task = dask.delayed(_chunk_map, pure=True)
        out, batch, keys, held = [], [], [], 0
        for (start, stop), block in zip(self._bounds(data), data.array.to_delayed().ravel()):
            w = None if sample_weight is None else sample_weight[start:stop]
            extra = tuple(chunk_args(start, stop)) if chunk_args is not None else ()
            batch.append(task(block, w, fn, tuple(args) + extra))
            keys.append((start, stop))
            held += _nbytes(extra)
            if held >= config.DASK_BATCH_BYTES:
                out += zip(keys, dask.compute(*batch))
                batch, keys, held = [], [], 0
        if batch:
            out += zip(keys, dask.compute(*batch))
        return [(start, stop, result) for (start, stop), result in out]

    def take_rows(self, data: DaskData, rows=None) -> np.ndarray:
        """Rows ``X[rows]`` (in the order given) gathered to the client; all rows for None."""
        if rows is None:
            return np.ascontiguousarray(data.array.compute())
        unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        return np.ascontiguousarray(data.array[unique].compute()[inverse])

    def accumulate_many(self, data: DaskData, inputs_list, sample_weight=None) -> list:
        """One pass of Dask tasks for several models (see the CPU backend's)."""
        import dask

        blocks = data.array.to_delayed().ravel()
        chunk = dask.delayed(_chunk_stats_many, pure=True)
        parts = [chunk(b, w, inputs_list, self.dtype)
                 for b, w in zip(blocks, self._weight_blocks(data, sample_weight))]
        (total,) = dask.compute(_tree_sum(parts, _add_lists))
        return total

    def sequence_passes(self, data: DaskData, inputs: KernelInputs, startprob, transmat):
        """The passes of a hidden Markov model over the sequences of ``data``
        (its row chunks cut at sequence boundaries, :func:`at_sequence_boundaries`):
        the CPU backend's on every chunk, as Dask tasks (:class:`SequenceBlocks`)."""
        return SequenceBlocks(data.array, (inputs, startprob, transmat), self.dtype)

    def map_rows(self, data: DaskData, inputs, reduce, out_columns=None, dtype=np.float64):
        """A lazy dask array of ``reduce`` of the weighted log-densities (see :func:`lazy_map`)."""
        return lazy_map(data.array, inputs, reduce, out_columns, dtype, self.dtype)

    def accumulate(self, data: DaskData, inputs: KernelInputs, sample_weight=None) -> Stats:
        """One EM pass as Dask tasks; returns the reduced statistics."""
        import dask

        blocks = data.array.to_delayed().ravel()
        chunk = dask.delayed(_chunk_stats, pure=True)
        parts = [chunk(b, w, inputs, self.dtype)
                 for b, w in zip(blocks, self._weight_blocks(data, sample_weight))]
        (total,) = dask.compute(_tree_sum(parts))
        return total


def lazy_map(X, inputs: KernelInputs, reduce, out_columns, dtype=np.float64, compute_dtype=None):
    """A lazy dask array of ``reduce(weighted_log_prob)`` per row chunk.

    Parameters
    ----------
    X : dask array (validated)
    reduce : callable ``(m, k) -> (m,) or (m, out_columns)``, run on workers
    out_columns : int or None (None: a 1-D result)
    dtype : dtype of the result
    compute_dtype : the CPU kernels' compute dtype (None: the chunks')
    """
    def block_fn(block):
        chunks = CPUBackend(compute_dtype).weighted_log_prob_chunks(np.ascontiguousarray(block),
                                                                    inputs)
        pieces = [reduce(wlp) for _, _, wlp in chunks]
        if not pieces:
            return np.empty((0,) if out_columns is None else (0, out_columns), dtype=dtype)
        return np.concatenate(pieces)

    if out_columns is None:
        return X.map_blocks(block_fn, drop_axis=1, dtype=dtype)
    return X.map_blocks(block_fn, chunks=(X.chunks[0], (out_columns,)), dtype=dtype)


def at_sequence_boundaries(X, bounds):
    """The dask array X with its row chunks cut at sequence boundaries (each
    chunk edge moves to the next boundary), so that no sequence is split."""
    edges = np.cumsum((0,) + tuple(X.chunks[0]))
    cuts = np.unique(np.r_[0, bounds[np.searchsorted(bounds, edges[1:-1])], bounds[-1]])
    chunks = tuple(int(c) for c in np.diff(cuts))
    return X if chunks == tuple(X.chunks[0]) else X.rechunk({0: chunks})


def _sequence_task(block, model, dtype, method, bounds, *args):
    """One row chunk's pass ``method`` of a hidden Markov model, on the worker."""
    passes = CPUBackend(dtype).sequence_passes(np.asarray(block), *model)
    return getattr(passes, method)(bounds, *args)


class SequenceBlocks:
    """The passes of a hidden Markov model over a dask array whose row chunks
    hold whole sequences: each chunk's pass is a Dask task running the CPU
    backend's, and the results come back in row order (the E-step's
    statistics summed in that order)."""

    def __init__(self, X, model, dtype):
        self.X, self.model, self.dtype = X, model, dtype

    def _on_blocks(self, method, bounds, *args):
        """``method`` on every row chunk, with the chunk's sequence boundaries
        and its slice of each argument of one value per sequence."""
        import dask

        X = self.X
        edges = np.cumsum((0,) + tuple(X.chunks[0]))
        task = dask.delayed(_sequence_task, pure=True)
        tasks = []
        for (a, b), block in zip(zip(edges[:-1], edges[1:]), X.to_delayed().ravel()):
            s0, s1 = np.searchsorted(bounds, a), np.searchsorted(bounds, b)
            local = [arg[s0:s1] if isinstance(arg, np.ndarray) and arg.shape == (len(bounds) - 1,)
                     else arg for arg in args]
            tasks.append(task(block, self.model, self.dtype, method, bounds[s0:s1 + 1] - a,
                              *local))
        return list(dask.compute(*tasks))

    def estep(self, bounds, weights, want_xi):
        parts = self._on_blocks("estep", bounds, weights, want_xi)
        for part in parts[1:]:
            add_stats(parts[0], part)
        return parts[0]

    def scores(self, bounds, want_post):
        results = self._on_blocks("scores", bounds, want_post)
        log_probs = np.concatenate([r[0] for r in results])
        return log_probs, (np.concatenate([r[1] for r in results]) if want_post else None)

    def viterbi(self, bounds):
        results = self._on_blocks("viterbi", bounds)
        return sum(r[0] for r in results), np.concatenate([r[1] for r in results])
