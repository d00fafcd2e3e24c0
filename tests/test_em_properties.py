"""EM theory and determinism: monotone lower bound, thread-count independence,
sample weights as repeated rows."""

import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import COVARIANCE_TYPES, make_blobs
from fastem import GaussianMixture, config
from fastem._model import regularisation_loss


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(n=20, d=2, k=4, covariance_type="full", init_params="random", dtype=np.float64,
         weighted=True, seed=2373)
@given(n=st.integers(20, 400), d=st.integers(1, 5), k=st.integers(1, 5),
       covariance_type=st.sampled_from(COVARIANCE_TYPES),
       init_params=st.sampled_from(["random", "random_from_data", "kmeans", "k-means++"]),
       dtype=st.sampled_from([np.float32, np.float64]),
       weighted=st.booleans(), seed=st.integers(0, 2**16))
def test_lower_bound_never_decreases(n, d, k, covariance_type, init_params, dtype, weighted, seed):
    X, _ = make_blobs(n=n, d=d, k=max(k, 2), seed=seed, dtype=dtype)
    sw = np.random.default_rng(seed).uniform(0.1, 3.0, size=n) if weighted else None
    gm = GaussianMixture(k, covariance_type=covariance_type, init_params=init_params,
                         max_iter=30, tol=0.0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the fit's own monotonicity warning
        warnings.simplefilter("ignore", UserWarning)
        gm.fit(X, sample_weight=sw)
    lb = np.asarray(gm.lower_bounds_)
    assert np.all(np.isfinite(lb))
    if gm.n_reseeds_ == 0:
        slack = 1e-9 if dtype == np.float64 else config.FLOAT32_BOUND_ROUND_OFF
        # reg_covar makes the M-step fall short of the maximum by up to this
        # much (the driver's own check above allows it per iteration; a
        # component collapsing onto reg_covar, as hypothesis found with n=20,
        # k=4, seed=2373, costs 6e-8 near convergence)
        allowance = regularisation_loss(gm.weights_, gm.precisions_cholesky_, covariance_type,
                                        gm.reg_covar, d)
        assert np.all(np.diff(lb) >= -slack * np.maximum(1.0, np.abs(lb[:-1])) - allowance)
    for a in (gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_):
        assert np.all(np.isfinite(a))


def _fit_bytes(X, covariance_type):
    gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0, max_iter=10, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return gm.means_.tobytes() + gm.covariances_.tobytes() + gm.weights_.tobytes()


def test_bit_identical_for_any_thread_count(covariance_type):
    X, _ = make_blobs(n=20_000, d=5, k=4, seed=3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _fit_bytes(X, covariance_type)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _fit_bytes(X, covariance_type)
    finally:
        numba.set_num_threads(before)
    assert one == many


_SCRIPT = """
import hashlib, sys, warnings, numpy as np
from fastem import GaussianMixture
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(size=(9000, 3)), rng.normal(size=(9000, 3)) + 4]).astype(sys.argv[1])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gm = GaussianMixture(3, covariance_type=sys.argv[2], random_state=1, max_iter=8, tol=0).fit(X)
print(hashlib.sha256(gm.means_.tobytes() + gm.covariances_.tobytes()
                     + gm.score_samples(X).tobytes()).hexdigest())
"""


@pytest.mark.parametrize("dtype, cov", [("float32", "full"), ("float64", "diag")])
def test_bit_identical_across_numba_num_threads_processes(tmp_path, dtype, cov):
    """The same fit in new processes: compiled afresh, then loaded from Numba's
    on-disk cache (once LLVM's own vectorisation of the statistics' sums
    differed between the two; the per-block helpers are now inlined by LLVM
    and never cached, so a driver loaded from the cache is the one compiled),
    on 1 and on 2 threads."""
    digests = []
    for threads in ("1", "1", "2"):  # the first run compiles into an empty cache
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, NUMBA_CACHE_DIR=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", _SCRIPT, dtype, cov], env=env,
                             capture_output=True, text=True, check=True)
        digests.append(out.stdout.strip())
    assert any(tmp_path.rglob("*.nbi"))  # the later runs had a cache to load
    assert len(set(digests)) == 1, digests


def _given_init(X, k, covariance_type, seed=0):
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=seed, max_iter=0).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def test_integer_weights_equal_repeated_rows(covariance_type):
    X, _ = make_blobs(n=300, d=3, k=3, seed=5)
    counts = np.random.default_rng(5).integers(0, 4, size=300)
    X_rep = np.repeat(X, counts, axis=0)
    kw = dict(covariance_type=covariance_type, max_iter=12, tol=0, **_given_init(X, 3, covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = GaussianMixture(3, **kw).fit(X, sample_weight=counts)
        repeated = GaussianMixture(3, **kw).fit(X_rep)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-10)
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-11)
    assert weighted.score(X, sample_weight=counts) == pytest.approx(repeated.score(X_rep), rel=1e-11)
    # Row order does not matter either (scikit-learn's weight check shuffles
    # the weighted rows; from the same start the fit is the same).
    order = np.random.default_rng(6).permutation(len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shuffled = GaussianMixture(3, **kw).fit(X[order], sample_weight=counts[order])
    np.testing.assert_allclose(shuffled.means_, repeated.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shuffled.predict_proba(X), repeated.predict_proba(X), rtol=1e-7,
                               atol=1e-9)


def test_weights_scale_invariant_and_zero_weight_rows_ignored():
    X, _ = make_blobs(n=400, d=2, k=2, seed=6)
    sw = np.random.default_rng(6).uniform(0, 1, size=400)
    sw[::7] = 0.0
    kw = dict(max_iter=10, tol=0, **_given_init(X, 2, "full"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(2, **kw).fit(X, sample_weight=sw)
        b = GaussianMixture(2, **kw).fit(X, sample_weight=sw * 1000.0)
        c = GaussianMixture(2, **kw).fit(X[sw > 0], sample_weight=sw[sw > 0])
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.means_, c.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, c.covariances_, rtol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(30, 300), d=st.integers(1, 4), k=st.integers(1, 4),
       covariance_type=st.sampled_from(COVARIANCE_TYPES),
       init_params=st.sampled_from(["random", "random_from_data", "kmeans", "k-means++"]),
       log10_scale=st.floats(-30, 30), seed=st.integers(0, 2**16))
def test_rescaled_weights_fit_the_same_model(n, d, k, covariance_type, init_params, log10_scale,
                                              seed):
    """Multiplying every sample weight by a constant changes nothing: the
    M-step's guard against empty components is in units of the mean weight
    (an absolute 10 eps against weights of 1e-20 gave a covariance of 0.0014
    instead of 1.01)."""
    X, _ = make_blobs(n=n, d=d, k=max(k, 2), seed=seed)
    w = np.random.default_rng(seed).uniform(0.1, 3.0, size=n)
    fits = []
    for weights in (w, w * 10.0 ** log10_scale):
        gm = GaussianMixture(k, covariance_type=covariance_type, init_params=init_params,
                             max_iter=10, tol=0.0, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(gm.fit(X, sample_weight=weights))
    a, b = fits
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-9)


def test_tiny_weights_fit_the_unweighted_model():
    """The adversarial battery's case: weights of 1e-20 on two clusters."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = GaussianMixture(2, random_state=0).fit(X)
        tiny = GaussianMixture(2, random_state=0).fit(X, sample_weight=np.full(600, 1e-20))
    np.testing.assert_allclose(tiny.covariances_, plain.covariances_, rtol=1e-9)
    assert tiny.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(30, 300), d=st.integers(1, 4), k=st.integers(1, 4),
       covariance_type=st.sampled_from(COVARIANCE_TYPES),
       dtype=st.sampled_from([np.float32, np.float64]), weighted=st.booleans(),
       backend=st.sampled_from(["numpy", "dask"]), seed=st.integers(0, 2**16))
def test_reordered_rows_from_the_same_start_fit_the_same_model(n, d, k, covariance_type, dtype,
                                                               weighted, backend, seed):
    X, _ = make_blobs(n=n, d=d, k=max(k, 2), seed=seed, dtype=dtype)
    sw = np.random.default_rng(seed).uniform(0.1, 3.0, size=n) if weighted else None
    order = np.random.default_rng(seed + 1).permutation(n)
    kw = dict(covariance_type=covariance_type, max_iter=8, tol=0,
              **_given_init(X.astype(np.float64), k, covariance_type, seed))
    as_input = np.asarray
    if backend == "dask":  # in chunks, on dask's threaded scheduler
        da = pytest.importorskip("dask.array")
        as_input = lambda rows: da.from_array(rows, chunks=(max(8, n // 3), d))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(k, **kw).fit(X, sample_weight=sw)
        b = GaussianMixture(k, **kw).fit(as_input(X[order]),
                                         sample_weight=None if sw is None else sw[order])
    rtol = 1e-8 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(b.means_, a.means_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=rtol)


# -- warnings only for what is wrong (#24 item 15) --------------------------------

def test_warm_start_on_new_rows_does_not_report_a_decrease():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 6]
    gm = GaussianMixture(2, random_state=0, warm_start=True).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        gm.fit(3 * rng.normal(size=(500, 3)) + 1)  # a worse bound, on other rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reg_covar_near_the_variances_is_not_reported_as_instability(dtype):
    """Variances of 1e-4 beside reg_covar=1e-6: adding reg_covar costs the
    M-step ~1e-4 nats per row, so EM's bound may fall by that much; only a fall
    beyond that (and round-off) is a defect worth a warning."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = (1e4 + 0.01 * rng.normal(size=(600, 1))).astype(dtype)
        for covariance_type in COVARIANCE_TYPES:
            gm = GaussianMixture(4, covariance_type=covariance_type, random_state=seed, tol=1e-10,
                                 max_iter=200, dtype=dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                gm.fit(X)


def test_a_real_decrease_still_warns(monkeypatch):
    """The monotonicity check is live: an M-step that moves the means away
    from their maximum is reported."""
    from fastem.mixture import gaussian

    X, _ = make_blobs(n=300, d=2, k=2, seed=0)
    real = gaussian.GaussianFamily.m_step

    def spoiled(self, stats, draw_rows):
        params, reseeded = real(self, stats, draw_rows)
        params.means = params.means + 0.5 * np.sign(params.means)
        return params, reseeded

    monkeypatch.setattr(gaussian.GaussianFamily, "m_step", spoiled)
    with pytest.warns(RuntimeWarning, match="lower bound decreased"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the ConvergenceWarning
            GaussianMixture(2, random_state=0, max_iter=20, tol=0).fit(X)


def test_kmeans_restarts_tied_up_to_round_off_keep_the_first():
    """Three restarts reach one partition in different orders; weights times
    10 tipped their round-off tie to another restart, and the fit came out in
    another component order (hypothesis: n=239, d=3, k=2, seed 5963)."""
    X, _ = make_blobs(n=239, d=3, k=2, seed=5963)
    w = np.random.default_rng(5963).uniform(0.1, 3.0, size=239)
    a, b = (GaussianMixture(2, init_params="kmeans", max_iter=2, tol=0.0, random_state=5963)
            .fit(X, sample_weight=weights) for weights in (w, 10.0 * w))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-8)
