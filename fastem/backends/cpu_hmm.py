"""GaussianHMM's passes on the CPU: the E-step, scoring and Viterbi.

The same three passes as ``cuda_hmm.HMMPasses``, over a NumPy array or
memory map (and over each row chunk of a dask array, ``dask.SequenceBlocks``):

- the E-step: sequences shorter than ``config.HMM_LONG_SEQUENCE`` steps run
  whole in one fused pass (``kernels/cpu/hmm.py``'s ``FIT_SEQUENCES``:
  emissions, forward-backward and the weighted statistics of each sequence
  while its rows are in cache), parallel over parts of consecutive
  sequences; a longer one alone, its emissions and statistics parallel over
  row parts and its recursion on one thread;
- scoring (per-sequence log-likelihoods, state posteriors) and Viterbi, from
  the emission log-densities of every row (``n x k``, float64).

Parts are cut by the data (``config.HMM_PART_STEPS`` steps) and summed in
their order: the same bits for any thread count. The recursion is the
rescaled one; a sequence it cannot do is redone in logarithms (``exact``).
"""

from __future__ import annotations

import numpy as np

from .. import config
from .._covariance import Layout
from .._precision import for_pass
from ..kernels.cpu import gaussian, launch
from ..kernels.cpu import hmm as kernels
from ..kernels.cpu._parts import run_parts
from ._common import float32_overflowed, kernel_input, part_bounds, partial_stats


def step_parts(lengths):
    """Cut sequences into parts of consecutive ones: ``(n_parts + 1,)`` int64
    indices, a part closing once it holds ``config.HMM_PART_STEPS`` steps
    (the data decide the parts, never the thread count)."""
    parts, steps = [0], 0
    for i, n in enumerate(np.asarray(lengths).tolist()):
        steps += n
        if steps >= config.HMM_PART_STEPS:
            parts.append(i + 1)
            steps = 0
    if parts[-1] != len(lengths):
        parts.append(len(lengths))
    return np.asarray(parts, dtype=np.int64)


def add_stats(total, part):
    """Add one part's E-step statistics to ``total`` in place (``centre``,
    the same in every part, once)."""
    for key in total:
        if key != "centre":
            total[key] = total[key] + part[key]


class HMMPasses:
    """The passes of one hidden Markov model over the sequences of ``X``.

    Parameters
    ----------
    backend : CPUBackend (its ``dtype`` chooses the compute dtype)
    X : ndarray of shape (n, d), float32 or float64 (or a memory map)
    inputs : KernelInputs of the emission densities (``log_const`` the
        Gaussian's normalisation, without any weight)
    startprob : ndarray of shape (k,)
    transmat : ndarray of shape (k, k)
    """

    def __init__(self, backend, X, inputs, startprob, transmat):
        self.X, self.inputs, self.layout = kernel_input(X), inputs, inputs.layout
        self.pa = for_pass(inputs, self.X.dtype, backend.dtype)
        self.k = inputs.n_components
        self.startprob = startprob
        self.transmat = np.ascontiguousarray(transmat)

    def frames(self, X, pa=None):
        """Emission log-densities (m, k) float64 of the rows X, computed again
        in float64 where float32 overflowed (``float32_overflowed``)."""
        pa = self.pa if pa is None else pa
        X = kernel_input(X)
        out = np.empty((X.shape[0], self.k))
        with launch():
            kernels.emissions(X, self.layout, pa.ref, pa.means, pa.factor, pa.log_const,
                              part_bounds(X.shape[0], 1), out)
        if pa.shift:
            out += pa.shift
        if float32_overflowed(out, pa):
            return self.frames(X, for_pass(self.inputs, X.dtype, np.float64))
        return out

    # -- the passes -----------------------------------------------------------------

    def estep(self, bounds, weights, want_xi):
        """Baum-Welch's weighted statistics of all sequences: ``log_prob``,
        ``start``, ``trans``, ``post``, ``obs`` and ``second`` (about each
        state's mean, ``centre``; lower triangles for full covariances)."""
        X, pa = self.X, self.pa
        lengths = np.diff(bounds)
        long = lengths >= config.HMM_LONG_SEQUENCE
        order = np.flatnonzero(~long)
        redo = np.zeros(len(lengths), dtype=np.int8)
        stats = self._fused_stats(bounds, weights, order, False, want_xi, redo)
        if redo.any():  # the sequences that need the exact recursion, after the others
            add_stats(stats, self._fused_stats(bounds, weights, np.flatnonzero(redo), True,
                                               want_xi, redo))
        for s in np.flatnonzero(long):
            if weights[s] == 0.0:
                continue
            add_stats(stats, self._long_sequence_stats(X[bounds[s]:bounds[s + 1]], weights[s],
                                                       want_xi))
        # the fused pass leaves out the float32 pass's constant shift (the
        # long sequences' densities include it, frames adds it)
        stats["log_prob"] += pa.shift * float(np.dot(weights[order], lengths[order]))
        stats["centre"] = pa.centres
        return stats

    def scores(self, bounds, want_post):
        """Per-sequence log-likelihoods (n_sequences,) and, with ``want_post``,
        the state posteriors (n, k) of every row (else None)."""
        logf = self.frames(self.X)
        post = np.empty_like(logf) if want_post else np.empty((0, self.k))
        log_probs, _ = self._recursions(logf, bounds, np.ones(len(bounds) - 1), want_post,
                                        False, post)
        return log_probs, (post if want_post else None)

    def viterbi(self, bounds):
        """``(log_prob, states (n,))``: the most probable path of every sequence
        and the sum of their joint log-probabilities."""
        states, total = np.empty(self.X.shape[0], dtype=np.int64), 0.0
        logf = self.frames(self.X)
        log_start, log_trans = safe_log(self.startprob), safe_log(self.transmat)
        for a, b in zip(bounds[:-1], bounds[1:]):
            log_prob, path = kernels.viterbi(log_start, log_trans, logf[a:b])
            total += log_prob
            states[a:b] = path
        return float(total), states

    # -- their pieces ---------------------------------------------------------------

    def _fused_stats(self, bounds, weights, order, exact, want_xi, redo):
        """The raw statistics of sequences ``order`` from the fused pass
        (``kernels.FIT_SEQUENCES``), with the rescaled recursion or the
        ``exact`` one; sequences the rescaled one cannot do get ``redo[s] = 1``."""
        X, pa, k = self.X, self.pa, self.k
        d = X.shape[1]
        lengths = np.diff(bounds)[order]
        parts = step_parts(lengths)
        n_parts = len(parts) - 1
        width = d * d if self.layout is Layout.FULL else d
        log_prob, start_counts = np.zeros(n_parts), np.zeros((n_parts, k))
        trans_counts = np.zeros((n_parts, k, k))
        mass, first, second = (np.zeros((n_parts, k)), np.zeros((n_parts, k, d)),
                               np.zeros((n_parts, k, width)))
        if n_parts:
            with launch():
                run_parts(kernels.FIT_SEQUENCES[int(self.layout)][exact], n_parts, X, bounds,
                          weights, order, parts, int(lengths.max()), self.startprob,
                          self.transmat, want_xi, pa.ref, pa.means, pa.factor, pa.log_const,
                          log_prob, start_counts, trans_counts, mass, first, second, redo)
        return {"log_prob": log_prob.sum(), "start": start_counts.sum(axis=0),
                "trans": trans_counts.sum(axis=0), "post": mass.sum(axis=0),
                "obs": first.sum(axis=0), "second": second.sum(axis=0)}

    def _recursions(self, logf, bounds, weights, want_post, want_xi, post):
        """Forward-backward of the sequences whose emission log-densities
        ``logf`` (n, k) are computed (``kernels.SEQUENCES``): the rescaled
        recursion, then the exact one for the sequences it cannot do.

        Returns
        -------
        log_probs : ndarray of shape (n_sequences,)
        xi : ndarray of shape (k, k), the weighted expected transitions (with ``want_xi``)
        """
        k, n_sequences = self.k, len(bounds) - 1
        log_probs, redo = np.zeros(n_sequences), np.zeros(n_sequences, dtype=np.int8)
        xi_total = np.zeros((k, k))
        order = np.arange(n_sequences)
        for exact in (False, True):
            if exact:
                order = np.flatnonzero(redo)
            if not len(order):
                break
            parts = step_parts(np.diff(bounds)[order])
            xi = np.zeros((len(parts) - 1, k, k) if want_xi else (len(parts) - 1, 1, 1))
            with launch():
                run_parts(kernels.SEQUENCES[exact], len(parts) - 1, self.startprob,
                          self.transmat, logf, bounds, weights, order, parts, want_post,
                          want_xi, post, log_probs, xi, redo)
            if want_xi:
                xi_total += xi.sum(axis=0)
        return log_probs, xi_total

    def _long_sequence_stats(self, x, w, want_xi):
        """One long sequence's weighted statistics: emissions and statistics
        parallel over row parts, the recursion on one thread."""
        k, d, pa = self.k, x.shape[1], self.pa
        logf = self.frames(x)
        post = np.empty_like(logf)
        log_prob, xi = self._recursions(logf, np.array([0, len(x)]), np.array([w]), True,
                                        want_xi, post)
        del logf
        post *= w
        bounds, mass, first, second = partial_stats(len(x), k, d, self.layout)
        if np.isfinite(log_prob[0]):
            with launch():
                gaussian.weighted_stats(x, self.layout, pa.ref, pa.means, post, bounds, mass,
                                        first, second)
        return {"log_prob": w * log_prob[0], "start": post[0], "trans": xi,
                "post": mass.sum(axis=0), "obs": first.sum(axis=0),
                "second": second.sum(axis=0)}


def safe_log(p):
    """``log p`` of probabilities, ``-inf`` for 0 without a warning."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(p, dtype=np.float64))
