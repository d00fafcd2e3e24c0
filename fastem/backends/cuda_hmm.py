"""GaussianHMM's passes on the GPU: the E-step, scoring and Viterbi.

The sequences run in groups of consecutive whole sequences whose working
memory (their rows of X, emission log-densities and posteriors) stays
within ``config.CUDA_STREAM_BYTES``; a longer sequence is a group of its
own. For each group, on the device:

1. the emission log-densities (m, k), by the mixtures' ``gaussian.log_prob``
   kernel;
2. forward-backward, one CUDA block per sequence (``kernels/cuda/hmm.py``);
3. the weighted statistics, by the mixtures' ``gaussian.weighted_stats``
   kernel with the weighted state posteriors as the weights.

So no n x k array is kept for the whole data set, and X crosses to the GPU
once per pass when it does not live there. Per-sequence and per-block
outputs are summed in a fixed order (``reduce_parts``): the same input gives
the same bits on every run.
"""

from __future__ import annotations

import numpy as np

from .. import config
from .._covariance import Layout
from .._precision import for_pass
from ..kernels.cuda import gaussian
from ..kernels.cuda import hmm as kernels
from .cuda import CudaData, block_threads, cuda_part_bounds, threads_for


class HMMPasses:
    """The passes of one hidden Markov model over the sequences of ``data``.

    Parameters
    ----------
    backend : CUDABackend
    data : CudaData, the rows (on the GPU, or streamed from the host)
    pa : PassArrays, the emission densities in the compute dtype
    layout : Layout of the emission covariances
    startprob : ndarray of shape (k,)
    transmat : ndarray of shape (k, k)
    """

    def __init__(self, backend, data: CudaData, pa, layout, startprob, transmat):
        cuda = self.cuda = backend.cuda
        self.backend, self.data, self.pa, self.layout = backend, data, pa, int(layout)
        self.k, self.d = pa.means.shape
        dtype = pa.means.dtype
        self.threads = threads_for(self.d, dtype)
        self.shared = gaussian.shared_floats(self.d, self.threads) * dtype.itemsize
        self.log_prob_kernel = gaussian.for_dtype(dtype)[1]
        self.stats_kernel = gaussian.weighted_stats_for(dtype)
        self.arrays = tuple(cuda.to_device(a) for a in (pa.ref, pa.means, pa.factor, pa.log_const))
        with np.errstate(divide="ignore"):
            self.log_start = cuda.to_device(np.log(startprob))
            self.log_trans = cuda.to_device(np.log(np.ascontiguousarray(transmat)))
        self.hmm_threads = kernels.threads_for(self.k, block_threads())
        self.hmm_shared = kernels.shared_floats(self.k) * 8
        if self.hmm_shared > config.CUDA_SHARED_BYTES:
            raise ValueError(f"n_components={self.k} is too many states for backend='cuda': a "
                             f"sequence's state vectors need {self.hmm_shared} bytes of one "
                             f"block's shared memory (at most {config.CUDA_SHARED_BYTES}); use "
                             "backend='cpu'.")

    # -- groups of sequences ------------------------------------------------------

    def _groups(self, bounds):
        """Yield ``(s0, s1, rows)``: sequences ``s0:s1`` and their rows of X on the device."""
        data = self.data
        row_bytes = data.dtype.itemsize * self.d + 24 * self.k
        budget = max(1, config.CUDA_STREAM_BYTES // row_bytes)
        n_sequences = len(bounds) - 1
        s0 = 0
        while s0 < n_sequences:
            s1 = int(np.searchsorted(bounds, bounds[s0] + budget, side="right")) - 1
            s1 = min(n_sequences, max(s1, s0 + 1))
            a, b = bounds[s0], bounds[s1]
            rows = (data.device[a:b] if data.device is not None
                    else self.cuda.to_device(np.ascontiguousarray(data.host[a:b])))
            yield s0, s1, rows
            s0 = s1

    def _emissions(self, rows):
        """Emission log-densities (m, k) float64 of the rows, on the device
        (less the float32 pass's constant shift, added to the likelihoods)."""
        m = rows.shape[0]
        bounds = cuda_part_bounds(m, self.threads, 1)
        out = self.cuda.device_array((m, self.k))
        self.log_prob_kernel[bounds.shape[0] - 1, self.threads, 0, self.shared](
            rows, self.layout, *self.arrays, self.cuda.to_device(bounds), out)
        return out

    def _forward_backward(self, logf, local, weights, want_post, want_xi):
        cuda, k, ns = self.cuda, self.k, local.shape[0] - 1
        post = cuda.device_array(logf.shape)
        log_prob = cuda.device_array(ns)
        start = cuda.device_array((ns, k))
        xi = cuda.to_device(np.zeros((ns if want_xi else 1, k, k)))
        kernels.forward_backward[ns, self.hmm_threads, 0, self.hmm_shared](
            logf, cuda.to_device(local), cuda.to_device(weights), self.log_start,
            self.log_trans, want_post, want_xi, post, log_prob, start, xi)
        return post, log_prob, start, xi

    def _log_probs(self, log_prob, local):
        """Host per-sequence log-likelihoods, with the float32 shift added back."""
        out = log_prob.copy_to_host()
        if self.pa.shift:
            out += self.pa.shift * np.diff(local)
        return out

    # -- the passes -----------------------------------------------------------------

    def estep(self, bounds, weights, want_xi):
        """Baum-Welch's weighted statistics of all sequences, in the CPU
        E-step's raw form: ``log_prob``, ``start``, ``trans``, ``post``,
        ``obs`` and ``second`` (about each state's mean, ``centre``; lower
        triangles for full covariances)."""
        k, d, reduce = self.k, self.d, self.backend._reduce
        width = d * d if self.layout == Layout.FULL else d
        total = None
        for s0, s1, rows in self._groups(bounds):
            local = bounds[s0:s1 + 1] - bounds[s0]
            w = np.ascontiguousarray(weights[s0:s1], dtype=np.float64)
            logf = self._emissions(rows)
            post, log_prob, start, xi = self._forward_backward(logf, local, w, True, want_xi)
            del logf
            m = rows.shape[0]
            parts = cuda_part_bounds(m, self.threads, k * (width + d + 1))
            n_parts = parts.shape[0] - 1
            mass = self.cuda.to_device(np.zeros((n_parts, k)))
            first = self.cuda.to_device(np.zeros((n_parts, k, d)))
            second = self.cuda.to_device(np.zeros((n_parts, k, width)))
            self.stats_kernel[n_parts, self.threads, 0, self.shared](
                rows, self.layout, self.arrays[0], self.arrays[1], post, self.cuda.to_device(parts),
                mass, first, second)
            group = {"log_prob": float(np.dot(w, self._log_probs(log_prob, local))),
                     "start": reduce(start, (k,)),
                     "trans": reduce(xi, (k, k)) if want_xi else np.zeros((k, k)),
                     "post": reduce(mass, (k,)), "obs": reduce(first, (k, d)),
                     "second": reduce(second, (k, width))}
            total = group if total is None else {key: total[key] + group[key] for key in total}
        total["centre"] = self.pa.centres
        return total

    def scores(self, bounds, want_post):
        """Per-sequence log-likelihoods (n_sequences,) and, with ``want_post``,
        the state posteriors (n, k) as a host array."""
        log_probs = np.empty(len(bounds) - 1)
        post = np.empty((bounds[-1], self.k)) if want_post else None
        for s0, s1, rows in self._groups(bounds):
            local = bounds[s0:s1 + 1] - bounds[s0]
            logf = self._emissions(rows)
            out, log_prob, _, _ = self._forward_backward(logf, local, np.ones(s1 - s0),
                                                         want_post, False)
            log_probs[s0:s1] = self._log_probs(log_prob, local)
            if want_post:
                post[bounds[s0]:bounds[s1]] = out.copy_to_host()
        return log_probs, post

    def viterbi(self, bounds):
        """``(log_prob, states (n,))``: the most probable path of every sequence
        and the sum of their joint log-probabilities."""
        cuda, k = self.cuda, self.k
        states = np.empty(bounds[-1], dtype=np.int64)
        total = 0.0
        for s0, s1, rows in self._groups(bounds):
            local = bounds[s0:s1 + 1] - bounds[s0]
            logf = self._emissions(rows)
            path = cuda.device_array(rows.shape[0], dtype=np.int64)
            log_prob = cuda.device_array(s1 - s0)
            kernels.viterbi[s1 - s0, self.hmm_threads, 0, 2 * k * 8](
                logf, cuda.to_device(local), self.log_start, self.log_trans,
                cuda.device_array((rows.shape[0], k), dtype=np.int32), path, log_prob)
            total += float(self._log_probs(log_prob, local).sum())
            states[bounds[s0]:bounds[s1]] = path.copy_to_host()
        return total, states


class GuardedPasses:
    """:class:`HMMPasses` in the backend's compute dtype, run again in
    float64 when a float32 pass lost a sequence (a log-likelihood that is not
    finite: a step whose squared distance overflows float32, not float64),
    as the CPU computes such emissions again in float64.

    Parameters
    ----------
    backend : CUDABackend
    data : CudaData
    inputs : KernelInputs of the emission densities
    startprob : ndarray of shape (k,)
    transmat : ndarray of shape (k, k)
    """

    def __init__(self, backend, data, inputs, startprob, transmat):
        def passes(dtype):
            return HMMPasses(backend, data, for_pass(inputs, data.dtype, dtype), inputs.layout,
                             startprob, transmat)

        self._passes, self._make = passes(backend.dtype), passes

    def _run(self, run, log_probs):
        out = run(self._passes)
        if self._passes.pa.means.dtype == np.float32 and not np.all(np.isfinite(log_probs(out))):
            out = run(self._make(np.float64))
        return out

    def estep(self, bounds, weights, want_xi):
        return self._run(lambda p: p.estep(bounds, weights, want_xi), lambda out: out["log_prob"])

    def scores(self, bounds, want_post):
        return self._run(lambda p: p.scores(bounds, want_post), lambda out: out[0])

    def viterbi(self, bounds):
        return self._run(lambda p: p.viterbi(bounds), lambda out: out[0])
