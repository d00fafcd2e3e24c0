"""Whole fits agree with scikit-learn given identical initial parameters."""

import warnings

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture

sklearn_mixture = pytest.importorskip("sklearn.mixture")


def _sk_init(X, k, covariance_type, seed=0):
    init = sklearn_mixture.GaussianMixture(k, covariance_type=covariance_type, random_state=seed,
                                           max_iter=0).fit(X)
    # float64 copies: scikit-learn factorises float32 initial precisions in float32.
    weights = init.weights_.astype(np.float64)
    return dict(weights_init=weights / weights.sum(),
                means_init=init.means_.astype(np.float64),
                precisions_init=init.precisions_.astype(np.float64))


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_matches_sklearn(covariance_type, dtype):
    X, _ = make_blobs(n=700, d=4, k=3, seed=1, dtype=dtype)
    kw = dict(covariance_type=covariance_type, max_iter=15, tol=0.0,
              **_sk_init(X, 3, covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # scikit-learn computes in the input dtype; compare with its float64 fit
        # of the same values, which fastem computes with dtype=np.float64 (the
        # default float32 compute is compared with float64 in test_float32.py).
        ours = GaussianMixture(3, dtype=np.float64, **kw).fit(X)
        X64 = X.astype(np.float64)
        ref = sklearn_mixture.GaussianMixture(3, **kw).fit(X64)
    assert ours.n_iter_ == ref.n_iter_ == 15
    assert _rel(ours.weights_, ref.weights_) < 1e-10
    assert _rel(ours.means_, ref.means_) < 1e-10
    assert _rel(ours.covariances_, ref.covariances_) < 1e-10
    assert _rel(ours.precisions_, ref.precisions_) < 1e-9
    assert _rel(ours.precisions_cholesky_, ref.precisions_cholesky_) < 1e-9
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-12)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X64))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X64), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X64), rtol=1e-11)
    assert ours.bic(X) == pytest.approx(ref.bic(X64), rel=1e-11)
    assert ours.aic(X) == pytest.approx(ref.aic(X64), rel=1e-11)


def test_convergence_semantics_match_sklearn(covariance_type):
    X, _ = make_blobs(n=500, d=3, k=3, seed=2)
    kw = dict(covariance_type=covariance_type, tol=1e-3, max_iter=200,
              **_sk_init(X, 3, covariance_type, seed=3))
    ours = GaussianMixture(3, **kw).fit(X)
    ref = sklearn_mixture.GaussianMixture(3, **kw).fit(X)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_
    assert len(ours.lower_bounds_) == ours.n_iter_
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-12)


@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++"])
def test_random_inits_draw_sklearns_stream(init_params, covariance_type):
    if init_params in ("random_from_data", "k-means++") and covariance_type == "tied":
        pytest.skip("scikit-learn's tied M-step assumes rows of resp sum to 1, which the "
                    "one-hot starts at k rows break; fastem computes the true M-step")
    X, _ = make_blobs(n=300, d=2, k=2, seed=4)
    kw = dict(covariance_type=covariance_type, init_params=init_params, random_state=7,
              max_iter=0)
    ours = GaussianMixture(2, **kw).fit(X)
    ref = sklearn_mixture.GaussianMixture(2, **kw).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-12)
    # scikit-learn's raw moments leave ~1e-13 of round-off on a singleton's variance.
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-10, atol=1e-12)
    # scikit-learn leaves 'random_from_data' weights unnormalised (sum k/n);
    # fastem normalises them, so only their ratios agree.
    np.testing.assert_allclose(ours.weights_ / ours.weights_.sum(),
                               ref.weights_ / ref.weights_.sum(), rtol=1e-10)


def test_sample_matches_sklearn(covariance_type):
    X, _ = make_blobs(n=300, d=3, k=2, seed=5)
    kw = dict(covariance_type=covariance_type, random_state=11, max_iter=5, tol=0,
              **_sk_init(X, 2, covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(2, **kw).fit(X)
        ref = sklearn_mixture.GaussianMixture(2, **kw).fit(X)
    Xo, yo = ours.sample(50)
    Xr, yr = ref.sample(50)
    np.testing.assert_array_equal(yo, yr)
    np.testing.assert_allclose(Xo, Xr, rtol=1e-8, atol=1e-10)


def test_float32_large_offset_keeps_positive_variances(covariance_type):
    """1e4 + 0.01 * noise in float32: scikit-learn's raw moments cancel (its #30382)."""
    rng = np.random.default_rng(0)
    base = np.concatenate([rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + 3.0])
    X32 = (1e4 + 0.01 * base).astype(np.float32)
    kw = dict(covariance_type=covariance_type, max_iter=20, tol=0, random_state=0,
              reg_covar=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours32 = GaussianMixture(2, **kw).fit(X32)  # computed in float32
        exact32 = GaussianMixture(2, dtype=np.float64, **kw).fit(X32)
        ours64 = GaussianMixture(2, **kw).fit(X32.astype(np.float64))
    cov = ours32.covariances_
    variances = np.diagonal(cov, axis1=-2, axis2=-1) if covariance_type in ("full", "tied") else cov
    assert np.all(variances > 1e-6)  # true variances ~1e-4, far above reg_covar
    # With dtype=np.float64 the fit is the float64 fit of the same values; in
    # float32 compute the variances stay within float32's precision of it.
    np.testing.assert_allclose(exact32.means_, ours64.means_, rtol=1e-12)
    np.testing.assert_allclose(exact32.covariances_, ours64.covariances_, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ours32.means_, ours64.means_, rtol=1e-9)
    np.testing.assert_allclose(cov, ours64.covariances_, rtol=1e-4)
