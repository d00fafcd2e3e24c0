"""numba.cuda kernels of GaussianHMM: forward-backward and Viterbi.

Twins of ``fastem.kernels.cpu.hmm``. One CUDA block runs one sequence:
rows ``bounds[s]:bounds[s + 1]`` of the emission log-densities ``logf``
(n, k), which ``gaussian.log_prob`` computed on the device. The block's
threads share out the states (thread ``tid`` owns states ``tid``,
``tid + blockDim.x``, ...), so that a step's k sums over the previous
states run side by side; the state vector of the previous step lives in
shared memory, double-buffered, so a forward step needs one barrier.
Reductions over states (a step's normaliser, the sequence's likelihood)
are summed by every thread in state order (the same bits in each, so no
broadcast is needed): the same bits on every run.

Arithmetic: hmmlearn's log-space recursion (its 'log' implementation, a
log-sum-exp over the previous states per state and step), exact whatever
the range of the probabilities, with each step's emissions relative to the
step's largest (the CPU kernel's, which says why). The CPU kernel runs rescaled
probabilities instead and redoes a sequence in logarithms only when
rescaling would lose what matters, because on one core the k^2
exponentials of a step are most of its time; here a step's exponentials
are spread over the block's threads and the GPU's exponential throughput
is high, so the simpler exact form is kept (this choice is not measured
on a GPU yet: ``benchmarks/gpu_check.py`` times it).

Dynamic shared memory: ``shared_floats(k)`` float64 per block. Barriers:
one per forward step and two per backward step.
"""

import math

from numba import cuda, float64

NEG_INF = -math.inf


def shared_floats(n_components):
    """Dynamic shared memory of a launch (float64 elements): four state
    vectors (two double-buffered ones and two of work)."""
    return 4 * n_components


def threads_for(n_components, limit):
    """Threads per block: one per state, at most ``limit``."""
    return max(1, min(n_components, limit))


@cuda.jit(device=True)
def _log_sum_exp(sh, base, k):
    """``log sum exp`` of ``sh[base:base + k]``, hmmlearn's way (largest first)."""
    top = NEG_INF
    for i in range(k):
        top = max(top, sh[base + i])
    if top == NEG_INF:
        return top
    acc = 0.0
    for i in range(k):
        acc += math.exp(sh[base + i] - top)
    return top + math.log(acc)


@cuda.jit(device=True)
def _row_shift(logf, row, k):
    """The largest of ``logf[row, :k]`` (0 when all are -inf): each step's
    emissions enter the recursions relative to it, as on the CPU
    (``fastem.kernels.cpu.hmm._forward_backward_log`` says why). Every
    thread computes it, with the same bits."""
    top = NEG_INF
    for j in range(k):
        top = max(top, logf[row, j])
    return top if top > NEG_INF else 0.0


@cuda.jit
def forward_backward(logf, bounds, weights, log_start, log_trans, want_post, want_xi, post,
                     log_prob, start_counts, xi):
    """Forward-backward of sequence ``blockIdx.x``.

    Parameters
    ----------
    logf : (n, k) float64, the emission log-densities of the rows
    bounds : (n_sequences + 1,) int64, sequence s is rows bounds[s]:bounds[s + 1]
    weights : (n_sequences,) float64; a sequence of weight 0 is skipped (its
        outputs are zeros)
    log_start : (k,), log_trans : (k, k) float64, logarithms of the model's
    want_post, want_xi : bool, compute the posteriors (and the expected
        transitions)
    post : (n, k) float64, out: ``weights[s]`` times the state posteriors
        (with ``want_post``; scratch otherwise)
    log_prob : (n_sequences,) float64, out: ``log p`` of each sequence
    start_counts : (n_sequences, k) float64, out: row 0 of ``post`` of each
    xi : (n_sequences, k, k) float64, zeroed by the caller; out:
        ``weights[s]`` times the expected transition counts (with ``want_xi``)
    """
    s = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    k = logf.shape[1]
    lo = bounds[s]
    n = bounds[s + 1] - lo
    w = weights[s]
    sh = cuda.shared.array(0, dtype=float64)
    NEXT = 2 * k  # log f_t+1 + log beta_t+1
    GAMMA = 3 * k  # log alpha_t + log beta_t
    if w == 0.0:
        _zero(post, start_counts, s, lo, n, tid, T)
        if tid == 0:
            log_prob[s] = 0.0
        return
    # Forward: log alpha (each step's emissions shifted, the shifts summed
    # in ``shifts``) into the rows of ``post`` and the shared buffers.
    shifts = _row_shift(logf, lo, k)
    for j in range(tid, k, T):
        v = log_start[j] + (logf[lo, j] - shifts)
        sh[j] = v
        post[lo, j] = v
    cuda.syncthreads()
    for t in range(1, n):
        shift = _row_shift(logf, lo + t, k)
        shifts += shift
        src = ((t - 1) % 2) * k
        dst = (t % 2) * k
        for j in range(tid, k, T):
            top = NEG_INF
            for i in range(k):
                top = max(top, sh[src + i] + log_trans[i, j])
            v = top
            if top > NEG_INF:
                acc = 0.0
                for i in range(k):
                    acc += math.exp(sh[src + i] + log_trans[i, j] - top)
                v = top + math.log(acc)
            v += logf[lo + t, j] - shift
            sh[dst + j] = v
            post[lo + t, j] = v
        cuda.syncthreads()
    # Every thread sums the same values in the same order: no broadcast needed.
    lp = _log_sum_exp(sh, ((n - 1) % 2) * k, k)  # log p less the shifts
    if tid == 0:
        log_prob[s] = lp + shifts
    if not want_post:
        return
    if lp == NEG_INF:  # a sequence the model forbids: no posteriors (fit refuses it)
        _zero(post, start_counts, s, lo, n, tid, T)
        return
    cuda.syncthreads()  # every thread has read the last alpha before it is overwritten
    # Backward: log beta of step t in buffer (n - 1 - t) % 2; two barriers a step.
    for t in range(n - 1, -1, -1):
        cur = ((n - 1 - t) % 2) * k
        if t < n - 1:
            nxt = ((n - 2 - t) % 2) * k
            shift = _row_shift(logf, lo + t + 1, k)
            for j in range(tid, k, T):
                sh[NEXT + j] = (logf[lo + t + 1, j] - shift) + sh[nxt + j]
            cuda.syncthreads()
        for i in range(tid, k, T):
            v = 0.0
            if t < n - 1:
                top = NEG_INF
                for j in range(k):
                    top = max(top, log_trans[i, j] + sh[NEXT + j])
                v = top
                if top > NEG_INF:
                    acc = 0.0
                    for j in range(k):
                        acc += math.exp(log_trans[i, j] + sh[NEXT + j] - top)
                    v = top + math.log(acc)
                if want_xi:
                    ai = post[lo + t, i] - lp  # still log alpha
                    for j in range(k):
                        xi[s, i, j] += w * math.exp(ai + log_trans[i, j] + sh[NEXT + j])
            sh[cur + i] = v
            sh[GAMMA + i] = post[lo + t, i] + v
        cuda.syncthreads()
        # normalised per step, as hmmlearn's; the next step's first barrier
        # comes before GAMMA or NEXT is written again
        norm = _log_sum_exp(sh, GAMMA, k)
        for i in range(tid, k, T):
            g = w * math.exp(sh[GAMMA + i] - norm)
            post[lo + t, i] = g
            if t == 0:
                start_counts[s, i] = g


@cuda.jit(device=True)
def _zero(post, start_counts, s, lo, n, tid, T):
    """Zero posteriors and start counts: a sequence that adds nothing."""
    k = post.shape[1]
    for t in range(n):
        for j in range(tid, k, T):
            post[lo + t, j] = 0.0
    for j in range(tid, k, T):
        start_counts[s, j] = 0.0


@cuda.jit
def viterbi(logf, bounds, log_start, log_trans, back, states, log_prob):
    """The most probable state path of sequence ``blockIdx.x`` into
    ``states`` (n,) int64 and its joint log-probability into ``log_prob[s]``;
    ``back`` (n, k) int32 is scratch. Ties go to the lowest state, as in
    hmmlearn's and the CPU kernel's."""
    s = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    k = logf.shape[1]
    lo = bounds[s]
    n = bounds[s + 1] - lo
    sh = cuda.shared.array(0, dtype=float64)
    shifts = _row_shift(logf, lo, k)  # as in forward_backward
    for j in range(tid, k, T):
        sh[j] = log_start[j] + (logf[lo, j] - shifts)
    cuda.syncthreads()
    for t in range(1, n):
        src = ((t - 1) % 2) * k
        dst = (t % 2) * k
        shift = _row_shift(logf, lo + t, k)
        shifts += shift
        for j in range(tid, k, T):
            best = NEG_INF
            arg = 0
            for i in range(k):
                v = sh[src + i] + log_trans[i, j]
                if v > best:
                    best = v
                    arg = i
            sh[dst + j] = best + (logf[lo + t, j] - shift)
            back[lo + t, j] = arg
        cuda.syncthreads()
    if tid == 0:
        last = ((n - 1) % 2) * k
        best = NEG_INF
        arg = 0
        for j in range(k):
            if sh[last + j] > best:
                best = sh[last + j]
                arg = j
        log_prob[s] = best + shifts
        states[lo + n - 1] = arg
        for t in range(n - 1, 0, -1):
            states[lo + t - 1] = back[lo + t, states[lo + t]]


def signature(name):
    """The argument types with which the backend launches kernel ``name``
    (for ``cuda.compile_ptx``; see ``fastem.kernels.cuda.gaussian.signature``)."""
    from numba import types

    f64, i64, b = types.float64, types.int64, types.boolean

    def arr(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    table = {
        "forward_backward": (arr(f64, 2), arr(i64, 1), arr(f64, 1), arr(f64, 1), arr(f64, 2),
                             b, b, arr(f64, 2), arr(f64, 1), arr(f64, 2), arr(f64, 3)),
        "viterbi": (arr(f64, 2), arr(i64, 1), arr(f64, 1), arr(f64, 2), arr(types.int32, 2),
                    arr(i64, 1), arr(f64, 1)),
    }
    return table[name]


#: Every kernel of this module, by name.
KERNELS = ("forward_backward", "viterbi")
