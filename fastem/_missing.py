"""Missing values (NaN) in the data of a mixture: what one scan of X finds,
and the column means that stand in for them where a step needs whole rows.

The E-step itself never fills anything: it integrates the missing
coordinates out (``fastem.kernels.cpu.missing``). Filling with the observed
column means serves only the two steps that need complete rows, the
initialisation (k-means or random responsibilities on a sample of rows) and
the re-seeding of an emptied component onto a drawn row; EM then corrects
what the fill got wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from . import config


@dataclass
class MissingValues:
    """What a scan of X with NaN found.

    Attributes
    ----------
    fill : ndarray of shape (n_features,), float64
        Each column's mean over its observed values.
    empty_rows : ndarray of shape (n_samples,), bool, or None
        Rows with nothing observed (None when there are none).
    fraction : float
        Share of the values that are missing.
    """

    fill: np.ndarray
    empty_rows: object
    fraction: float

    def filled(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (m, d) with every NaN replaced by its column's :attr:`fill`
        (a float64 copy)."""
        rows = np.array(rows, dtype=np.float64)
        nan = np.isnan(rows)
        rows[nan] = np.broadcast_to(self.fill, rows.shape)[nan]
        return rows


def _host_chunks(X):
    """``(start, rows)`` of X in chunks of ``CHUNK_ROWS`` host rows: slices of
    an ndarray or memory map, copies of a GPU array's rows."""
    from ._validation import is_device_array

    if is_device_array(X):
        from .backends.cuda import CUDABackend

        gpu = CUDABackend()
        for start, _, rows in gpu.host_chunks(gpu.prepare(X)):
            yield start, rows
        return
    for start in range(0, X.shape[0], config.CHUNK_ROWS):
        yield start, X[start:start + config.CHUNK_ROWS]


def scan(X, fitting: bool = True):
    """One pass over X (an ndarray, memory map, dask array or GPU array,
    whose rows are copied to the host chunk by chunk): None when it holds no
    NaN, else its :class:`MissingValues`.

    Raises
    ------
    ValueError
        For infinite values, or (``fitting``) a column with no observed value.
    """
    from .backends.dask import is_dask_array

    n, d = X.shape
    if is_dask_array(X):
        import dask
        import dask.array as da

        nan = da.isnan(X)
        any_inf, n_missing, counts, sums, n_empty = dask.compute(
            da.isinf(X).any(), nan.sum(), (~nan).sum(axis=0), da.nansum(X, axis=0,
                                                                        dtype=np.float64),
            nan.all(axis=1).sum())
        if any_inf:
            raise ValueError("X contains infinity (NaN marks a missing value; infinity is "
                             "not one).")
        empty = nan.all(axis=1).compute() if n_empty else None
    else:
        counts, sums, n_missing, empty = np.zeros(d), np.zeros(d), 0, None
        for start, chunk in _host_chunks(X):
            nan = np.isnan(chunk)
            if np.isinf(chunk).any():
                raise ValueError("X contains infinity (NaN marks a missing value; infinity "
                                 "is not one).")
            if not nan.any():
                counts += chunk.shape[0]
                sums += chunk.sum(axis=0, dtype=np.float64)
                continue
            n_missing += int(nan.sum())
            counts += (~nan).sum(axis=0)
            sums += np.where(nan, 0.0, chunk).sum(axis=0, dtype=np.float64)
            rows = nan.all(axis=1)
            if rows.any():
                if empty is None:
                    empty = np.zeros(n, dtype=bool)
                empty[start:start + chunk.shape[0]] = rows
    if not n_missing:
        return None
    counts = np.asarray(counts, dtype=np.float64)
    if fitting and np.any(counts == 0):
        cols = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"X has no observed value in column(s) {cols[:10]}: a column of "
                         "missing values only cannot be fitted; drop it.")
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.asarray(sums, dtype=np.float64) / counts
    return MissingValues(fill, empty,
                         float(n_missing) / (n * d))


def fit_weights(missing: MissingValues, sample_weight, n_samples: int, stacklevel=2):
    """The sample weights a fit uses: rows with nothing observed carry no
    information about the model and get weight zero, with a warning.

    Returns
    -------
    ndarray of shape (n_samples,) float64, or ``sample_weight`` itself (None
    included) when no row is empty
    """
    if missing is None or missing.empty_rows is None:
        return sample_weight
    warnings.warn(
        f"{int(missing.empty_rows.sum())} row(s) of X have no observed value; they carry no "
        "information about the model and are left out of the fit (weight zero).",
        UserWarning, stacklevel=stacklevel + 1)
    sw = np.ones(n_samples) if sample_weight is None else np.array(sample_weight,
                                                                   dtype=np.float64)
    sw[missing.empty_rows] = 0.0
    if not sw.sum() > 0:
        raise ValueError("X has no row with an observed value (of positive weight).")
    return sw


def filled_chunk(rows, weights, fn, fill, *args):
    """``fn(rows, weights, *args)`` on a chunk whose NaN are replaced by
    ``fill``: a backend's ``map_chunks`` function over data with missing
    values, for the steps that need whole rows (module level, so that Dask
    ships it to the workers by reference)."""
    rows = np.where(np.isnan(rows), fill, rows)
    rows.flags.writeable = False
    return fn(rows, weights, *args)


def initialize_on_sample(missing: MissingValues, steps, data, backend, sample_weight, rng,
                         n_components):
    """A family's initialisation on data with missing values: its step
    generator ``steps(rows, weights, host_backend, rng)`` run on at most
    ``config.KMEANS_SAMPLE_ROWS`` rows (all of them when there are no more;
    else drawn uniformly, as k-means samples), each missing value filled with
    its column's observed mean. Only these rows are filled, on the host; the
    EM passes that follow integrate every missing value out over all rows.

    Returns
    -------
    what the generator returns
    """
    from ._sampling import sample_sorted
    from ._steps import run_alone
    from .backends import get_backend

    n = data.shape[0]
    rows = None if n <= config.KMEANS_SAMPLE_ROWS else sample_sorted(
        n, max(config.KMEANS_SAMPLE_ROWS, n_components), rng)
    host = get_backend("cpu", backend.dtype)
    sample = host.prepare(missing.filled(backend.take_rows(data, rows)))
    weights = sample_weight if rows is None or sample_weight is None else sample_weight[rows]
    return run_alone(steps(sample, weights, host, rng), host, sample, weights)
