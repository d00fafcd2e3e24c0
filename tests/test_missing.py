"""Missing values (NaN): EM for incomplete data against the slow NumPy oracle
(``reference.incomplete_em_step``), its invariances, and the refusals."""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import reference as ref
from conftest import (COVARIANCE_TYPES, make_blobs, random_params,
                      same_bits_compiled_afresh_or_cached)
from fastem import BayesianGaussianMixture, GaussianMixture, GaussianMixtureImputer
from fastem._model import Params, m_step, precision_cholesky_from_covariances
from fastem.backends.cpu import CPUBackend, accumulate_missing


def _with_holes(X, fraction, seed=0, empty_rows=()):
    X = np.array(X)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < fraction] = np.nan
    X[list(empty_rows)] = np.nan
    return X


def _precisions(cov, covariance_type):
    return {"full": lambda c: np.linalg.inv(c), "tied": lambda c: np.linalg.inv(c),
            "diag": lambda c: 1.0 / c, "spherical": lambda c: 1.0 / c}[covariance_type](cov)


def _oracle_fit(X, weights, means, cov, covariance_type, n_iter, reg_covar=1e-6, sw=None):
    k, d = means.shape
    for _ in range(n_iter):
        mats = ref.covariance_matrices(cov, covariance_type, k, d)
        ll, weights, means, cov, _ = ref.incomplete_em_step(X, weights, means, mats,
                                                            covariance_type, reg_covar, sw)
    return ll, weights, means, cov


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_pass_matches_oracle(covariance_type, dtype, weighted):
    """The kernel's expected statistics, through the M-step, are the oracle's
    EM step (explicit conditional Gaussians) to 1e-10 in float64 compute,
    rows with nothing observed included; float32 rows' own compute (float32
    for the diagonal layouts) to float32's round-off."""
    X = _with_holes(make_blobs(n=240, d=5, k=3, seed=2)[0], 0.3, seed=1, empty_rows=(4,))
    X = X.astype(dtype)
    weights, means, cov = random_params(3, 5, covariance_type, seed=3)
    sw = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0]) if weighted else None
    params = Params(weights, means, precision_cholesky_from_covariances(cov, covariance_type),
                    covariance_type)
    ll, w2, mu2, c2, _ = ref.incomplete_em_step(X, weights, means, ref.covariance_matrices(
        cov, covariance_type, 3, 5), covariance_type, 1e-6, sw)
    for compute, tol in ((np.float64, 1e-10), (None, 1e-10 if dtype == np.float64 else 1e-5)):
        stats = CPUBackend(compute).accumulate(X, params.kernel_inputs().incomplete(), sw)
        w, mu, c = m_step(stats, covariance_type, 1e-6)
        assert abs(stats.log_likelihood / stats.weight_sum - ll) < tol * abs(ll)
        assert _rel(w, w2) < tol and _rel(mu, mu2) < tol and _rel(c, c2) < tol


@pytest.mark.parametrize("d", [7, 17])
@pytest.mark.parametrize("k", [1, 8, 9, 17])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_pass_matches_oracle_for_any_number_of_components(covariance_type, k, d):
    """The 'full' kernels condition each row on vectors of components: of 8
    for k <= 8, of 16 (two registers) past that, k padded; 'diag' tiles
    features in pairs and transposes rows in 8 x 8 tiles (d = 17: whole tiles
    and a remainder; d = 7: none; 300 rows: a remainder of rows too). Whole
    and partial vectors, and a row with every coordinate missing, agree with
    the oracle: the statistics, and the log-densities of a prediction."""
    X = _with_holes(make_blobs(n=300, d=d, k=3, seed=4)[0], 0.35, seed=5, empty_rows=(7,))
    weights, means, cov = random_params(k, d, covariance_type, seed=k)
    params = Params(weights, means, precision_cholesky_from_covariances(cov, covariance_type),
                    covariance_type)
    inputs = params.kernel_inputs().incomplete()
    stats = CPUBackend().accumulate(X, inputs)
    w, mu, c = m_step(stats, covariance_type, 1e-6)
    mats = ref.covariance_matrices(cov, covariance_type, k, d)
    ll, w2, mu2, c2, _ = ref.incomplete_em_step(X, weights, means, mats, covariance_type, 1e-6)
    assert abs(stats.log_likelihood / stats.weight_sum - ll) < 1e-10 * abs(ll)
    assert _rel(w, w2) < 1e-10 and _rel(mu, mu2) < 1e-10 and _rel(c, c2) < 1e-10
    wlp = np.vstack([chunk for _, _, chunk in
                     CPUBackend().weighted_log_prob_chunks(X, inputs)])
    np.testing.assert_allclose(ref.log_sum_exp(wlp),
                               ref.marginal_log_density(X, weights, means, mats),
                               rtol=1e-10, atol=1e-12)


def test_whole_fit_matches_oracle(covariance_type):
    """Ten iterations of GaussianMixture from a given start agree with ten of
    the oracle's, sample weights included."""
    X = _with_holes(make_blobs(n=300, d=4, k=3, seed=5)[0], 0.2, seed=2)
    weights, means, cov = random_params(3, 4, covariance_type, seed=1)
    sw = np.random.default_rng(1).integers(1, 4, X.shape[0]).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=10, tol=0.0,
                             weights_init=weights, means_init=means,
                             precisions_init=_precisions(cov, covariance_type)).fit(X, sample_weight=sw)
    ll, w, mu, c = _oracle_fit(X, weights, means, cov, covariance_type, 10, sw=sw)
    assert abs(gm.lower_bound_ - ll) < 1e-10 * abs(ll)
    assert _rel(gm.weights_, w) < 1e-10 and _rel(gm.means_, mu) < 1e-10
    assert _rel(gm.covariances_, c) < 1e-10


def test_complete_rows_through_the_incomplete_pass_match_the_complete_pass(covariance_type):
    """With nothing missing the incomplete-data pass is the ordinary E-step."""
    X, _ = make_blobs(n=500, d=4, k=3, seed=4)
    weights, means, cov = random_params(3, 4, covariance_type, seed=2)
    params = Params(weights, means, precision_cholesky_from_covariances(cov, covariance_type),
                    covariance_type)
    a = CPUBackend(np.float64).accumulate(X, params.kernel_inputs())
    b = accumulate_missing(X, params.kernel_inputs().incomplete())
    assert abs(a.log_likelihood - b.log_likelihood) < 1e-11 * abs(a.log_likelihood)
    for x, y in ((a.mass, b.mass), (a.first, b.first), (a.second, b.second)):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-9)


def test_data_without_nan_never_takes_the_incomplete_data_path(monkeypatch):
    """Without NaN, fit and predictions run the complete-data kernels only, so
    their results are the complete-data fit's, bit for bit."""
    from fastem.kernels.cpu import missing

    def refuse(*args):
        raise AssertionError("the incomplete-data kernel ran on complete data")

    X, _ = make_blobs(n=400, d=3, k=2, seed=0)
    before = GaussianMixture(2, random_state=0).fit(X)
    monkeypatch.setattr(missing, "accumulate", refuse)
    monkeypatch.setattr(missing, "log_prob", refuse)
    after = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_array_equal(after.means_, before.means_)
    after.score_samples(X), after.predict_proba(X)
    with pytest.raises(AssertionError, match="incomplete-data kernel"):
        after.score_samples(_with_holes(X, 0.1))


def test_score_samples_is_the_brute_force_marginal(covariance_type):
    X = _with_holes(make_blobs(n=300, d=4, k=3, seed=6)[0], 0.25, seed=3, empty_rows=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    mats = ref.covariance_matrices(gm.covariances_, covariance_type, 3, 4)
    expected = ref.marginal_log_density(X, gm.weights_, gm.means_, mats)
    np.testing.assert_allclose(gm.score_samples(X), expected, rtol=1e-10, atol=1e-12)
    assert abs(gm.score_samples(X)[0]) < 1e-12  # nothing observed: log 1
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[0], gm.weights_, rtol=1e-12)  # the prior
    np.testing.assert_array_equal(gm.predict(X), proba.argmax(axis=1))
    # A complete row scores as it does without the incomplete-data path.
    full = make_blobs(n=5, d=4, k=3, seed=7)[0]
    np.testing.assert_allclose(gm.score_samples(np.r_[full, X[:1]])[:5],
                               gm.score_samples(full), rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.5),
       covariance_type=st.sampled_from(COVARIANCE_TYPES),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_observed_log_likelihood_never_decreases(seed, fraction, covariance_type, dtype):
    """(float32 rows compute in float32 where the model allows: the bound
    may fall by float32's round-off, which the driver allows for.)"""
    X = _with_holes(make_blobs(n=120, d=3, k=2, seed=seed % 50)[0], fraction, seed=seed)
    X = X[~np.isnan(X).all(axis=1)].astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the driver's decrease warning
        warnings.simplefilter("ignore", UserWarning)
        gm = GaussianMixture(2, covariance_type=covariance_type, max_iter=30, tol=0.0,
                             reg_covar=1e-9, random_state=seed).fit(X)
    history = np.array(gm.lower_bounds_)
    slack = 1e-10 if dtype == np.float64 else 1e-6
    if gm.n_reseeds_ == 0:  # a re-seeded component restarts the climb
        assert np.all(np.diff(history) >= -slack * np.abs(history).max())


def test_invariances(covariance_type):
    """Reordered rows and rescaled weights give the same fit."""
    X = _with_holes(make_blobs(n=300, d=3, k=2, seed=8)[0], 0.2, seed=4)
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=20, tol=0.0)
    weights, means, cov = random_params(2, 3, covariance_type, seed=5)
    kw.update(weights_init=weights, means_init=means,
              precisions_init=_precisions(cov, covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(2, **kw).fit(X)
        order = np.random.default_rng(0).permutation(X.shape[0])
        b = GaussianMixture(2, **kw).fit(X[order])
        sw = np.full(X.shape[0], 7.5)
        c = GaussianMixture(2, **kw).fit(X, sample_weight=sw)
    for other in (b, c):
        assert _rel(other.means_, a.means_) < 1e-9
        assert _rel(other.covariances_, a.covariances_) < 1e-9


def test_rows_with_nothing_observed_get_weight_zero():
    X = _with_holes(make_blobs(n=200, d=3, k=2, seed=9)[0], 0.1, seed=5)
    holes = np.r_[X, np.full((3, 3), np.nan)]
    kw = dict(random_state=0, max_iter=20, tol=0.0)
    with pytest.warns(UserWarning, match="3 row"):
        a = GaussianMixture(2, **kw).fit(holes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = GaussianMixture(2, **kw).fit(holes, sample_weight=np.r_[np.ones(200), np.zeros(3)])
    np.testing.assert_array_equal(a.means_, b.means_)


def test_refusals():
    X = _with_holes(make_blobs(n=100, d=3, k=2)[0], 0.2)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2).fit(bad)
    column = X.copy()
    column[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        GaussianMixture(2).fit(column)
    from fastem import PPCA
    with pytest.raises(ValueError, match="NaN"):
        PPCA(1).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(np.nan_to_num(X))
    with pytest.raises(ValueError, match="infinity"):
        gm.score_samples(bad)
    # Predictions take a column with nothing observed (the model is fitted).
    assert np.isfinite(gm.score_samples(column)).all()


@pytest.mark.parametrize("make", [
    lambda: GaussianMixture(3, random_state=0),
    lambda: BayesianGaussianMixture(n_components=3, random_state=0),
    lambda: GaussianMixtureImputer(3, random_state=0),
])
def test_rows_with_nothing_observed_do_not_count_as_samples(make):
    # 5 rows but 2 with an observed value: as scikit-learn refuses 2 rows for
    # 3 components, so do we (the fit used to put two components on one point)
    X = np.array([[1.0, 2.0], [np.nan, np.nan], [2.0, np.nan], [np.nan, np.nan], [np.nan] * 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning about the empty rows
        with pytest.raises(ValueError, match=r"n_samples = 2 rows with an observed value "
                                             r"\(3 of X's 5 have none\)"):
            make().fit(X)
        X[1] = [3.0, 1.0]  # 3 rows observed: fits
        model = make().fit(X)
    assert np.isfinite(getattr(model, "mixture_", model).means_).all()


@pytest.mark.parametrize("covariance_type, d, k", [
    ("diag", 5, 3), ("diag", 17, 3), ("spherical", 5, 3), ("spherical", 17, 3),
    ("full", 5, 3), ("full", 17, 3), ("full", 6, 17), ("tied", 5, 3)])
def test_float32_passes_compute_in_float32(covariance_type, d, k):
    """float32 rows with NaN compute their pass in float32, as complete rows
    do (centred in float64 before they are narrowed, so data far from the
    origin keep their precision): the float64 pass of the same values to
    float32's round-off; ``dtype=np.float64`` gives that float64 pass bit
    for bit; a fit reaches the float64 fit. (d = 17: a diagonal pass
    transposes rows in 16 x 16 tiles of float32, and a remainder; k = 17:
    'full' conditions rows in two vectors of 16 float32 components.)"""
    X = _with_holes(make_blobs(n=4000, d=d, k=3, seed=21)[0], 0.2, seed=22) + 1e3
    X32 = X.astype(np.float32)
    weights, means, cov = random_params(k, d, covariance_type, seed=7)
    inputs = Params(weights, means + 1e3, precision_cholesky_from_covariances(cov, covariance_type),
                    covariance_type).kernel_inputs().incomplete()
    sw = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    narrow = accumulate_missing(X32, inputs, sw)
    wide = accumulate_missing(X32.astype(np.float64), inputs, sw)
    assert narrow.round_off > 0 and wide.round_off == 0  # it did compute in float32
    scale = wide.mass.sum()
    for a, b in ((narrow.mass, wide.mass), (narrow.first, wide.first),
                 (narrow.second, wide.second)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6 * scale)
    assert narrow.log_likelihood == pytest.approx(wide.log_likelihood, rel=1e-6)
    again = accumulate_missing(X32, inputs, sw, np.float64)
    assert again.log_likelihood == wide.log_likelihood
    np.testing.assert_array_equal(again.second, wide.second)
    if k != 3:
        return
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=10, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(3, **kw).fit(X32)
        b = GaussianMixture(3, **kw).fit(X32.astype(np.float64))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-6)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-4)
    np.testing.assert_allclose(a.score_samples(X32), b.score_samples(X32), atol=1e-4)
    assert not np.array_equal(a.means_, b.means_)


def test_a_float32_pass_of_a_model_float32_cannot_resolve_is_float64():
    """A full component whose precision float32 would round too coarsely (the
    complete data's rule, ``_precision.float32_amplification``: here a
    standard deviation of 1 beside one of 1e-3) makes the pass of float32
    rows float64, bit for bit."""
    X = _with_holes(make_blobs(n=500, d=3, k=2, seed=25)[0], 0.2, seed=26)
    cov = np.stack([np.eye(3), np.diag([1.0, 1.0, 1e-6])])
    inputs = Params(np.array([0.5, 0.5]), np.zeros((2, 3)),
                    precision_cholesky_from_covariances(cov, "full"), "full"
                    ).kernel_inputs().incomplete()
    X32 = X.astype(np.float32)
    narrow = accumulate_missing(X32, inputs)
    wide = accumulate_missing(X32.astype(np.float64), inputs)
    assert narrow.round_off == 0.0 and narrow.log_likelihood == wide.log_likelihood
    np.testing.assert_array_equal(narrow.second, wide.second)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_a_float32_row_beyond_float32s_range_is_computed_in_float64(covariance_type):
    """An observed value 1e25 standard deviations away overflows float32's
    squared distance: that chunk's log-densities, and a fit's pass, are
    computed again in float64, so float32 rows give what float64 gives."""
    X = _with_holes(make_blobs(n=500, d=3, k=2, seed=23)[0], 0.2, seed=24)
    X[7] = [1e25, np.nan, 0.0]
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                             max_iter=5).fit(X32.astype(np.float64))
        got = gm.score_samples(X32)
        want = gm.score_samples(X32.astype(np.float64))
        assert np.isfinite(got[7]) and got[7] == pytest.approx(want[7], rel=1e-6)
        fitted = GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                 max_iter=5).fit(X32)
    assert np.isfinite(fitted.means_).all() and np.isfinite(fitted.lower_bound_)


def test_memmap_dask_and_save_load_agree(tmp_path, client):
    da = pytest.importorskip("dask.array")
    X = _with_holes(make_blobs(n=600, d=3, k=2, seed=10)[0], 0.2, seed=7)
    path = tmp_path / "x.npy"
    np.save(path, X)
    kw = dict(random_state=0, max_iter=10, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(2, **kw).fit(X)
        b = GaussianMixture(2, **kw).fit(np.load(path, mmap_mode="r"))
        c = GaussianMixture(2, **kw).fit(da.from_array(X, chunks=(150, 3)))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert _rel(c.means_, a.means_) < 1e-12 and _rel(c.covariances_, a.covariances_) < 1e-12
    lazy = c.score_samples(da.from_array(X, chunks=(150, 3)))
    np.testing.assert_allclose(np.asarray(lazy), a.score_samples(X), rtol=1e-10)
    model = tmp_path / "gm.npz"
    a.save(model)
    loaded = GaussianMixture.load(model)
    np.testing.assert_array_equal(loaded.score_samples(X), a.score_samples(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)).predict(X), a.predict(X))
    # several models in the shared pass (n_init, model selection) from the memory map
    from fastem import GaussianMixtureIC

    kw = dict(random_state=0, max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [GaussianMixtureIC(n_components=[1, 2], covariance_type=["full", "diag"],
                                  **kw).fit(data) for data in (X, np.load(path, mmap_mode="r"))]
        starts = [GaussianMixture(2, n_init=3, **kw).fit(data)
                  for data in (X, np.load(path, mmap_mode="r"))]
    np.testing.assert_array_equal(fits[0].results_["bic"], fits[1].results_["bic"])
    np.testing.assert_array_equal(starts[0].means_, starts[1].means_)


# -- GaussianMixtureImputer ----------------------------------------------------------

def _conditional_expectation(x, gm):
    """E[x_m | x_o] under the fitted mixture, by explicit blocks (one row)."""
    o = ~np.isnan(x)
    mats = ref.covariance_matrices(gm.covariances_, gm.covariance_type, gm.n_components,
                                   x.shape[0])
    if not o.any():
        return gm.weights_ @ gm.means_
    logw = ref.weighted_log_prob(x[o][None], gm.weights_, gm.means_[:, o],
                                 np.stack([c[np.ix_(o, o)] for c in mats]))[0]
    r = np.exp(logw - ref.log_sum_exp(logw[None])[0])
    out = x.copy()
    m = ~o
    out[m] = sum(r[j] * (gm.means_[j, m] + mats[j][np.ix_(m, o)] @ np.linalg.solve(
        mats[j][np.ix_(o, o)], x[o] - gm.means_[j, o])) for j in range(gm.n_components))
    return out


def test_imputer_fills_the_conditional_expectation(covariance_type):
    from fastem import GaussianMixtureImputer

    X = _with_holes(make_blobs(n=300, d=4, k=3, seed=11)[0], 0.2, seed=8, empty_rows=(2,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = GaussianMixtureImputer(3, covariance_type=covariance_type, random_state=0).fit(X)
        filled = imp.transform(X)
    expected = np.stack([_conditional_expectation(x, imp.mixture_) for x in X])
    np.testing.assert_allclose(filled, expected, rtol=1e-10, atol=1e-10)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert filled.dtype == np.float64 and not np.isnan(filled).any()


def test_imputer_recovers_a_correlated_feature():
    """One Gaussian: the fill is the regression on the observed features."""
    from fastem import GaussianMixtureImputer

    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 1))
    X = np.c_[z, 3 * z + 0.05 * rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1))]
    holes = X.copy()
    holes[:200, 1] = np.nan
    filled = GaussianMixtureImputer(random_state=0).fit_transform(holes)
    assert np.abs(filled[:200, 1] - X[:200, 1]).max() < 0.3


def test_imputer_sample_posterior_draws_from_the_conditional():
    from fastem import GaussianMixtureImputer

    rng = np.random.default_rng(1)
    z = rng.normal(size=(4000, 1))
    X = np.c_[z, z + 0.5 * rng.normal(size=(4000, 1))]
    X[::2, 1] = np.nan
    imp = GaussianMixtureImputer(sample_posterior=True, random_state=3).fit(X)
    a = imp.transform(X)
    b = GaussianMixtureImputer(sample_posterior=True, random_state=3).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)  # the seed fixes the draws
    residual = a[::2, 1] - X[::2, 0] * imp.mixture_.covariances_[0, 0, 1] / \
        imp.mixture_.covariances_[0, 0, 0]
    cov = imp.mixture_.covariances_[0]
    conditional_var = cov[1, 1] - cov[0, 1] ** 2 / cov[0, 0]
    assert abs(residual.var() / conditional_var - 1) < 0.1
    assert not np.array_equal(a, imp.transform(X))  # each call draws anew


@pytest.mark.parametrize("k", [3, 9])
def test_imputer_draws_are_the_conditionals_given_the_same_random_numbers(k):
    """Given the uniform and normal numbers the imputer draws (its
    RandomState's, chunk by chunk), each row's sample is exactly the
    oracle's: the component whose cumulative responsibility first exceeds
    ``u``, then its conditional mean plus ``L^-T eps_m`` with ``L L^T =
    P_mm`` (k = 9: the components in two vectors of 8)."""
    from scipy.linalg import solve_triangular

    from fastem.backends.cpu import impute_rows

    X = _with_holes(make_blobs(n=200, d=5, k=3, seed=14)[0], 0.3, seed=15)
    weights, means, cov = random_params(k, 5, "full", seed=k)
    inputs = Params(weights, means, precision_cholesky_from_covariances(cov, "full"),
                    "full").kernel_inputs().incomplete()
    drawn = impute_rows(X, inputs, np.random.RandomState(4))
    rng = np.random.RandomState(4)
    u, eps = rng.random_sample(X.shape[0]), rng.standard_normal(X.shape)
    for i, x in enumerate(X):
        o, m = ~np.isnan(x), np.isnan(x)
        if not m.any():
            np.testing.assert_array_equal(drawn[i], x)
            continue
        logw = (ref.weighted_log_prob(x[o][None], weights, means[:, o],
                                      np.stack([c[np.ix_(o, o)] for c in cov]))[0]
                if o.any() else np.log(weights))
        r = np.exp(logw - logw.max())
        pick = min(int(np.searchsorted(np.cumsum(r / r.sum()), u[i], side="right")), k - 1)
        P = np.linalg.inv(cov[pick])
        mean = means[pick, m] + (cov[pick][np.ix_(m, o)] @ np.linalg.solve(
            cov[pick][np.ix_(o, o)], x[o] - means[pick, o]) if o.any() else 0.0)
        L = np.linalg.cholesky(P[np.ix_(m, m)])
        expected = mean + solve_triangular(L.T, eps[i, m], lower=False)
        np.testing.assert_allclose(drawn[i, m], expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(drawn[i, o], x[o])


def test_imputer_keeps_float32():
    """float32 X comes back float32, as scikit-learn's imputers keep it: the
    float64 imputation of the same values, narrowed (draws too, from the same
    random stream); complete float32 rows come back as they are."""
    X32 = _with_holes(make_blobs(n=300, d=4, k=2, seed=18)[0], 0.2, seed=19).astype(np.float32)
    for sample in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = GaussianMixtureImputer(2, random_state=0, sample_posterior=sample).fit(X32)
        imp._draws = np.random.RandomState(7)  # the same stream for both calls
        narrow = imp.transform(X32)
        imp._draws = np.random.RandomState(7)
        wide = imp.transform(X32.astype(np.float64))
        assert narrow.dtype == np.float32 and wide.dtype == np.float64
        np.testing.assert_array_equal(narrow, wide.astype(np.float32))
        assert not np.isnan(narrow).any()
    complete = np.nan_to_num(X32)
    assert imp.transform(complete).dtype == np.float32
    # a regression that extrapolates past float32's range: an error, not inf
    z = np.random.default_rng(3).normal(size=500)
    steep = np.c_[z, 1e37 * z + 1e35 * np.random.default_rng(4).normal(size=500)]
    steep[:5, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = GaussianMixtureImputer(random_state=0).fit(steep.astype(np.float32))
    far = np.array([[100.0, np.nan]])
    assert imp.transform(far)[0, 1] > 1e39  # float64 holds it
    with pytest.raises(ValueError, match="beyond float32's range"):
        imp.transform(far.astype(np.float32))


def test_imputer_in_a_pipeline_with_feature_names():
    pd = pytest.importorskip("pandas")
    from sklearn.base import clone
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from fastem import GaussianMixtureImputer

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -2.0, 0.5]
    frame = pd.DataFrame(_with_holes(X, 0.1, seed=9), columns=["a", "b", "c"])
    pipe = make_pipeline(GaussianMixtureImputer(random_state=0), LinearRegression())
    pipe.fit(frame, y)
    assert pipe.score(frame, y) > 0.8
    imp = pipe[0]
    assert list(imp.get_feature_names_out()) == ["a", "b", "c"]
    assert list(clone(imp).get_params()) == list(imp.get_params())
    with pytest.raises(ValueError, match="feature_names_in_"):
        imp.get_feature_names_out(["a", "b", "x"])
    with pytest.raises(ValueError, match="sample_posterior"):
        GaussianMixtureImputer(sample_posterior="yes").fit(X)
    from fastem import NotFittedError
    with pytest.raises(NotFittedError):
        GaussianMixtureImputer().transform(X)
    with pytest.raises(ValueError, match="3 features"):
        imp.transform(X[:, :2])


def test_imputer_set_output_as_scikit_learn_transformers_take_it():
    """Pipeline.set_output(transform="pandas") raised AttributeError on the
    imputer, and scikit-learn's global transform_output was ignored."""
    pd = pytest.importorskip("pandas")
    import sklearn
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastem import GaussianMixtureImputer

    X = _with_holes(make_blobs(n=200, d=3, k=2, seed=4)[0], 0.2, seed=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(200) + 1000)
    kw = dict(n_components=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows with nothing observed
        pipe = make_pipeline(GaussianMixtureImputer(**kw), StandardScaler())
        out = pipe.set_output(transform="pandas").fit_transform(frame)
        assert list(out.columns) == ["a", "b", "c"] and out.index[0] == 1000
        plain = GaussianMixtureImputer(**kw).fit_transform(frame)
        assert isinstance(plain, np.ndarray)
        framed = clone(GaussianMixtureImputer(**kw).set_output(transform="pandas"))
        np.testing.assert_array_equal(framed.fit_transform(frame).to_numpy(), plain)
        with sklearn.config_context(transform_output="pandas"):
            assert isinstance(GaussianMixtureImputer(**kw).fit_transform(X), pd.DataFrame)
            assert isinstance(GaussianMixtureImputer(**kw).set_output(transform="default")
                              .fit_transform(X), np.ndarray)
    with pytest.raises(ValueError, match="'transform'"):
        GaussianMixtureImputer().set_output(transform="arrow")


# -- BayesianGaussianMixture: the same pass with the variational expectations ----------

def _effective_gaussians(inputs):
    """``(weights, covariances)`` of the unnormalised Gaussians that kernel
    inputs define: ``log_const_j - 1/2 ||F_j^T (x - m_j)||^2`` is
    ``log w_j + log N(x; m_j, (F_j F_j^T)^-1)``."""
    k, d = inputs.means.shape
    full = inputs.factor.shape[1] == d * d
    F = inputs.factor.reshape(k, d, d) if full else np.stack([np.diag(f) for f in inputs.factor])
    cov = np.linalg.inv(F @ np.swapaxes(F, 1, 2))
    log_det_f = np.log(np.abs(np.diagonal(F, axis1=1, axis2=2))).sum(axis=1)
    return np.exp(inputs.log_const + 0.5 * d * np.log(2 * np.pi) - log_det_f), cov


def test_variational_pass_matches_oracle(covariance_type):
    """The variational E-step's kernel inputs define an unnormalised Gaussian
    per component (mean m_j, precision nu_j W_j, log weight log_const_j +
    d/2 log 2pi - log det F_j); integrating the missing values out of it is
    the oracle's incomplete-data step with those weights and covariances."""
    X = _with_holes(make_blobs(n=200, d=4, k=3, seed=12)[0], 0.25, seed=10)
    X = X[~np.isnan(X).all(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                      random_state=0, max_iter=3).fit(X)
    family = bgm._fitted_family()
    from fastem._missing import scan
    family.missing = scan(X)
    inputs = family.kernel_inputs(bgm._fitted_params())
    assert inputs.missing
    full = inputs.factor.shape[1] == 4 * 4
    weights, cov = _effective_gaussians(inputs)
    stats = CPUBackend().accumulate(X, inputs)
    ll, w2, mu2, c2, mass = ref.incomplete_em_step(X, weights, inputs.means, cov, "full", 0.0)
    assert abs(stats.log_likelihood / stats.weight_sum - ll) < 1e-10 * abs(ll)
    _, mu, c = m_step(stats, "full" if full else "diag", 0.0)
    np.testing.assert_allclose(stats.mass, mass, rtol=1e-10)
    assert _rel(mu, mu2) < 1e-10
    c2 = c2 if full else np.stack([np.diag(m) for m in c2])
    assert _rel(c, c2) < 1e-10


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 0.4),
       covariance_type=st.sampled_from(COVARIANCE_TYPES))
def test_variational_bound_never_decreases(seed, fraction, covariance_type):
    X = _with_holes(make_blobs(n=150, d=3, k=2, seed=seed % 50)[0], fraction, seed=seed)
    X = X[~np.isnan(X).all(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the driver's decrease warning
        warnings.simplefilter("ignore", UserWarning)
        bgm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                      max_iter=40, tol=0.0, reg_covar=1e-9,
                                      random_state=seed).fit(X)
    history = np.array(bgm.lower_bounds_)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history).max())
    assert np.isfinite(bgm.elbo_)
    # scikit-learn's score_samples of the variational mixture: the E-step's
    # expected log-densities; with NaN, their integral over the missing values
    inputs = bgm._kernel_inputs()
    weights, cov = _effective_gaussians(inputs)
    np.testing.assert_allclose(bgm.score_samples(X),
                               ref.marginal_log_density(X, weights, inputs.means, cov),
                               rtol=1e-9)


def test_model_selection_on_incomplete_data():
    """GaussianMixtureIC fits every candidate to the incomplete data in
    shared passes: each is the GaussianMixture fitted alone, and the
    criteria use the observed data's log-likelihood."""
    from fastem import GaussianMixtureIC

    X = _with_holes(make_blobs(n=400, d=3, k=2, seed=13)[0], 0.15, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ic = GaussianMixtureIC(n_components=[1, 2, 3], covariance_type=["full", "diag"],
                               random_state=0).fit(X)
        alone = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    assert ic.n_components_ == 2
    index = [i for i, (k, t) in enumerate(zip(ic.results_["n_components"],
                                               ic.results_["covariance_type"]))
             if k == 2 and t == "diag"][0]
    est = ic.estimators_[index]
    assert _rel(est.means_, alone.means_) < 1e-12
    assert ic.results_["bic"][index] == pytest.approx(alone.bic(X), rel=1e-10)
    np.testing.assert_allclose(ic.score_samples(X), ic.best_estimator_.score_samples(X))


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_stepwise_em_on_incomplete_batches(cls):
    """partial_fit and batch_size integrate each batch's missing values out;
    a complete batch takes the complete-data pass; the streamed model lands
    where the batch fit does."""
    X, _ = make_blobs(n=3000, d=3, k=2, seed=14, spread=6.0)
    holes = _with_holes(X, 0.2, seed=12)
    holes = holes[~np.isnan(holes).all(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = cls(n_components=2, random_state=0).fit(holes)
        streamed = cls(n_components=2, random_state=0)
        for part in np.array_split(holes, 10):
            streamed.partial_fit(part)
        streamed.partial_fit(X[:300])  # a complete batch
        blocks = cls(n_components=2, random_state=0, batch_size=500).fit(holes)
    order = np.argsort(batch.means_[:, 0])
    for other in (streamed, blocks):
        assert np.all(np.isfinite(other.means_))
        np.testing.assert_allclose(other.means_[np.argsort(other.means_[:, 0])],
                                   batch.means_[order], atol=0.3)
    labels = blocks.fit_predict(holes)
    np.testing.assert_array_equal(labels, blocks.predict(holes))


def test_float32_rows_widened_a_few_parts_at_a_time_give_the_float64_pass():
    """More rows than one chunk: float32 input computed in float64 is widened
    part group by part group, and the pass is the float64 one of the same
    values, bit for bit."""
    from fastem import config

    X = _with_holes(make_blobs(n=2 * config.CHUNK_ROWS + 999, d=3, k=2, seed=15)[0], 0.1,
                    seed=13).astype(np.float32)
    weights, means, cov = random_params(2, 3, "full", seed=6)
    params = Params(weights, means, precision_cholesky_from_covariances(cov, "full"), "full")
    inputs = params.kernel_inputs().incomplete()
    sw = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    a = accumulate_missing(X, inputs, sw, np.float64)
    b = accumulate_missing(X.astype(np.float64), inputs, sw)
    assert a.log_likelihood == b.log_likelihood
    for x, y in ((a.mass, b.mass), (a.first, b.first), (a.second, b.second)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype, compute", [(np.float64, None), (np.float32, None),
                                            (np.float32, np.float64)])
def test_one_shared_pass_gives_each_model_the_bits_of_its_own(monkeypatch, dtype, compute):
    """Several models over incomplete data (GaussianMixtureIC, n_init) share
    one pass, a window of rows at a time: each model's statistics are the
    bits of its own pass, also when the models' row parts differ (a model
    with large statistics gets fewer, longer parts), and float32 rows are
    widened once per window, not once per model."""
    from fastem import config
    from fastem.backends import cpu

    monkeypatch.setattr(config, "CHUNK_ROWS", 1500)
    monkeypatch.setattr(config, "PARTIAL_STATS_BYTES", 100_000)
    X = _with_holes(make_blobs(n=9000, d=5, k=3, seed=16)[0], 0.2, seed=17).astype(dtype)
    sw = np.random.default_rng(5).uniform(0.5, 2.0, X.shape[0])
    models = []
    for seed, (k, ctype) in enumerate([(3, "full"), (9, "full"), (2, "diag"), (4, "spherical"),
                                       (3, "tied"), (1, "diag")]):
        weights, means, cov = random_params(k, 5, ctype, seed=seed)
        models.append(Params(weights, means, precision_cholesky_from_covariances(cov, ctype),
                             ctype).kernel_inputs().incomplete())
    parts = [cpu.partial_stats(X.shape[0], m.n_components, 5, m.layout)[0].shape[0]
             for m in models]
    assert len(set(parts)) > 1  # row parts that differ between models

    widenings = []
    real = cpu.widened
    monkeypatch.setattr(cpu, "widened", lambda rows: widenings.append(len(rows)) or real(rows))
    shared = CPUBackend(compute).accumulate_many(X, models, sw)
    shared_widenings = list(widenings)
    del widenings[:]
    for model, got in zip(models, shared):
        alone = accumulate_missing(X, model, sw, compute)
        assert got.log_likelihood == alone.log_likelihood
        assert got.round_off == alone.round_off
        for x, y in ((got.mass, alone.mass), (got.first, alone.first), (got.second, alone.second),
                     (got.centres, alone.centres)):
            np.testing.assert_array_equal(x, y)
    if dtype == np.float32 and compute == np.float64:
        # each row widened once by the shared pass (a few twice: a part of one
        # model past a window's end), once per model by the models' own passes
        assert sum(shared_widenings) < 1.2 * X.shape[0]
        assert sum(widenings) == len(models) * X.shape[0]
    else:  # float64 rows, or float32 rows computed in float32
        assert not shared_widenings and not widenings
        assert all((got.round_off > 0) == (dtype == np.float32) for got in shared)


_BITS_SCRIPT = """
import hashlib, warnings
import numpy as np
from fastem import GaussianMixture
rng = np.random.default_rng(0)
d = 17  # the diagonal pass transposes rows in tiles of 8 (16 in float32), and the rest
X = rng.normal(size=(3000, d)) + rng.integers(0, 3, (3000, 1)) * 4.0
X[rng.random(X.shape) < 0.25] = np.nan
h = hashlib.sha256()
# 'full' with 3 components and with 9: vectors of 8 components and of 16, a driver each
for ctype, k in (("full", 3), ("full", 9), ("diag", 3)):
    prec = np.stack([np.eye(d)] * k) if ctype == "full" else np.ones((k, d))
    gm = GaussianMixture(k, covariance_type=ctype, max_iter=3, tol=0.0,
                         weights_init=np.ones(k) / k,
                         means_init=np.arange(k * d).reshape(k, d) / (3.0 * k), precisions_init=prec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    h.update(gm.means_.tobytes() + gm.covariances_.tobytes() + gm.score_samples(X).tobytes())
    X32 = X.astype(np.float32)  # float32 rows compute their pass in float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X32)
    h.update(gm.means_.tobytes() + gm.score_samples(X32).tobytes())
print(h.hexdigest())
"""


def test_compiled_afresh_or_loaded_from_the_cache_the_same_bits(tmp_path):
    """The incomplete-data kernels fit the same bits in a process compiling
    them into an empty cache, in one loading them from it, and on 2 threads
    (their helpers are inlined by LLVM and never cached, as the
    complete-data kernels')."""
    same_bits_compiled_afresh_or_cached(_BITS_SCRIPT, tmp_path)

def test_imputing_from_a_row_beyond_float64s_range_is_an_error():
    """Observed values so far from every component that no density reaches
    them in float64 give no responsibilities to impute with: an error, not a
    0 in place of the missing value."""
    X, _ = make_blobs(n=600, d=3, k=2, seed=4)
    imputer = GaussianMixtureImputer(random_state=0).fit(X)
    rows = X[:2].copy()
    rows[:, 1] = np.nan
    assert np.all(np.isfinite(imputer.transform(rows)))
    rows[0, 0] = 1e200
    with pytest.raises(ValueError, match="overflow float64"):
        imputer.transform(rows)
