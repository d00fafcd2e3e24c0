"""float32 input computes in float32 (``fastem._precision``) and gives the
float64 answer to float32's precision; ``dtype=np.float64`` asks for float64."""

import warnings

import numpy as np
import pytest

from conftest import COVARIANCE_TYPES, make_blobs
from fastem import BayesianGaussianMixture, GaussianMixture
from fastem.backends.cpu import CPUBackend


def _overlapping(n=40_000, d=4, seed=0, offset=0.0, scale=1.0):
    """Three overlapping clusters: EM needs tens of iterations, so float32
    round-off has every chance to accumulate."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [1.5] + [0.0] * (d - 1), [0.0, 1.5] + [0.0] * (d - 2)])
    labels = rng.integers(0, 3, size=n)
    X = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.6, 1.2, size=(3, d))[labels]
    return offset + scale * X


def _start(X, k, covariance_type):
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0, max_iter=0).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def _pair(X64, covariance_type, k=3, **kw):
    """The float32 fit of ``X64`` rounded to float32, and the float64 fit of the
    same values, from the same start."""
    X32 = X64.astype(np.float32)
    same = X32.astype(np.float64)
    init = _start(same, k, covariance_type)
    args = dict(covariance_type=covariance_type, tol=0, **init, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("error", category=RuntimeWarning)  # no monotonicity warning
        f32 = GaussianMixture(k, **args).fit(X32)
        f64 = GaussianMixture(k, **args).fit(same)
    return f32, f64, same


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_fit_equals_the_float64_fit(covariance_type):
    f32, f64, X = _pair(_overlapping(), covariance_type, max_iter=40)
    spread = X.std(axis=0).max()
    # After 40 iterations (measured on a Zen 3, AVX2): bound 1-4e-8 relative,
    # means 1-4e-7 of the spread, weights 4e-8-3e-7 relative, covariances
    # 5e-8-3e-7 of their largest entry. Asserted with a margin of about 10:
    np.testing.assert_allclose(f32.lower_bounds_, f64.lower_bounds_, rtol=3e-7)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=0, atol=3e-6 * spread)
    np.testing.assert_allclose(f32.weights_, f64.weights_, rtol=3e-6)
    np.testing.assert_allclose(f32.covariances_, f64.covariances_, rtol=0,
                               atol=3e-6 * np.abs(f64.covariances_).max())
    # ... and the float32 fit was computed in float32, not by the float64 kernels
    assert not np.array_equal(f32.means_, f64.means_)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_large_offset_keeps_its_variances(covariance_type):
    """scikit-learn #30382: ``1e4 + 0.01 * noise`` in float32. Rows are centred in
    float64 before they are narrowed, so the variances (1e-4) survive to far
    better than the 1 % the issue asks for (measured: 1.1-1.4e-7 relative)."""
    X = _overlapping(offset=1e4, scale=0.01)
    f32, f64, _ = _pair(X, covariance_type, max_iter=20)
    var32 = np.diagonal(f32.covariances_, axis1=1, axis2=2) if covariance_type == "full" \
        else f32.covariances_
    var64 = np.diagonal(f64.covariances_, axis1=1, axis2=2) if covariance_type == "full" \
        else f64.covariances_
    np.testing.assert_allclose(var32, var64, rtol=2e-6)
    assert np.all(var32 > 1e-5)


def test_bayesian_mixture_in_float32():
    X = _overlapping(n=20_000, offset=50.0).astype(np.float32)
    kw = dict(n_components=4, random_state=0, max_iter=30, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("error", category=RuntimeWarning)
        f32 = BayesianGaussianMixture(**kw).fit(X)
        f64 = BayesianGaussianMixture(dtype=np.float64, **kw).fit(X)
    np.testing.assert_allclose(f32.lower_bounds_, f64.lower_bounds_, rtol=1e-6)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=0, atol=1e-4)


def test_dtype_float64_computes_float32_input_in_float64():
    """dtype=np.float64 gives the fit of the same values as float64 data, to
    float64 round-off (the kernels compiled for float32 and float64 rows may
    order their reassociated sums differently, so not always to the bit)."""
    X = _overlapping(n=5000).astype(np.float32)
    kw = dict(n_components=3, random_state=0, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(dtype=np.float64, **kw).fit(X)
        b = GaussianMixture(**kw).fit(X.astype(np.float64))
        c = GaussianMixture(dtype="float64", **kw).fit(X)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12, atol=1e-13)
    assert a.means_.tobytes() == c.means_.tobytes()
    assert a.score(X) == pytest.approx(b.score(X.astype(np.float64)), rel=1e-13)


def test_dtype_float32_computes_float64_input_in_float32():
    X = _overlapping(n=5000)
    kw = dict(n_components=3, random_state=0, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(dtype=np.float32, **kw).fit(X)
        exact = GaussianMixture(**kw).fit(X)
    # float64 rows are narrowed after centring, so this is float32 compute of X
    # itself: close to the float64 fit, and not the float64 kernels' bits
    np.testing.assert_allclose(a.means_, exact.means_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.lower_bounds_, exact.lower_bounds_, rtol=1e-6)
    assert not np.array_equal(a.means_, exact.means_)


@pytest.mark.parametrize("value", ["float16", np.int32, "double precision", 32, np.float16, "f8,,"])
def test_bad_dtype_is_a_clear_error(value):
    X = _overlapping(n=200)
    with pytest.raises(ValueError, match="'dtype'"):
        GaussianMixture(2, dtype=value).fit(X)


def test_float32_scores_match_float64():
    X = _overlapping(n=3000, offset=100.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, random_state=0, max_iter=10).fit(X)
    score32, proba32 = gm.score_samples(X), gm.predict_proba(X)
    gm.set_params(dtype=np.float64)  # predictions follow the parameter too
    score64, proba64 = gm.score_samples(X), gm.predict_proba(X)
    assert score32.dtype == np.float64
    np.testing.assert_allclose(score32, score64, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(proba32, proba64, atol=1e-5)
    assert not np.array_equal(score32, score64)


def test_float32_pass_is_deterministic_across_threads():
    import numba

    X = _overlapping(n=30_000).astype(np.float32)
    kw = dict(n_components=3, random_state=0, max_iter=4, tol=0)
    before = numba.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            numba.set_num_threads(1)
            one = GaussianMixture(**kw).fit(X)
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            many = GaussianMixture(**kw).fit(X)
    finally:
        numba.set_num_threads(before)
    assert one.means_.tobytes() == many.means_.tobytes()
    assert one.covariances_.tobytes() == many.covariances_.tobytes()


def test_float32_memmap_and_dask_equal_in_memory(tmp_path, client):
    da = pytest.importorskip("dask.array")
    X = _overlapping(n=12_000, offset=10.0).astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    kw = dict(n_components=3, random_state=0, max_iter=4, tol=0, covariance_type="diag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ram = GaussianMixture(**kw).fit(X)
        mapped = GaussianMixture(**kw).fit(mm)
        dask = GaussianMixture(**kw).fit(da.from_array(X, chunks=(3000, 4)))
    assert ram.means_.tobytes() == mapped.means_.tobytes()
    np.testing.assert_allclose(dask.means_, ram.means_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dask.lower_bounds_, ram.lower_bounds_, rtol=1e-7)


def test_float32_statistics_are_centred_where_the_kernel_computed():
    """The statistics' centres are ``ref + float32(mu - ref)``: the M-step
    reconstructs the means from exactly the point the kernel subtracted."""
    X = _overlapping(n=4000, offset=1e4, scale=0.01).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, random_state=0, max_iter=0).fit(X)
    stats = CPUBackend().accumulate(X, gm._kernel_inputs())
    exact = CPUBackend(np.float64).accumulate(X, gm._kernel_inputs())
    assert stats.round_off > 0 and exact.round_off == 0
    np.testing.assert_allclose(stats.centres, gm.means_, rtol=1e-7)
    np.testing.assert_allclose(stats.centres + stats.first / stats.mass[:, None],
                               exact.centres + exact.first / exact.mass[:, None], rtol=1e-9)


def test_passes_float32_cannot_resolve_run_in_float64():
    """A narrow component far from the others magnifies float32's rounding of
    the rows (``_precision.float32_amplification``): that pass computes in
    float64, so the fit neither loses precision nor warns of a falling bound
    (hypothesis found n=20, d=3, k=3, full, init 'random', seed 0)."""
    from fastem._model import Params
    from fastem._precision import float32_amplification

    X = _overlapping(n=3000).astype(np.float32)
    wide = Params(np.full(2, 0.5), np.array([[0.0] * 4, [1.5] + [0.0] * 3]),
                  np.stack([np.eye(4)] * 2), "full")
    narrow = Params(wide.weights, wide.means, np.stack([np.eye(4), np.eye(4) * 1e3]), "full")
    for params, computed32 in ((wide, True), (narrow, False)):
        inp = params.kernel_inputs()
        amp = float32_amplification(inp.means, inp.factor, inp.means.mean(axis=0))
        stats = CPUBackend().accumulate(X, inp)
        assert (stats.round_off > 0) == computed32 == (amp <= 300)
    X, _ = make_blobs(n=20, d=3, k=3, seed=0, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("error", category=RuntimeWarning)
        GaussianMixture(3, init_params="random", max_iter=30, tol=0, random_state=0).fit(X)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_rows_beyond_float32s_range_are_scored_in_float64(estimator):
    """A row 1e25 standard deviations away: its squared distance overflows
    float32 (-inf), not float64, so that chunk is computed in float64."""
    X = _overlapping(n=2000).astype(np.float32)
    far = X[:4].copy()
    far[1] *= np.float32(1e25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = estimator(n_components=3, random_state=0, max_iter=5).fit(X)
    got, proba = gm.score_samples(far), gm.predict_proba(far)
    gm.set_params(dtype=np.float64)
    want = gm.score_samples(far)
    assert np.all(np.isfinite(got)) and got[1] < -1e40
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(proba, gm.predict_proba(far), atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("shared", [False, True])
def test_a_float32_pass_that_loses_a_row_runs_again_in_float64(shared):
    """A row 1e25 standard deviations from every component overflows float32
    (a log-likelihood of -inf), not float64: the E-step's pass, alone or
    shared with another model, is then the float64 pass."""
    from fastem._model import Params
    from fastem._steps import GaussianPass

    X = _overlapping(n=3000).astype(np.float32)
    X[7] = np.float32(1e25)
    params = Params(np.full(2, 0.5), np.array([[0.0] * 4, [1.5] + [0.0] * 3]),
                    np.stack([np.eye(4)] * 2), "full")
    cpu, inputs = CPUBackend(), params.kernel_inputs()
    assert cpu.accumulate(X, inputs).log_likelihood == -np.inf  # float32 alone loses it
    want = CPUBackend(np.float64).accumulate(X, inputs)
    requests = [GaussianPass(params.kernel_inputs())] * (2 if shared else 1)
    got = (GaussianPass.run_many(cpu, X, None, requests) if shared
           else [requests[0].run(cpu, X, None)])
    for stats in got:
        assert stats.round_off == 0.0 and np.isfinite(stats.log_likelihood)
        assert stats.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)
        np.testing.assert_allclose(stats.second, want.second, rtol=1e-12)
