import os

# scikit-learn's estimator checks run check_array_api_input only when SciPy's
# array-API mode is on, and SciPy reads this once, at import: set it before
# anything imports SciPy (scikit-learn's own test suite runs this way).
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# pytest-xdist runs one worker per core (-n auto). Libraries that start a
# thread per core in each worker (PyTorch's and OpenBLAS's OpenMP pools, whose
# idle threads spin) would put two threads on every core and spend the other
# worker's time spinning: the linear VAE's test took 54 s in the suite against
# 9 s alone. fastem's own threads are not OpenMP's and are left as they are.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def make_blobs(n=600, d=3, k=3, seed=0, spread=4.0, dtype=np.float64):
    """Well-separated Gaussian blobs, (n, d) of ``dtype``, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(0, k, size=n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    X = centres[labels] + rng.normal(size=(n, d)) * scales[labels]
    return X.astype(dtype), labels


def random_params(k, d, covariance_type, seed=0):
    """Random valid (weights, means, covariances) in the layout of ``covariance_type``."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k) * 2)
    means = rng.normal(scale=3.0, size=(k, d))
    A = rng.normal(size=(k, d, d)) / np.sqrt(d)
    full = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.3, 2.0, size=(k, d)),
           "spherical": rng.uniform(0.3, 2.0, size=k)}[covariance_type]
    return weights, means, cov


@pytest.fixture(params=COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


@pytest.fixture(scope="session")
def client():
    """A distributed LocalCluster of two single-threaded worker processes."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def same_bits_compiled_afresh_or_cached(script, cache_dir):
    """Run ``script`` (it prints a digest of its results) in a process that
    compiles into the empty ``cache_dir``, one that loads from it, and one
    on 2 threads; assert one digest. (A kernel's helpers are inlined by LLVM
    and never cached, so the cache's state must change no bit.)"""
    import os
    import subprocess
    import sys

    digests = []
    for threads in ("1", "1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, NUMBA_CACHE_DIR=str(cache_dir))
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, check=True)
        digests.append(out.stdout.strip())
    assert any(cache_dir.rglob("*.nbi"))
    assert len(set(digests)) == 1, digests
