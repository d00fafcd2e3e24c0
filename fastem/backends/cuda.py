"""CUDA backend: drives ``fastem.kernels.cuda.gaussian`` through numba.cuda.

X goes to the GPU once per fit (``prepare``), not once per iteration. When it
does not fit in the configured share of GPU memory it stays on the host and is
streamed in chunks every pass; statistics are additive, so the result is the
same algorithm. Arrays already on the GPU (anything with
``__cuda_array_interface__``: CuPy, PyTorch CUDA tensors, numba device arrays)
are used in place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import config
from .._precision import for_pass
from .._model import (KernelInputs, Stats, full_from_lower, Layout,
                      total_weight)
from ._common import float32_overflowed, map_host_chunks, map_rows_eager, split_rows
from .cpu import CPUBackend

INSTALL_HINT = (
    "backend='cuda' needs an NVIDIA GPU with a working CUDA driver and the numba-cuda "
    "package: pip install 'fastem[cuda]'. Without a GPU, set NUMBA_ENABLE_CUDASIM=1 "
    "before importing fastem to run the kernels on numba's CUDA simulator (slow; for tests). "
    "A model fitted on a GPU and loaded here runs on the CPU after "
    "set_params(backend='cpu')."
)


def _cuda():
    """Import numba.cuda and check that a GPU (or the simulator) is usable."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba always ships numba.cuda today
        raise ValueError(f"CUDA is not available: {exc}. {INSTALL_HINT}") from None
    try:
        available = cuda.is_available()
    except Exception:  # a broken driver or toolkit raises instead of returning False
        available = False
    if not available:
        raise ValueError(f"CUDA is not available on this machine. {INSTALL_HINT}")
    return cuda


def simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


@dataclass
class CudaData:
    """X as the CUDA backend holds it during a fit.

    Attributes
    ----------
    device : device array of shape (n, d) or None when streamed from the host
    host : ndarray of shape (n, d) or None when the input lives on the GPU
    """

    device: object
    host: object
    shape: tuple
    dtype: np.dtype

    @property
    def n_samples(self):
        return self.shape[0]

    def __len__(self):
        return self.shape[0]


def block_threads() -> int:
    """``config.CUDA_THREADS``, checked: at least 1, and at most the block size
    the kernels were compiled for (read when they were imported: their
    static shared memory has one slot per thread, and a larger block would
    write past it, an error on the simulator but silent on a GPU)."""
    from ..kernels.cuda.gaussian import CUDA_THREADS as compiled

    t = config.CUDA_THREADS
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= compiled:
        raise ValueError(f"config.CUDA_THREADS must be an int from 1 to {compiled}, the block "
                         f"size the CUDA kernels were compiled for, got {t!r}; a larger one "
                         "must be set before fastem's CUDA kernels are first used")
    return int(t)


def threads_for(n_features: int, dtype=np.float64) -> int:
    """Threads per block: CUDA_THREADS, halved until shared memory fits."""
    from ..kernels.cuda.gaussian import shared_bytes

    t = block_threads()
    while t > 1 and shared_bytes(n_features, t, dtype) > config.CUDA_SHARED_BYTES:
        t //= 2
    return t


def cuda_part_bounds(n_samples: int, threads: int, stats_size: int) -> np.ndarray:
    """Row parts for CUDA blocks: whole tiles, a count fixed by the shape."""
    n_tiles = max(1, -(-n_samples // threads))
    by_memory = max(1, config.CUDA_PARTIAL_STATS_BYTES // (8 * stats_size))
    n_parts = int(min(config.CUDA_MAX_PARTS, n_tiles, by_memory))
    tiles_per_part = -(-n_tiles // n_parts)
    bounds = np.arange(0, n_tiles + tiles_per_part, tiles_per_part, dtype=np.int64) * threads
    return np.unique(np.minimum(bounds, n_samples))


class CUDABackend:
    """numba.cuda backend (real GPU, or numba's simulator for tests)."""

    name = "cuda"

    def __init__(self, dtype=None):
        self.dtype = dtype
        self.cuda = _cuda()
        from ..kernels.cuda import gaussian as kernels
        self.kernels = kernels

    def in_float64(self):
        """This backend computing every pass in float64."""
        return type(self)(np.float64)

    # ------------------------------------------------------------------
    # Data placement
    # ------------------------------------------------------------------

    def _fits_on_device(self, nbytes: int) -> bool:
        if config.CUDA_MAX_RESIDENT_BYTES is not None:
            return nbytes <= config.CUDA_MAX_RESIDENT_BYTES
        try:
            free, _ = self.cuda.current_context().get_memory_info()
        except Exception:
            return True  # the simulator has no memory info
        return nbytes <= 0.5 * free

    #: The passes integrate missing values (NaN) out (``KernelInputs.missing``).
    fits_missing = True

    def check_input(self, X, n_features=None, estimator="GaussianMixture", allow_nan=False):
        """Validate a GPU array (shape and dtype from its interface;
        finiteness counted on the device) or host input; with ``allow_nan``
        the caller tests finiteness (``fastem._missing.scan``)."""
        from .._validation import check_array, check_device_array, is_device_array

        if is_device_array(X):
            X = check_device_array(X, n_features=n_features, estimator=estimator)
            if not allow_nan:
                dev = self.as_device_array(X)
                bad = self.cuda.to_device(np.zeros(1, dtype=np.int64))
                threads = block_threads()
                self.kernels.count_nonfinite[-(-dev.shape[0] // threads), threads](dev, bad)
                if bad.copy_to_host()[0]:
                    raise ValueError("X contains NaN or infinity.")
            return X
        return check_array(X, n_features=n_features, estimator=estimator, allow_nan=allow_nan)

    def prepare(self, X) -> CudaData:
        """Place X for the fit: on the GPU once, or streamed from the host.

        Parameters
        ----------
        X : ndarray (validated, float32/float64) or a GPU array
        """
        from .._validation import is_device_array

        if is_device_array(X):
            dev = self.as_device_array(X)
            return CudaData(dev, None, tuple(dev.shape), np.dtype(dev.dtype))
        X = X if X.flags.c_contiguous else np.ascontiguousarray(X)
        dev = self.cuda.to_device(X) if self._fits_on_device(X.nbytes) else None
        return CudaData(dev, X, X.shape, X.dtype)

    def as_device_array(self, X):
        """A numba view of a ``__cuda_array_interface__`` array (no copy)."""
        if simulated():  # the simulator has no as_cuda_array; its arrays live on the host
            return X if type(X).__name__ == "FakeCUDAArray" else self.cuda.to_device(np.asarray(X))
        try:
            return self.cuda.as_cuda_array(X)
        except Exception as exc:
            raise TypeError(f"numba cannot view this GPU array as a CUDA array: {exc}") from None

    # ------------------------------------------------------------------
    # Initialisation passes: on host copies of the rows, chunk by chunk
    # ------------------------------------------------------------------

    def host_chunks(self, data: CudaData, max_rows=None):
        """Yield ``(start, stop, host rows)``: the host input itself, or GPU rows
        copied to the host ``CHUNK_ROWS`` (or ``max_rows``) at a time.

        The initialisation passes (k-means, random responsibilities) run the
        CPU kernels on these rows, so every backend initialises identically.
        """
        if data.host is not None:
            yield from split_rows(0, data.host, max_rows)
            return
        step = config.CHUNK_ROWS if max_rows is None else min(config.CHUNK_ROWS, max_rows)
        for start in range(0, data.n_samples, step):
            stop = min(data.n_samples, start + step)
            yield start, stop, data.device[start:stop].copy_to_host()

    def map_chunks(self, data: CudaData, fn, sample_weight=None, args=(), chunk_args=None,
                   max_rows=None):
        """``fn`` on host row chunks; see ``fastem.backends._common.map_host_chunks``."""
        return map_host_chunks(self.host_chunks(data, max_rows), fn, sample_weight, args,
                               chunk_args)

    def take_rows(self, data: CudaData, rows=None) -> np.ndarray:
        """Rows ``X[rows]`` (in the order given) as a host array; all rows for None."""
        if data.host is not None:
            return CPUBackend().take_rows(data.host, rows)
        if rows is None:
            return np.ascontiguousarray(np.concatenate([c for _, _, c in self.host_chunks(data)]))
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.shape[0], data.shape[1]), dtype=data.dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        for start, stop, chunk in self.host_chunks(data):
            lo, hi = np.searchsorted(sorted_rows, [start, stop])
            out[order[lo:hi]] = chunk[sorted_rows[lo:hi] - start]
        return out

    def _chunks(self, data: CudaData):
        """Yield ``(start, stop, device array)`` covering X: one piece when resident."""
        if data.device is not None:
            yield 0, data.n_samples, data.device
            return
        rows = max(1, int(config.CUDA_STREAM_BYTES // max(1, data.host[:1].nbytes)))
        for start in range(0, data.n_samples, rows):
            stop = min(data.n_samples, start + rows)
            yield start, stop, self.cuda.to_device(data.host[start:stop])

    # ------------------------------------------------------------------
    # Passes
    # ------------------------------------------------------------------

    def accumulate(self, data: CudaData, inputs: KernelInputs, sample_weight=None) -> Stats:
        """One fused pass on the GPU; the same contract as the CPU backend."""
        return self.accumulate_many(data, [inputs], sample_weight)[0]

    def accumulate_many(self, data: CudaData, inputs_list, sample_weight=None) -> list:
        """Several models' statistics from one pass over X: each chunk of rows
        reaches the GPU once, and every model's kernel runs on it while it is
        there (streamed X is the case where reading X costs; resident X is
        read from GPU memory by each model's launch).

        Each model runs the kernel of a pass of its own on the same chunks, so
        its statistics are the ones :meth:`accumulate` gives it alone; over
        incomplete data (``inputs.missing``) the kernels of
        ``fastem.kernels.cuda.missing`` (:meth:`_missing_launch`).
        """
        cuda = self.cuda
        n, d = data.shape
        launches = [self._missing_launch(inputs, data.dtype, d) if inputs.missing
                    else self._launch_inputs(inputs, data.dtype, d) for inputs in inputs_list]
        has_w = sample_weight is not None
        totals = [None] * len(launches)
        for start, stop, dev in self._chunks(data):
            w = cuda.to_device(sample_weight[start:stop] if has_w else np.zeros(1))
            for g, launch in enumerate(launches):
                chunk = self._chunk_stats(launch, dev, w, has_w, d)
                totals[g] = chunk if totals[g] is None else totals[g] + chunk
        weight_sum = total_weight(n, sample_weight)
        out = []
        for launch, total in zip(launches, totals):
            second = (full_from_lower(total.second, d) if launch["layout"] is Layout.FULL
                      else total.second)
            pa = launch["pa"]
            out.append(Stats(total.mass, total.first, second, total.centres,
                             pa.log_likelihood(total.log_likelihood, weight_sum), weight_sum,
                             pa.round_off, n))
        return out

    def _chunk_stats(self, launch, dev, w, has_w, d) -> Stats:
        """One model's statistics of the device rows ``dev`` (a launch of
        :meth:`_launch_inputs` or :meth:`_missing_launch`), summed over the
        row parts on the device; centred on ``pa.centres``, the
        log-likelihood without the shift."""
        cuda = self.cuda
        k, width = launch["k"], launch["width"]
        n_parts, scratch = launch["parts"](dev.shape[0])
        mass = cuda.to_device(np.zeros((n_parts, k)))
        first = cuda.to_device(np.zeros((n_parts, k, d)))
        second = cuda.to_device(np.zeros((n_parts, k, width)))
        loglik = cuda.to_device(np.zeros(n_parts))
        launch["kernel"][n_parts, launch["threads"], 0, launch["shared"]](
            dev, w, has_w, int(launch["layout"]), *launch["arrays"], *scratch, mass, first,
            second, loglik)
        return Stats(self._reduce(mass, (k,)), self._reduce(first, (k, d)),
                     self._reduce(second, (k, width)), launch["pa"].centres,
                     float(loglik.copy_to_host().sum()), 0.0)

    def _missing_launch(self, inputs, data_dtype, d, dtype=None):
        """One model's incomplete-data launch: its PassArrays ``pa`` (the
        compute dtype by ``fastem._precision``'s rule, or ``dtype``), the
        kernels ``(accumulate, log_prob)`` of that dtype, the device inputs
        ``(ref, means, factor, prec, log_const)`` (``prec`` (k, d, d) the
        precisions ``U U^T`` for full factors), threads and shared bytes per
        block."""
        from ..kernels.cuda import missing as kernels

        pa = for_pass(inputs, data_dtype, dtype or self.dtype)
        dt = pa.means.dtype
        full = inputs.layout is Layout.FULL
        prec = inputs.precisions() if full else np.zeros((1, 1, 1))
        threads = threads_for(d, dt)
        arrays = (self.cuda.to_device(pa.ref),) + tuple(
            self.cuda.to_device(np.ascontiguousarray(a, dtype=dt))
            for a in (pa.means, pa.factor, prec, pa.log_const))
        k, width = inputs.n_components, d * d if full else d
        launch = dict(layout=inputs.layout, pa=pa, k=k, width=width, threads=threads,
                      kernel=kernels.for_dtype(dt)[0], log_prob=kernels.for_dtype(dt)[1],
                      arrays=arrays,
                      shared=self.kernels.shared_floats(d, threads) * dt.itemsize)

        def parts(m):
            bounds, mis, fs = self._missing_scratch(m, d, launch, k * (width + d + 1))
            return bounds.shape[0] - 1, (self.cuda.to_device(bounds), mis, fs)
        launch["parts"] = parts
        return launch

    def _missing_scratch(self, m, d, launch, stats_size):
        """Row parts of ``m`` rows, and the scratch of their threads (of the
        launch's compute dtype)."""
        from ..kernels.cuda import missing as kernels

        width = kernels.scratch_width(d)
        threads = launch["threads"]
        bounds = cuda_part_bounds(m, threads, stats_size + threads * (width + d))
        slots = (bounds.shape[0] - 1) * threads
        return (bounds, self.cuda.device_array((slots, d), dtype=np.int64),
                self.cuda.device_array((slots, width), dtype=launch["pa"].means.dtype))

    def _missing_log_prob(self, piece, inputs, launch):
        """The weighted marginal log-densities (m, k) float64 host array of
        device rows ``piece`` under a :meth:`_missing_launch`."""
        cuda = self.cuda
        m, d = piece.shape
        bounds, mis, fs = self._missing_scratch(m, d, launch, 1)
        out = cuda.device_array((m, inputs.n_components))
        launch["log_prob"][bounds.shape[0] - 1, launch["threads"], 0, launch["shared"]](
            piece, int(inputs.layout), *launch["arrays"], cuda.to_device(bounds), mis, fs, out)
        host = out.copy_to_host()
        if launch["pa"].shift:
            host += launch["pa"].shift
        return host

    def _launch_inputs(self, inputs, data_dtype, d):
        """One model's kernel, launch shape and device inputs for a pass."""
        layout = inputs.layout
        pa = for_pass(inputs, data_dtype, self.dtype)
        threads = threads_for(d, pa.means.dtype)
        k, width = inputs.n_components, d * d if layout is Layout.FULL else d

        def parts(m):
            bounds = cuda_part_bounds(m, threads, k * (width + d + 1))
            return bounds.shape[0] - 1, (self.cuda.to_device(bounds),)
        return dict(layout=layout, pa=pa, k=k, width=width,
                    kernel=self.kernels.for_dtype(pa.means.dtype)[0], threads=threads,
                    shared=self.kernels.shared_floats(d, threads) * pa.means.dtype.itemsize,
                    arrays=tuple(self.cuda.to_device(a)
                                 for a in (pa.ref, pa.means, pa.factor, pa.log_const)),
                    parts=parts)

    def _reduce(self, parts, shape):
        """Fixed-order sum over the leading axis on the device; host result."""
        flat = parts.reshape(parts.shape[0], int(np.prod(shape)))
        out = self.cuda.device_array(flat.shape[1])
        threads = block_threads()
        self.kernels.reduce_parts[-(-flat.shape[1] // threads), threads](flat, out)
        return out.copy_to_host().reshape(shape)

    def sequence_passes(self, data: CudaData, inputs: KernelInputs, startprob, transmat):
        """The passes of a hidden Markov model over the sequences of ``data``,
        as the CPU backend's (``fastem.backends.cuda_hmm``)."""
        from .cuda_hmm import GuardedPasses

        return GuardedPasses(self, data, inputs, startprob, transmat)

    def map_rows(self, data, inputs, reduce, out_columns=None, dtype=np.float64):
        """``reduce`` of the weighted log-densities of every row (host ndarray)."""
        return map_rows_eager(self, data, inputs, reduce, out_columns, dtype)

    def weighted_log_prob_chunks(self, data: CudaData, inputs: KernelInputs):
        """Yield ``(start, stop, (m, k) float64 host array)`` chunk by chunk;
        over incomplete data (``inputs.missing``) the observed coordinates'
        marginal log-densities. A float32 chunk that lost a row is computed
        again in float64 (see ``backends._common.float32_overflowed``)."""
        d = data.shape[1]

        def runner(dtype=None):
            """``(pa, run(device rows))`` in ``dtype`` (None: the backend's rule)."""
            if inputs.missing:
                launch = self._missing_launch(inputs, data.dtype, d, dtype)
                return launch["pa"], lambda piece: self._missing_log_prob(piece, inputs, launch)
            pa = for_pass(inputs, data.dtype, dtype or self.dtype)
            run = self._log_prob_launch(pa, d)
            return pa, lambda piece: run(piece, inputs.layout, inputs.n_components)

        pa, run = runner()
        wide = None
        for start, stop, dev in self._chunks(data):
            for s0 in range(0, stop - start, config.CHUNK_ROWS):
                s1 = min(stop - start, s0 + config.CHUNK_ROWS)
                host = run(dev[s0:s1])
                if float32_overflowed(host, pa):
                    wide = wide or runner(np.float64)[1]
                    host = wide(dev[s0:s1])
                yield start + s0, start + s1, host

    def _log_prob_launch(self, pa, d):
        """``run(rows, layout, k)``: the weighted log-densities (m, k) float64
        host array of device rows under PassArrays ``pa``."""
        cuda = self.cuda
        _, kernel = self.kernels.for_dtype(pa.means.dtype)
        ref, means, factor, log_const = (cuda.to_device(a) for a in
                                         (pa.ref, pa.means, pa.factor, pa.log_const))
        threads = threads_for(d, pa.means.dtype)
        shared = self.kernels.shared_floats(d, threads) * pa.means.dtype.itemsize

        def run(piece, layout, k):
            bounds = cuda_part_bounds(piece.shape[0], threads, 1)
            out = cuda.device_array((piece.shape[0], k))
            kernel[bounds.shape[0] - 1, threads, 0, shared](
                piece, int(layout), ref, means, factor, log_const, cuda.to_device(bounds), out)
            host = out.copy_to_host()
            if pa.shift:
                host += pa.shift
            return host
        return run
