"""Forward-backward and Viterbi for hidden Markov models, in log space.

One call handles one sequence: ``log_frame`` (n, k) holds the emission
log-densities of its n steps under the k states. The drivers are ``nogil``,
so sequences run side by side on Python threads (``fastem.hmm``), and each
returns its own results, summed afterwards in sequence order: the same bits
for any number of threads.
"""

import numpy as np

from ._jit import driver, helper


@helper
def _log_sum_exp(values, k):
    top = -np.inf
    for i in range(k):
        if values[i] > top:
            top = values[i]
    if top == -np.inf:
        return -np.inf
    total = 0.0
    for i in range(k):
        total += np.exp(values[i] - top)
    return top + np.log(total)


@helper
def _log_matvec(log_vec, trans, k, out):
    """``out[j] = log sum_i exp(log_vec[i]) trans[i, j]``, stably: the
    exponentials are taken relative to the largest entry, so a step costs k
    ``exp`` and k ``log`` and k^2 multiply-adds (a log-sum-exp per pair of
    states would cost k^2 of each)."""
    top = -np.inf
    for i in range(k):
        if log_vec[i] > top:
            top = log_vec[i]
    if top == -np.inf:
        for j in range(k):
            out[j] = -np.inf
        return
    scaled = np.empty(k)
    for i in range(k):
        scaled[i] = np.exp(log_vec[i] - top)
    for j in range(k):
        acc = 0.0
        for i in range(k):
            acc += scaled[i] * trans[i, j]
        out[j] = top + np.log(acc)


@driver
def forward_backward(log_start, log_trans, log_frame, want_xi):
    """``(log_prob, posteriors (n, k), xi_sum (k, k))`` of one sequence, in log space.

    ``xi_sum[i, j]`` is the expected number of transitions i -> j (zeros
    unless ``want_xi``); ``posteriors[t, j]`` the probability of state j at
    step t given the whole sequence. The recursions keep logarithms (no
    underflow, whatever the sequence's length or the densities' range) and
    multiply by the transition matrix in probability space, relative to each
    step's largest term.
    """
    n, k = log_frame.shape
    trans = np.exp(log_trans)
    back = np.ascontiguousarray(trans.T)  # the backward step multiplies from the right
    fwd = np.empty((n, k))
    bwd = np.empty((n, k))
    work = np.empty(k)
    step = np.empty(k)
    for j in range(k):
        fwd[0, j] = log_start[j] + log_frame[0, j]
    for t in range(1, n):
        _log_matvec(fwd[t - 1], trans, k, step)
        for j in range(k):
            fwd[t, j] = step[j] + log_frame[t, j]
    log_prob = _log_sum_exp(fwd[n - 1], k)
    for j in range(k):
        bwd[n - 1, j] = 0.0
    xi_sum = np.zeros((k, k))
    for t in range(n - 2, -1, -1):
        for j in range(k):
            work[j] = log_frame[t + 1, j] + bwd[t + 1, j]
        _log_matvec(work, back, k, step)
        for i in range(k):
            bwd[t, i] = step[i]
        if want_xi and np.isfinite(log_prob):
            # xi_t[i, j] = exp(fwd[t, i] + work[j] - log_prob) * trans[i, j]
            top = -np.inf
            for j in range(k):
                if work[j] > top:
                    top = work[j]
            if top > -np.inf:
                for j in range(k):
                    step[j] = np.exp(work[j] - top)
                for i in range(k):
                    left = fwd[t, i] + top - log_prob
                    if left > 700.0:  # only with transitions of ~1e-300: pair by pair
                        for j in range(k):
                            xi_sum[i, j] += np.exp(fwd[t, i] + log_trans[i, j] + work[j]
                                                   - log_prob)
                        continue
                    a = np.exp(left)
                    for j in range(k):
                        xi_sum[i, j] += a * trans[i, j] * step[j]
    posteriors = np.empty((n, k))
    for t in range(n):
        for j in range(k):
            work[j] = fwd[t, j] + bwd[t, j]
        norm = _log_sum_exp(work, k)
        for j in range(k):
            posteriors[t, j] = np.exp(work[j] - norm)
    return log_prob, posteriors, xi_sum


@driver
def forward_log_prob(log_start, log_trans, log_frame):
    """``log p(sequence)`` by the forward recursion alone."""
    n, k = log_frame.shape
    trans = np.exp(log_trans)
    prev = np.empty(k)
    step = np.empty(k)
    for j in range(k):
        prev[j] = log_start[j] + log_frame[0, j]
    for t in range(1, n):
        _log_matvec(prev, trans, k, step)
        for j in range(k):
            prev[j] = step[j] + log_frame[t, j]
    return _log_sum_exp(prev, k)


@driver
def viterbi(log_start, log_trans, log_frame):
    """``(log_prob, states (n,))``: the most probable state path and its
    joint log-probability (ties go to the lowest state, as hmmlearn's)."""
    n, k = log_frame.shape
    delta = np.empty((n, k))
    back = np.zeros((n, k), dtype=np.int64)
    for j in range(k):
        delta[0, j] = log_start[j] + log_frame[0, j]
    for t in range(1, n):
        for j in range(k):
            best, arg = -np.inf, 0
            for i in range(k):
                v = delta[t - 1, i] + log_trans[i, j]
                if v > best:
                    best, arg = v, i
            delta[t, j] = best + log_frame[t, j]
            back[t, j] = arg
    states = np.empty(n, dtype=np.int64)
    best, arg = -np.inf, 0
    for j in range(k):
        if delta[n - 1, j] > best:
            best, arg = delta[n - 1, j], j
    states[n - 1] = arg
    for t in range(n - 1, 0, -1):
        states[t - 1] = back[t, states[t]]
    return best, states


@driver
def forward_backward_scaled(log_start, log_trans, log_frame, want_xi):
    """:func:`forward_backward` with probabilities scaled to sum to 1 at every
    step instead of logarithms (hmmlearn's "scaling" implementation): one
    ``exp`` per step and state instead of ``k`` per step and state pair.

    Emission probabilities are taken relative to each step's largest, so
    they never overflow; a step whose every reachable state has a relative
    probability below 1e-308 underflows to a log-likelihood of -inf, where
    the log implementation would still give a finite one.
    """
    n, k = log_frame.shape
    start = np.exp(log_start)
    trans = np.exp(log_trans)
    frame = np.empty((n, k))
    top = np.empty(n)
    for t in range(n):
        m = -np.inf
        for j in range(k):
            if log_frame[t, j] > m:
                m = log_frame[t, j]
        top[t] = m
        for j in range(k):
            frame[t, j] = np.exp(log_frame[t, j] - m)
    fwd = np.empty((n, k))
    scale = np.empty(n)
    total = 0.0
    for j in range(k):
        fwd[0, j] = start[j] * frame[0, j]
        total += fwd[0, j]
    scale[0] = total
    log_prob = np.log(total) + top[0]
    posteriors = np.zeros((n, k))
    xi_sum = np.zeros((k, k))
    if not total > 0.0:
        return -np.inf, posteriors, xi_sum
    for j in range(k):
        fwd[0, j] /= total
    for t in range(1, n):
        total = 0.0
        for j in range(k):
            acc = 0.0
            for i in range(k):
                acc += fwd[t - 1, i] * trans[i, j]
            fwd[t, j] = acc * frame[t, j]
            total += fwd[t, j]
        if not total > 0.0:
            return -np.inf, posteriors, xi_sum
        scale[t] = total
        log_prob += np.log(total) + top[t]
        for j in range(k):
            fwd[t, j] /= total
    bwd = np.empty((n, k))
    work = np.empty(k)
    for j in range(k):
        bwd[n - 1, j] = 1.0
    for t in range(n - 2, -1, -1):
        for j in range(k):
            work[j] = frame[t + 1, j] * bwd[t + 1, j] / scale[t + 1]
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += trans[i, j] * work[j]
            bwd[t, i] = acc
        if want_xi:
            for i in range(k):
                for j in range(k):
                    xi_sum[i, j] += fwd[t, i] * trans[i, j] * work[j]
    for t in range(n):
        norm = 0.0
        for j in range(k):
            posteriors[t, j] = fwd[t, j] * bwd[t, j]
            norm += posteriors[t, j]
        for j in range(k):
            posteriors[t, j] /= norm
    return log_prob, posteriors, xi_sum


@driver
def emission_full(x, ref, inverse, shift, const):
    """Emission log-densities (n, k) of rows x under full covariances.

    ``inverse[j]`` is ``L_j^-1`` (lower triangular, ``C_j = L_j L_j^T``),
    ``shift[j] = L_j^-1 (mu_j - ref)``: ``log N = const_j - |L_j^-1 (x - ref) - shift_j|^2 / 2``.
    Written as loops rather than NumPy products: BLAS threads started inside
    the E-step's own threads made two threads slower than one.
    """
    n, d = x.shape
    k = inverse.shape[0]
    out = np.empty((n, k))
    y = np.empty(d)
    for t in range(n):
        for i in range(d):
            y[i] = x[t, i] - ref[i]
        for j in range(k):
            acc = 0.0
            for a in range(d):
                s = -shift[j, a]
                for b in range(a + 1):
                    s += inverse[j, a, b] * y[b]
                acc += s * s
            out[t, j] = const[j] - 0.5 * acc
    return out


@driver
def second_moments(x, ref, post):
    """``sum_t post[t, j] (x_t - ref)(x_t - ref)^T`` for every state j, (k, d, d)."""
    n, d = x.shape
    k = post.shape[1]
    out = np.zeros((k, d, d))
    y = np.empty(d)
    for t in range(n):
        for i in range(d):
            y[i] = x[t, i] - ref[i]
        for j in range(k):
            w = post[t, j]
            for a in range(d):
                wa = w * y[a]
                for b in range(a + 1):
                    out[j, a, b] += wa * y[b]
    for j in range(k):
        for a in range(d):
            for b in range(a):
                out[j, b, a] = out[j, a, b]
    return out


@driver
def emission_diagonal(x, ref, precision, const):
    """Emission log-densities (n, k) under diagonal covariances:
    ``const_j - sum_a precision[j, a] (x_a - ref_a - mean_ja)^2 / 2`` with
    ``const`` holding the normaliser and ``precision`` the means folded in as
    ``precision[j, d + a] = mean_ja`` (one array, one pass over the rows)."""
    n, d = x.shape
    k = precision.shape[0]
    out = np.empty((n, k))
    y = np.empty(d)
    for t in range(n):
        for a in range(d):
            y[a] = x[t, a] - ref[a]
        for j in range(k):
            acc = 0.0
            for a in range(d):
                r = y[a] - precision[j, d + a]
                acc += precision[j, a] * r * r
            out[t, j] = const[j] - 0.5 * acc
    return out


@driver
def first_moments(x, ref, post, squares):
    """``(sum_t post[t, j] (x_t - ref), sum_t post[t, j] (x_t - ref)^2)`` per
    state, each (k, d) (the squares only when ``squares``)."""
    n, d = x.shape
    k = post.shape[1]
    first = np.zeros((k, d))
    second = np.zeros((k, d))
    y = np.empty(d)
    for t in range(n):
        for a in range(d):
            y[a] = x[t, a] - ref[a]
        for j in range(k):
            w = post[t, j]
            for a in range(d):
                wy = w * y[a]
                first[j, a] += wy
                if squares:
                    second[j, a] += wy * y[a]
    return first, second
