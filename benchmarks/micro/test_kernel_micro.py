"""Kernel micro-benchmarks (pytest-benchmark); not part of the default test run.

    python -m pytest benchmarks/micro --benchmark-only

Each benchmark times one kernel on 100,000 points after a warm-up call
(so Numba compilation is excluded).
"""

import numpy as np
import pytest

from fastem._model import Params, m_step, precision_cholesky_from_covariances
from fastem.backends.cpu import CPUBackend
from fastem.config import BLOCK_ROWS
from fastem.kernels.cpu import gaussian
from fastem.kernels.cpu._jit import from_python

N = 100_000


@pytest.fixture(params=[("full", 16, 16), ("diag", 32, 64)], ids=lambda p: f"{p[0]}-d{p[1]}-k{p[2]}")
def problem(request):
    ctype, d, k = request.param
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, d))
    cov = np.repeat(np.eye(d)[None], k, axis=0) if ctype == "full" else np.ones((k, d))
    params = Params(np.full(k, 1 / k), rng.normal(size=(k, d)),
                    precision_cholesky_from_covariances(cov, ctype), ctype).kernel_inputs()
    return X, params


def test_log_density(benchmark, problem):
    X, params = problem
    be = CPUBackend()
    run = lambda: [c for _, _, c in be.weighted_log_prob_chunks(X, params)]  # noqa: E731
    run()
    benchmark(run)


def test_fused_pass(benchmark, problem):
    X, params = problem
    be = CPUBackend()
    be.accumulate(X, params)
    benchmark(be.accumulate, X, params)


def test_responsibilities(benchmark):
    """Log-sum-exp + responsibilities of 100,000 points x 16 components (blocks of B)."""
    k = 16
    logp = np.random.default_rng(1).normal(scale=20, size=(N // BLOCK_ROWS, k, BLOCK_ROWS))
    wb = np.ones(BLOCK_ROWS)
    responsibilities = from_python(gaussian.block_responsibilities)

    def run():
        mx, s = np.empty(BLOCK_ROWS), np.empty(BLOCK_ROWS)
        work = logp.copy()
        return sum(responsibilities(work[b], wb, mx, s)
                   for b in range(work.shape[0]))

    run()
    benchmark(run)


def test_m_step(benchmark, problem):
    X, params = problem
    stats = CPUBackend().accumulate(X, params)
    benchmark(m_step, stats, params.covariance_type, 1e-6)


def test_lloyd_pass(benchmark, problem):
    """One Lloyd assignment pass over all rows (one model, no second moments)."""
    from fastem import kmeans as km

    X, params = problem
    request = km.AssignPass(params.means)
    be = CPUBackend()
    request.run(be, X, None)
    benchmark(request.run, be, X, None)
