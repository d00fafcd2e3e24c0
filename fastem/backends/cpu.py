"""CPU backend: drives the Numba kernels in ``fastem.kernels.cpu.gaussian``."""

from __future__ import annotations

import numba
import numpy as np

from .. import config
from .._model import KernelInputs, Stats, full_from_lower, Layout, total_weight
from .._precision import for_pass
from ..kernels.cpu import gaussian, launch, missing
from ._common import (float32_overflowed, kernel_input, map_host_chunks, map_rows_eager,
                      part_bounds, partial_stats, reduce_partial_stats, split_rows, weights_arg)


def concat_pass_arrays(inputs_list, pas):
    """Several models' narrowed kernel inputs as one shared pass takes them
    (see ``gaussian.accumulate_segments``).

    Parameters
    ----------
    inputs_list : list of KernelInputs, one per model
    pas : list of PassArrays of one compute dtype, one per model

    Returns
    -------
    dict of the kernel's arguments: ``layout`` (n_models,) int64, ``ref``
    (n_models, d), ``reload`` (n_models,) bool, ``means`` (K, d), ``factor``
    (K, W), ``log_const`` (K,), ``segments`` (n_models + 1,) int64
    """
    layout = np.array([i.layout for i in inputs_list], dtype=np.int64)
    d = inputs_list[0].means.shape[1]
    width = d * d if (layout == Layout.FULL).any() else d
    segments = np.cumsum([0] + [i.n_components for i in inputs_list]).astype(np.int64)
    dtype = pas[0].means.dtype
    factor = np.zeros((segments[-1], width), dtype=dtype)
    for g, pa in enumerate(pas):
        factor[segments[g]:segments[g + 1], :pa.factor.shape[1]] = pa.factor
    ref = np.ascontiguousarray(np.stack([pa.ref for pa in pas]))
    reload = np.r_[True, np.any(ref[1:] != ref[:-1], axis=1)]
    return dict(layout=layout, ref=ref, reload=reload,
                means=np.ascontiguousarray(np.concatenate([pa.means for pa in pas])),
                factor=factor,
                log_const=np.ascontiguousarray(np.concatenate([pa.log_const for pa in pas])),
                segments=segments)


def split_stats(inputs_list, pas, segments, mass, first, second, loglik, weight_sum, rows):
    """Each model's :class:`Stats` from the summed statistics of a shared pass
    (``second`` (K, W): lower triangles of the full models, diagonals in the
    first d entries of the others; ``pas`` the models' PassArrays)."""
    d = first.shape[1]
    out = []
    for g, (inp, pa) in enumerate(zip(inputs_list, pas)):
        a, b = segments[g], segments[g + 1]
        if inp.layout is Layout.FULL:
            sec = full_from_lower(second[a:b], d)
        else:
            sec = np.ascontiguousarray(second[a:b, :d])
        out.append(Stats(mass[a:b].copy(), first[a:b].copy(), sec, pa.centres,
                         pa.log_likelihood(loglik[g], weight_sum), weight_sum, pa.round_off,
                         rows))
    return out


def incomplete_arrays(inputs, pa):
    """``(layout, means, means_t, factor, prec_t, log_const, ref)`` as the
    incomplete-data kernels (``fastem.kernels.cpu.missing``) take ``inputs``
    narrowed to PassArrays ``pa`` (float64, or float32 by
    ``fastem._precision``'s rule, rows centred on ``pa.ref``); for full
    factors, the means and precisions with the components last
    (:func:`components_last`)."""
    means_t, prec_t = components_last(inputs, pa.means)
    return (inputs.layout, np.ascontiguousarray(pa.means), means_t,
            np.ascontiguousarray(pa.factor), prec_t, np.ascontiguousarray(pa.log_const), pa.ref)


def components_last(inputs, means):
    """``(means_t, prec_t)`` of a FULL layout's incomplete-data pass in the
    compute dtype of ``means`` (k, d), the means the pass uses (centred on
    its ``ref``): (d, kp) and the precisions ``U_j U_j^T`` (d, d, kp), the
    components padded to ``kp`` (``missing.padded_components``) with zero
    means and identity precisions; empty arrays for a DIAG layout."""
    k, d = means.shape
    dt = means.dtype
    if inputs.layout is not Layout.FULL:
        return np.empty((0, 0), dt), np.empty((0, 0, 0), dt)
    kp = missing.padded_components(k, dt)
    prec = np.broadcast_to(np.eye(d), (kp, d, d)).copy()
    prec[:k] = inputs.precisions()
    prec_t = np.ascontiguousarray(np.moveaxis(prec, 0, 2), dtype=dt)
    means_t = np.zeros((d, kp), dt)
    means_t[:, :k] = means.T
    return means_t, prec_t


def widened(rows):
    """Host rows as the incomplete-data kernels read them: float64,
    read-only, C-contiguous (a float32 chunk is copied)."""
    return kernel_input(np.asarray(rows, dtype=np.float64))


def incomplete_rows(rows, pa):
    """Host rows as the incomplete-data kernels read them under PassArrays
    ``pa``: float32 rows as they are for a float32 pass, else widened."""
    return widened(rows) if pa.means.dtype == np.float64 else kernel_input(rows)


def accumulate_missing(X, inputs, sample_weight=None, dtype=None) -> Stats:
    """The pass of EM for incomplete data over host rows (NaN: missing):
    expected statistics centred on ``inputs.means``.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
    inputs : KernelInputs
    sample_weight : ndarray of shape (n,) float64, or None
    dtype : the backend's compute dtype (None: the data's): float32 data
        compute in float32 where the model allows (``fastem._precision``'s
        rule, as complete rows), else in float64

    Returns
    -------
    Stats
        ``log_likelihood`` is the observed coordinates' ``sum_i w_i log p(x_i,o)``.
    """
    return accumulate_missing_many(X, [inputs], sample_weight, dtype)[0]


def accumulate_missing_many(X, inputs_list, sample_weight=None, dtype=None) -> list:
    """:func:`accumulate_missing` for several models in one pass over X:
    windows of rows, each read (and widened, for float32 rows computed in
    float64) once while every model's kernel runs on it. Each model keeps the row parts of its
    own pass and sums them in the same order, so its :class:`Stats` are the
    bits :func:`accumulate_missing` gives it alone.

    Returns
    -------
    list of Stats, in the order of ``inputs_list``
    """
    n = X.shape[0]
    w, has_weights = weights_arg(sample_weight)
    passes = [_IncompletePass(X, inputs, dtype) for inputs in inputs_list]
    # One model that reads X as it is does so in one call. Otherwise the rows
    # go a window at a time: float32 rows are widened a few parts at a time
    # (one compiled driver per layout serves both dtypes, and float32 input
    # gives the float64 fit of its values, bit for bit), and several models
    # find the window in cache.
    whole = len(passes) == 1 and not passes[0].wide
    window = n if whole else max(config.CHUNK_ROWS,
                                 4 * numba.get_num_threads() * passes[0].part_rows)
    while True:
        pending = [pp for pp in passes if not pp.done]
        if not pending:
            break
        first = min(pending, key=lambda pp: pp.next_row)
        a = first.next_row
        rows = _Window(X, a, first.bounds[first.parts_until(min(n, a + window))])
        for pp in pending:
            if pp.next_row == a or pp.next_row < rows.b:  # (a model with longer parts waits)
                pp.run(rows, w, has_weights)
    weight_sum = total_weight(n, sample_weight)
    return [pp.stats(weight_sum) for pp in passes]


class _Window:
    """Rows ``[a, b)`` of X, and their float64 copy made on first request."""

    def __init__(self, X, a, b):
        self.X, self.a, self.b = X, a, b
        self._wide = None

    def rows(self, a, b, wide):
        """Rows ``[a, b)`` (within the window, or past its end for a part
        longer than the window), float64 when ``wide``."""
        if b > self.b or not wide:
            rows = self.X[a:b]
            return widened(rows) if wide else kernel_input(rows)
        if self._wide is None:
            self._wide = widened(self.X[self.a:self.b])
        return self._wide[a - self.a:b - self.a]


class _IncompletePass:
    """One model's incomplete-data pass, run part by part: its row parts and
    partial statistics, the kernels' arrays (float32 for a model whose
    complete-data pass computes in float32)."""

    def __init__(self, X, inputs, dtype):
        n, d = X.shape
        self.layout, self.d, self.n = inputs.layout, d, n
        self.pa = for_pass(inputs, X.dtype, dtype)
        self.arrays = incomplete_arrays(inputs, self.pa)
        self.wide = self.pa.means.dtype == np.float64 and X.dtype != np.float64
        self.bounds, self.mass, self.first, self.second = partial_stats(
            n, inputs.n_components, d, inputs.layout)
        self.loglik = np.zeros(self.bounds.shape[0] - 1)
        self.part_rows = int(np.diff(self.bounds).max()) if n else 1
        self.p = 0

    @property
    def done(self):
        return self.p >= self.bounds.shape[0] - 1

    @property
    def next_row(self):
        return self.bounds[self.p]

    def parts_until(self, end):
        """``q``: the parts from the next one to ``q`` (excluded) end by row
        ``end``; at least the next one."""
        bounds = self.bounds
        q = self.p + 1
        while q < bounds.shape[0] - 1 and bounds[q + 1] <= end:
            q += 1
        return q

    def run(self, window, w, has_weights):
        """The parts from the next one up to the window's end (at least one)."""
        bounds, p = self.bounds, self.p
        q = self.parts_until(window.b)
        a, b = bounds[p], bounds[q]
        with launch():
            missing.accumulate(window.rows(a, b, self.wide), w[a:b] if has_weights else w,
                               has_weights, *self.arrays, bounds[p:q + 1] - a, self.mass[p:q],
                               self.first[p:q], self.second[p:q], self.loglik[p:q])
        self.p = q

    def stats(self, weight_sum) -> Stats:
        mass, first, second = reduce_partial_stats(self.mass, self.first, self.second, self.d,
                                                   self.layout)
        return Stats(mass, first, second, self.pa.centres,
                     self.pa.log_likelihood(self.loglik.sum(), weight_sum), weight_sum,
                     self.pa.round_off, self.n)


class CPUBackend:
    """Multi-threaded Numba backend for in-memory (and memory-mapped) arrays.

    Parameters
    ----------
    dtype : None, numpy.float32 or numpy.float64
        Compute dtype of the passes (None: the data's, see ``fastem._precision``).
    """

    name = "cpu"

    def __init__(self, dtype=None):
        self.dtype = dtype

    def in_float64(self):
        """This backend computing every pass in float64."""
        return type(self)(np.float64)

    #: The passes integrate missing values (NaN) out (``KernelInputs.missing``).
    fits_missing = True

    def check_input(self, X, n_features=None, estimator="GaussianMixture", allow_nan=False):
        """Validate host input (arrays, memory maps, lists, dataframes); with
        ``allow_nan`` the caller tests finiteness (``fastem._missing.scan``)."""
        from .._validation import check_array, is_device_array

        if is_device_array(X):
            raise TypeError(f"X is a GPU array ({type(X).__name__}); use backend='cuda' or "
                            "copy it to the host first.")
        return check_array(X, n_features=n_features, estimator=estimator, allow_nan=allow_nan)

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """Return X as the kernels read it: C-contiguous, float32 or float64.

        Validation has already fixed the dtype; only non-C-contiguous input is
        copied (same dtype), so that one compiled kernel serves every layout.
        """
        return kernel_input(X)

    # ------------------------------------------------------------------
    # Initialisation passes (k-means, random responsibilities, row picks)
    # ------------------------------------------------------------------

    def host_chunks(self, X: np.ndarray, max_rows=None):
        """Yield ``(start, stop, rows)``: X itself, or slices of at most ``max_rows``."""
        yield from split_rows(0, X, max_rows)

    def map_chunks(self, X, fn, sample_weight=None, args=(), chunk_args=None, max_rows=None):
        """``fn`` on the row chunks of X, where X lives; see :func:`map_host_chunks`."""
        return map_host_chunks(self.host_chunks(X, max_rows), fn, sample_weight, args,
                               chunk_args)

    def take_rows(self, X: np.ndarray, rows=None) -> np.ndarray:
        """Rows ``X[rows]`` (in the order given) as a host array; all rows for None."""
        return X if rows is None else np.ascontiguousarray(X[np.asarray(rows)])

    def accumulate(self, X: np.ndarray, inputs: KernelInputs, sample_weight=None) -> Stats:
        """One fused pass: E-step under ``inputs`` and centred statistics.

        Parameters
        ----------
        X : ndarray of shape (n, d), float32 or float64, C-contiguous
        inputs : KernelInputs (``Params.kernel_inputs()`` for a mixture's parameters)
        sample_weight : ndarray of shape (n,) float64, or None

        Returns
        -------
        Stats
            Centred on ``inputs.means``.
        """
        if inputs.missing:
            return accumulate_missing(X, inputs, sample_weight, self.dtype)
        n, d = X.shape
        bounds, mass, first, second = partial_stats(n, inputs.n_components, d, inputs.layout)
        loglik = np.zeros(bounds.shape[0] - 1)
        w, has_weights = weights_arg(sample_weight)
        pa = for_pass(inputs, X.dtype, self.dtype)
        with launch():
            gaussian.accumulate(kernel_input(X), w, has_weights, inputs.layout, pa.ref, pa.means,
                                pa.factor, pa.log_const, bounds, mass, first, second, loglik)
        # Fixed-order reduction over parts (independent of the thread count).
        mass, first, second = reduce_partial_stats(mass, first, second, d, inputs.layout)
        weight_sum = total_weight(n, sample_weight)
        return Stats(mass, first, second, pa.centres, pa.log_likelihood(loglik.sum(), weight_sum),
                     weight_sum, pa.round_off, n)

    def accumulate_many(self, X: np.ndarray, inputs_list, sample_weight=None) -> list:
        """One pass for several models: each gets the :class:`Stats` that
        :meth:`accumulate` would give it alone (to round-off), while X is read once.

        Each model is narrowed for the pass as it would be alone (its own
        reference and constant shift, its own float32-or-float64 decision):
        the models of each compute dtype share one pass, so X is read twice
        only in the rare pass where float32 cannot resolve some model.

        Parameters
        ----------
        inputs_list : list of KernelInputs, each a whole model

        Returns
        -------
        list of Stats, in the order of ``inputs_list``
        """
        if any(i.missing for i in inputs_list):
            return accumulate_missing_many(X, inputs_list, sample_weight, self.dtype)
        pas = [for_pass(i, X.dtype, self.dtype) for i in inputs_list]
        by_dtype = {}
        for g, pa in enumerate(pas):
            by_dtype.setdefault(pa.means.dtype, []).append(g)
        out = [None] * len(inputs_list)
        for members in by_dtype.values():
            stats = self._accumulate_segments(X, [inputs_list[g] for g in members],
                                              [pas[g] for g in members], sample_weight)
            for g, st in zip(members, stats):
                out[g] = st
        return out

    def _accumulate_segments(self, X, inputs_list, pas, sample_weight):
        """One shared pass for models whose PassArrays have one compute dtype."""
        args = concat_pass_arrays(inputs_list, pas)
        n, d = X.shape
        k, width = args["factor"].shape
        bounds = part_bounds(n, k * (width + d + 1))
        n_parts = bounds.shape[0] - 1
        mass, first = np.zeros((n_parts, k)), np.zeros((n_parts, k, d))
        second = np.zeros((n_parts, k, width))
        loglik = np.zeros((n_parts, len(inputs_list)))
        w, has_weights = weights_arg(sample_weight)
        with launch():
            gaussian.accumulate_segments(kernel_input(X), w, has_weights, args["layout"],
                                         args["ref"], args["reload"], args["means"],
                                         args["factor"], args["log_const"], args["segments"],
                                         bounds, mass, first, second, loglik)
        mass, first, second = reduce_partial_stats(mass, first, second, d, None)
        return split_stats(inputs_list, pas, args["segments"], mass, first, second,
                           loglik.sum(axis=0), total_weight(n, sample_weight), n)

    def sequence_passes(self, X: np.ndarray, inputs: KernelInputs, startprob, transmat):
        """The passes of a hidden Markov model (emission densities ``inputs``,
        ``startprob`` (k,), ``transmat`` (k, k)) over the sequences of X:
        ``estep``, ``scores`` and ``viterbi`` (``fastem.backends.cpu_hmm``)."""
        from .cpu_hmm import HMMPasses

        return HMMPasses(self, X, inputs, startprob, transmat)

    def map_rows(self, X, inputs, reduce, out_columns=None, dtype=np.float64):
        """``reduce`` of the weighted log-densities of every row; see :func:`map_rows_eager`."""
        return map_rows_eager(self, X, inputs, reduce, out_columns, dtype)

    def weighted_log_prob_chunks(self, X: np.ndarray, inputs: KernelInputs):
        """Yield ``(start, stop, log w_j + log N(x_i | j))`` chunk by chunk.

        Memory is O(CHUNK_ROWS * k), whatever the number of rows.

        Yields
        ------
        start, stop : int
        wlp : ndarray of shape (stop - start, k), float64
        """
        n = X.shape[0]
        log_prob = _missing_log_prob if inputs.missing else _log_prob
        pa = for_pass(inputs, X.dtype, self.dtype)
        wide = None
        for start in range(0, n, config.CHUNK_ROWS):
            stop = min(n, start + config.CHUNK_ROWS)
            out = log_prob(X[start:stop], inputs, pa)
            if float32_overflowed(out, pa):
                wide = wide or for_pass(inputs, X.dtype, np.float64)
                out = log_prob(X[start:stop], inputs, wide)
            yield start, stop, out


def _log_prob(rows, inputs, pa):
    """The weighted log-densities (m, k) float64 of host rows under PassArrays ``pa``."""
    chunk = kernel_input(rows)
    out = np.empty((chunk.shape[0], inputs.n_components))
    with launch():
        gaussian.log_prob(chunk, inputs.layout, pa.ref, pa.means, pa.factor, pa.log_const,
                          part_bounds(chunk.shape[0], 1), out)
    if pa.shift:
        out += pa.shift
    return out


def _missing_log_prob(rows, inputs, pa):
    """:func:`_log_prob` of rows with missing values: the observed coordinates'
    weighted marginal log-densities."""
    out = np.empty((rows.shape[0], inputs.n_components))
    with launch():
        missing.log_prob(incomplete_rows(rows, pa), *incomplete_arrays(inputs, pa),
                         part_bounds(rows.shape[0], 1), out)
    if pa.shift:
        out += pa.shift
    return out


def impute_rows(X, inputs, rng=None) -> np.ndarray:
    """X (host rows, NaN missing) with every missing value replaced by its
    conditional expectation under the mixture of ``inputs``, or (``rng``, a
    numpy RandomState) by a draw from the conditional distribution; chunk by
    chunk, the draws in row order. Computed in float64.

    Returns
    -------
    ndarray of shape X.shape, float32 for float32 X (as scikit-learn's
    imputers keep it), else float64
    """
    arrays = incomplete_arrays(inputs, for_pass(inputs, np.float64))
    n, d = X.shape
    narrow = X.dtype == np.float32
    out = np.empty((n, d), np.float32 if narrow else np.float64)
    for start in range(0, n, config.CHUNK_ROWS):
        stop = min(n, start + config.CHUNK_ROWS)
        if rng is None:
            u, eps = np.empty(0), np.empty((0, 0))
        else:
            u, eps = rng.random_sample(stop - start), rng.standard_normal((stop - start, d))
        chunk = np.empty((stop - start, d)) if narrow else out[start:stop]
        with launch():
            missing.impute(widened(X[start:stop]), *arrays, u, eps, rng is not None,
                           part_bounds(stop - start, 1), chunk)
        if np.isnan(chunk).any():
            raise ValueError(
                "X has rows whose observed values are so far from every component that their "
                "squared Mahalanobis distances overflow float64, so the missing values cannot be "
                "imputed from them. Rescale X, or drop those rows.")
        if narrow:
            out[start:stop] = chunk
            if not np.isfinite(out[start:stop]).all():
                raise ValueError(
                    "An imputed value of float32 X is beyond float32's range (the mixture "
                    "extrapolates far from the observed values). Pass X as float64.")
    return out
