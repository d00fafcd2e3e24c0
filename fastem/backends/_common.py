"""What every backend shares: the rows as the CPU kernels read them, row parts
and their per-part statistics, host row chunks and the chunked maps over
them. The backends (``cpu``, ``cuda``, ``dask``) and the modules that run
kernels of their own (``kmeans``, ``hmm``) take these from here."""

from __future__ import annotations

import numpy as np

from .. import config
from .._covariance import Layout
from .._model import full_from_lower


def kernel_input(X: np.ndarray) -> np.ndarray:
    """X as every CPU kernel receives it: a read-only, C-contiguous view.

    Numba compiles separate machine code for writable and read-only arrays;
    with reassociating fast-math the two could round the vectorised sums
    differently. Passing every input (memory maps are read-only) as read-only
    keeps one compiled kernel per dtype, so a fit of a memory map and of the
    same data in RAM agree to the last bit, and fewer kernels are compiled.
    """
    if not X.flags.c_contiguous:
        X = np.ascontiguousarray(X)
    if X.flags.writeable:
        X = X.view()
        X.flags.writeable = False
    return X


def weights_arg(sample_weight):
    """``(w, has_weights)`` as the kernels take them: an empty array stands for
    "no weights" so that one compiled kernel serves both cases."""
    return (sample_weight, True) if sample_weight is not None else (np.empty(0), False)


def part_bounds(n_samples: int, stats_size: int) -> np.ndarray:
    """Row boundaries of the parts whose partial statistics are kept apart.

    Depends only on the data shape (never on the thread count), so the
    reduction order, and with it every bit of the result, is fixed.

    Parameters
    ----------
    n_samples : int
    stats_size : int
        Float64 numbers in one part's partial statistics.

    Returns
    -------
    bounds : ndarray of shape (n_parts + 1,), int64
        Starts are multiples of ``config.BLOCK_ROWS``; ``bounds[-1] == n_samples``.
    """
    block = config.BLOCK_ROWS
    n_blocks = max(1, -(-n_samples // block))
    by_memory = max(1, config.PARTIAL_STATS_BYTES // (8 * stats_size))
    n_parts = int(min(config.MAX_PARTS, n_blocks, by_memory))
    blocks_per_part = -(-n_blocks // n_parts)
    bounds = np.arange(0, n_blocks + blocks_per_part, blocks_per_part, dtype=np.int64) * block
    bounds = np.minimum(bounds, n_samples)
    return np.unique(bounds) if n_samples > 0 else np.zeros(2, dtype=np.int64)


def partial_stats(n_samples: int, n_components: int, n_features: int, layout: Layout):
    """Row parts and zeroed per-part statistic buffers for a CPU pass.

    Returns
    -------
    bounds : (n_parts + 1,) int64
    mass : (n_parts, k), first : (n_parts, k, d), second : (n_parts, k, d*d or d)
    """
    k, d = n_components, n_features
    width = d * d if layout is Layout.FULL else d
    bounds = part_bounds(n_samples, k * (width + d + 1))
    n_parts = bounds.shape[0] - 1
    return (bounds, np.zeros((n_parts, k)), np.zeros((n_parts, k, d)),
            np.zeros((n_parts, k, width)))


def reduce_partial_stats(mass, first, second, n_features: int, layout: Layout | None):
    """Sum per-part statistics over parts in a fixed order; mirror the lower
    triangles of a FULL ``layout`` (None: a shared pass, whose models
    ``split_stats`` mirrors one by one)."""
    second = second.sum(axis=0)
    if layout is Layout.FULL:
        second = full_from_lower(second, n_features)
    return mass.sum(axis=0), first.sum(axis=0), second


def split_rows(offset, X, max_rows):
    """Yield ``(offset + start, offset + stop, X[start:stop])`` pieces of at most
    ``max_rows`` rows (one piece, X itself, when ``max_rows`` is None)."""
    n = X.shape[0]
    step = n if max_rows is None else max(1, int(max_rows))
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield offset + start, offset + stop, X[start:stop]


def map_host_chunks(chunks, fn, sample_weight=None, args=(), chunk_args=None):
    """``fn`` applied to host row chunks, the backend protocol's ``map_chunks``.

    Parameters
    ----------
    chunks : iterable of ``(start, stop, rows)``, rows an (m, d) host array, in row order
    fn : callable ``fn(rows, weights, *args, *chunk_args(start, stop))``
        A module-level function (Dask ships it to workers by reference); it
        gets read-only C-contiguous rows and the chunk's weights (or None).
    chunk_args : callable ``(start, stop) -> tuple``, optional
        Per-chunk arguments, called once per chunk **in row order** (the
        random initialisation draws its stream there).

    Returns
    -------
    list of ``(start, stop, fn(...))`` in row order
    """
    out = []
    for start, stop, rows in chunks:
        w = None if sample_weight is None else sample_weight[start:stop]
        extra = chunk_args(start, stop) if chunk_args is not None else ()
        out.append((start, stop, fn(kernel_input(rows), w, *args, *extra)))
    return out


def float32_overflowed(wlp, pa) -> bool:
    """Whether a float32 pass lost rows of a chunk of weighted log-densities
    ``wlp`` (m, k) computed with ``pa`` (PassArrays): a row's squared
    distance to a component beyond float32's range (about 1.8e19 standard
    deviations away) gives -inf where float64 gives a finite value, so the
    chunk must be computed again in float64."""
    if pa.means.dtype != np.float32:
        return False
    alive = np.isfinite(pa.log_const)  # a component of weight 0 is -inf in both
    return not np.isfinite(wlp[:, alive]).all()


def map_rows_eager(backend, data, inputs, reduce, out_columns=None, dtype=np.float64):
    """``reduce`` of the weighted log-densities, chunk by chunk, into an ndarray.

    Parameters
    ----------
    reduce : callable ``(m, k) -> (m,) or (m, out_columns)``
    out_columns : int or None (None: a 1-D result)

    Returns
    -------
    ndarray of shape (n,) or (n, out_columns)
    """
    n = data.shape[0]
    out = np.empty((n,) if out_columns is None else (n, out_columns), dtype=dtype)
    for start, stop, wlp in backend.weighted_log_prob_chunks(data, inputs):
        out[start:stop] = reduce(wlp)
    return out
