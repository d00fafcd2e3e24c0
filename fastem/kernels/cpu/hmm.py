"""Baum-Welch's E-step for hidden Markov models: forward-backward and Viterbi.

The emission log-densities are the mixtures' Gaussian kernel
(:func:`.gaussian.log_prob_rows`) and the statistics its weighted-statistics
kernel (:func:`.gaussian.weighted_stats_rows`) with the state posteriors as
the weights; this module adds the recursions over steps.

Arithmetic of forward-backward. The fast path is Rabiner's rescaled
recursion: step ``t`` of the forward pass takes the emission probabilities
relative to the step's largest, ``f_j = exp(log N_j - m_t)`` (k vectorised
exponentials, off the recursion's dependency chain), the prediction
``p = a_{t-1} T`` and ``a_t = p * f / c_t``, ``c_t = sum(p * f)``; the
log-likelihood is ``sum_t m_t + log c_t``, and the backward pass divides by
the same ``c_t``, so that ``a_t * b_t`` are the posteriors and
``a_t,i T_ij f_j b_t+1,j / c_t+1`` the expected transitions.

Rescaled probabilities lose what falls below the smallest double, which
hmmlearn's log-space recursion keeps. So the forward pass watches for it:
a state the chain can reach (``p_j > 0``) whose ``p_j f_j`` falls below
``LOST`` is dropped, and a dropped state could matter later only if the
sequence then became ``e^GAP`` times less likely than at the drop, relative
to each step's best emission (``sum log c_t`` fell by ``GAP`` since): only
then, or when a step's ``c_t`` is 0, or when ``transmat_`` has a positive
entry below ``SMALL_TRANSITION``, is the sequence run again by the exact
log-space recursion (:func:`_forward_backward_log`, hmmlearn's arithmetic:
k^2 exponentials per step). Ordinary data never take it; an outlier that
only a state the chain has left can explain does (``tests/test_hmm.py``).

Measured on Zen 5, forward-backward with expected transitions of a
1,000-step sequence, k=8, one thread: the previous log-space recursion
(``exp`` relative to each step's largest, libm) took 416 us, the same with
a vectorised ``exp`` and ``log`` 199 us, this one 70-74 us (its forward
pass 33-36 us; writing the prediction with one register accumulator per
state, and the exponentials in a loop of their own, took it from 41 us).

Every driver writes its own outputs (per part or per sequence), summed by the
caller in a fixed order: the same bits for any number of threads.
"""

import numpy as np

from ..._covariance import Layout
from ._elementary import fast_exp
from ._jit import driver as _jit_driver, helper
from ._parts import next_part, run_parts
from .gaussian import log_prob_rows, weighted_stats_rows

#: The layouts the drivers are compiled for, as plain ints (see FIT_SEQUENCES).
_LAYOUTS = (int(Layout.FULL), int(Layout.DIAG))

#: A reachable state whose rescaled forward probability falls below this is dropped.
LOST = 1e-280
#: ... and the sequence is run in log space once its likelihood, relative to
#: each step's best emission, has fallen by this many nats since the first
#: drop (1e-280 is e^-645: a dropped state could then be within e^-145 of
#: the states kept).
GAP = 500.0
#: A positive transition probability below this can underflow ``a_i T_ij``.
SMALL_TRANSITION = 1e-20
#: Exponents of the backward pass's ``exp(log N_j - log c_t)`` stop here
#: (reached only by states the forward pass found unreachable, masked anyway).
_EXP_CAP = 700.0


@helper
def _forward(start, trans, logf, n, a, scale, fr, pred, watch):
    """Rows ``0:n`` of ``a`` get the rescaled forward probabilities and
    ``scale[t]`` the log normaliser ``m_t + log c_t``. Returns ``log p`` of the
    sequence, or NaN when the rescaled arithmetic lost what mattered (the
    caller then runs :func:`_forward_backward_log`); ``watch`` False: some
    transition is below ``SMALL_TRANSITION``, so run the log recursion."""
    k = trans.shape[0]
    if not watch:
        return np.nan
    into = np.empty((k, k))  # into[j] = the transitions into state j
    for i in range(k):  # loops, not array expressions: those compile for longer
        for j in range(k):
            into[j, i] = trans[i, j]
    log_prob = 0.0
    relative = 0.0  # sum_t log c_t: the likelihood relative to each step's best emission
    ever_dropped = False
    dropped_at = 0.0  # ``relative`` when a state was first dropped
    for t in range(n):
        m = -np.inf
        for j in range(k):
            m = max(m, logf[t, j])
        for j in range(k):
            if t == 0:
                pred[j] = start[j]
            else:  # one register accumulator per state: independent chains
                pj = 0.0
                for i in range(k):
                    pj += a[t - 1, i] * into[j, i]
                pred[j] = pj
        for j in range(k):
            fr[j] = fast_exp(logf[t, j] - m)
        total = 0.0
        dropped = False
        for j in range(k):
            p = pred[j] * fr[j]
            a[t, j] = p
            total += p
            dropped |= (pred[j] > 0.0) & (p < LOST)
        if not total > LOST:
            return np.nan
        lc = np.log(total)
        relative += lc
        if dropped and not ever_dropped:
            ever_dropped, dropped_at = True, relative
        if ever_dropped and dropped_at - relative > GAP:
            return np.nan
        scale[t] = m + lc
        log_prob += m + lc
        inv = 1.0 / total
        for j in range(k):
            a[t, j] *= inv
    return log_prob


@helper
def _backward(trans, logf, n, a, scale, b, u, want_xi, w, xi):
    """The backward pass over ``a`` and ``scale`` from :func:`_forward`; ``a``
    becomes the state posteriors and, with ``want_xi``, ``w`` times the
    expected transition counts are added to ``xi`` (k, k)."""
    k = trans.shape[0]
    for j in range(k):
        b[j] = 1.0
    for t in range(n - 1, -1, -1):
        if t < n - 1:
            s = scale[t + 1]
            for j in range(k):
                u[j] = fast_exp(min(logf[t + 1, j] - s, _EXP_CAP))
            for j in range(k):
                # a[t + 1] holds the posteriors now: 0 exactly where the forward was 0
                u[j] = u[j] * b[j] if a[t + 1, j] > 0.0 else 0.0
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += trans[i, j] * u[j]
                b[i] = acc
            if want_xi:
                for i in range(k):
                    ci = w * a[t, i]
                    for j in range(k):
                        xi[i, j] += ci * trans[i, j] * u[j]
        total = 0.0
        for j in range(k):
            a[t, j] *= b[j]
            total += a[t, j]
        inv = 1.0 / total  # 1 up to round-off; hmmlearn normalises each step too
        for j in range(k):
            a[t, j] *= inv


@helper
def _log_sum_exp(values, k):
    top = -np.inf
    for i in range(k):
        top = max(top, values[i])
    if top == -np.inf:
        return top
    total = 0.0
    for i in range(k):
        total += np.exp(values[i] - top)
    return top + np.log(total)


@helper
def _row_top(logf, t, k):
    """The largest of ``logf[t, :k]``."""
    top = -np.inf
    for j in range(k):
        top = max(top, logf[t, j])
    return top


@helper
def _shift_to_top(values, k):
    """Subtract the largest of ``values[:k]`` from each; return it (-inf,
    and nothing subtracted, when all are -inf)."""
    top = -np.inf
    for i in range(k):
        top = max(top, values[i])
    if top > -np.inf:
        for i in range(k):
            values[i] -= top
    return top


@helper
def _forward_backward_log(start, trans, logf, n, a, want_post, want_xi, w, xi):
    """hmmlearn's log-space recursion (a log-sum-exp per pair of states and
    step): exact whatever the range, k times slower. Arguments and result as
    :func:`forward_backward_rows`; -inf when no state's emission reaches
    some step in float64 (the posteriors are then not written).

    Every step's emissions enter relative to the step's largest, and its
    forward message is shifted so that its largest entry is 0 (both shifts
    summed into ``log p``), so that the messages stay of the order of the
    differences between states. Unshifted, a step 1e25 standard deviations
    away (a log-density of -1e50, whose float64 spacing is 1e34) absorbed
    every other term added to it: the transitions into it and the
    sequence's earlier steps vanished from the posteriors (which came out
    as 1 for every state, or wrong by the ratio of two transitions)."""
    k = trans.shape[0]
    log_trans = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            log_trans[i, j] = np.log(trans[i, j])
    work = np.empty(k)
    bwd = np.empty(k)
    nxt = np.empty(k)
    pair = np.empty(k * k)
    log_prob = 0.0
    for t in range(n):
        top = _row_top(logf, t, k)
        if not top > -np.inf:
            return -np.inf  # no state's emission reaches this step
        log_prob += top
        for j in range(k):
            if t == 0:
                a[0, j] = np.log(start[j])
            else:
                for i in range(k):
                    work[i] = a[t - 1, i] + log_trans[i, j]
                a[t, j] = _log_sum_exp(work, k)
            a[t, j] += logf[t, j] - top
        log_prob += _shift_to_top(a[t], k)
    log_prob += _log_sum_exp(a[n - 1], k)
    if not (want_post and log_prob > -np.inf):
        return log_prob
    for j in range(k):
        bwd[j] = 0.0
    for t in range(n - 1, -1, -1):
        if t < n - 1:
            top = _row_top(logf, t + 1, k)
            for j in range(k):
                nxt[j] = (logf[t + 1, j] - top) + bwd[j]
            if want_xi:  # the pair posteriors of steps t, t + 1 sum to 1
                for i in range(k):
                    for j in range(k):
                        pair[i * k + j] = a[t, i] + log_trans[i, j] + nxt[j]
                norm = _log_sum_exp(pair, k * k)
                for i in range(k):
                    for j in range(k):
                        xi[i, j] += w * np.exp(pair[i * k + j] - norm)
            for i in range(k):
                for j in range(k):
                    work[j] = log_trans[i, j] + nxt[j]
                bwd[i] = _log_sum_exp(work, k)
            _shift_to_top(bwd, k)
        for j in range(k):
            work[j] = a[t, j] + bwd[j]
        norm = _log_sum_exp(work, k)
        for j in range(k):
            a[t, j] = np.exp(work[j] - norm)
    return log_prob


@helper
def forward_backward_rows(start, trans, logf, n, a, scale, want_post, want_xi, w, xi):
    """``log p`` of the sequence whose emission log-densities are rows ``0:n``
    of ``logf``; with ``want_post`` rows ``0:n`` of ``a`` get its state
    posteriors (otherwise they are scratch, as is ``scale`` (>= n,)) and,
    with ``want_xi``, ``w`` times its expected transition counts are added
    to ``xi``. Rescaled arithmetic: NaN (and nothing added to ``xi``) when
    the sequence needs the exact recursion (:func:`exact_rows`)."""
    k = trans.shape[0]
    tiny = 0  # a count, not a flag started as True: a literal True would type
    for i in range(k):  # _forward twice (Literal[bool] and bool), doubling its compile
        for j in range(k):
            tiny += 0.0 < trans[i, j] < SMALL_TRANSITION
    watch = tiny == 0
    log_prob = _forward(start, trans, logf, n, a, scale, np.empty(k), np.empty(k), watch)
    if want_post and not np.isnan(log_prob):
        _backward(trans, logf, n, a, scale, np.empty(k), np.empty(k), want_xi, w, xi)
    return log_prob


@helper
def exact_rows(start, trans, logf, n, a, scale, want_post, want_xi, w, xi):
    """:func:`forward_backward_rows` by the exact log-space recursion
    (``scale`` unused): for the sequences that one returns NaN for."""
    return _forward_backward_log(start, trans, logf, n, a, want_post, want_xi, w, xi)


def _make_fit_sequences(layout, exact):
    """The fused E-step driver of one covariance ``layout`` (a constant)
    and forward-backward recursion (:func:`exact_rows` when ``exact``, else
    :func:`forward_backward_rows`): part ``p`` runs sequences
    ``order[parts[p]:parts[p + 1]]`` (rows ``bounds[s]:bounds[s + 1]``,
    weight ``weights[s]``) and writes index ``p`` of the outputs; a sequence
    the recursion returns NaN for adds nothing and gets ``redo[s] = 1``."""
    def driver(X, bounds, weights, order, parts, max_len, start, trans, want_xi, ref, means,
               factor, log_const, log_prob, start_counts, trans_counts, mass, first, second,
               redo, counter):
        k = means.shape[0]
        logf = np.empty((max_len, k))
        a = np.empty((max_len, k))
        scale = np.empty(max_len)
        n_parts = parts.shape[0] - 1
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            for q in range(parts[p], parts[p + 1]):
                s = order[q]
                w = weights[s]
                if w == 0.0:
                    continue
                lo, hi = bounds[s], bounds[s + 1]
                log_prob_rows(X, layout, ref, means, factor, log_const, lo, hi, logf, 0)
                # ``hi > lo`` is True at run time, not a literal True: the same
                # types as ``sequences``' call, so both share one compiled
                # forward-backward (a literal would compile it a second time)
                if exact:
                    lp = exact_rows(start, trans, logf, hi - lo, a, scale, hi > lo, want_xi, w,
                                    trans_counts[p])
                else:
                    lp = forward_backward_rows(start, trans, logf, hi - lo, a, scale, hi > lo,
                                               want_xi, w, trans_counts[p])
                if np.isnan(lp):
                    redo[s] = 1
                    continue
                log_prob[p] += w * lp
                if lp == -np.inf:
                    continue
                for j in range(k):
                    start_counts[p, j] += w * a[0, j]
                weighted_stats_rows(X, lo, hi, w, layout, ref, means, a, 0, mass[p], first[p],
                                    second[p])
    return _jit_driver(driver)


#: One pass over whole sequences per part: emission log-densities, forward-
#: backward and weighted statistics, sequence by sequence, so that memory
#: is O(longest sequence x k) per thread, never O(n x k). ``FIT_SEQUENCES
#: [layout][exact]``: the rescaled recursion first; the exact one only for the
#: sequences it flags, so its drivers compile only when data need them.
#: The factories close over plain ints and bools only: Numba's cache keys a
#: closure by its pickled cell contents, and a pickled dispatcher differs in
#: every process (a cache miss each time); a constant also prunes the branch
#: not taken before typing, so the exact recursion compiles only in its own
#: drivers.
FIT_SEQUENCES = {layout: {exact: _make_fit_sequences(layout, exact) for exact in (False, True)}
                 for layout in _LAYOUTS}


def _make_sequences(exact):
    """Forward-backward of sequences whose emission log-densities ``logf``
    (n, k) are computed: part ``p`` runs sequences ``order[parts[p]:parts[p +
    1]]``; ``log_probs[s]`` per sequence and, with ``want_post``, the
    posteriors into ``post`` (n, k) and ``weights[s]`` times the expected
    transitions into ``xi[p]`` (n_parts, k, k). A sequence the recursion
    returns NaN for adds nothing and gets ``redo[s] = 1``."""
    def driver(start, trans, logf, bounds, weights, order, parts, want_post, want_xi, post,
               log_probs, xi, redo, counter):
        k = trans.shape[0]
        n_parts = parts.shape[0] - 1
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            for q in range(parts[p], parts[p + 1]):
                s = order[q]
                lo, hi = bounds[s], bounds[s + 1]
                a = post[lo:hi] if want_post else np.empty((hi - lo, k))
                if exact:
                    lp = exact_rows(start, trans, logf[lo:hi], hi - lo, a, np.empty(hi - lo),
                                    want_post, want_xi, weights[s], xi[p])
                else:
                    lp = forward_backward_rows(start, trans, logf[lo:hi], hi - lo, a,
                                               np.empty(hi - lo), want_post, want_xi,
                                               weights[s], xi[p])
                log_probs[s] = lp
                if np.isnan(lp):
                    redo[s] = 1
    return _jit_driver(driver)


#: ``SEQUENCES[exact]``, as ``FIT_SEQUENCES``.
SEQUENCES = {exact: _make_sequences(exact) for exact in (False, True)}


def _make_emissions(layout):
    """The emission log-density driver of one ``layout`` (a constant)."""
    def driver(X, ref, means, factor, log_const, bounds, out, counter):
        n_parts = bounds.shape[0] - 1
        while True:
            p = next_part(counter)
            if p >= n_parts:
                break
            log_prob_rows(X, layout, ref, means, factor, log_const, bounds[p], bounds[p + 1],
                          out, bounds[p])
    return _jit_driver(driver)


_EMISSIONS = {layout: _make_emissions(layout) for layout in _LAYOUTS}


def emissions(X, layout, ref, means, factor, log_const, bounds, out):
    """Every row's emission log-densities ``log N(x_i | j) + log_const_j``
    into ``out`` (n, k) float64; arguments as in :func:`.gaussian.accumulate`.

    The mixtures get these from their pass driver (:func:`.gaussian.log_prob`);
    a model that never compiles that driver (the fit's is the fused one
    above) compiles this smaller one instead: ``GaussianHMM``'s first fit,
    ``score`` and ``predict``, both layouts, took 1.6 CPU s longer from an
    empty cache with the mixtures' (AMD EPYC Zen 4).
    """
    run_parts(_EMISSIONS[int(layout)], bounds.shape[0] - 1, X, ref, means, factor, log_const,
              bounds, out)


@_jit_driver
def viterbi(log_start, log_trans, log_frame):
    """``(log_prob, states (n,))``: the most probable state path and its
    joint log-probability (ties go to the lowest state, as hmmlearn's).

    Each step's emissions enter relative to the step's largest (the shifts
    summed into ``log_prob``), as in :func:`_forward_backward_log`: a step's
    log-density of -1e50 would otherwise absorb the transitions compared
    after it."""
    n, k = log_frame.shape
    delta = np.empty((n, k))
    back = np.zeros((n, k), dtype=np.int64)
    total = 0.0
    for t in range(n):
        top = _row_top(log_frame, t, k)
        if not top > -np.inf:
            top = 0.0  # every state -inf: so is the path's probability
        total += top
        for j in range(k):
            if t == 0:
                best = log_start[j]
            else:
                best, arg = -np.inf, 0
                for i in range(k):
                    v = delta[t - 1, i] + log_trans[i, j]
                    if v > best:
                        best, arg = v, i
                back[t, j] = arg
            delta[t, j] = best + (log_frame[t, j] - top)
    states = np.empty(n, dtype=np.int64)
    best, arg = -np.inf, 0
    for j in range(k):
        if delta[n - 1, j] > best:
            best, arg = delta[n - 1, j], j
    states[n - 1] = arg
    for t in range(n - 1, 0, -1):
        states[t - 1] = back[t, states[t]]
    return best + total, states
