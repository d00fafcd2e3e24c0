"""BayesianGaussianMixture: agreement with scikit-learn, weights, backends,
the monotone bound, and bad priors."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import COVARIANCE_TYPES, make_blobs
from fastem import BayesianGaussianMixture
from fastem import _em
from fastem.backends.cpu import CPUBackend

sklearn = pytest.importorskip("sklearn")
from sklearn import datasets  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture as SkBGM  # noqa: E402

PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_",
          "degrees_of_freedom_", "mean_prior_", "covariance_prior_"]


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _fit_both(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BayesianGaussianMixture(**kw).fit(X), SkBGM(**kw).fit(X)


def _assert_agree(ours, ref, rtol=1e-8):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    for name in FITTED:
        assert _rel(getattr(ours, name), getattr(ref, name)) < rtol, name
    ours_wc, ref_wc = ours.weight_concentration_, ref.weight_concentration_
    if isinstance(ref_wc, tuple):
        for a, b in zip(ours_wc, ref_wc):
            assert _rel(a, b) < rtol
    else:
        assert _rel(ours_wc, ref_wc) < rtol
    # scikit-learn's 'tied' bounds come out as 1-element arrays; fastem's are floats.
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(ref.lower_bound_)[0]), rel=rtol)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=rtol)
    for name in ("weight_concentration_prior_", "mean_precision_prior_",
                 "degrees_of_freedom_prior_"):
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-12)


_BLOBS, _ = make_blobs(n=900, d=3, k=3, seed=3, spread=4.0)
DATA = {
    "iris": lambda: datasets.load_iris().data,
    "wine": lambda: datasets.load_wine().data,
    "blobs, 8 components for 3 clusters": lambda: _BLOBS,
}


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("init_params", ["random", "k-means++", "random_from_data"])
def test_agrees_with_sklearn(data, prior_type, init_params, covariance_type):
    if init_params in ("random_from_data", "k-means++") and covariance_type == "tied":
        pytest.skip("scikit-learn's tied M-step assumes rows of resp sum to 1, which the "
                    "one-hot starts at k rows break; fastem computes the true M-step")
    X = DATA[data]()
    k = 8 if data.startswith("blobs") else 5
    ours, ref = _fit_both(X, n_components=k, covariance_type=covariance_type,
                          weight_concentration_prior_type=prior_type, init_params=init_params,
                          random_state=0, max_iter=60)
    _assert_agree(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_agrees_with_sklearn_on_digits(prior_type, covariance_type):
    X = datasets.load_digits().data
    ours, ref = _fit_both(X, n_components=12, covariance_type=covariance_type,
                          weight_concentration_prior_type=prior_type, init_params="random",
                          random_state=1, max_iter=25, reg_covar=1e-3)
    _assert_agree(ours, ref)


def test_given_priors_agree_with_sklearn(covariance_type):
    X = _BLOBS
    d = X.shape[1]
    cov_prior = {"full": np.eye(d) * 2.0, "tied": np.eye(d) * 2.0, "diag": np.full(d, 2.0),
                 "spherical": 2.0}[covariance_type]
    ours, ref = _fit_both(X, n_components=4, covariance_type=covariance_type,
                          init_params="random", random_state=2, max_iter=40,
                          weight_concentration_prior=0.3, mean_precision_prior=0.5,
                          mean_prior=np.ones(d), degrees_of_freedom_prior=d + 2.5,
                          covariance_prior=cov_prior)
    _assert_agree(ours, ref)


def test_n_init_and_warm_start_agree_with_sklearn():
    X = _BLOBS
    ours, ref = _fit_both(X, n_components=5, n_init=3, init_params="random", random_state=4,
                          max_iter=30)
    _assert_agree(ours, ref)
    kw = dict(n_components=5, init_params="random", random_state=4, max_iter=3, warm_start=True)
    ours = BayesianGaussianMixture(**kw)
    ref = SkBGM(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            ours.fit(X)
            ref.fit(X)
    _assert_agree(ours, ref)


def _family_and_start(X, sample_weight, covariance_type, prior_type):
    """The variational family of a fit of X, and a start drawn without weights."""
    est = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                  weight_concentration_prior_type=prior_type,
                                  init_params="random", random_state=0)
    backend = CPUBackend()
    data = backend.prepare(X)
    family = est._family(data, backend, sample_weight, X.shape[1])
    return family, data, backend, est


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type, prior_type):
    X, _ = make_blobs(n=240, d=3, k=3, seed=8)
    counts = np.random.default_rng(8).integers(0, 4, size=len(X))
    X_rep = np.repeat(X, counts, axis=0)
    fam_w, data_w, backend, est = _family_and_start(X, counts.astype(float), covariance_type,
                                                    prior_type)
    fam_r, data_r, _, _ = _family_and_start(X_rep, None, covariance_type, prior_type)
    # The priors from the data: weighted moments equal those of the repeated rows.
    np.testing.assert_allclose(fam_w.priors.mean, fam_r.priors.mean, rtol=1e-12)
    np.testing.assert_allclose(fam_w.priors.covariance, fam_r.priors.covariance, rtol=1e-11)
    start = fam_r.initialize(data_r, backend, None, np.random.RandomState(0))
    settings_ = _em.LoopSettings(n_init=1, max_iter=15, tol=0.0)
    rng = np.random.RandomState(1)
    weighted = _em.fit(fam_w, data_w, backend, counts.astype(float), rng, settings_, (start, -np.inf))
    repeated = _em.fit(fam_r, data_r, backend, None, rng, settings_, (start, -np.inf))
    np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-10)
    np.testing.assert_allclose(weighted.params.means, repeated.params.means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.params.covariances, repeated.params.covariances,
                               rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(30, 200), d=st.integers(1, 4), k=st.integers(1, 6),
       covariance_type=st.sampled_from(COVARIANCE_TYPES), prior_type=st.sampled_from(PRIOR_TYPES),
       concentration=st.sampled_from([None, 1e-3, 1.0, 100.0]),
       weighted=st.booleans(), seed=st.integers(0, 1000))
def test_bound_never_decreases(n, d, k, covariance_type, prior_type, concentration, weighted, seed):
    X, _ = make_blobs(n=n, d=d, k=3, seed=seed)
    sw = np.random.default_rng(seed).uniform(0.1, 3.0, size=n) if weighted else None
    gm = BayesianGaussianMixture(n_components=k, covariance_type=covariance_type,
                                 weight_concentration_prior_type=prior_type,
                                 weight_concentration_prior=concentration, init_params="random",
                                 random_state=seed, max_iter=40, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)  # the driver's monotonicity warning
        gm.fit(X, sample_weight=sw)
    bounds = np.asarray(gm.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    assert np.all(np.diff(bounds) >= -1e-9 * np.maximum(1.0, np.abs(bounds[:-1])))
    assert np.isclose(gm.weights_.sum(), 1.0) and np.all(np.isfinite(gm.covariances_))


@pytest.mark.parametrize("kwargs, match", [
    (dict(weight_concentration_prior_type="beta"), "weight_concentration_prior_type"),
    (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
    (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
    (dict(mean_precision_prior=0.0), "mean_precision_prior"),
    (dict(mean_prior=[0.0, 1.0]), "mean_prior"),
    (dict(mean_prior=[0.0, np.nan, 1.0]), "mean_prior"),
    (dict(degrees_of_freedom_prior=1.5), "degrees_of_freedom_prior' should be greater than 2"),
    (dict(covariance_prior=np.ones((3, 3))), "positive-definite"),
    (dict(covariance_prior=np.eye(2)), "shape"),
    (dict(covariance_type="diag", covariance_prior=np.array([1.0, -1.0, 1.0])), "positive"),
    (dict(covariance_type="spherical", covariance_prior=-2.0), "covariance_prior"),
    (dict(n_components=0), "n_components"),
    (dict(init_params="nope"), "init_params"),
])
def test_bad_priors_get_clear_errors(kwargs, match):
    X, _ = make_blobs(n=60, d=3, k=2, seed=1)
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(n_components=kwargs.pop("n_components", 2), **kwargs).fit(X)


def test_unused_components_get_small_weights():
    """The Dirichlet-process prior switches off components the data do not need."""
    ours = BayesianGaussianMixture(n_components=10, weight_concentration_prior=1e-3,
                                   random_state=0, max_iter=300).fit(_BLOBS)
    assert np.sum(ours.weights_ > 0.05) == 3


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_save_and_load_without_pickle(tmp_path, covariance_type, prior_type):
    import fastem

    X = _BLOBS
    gm = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                 weight_concentration_prior_type=prior_type, random_state=0,
                                 max_iter=20).fit(X)
    gm.save(tmp_path / "b.npz")
    loaded = fastem.load(tmp_path / "b.npz")
    assert type(loaded) is BayesianGaussianMixture
    assert loaded.get_params()["weight_concentration_prior_type"] == prior_type
    for name in FITTED + ["weights_", "precisions_", "lower_bounds_"]:
        np.testing.assert_array_equal(np.asarray(getattr(loaded, name)),
                                      np.asarray(getattr(gm, name)), err_msg=name)
    np.testing.assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
    assert loaded.lower_bound_ == gm.lower_bound_ and loaded.n_iter_ == gm.n_iter_
    loaded.set_params(warm_start=True, max_iter=2).fit(X)  # continues from the loaded posterior
    with pytest.raises(ValueError, match="holds a BayesianGaussianMixture, not a GaussianMixture"):
        fastem.GaussianMixture.load(tmp_path / "b.npz")


def _bishop_elbo(X, r, gm):
    """The evidence lower bound L(q(Z) = r, q(theta) = the fitted posterior) of a
    full-covariance Gaussian-Wishart mixture, term by term as Bishop (10.70-10.77)
    writes it, with the stick-breaking terms for the Dirichlet-process prior.
    Independent of fastem's simplified expressions."""
    from scipy.special import betaln as sp_betaln
    from scipy.special import digamma as psi
    from scipy.special import gammaln as lgam

    n, d = X.shape
    k = gm.n_components
    beta, m, nu = gm.mean_precision_, gm.means_, gm.degrees_of_freedom_
    W = np.linalg.inv(nu[:, None, None] * gm.covariances_)
    beta0, m0, nu0 = gm.mean_precision_prior_, gm.mean_prior_, gm.degrees_of_freedom_prior_
    W0_inv = gm.covariance_prior_
    W0 = np.linalg.inv(W0_inv)
    i = np.arange(1, d + 1)

    def log_b(W_, nu_):
        return (-0.5 * nu_ * np.linalg.slogdet(W_)[1] - 0.5 * nu_ * d * np.log(2)
                - d * (d - 1) / 4 * np.log(np.pi) - lgam((nu_ + 1 - i) / 2).sum())

    log_lam = np.array([psi((nu[j] + 1 - i) / 2).sum() + d * np.log(2)
                        + np.linalg.slogdet(W[j])[1] for j in range(k)])
    if gm.weight_concentration_prior_type == "dirichlet_process":
        a, b = gm.weight_concentration_
        e_log_v, e_log_1mv = psi(a) - psi(a + b), psi(b) - psi(a + b)
        log_pi = e_log_v + np.concatenate([[0.0], np.cumsum(e_log_1mv)[:-1]])
        a0 = gm.weight_concentration_prior_
        e_log_p_pi = np.sum(np.log(a0) + (a0 - 1) * e_log_1mv)
        e_log_q_pi = np.sum(-sp_betaln(a, b) + (a - 1) * e_log_v + (b - 1) * e_log_1mv)
    else:
        alpha = gm.weight_concentration_
        a0 = gm.weight_concentration_prior_
        log_pi = psi(alpha) - psi(alpha.sum())
        e_log_p_pi = lgam(k * a0) - k * lgam(a0) + (a0 - 1) * log_pi.sum()
        e_log_q_pi = lgam(alpha.sum()) - lgam(alpha).sum() + ((alpha - 1) * log_pi).sum()
    total = 0.0
    for j in range(k):
        diff = X - m[j]
        maha = np.einsum("na,ab,nb->n", diff, W[j], diff)
        e_log_px = 0.5 * (log_lam[j] - d / beta[j] - nu[j] * maha - d * np.log(2 * np.pi))
        total += r[:, j] @ (e_log_px + log_pi[j])
        dm = m[j] - m0
        total += (0.5 * (d * np.log(beta0 / (2 * np.pi)) + log_lam[j] - d * beta0 / beta[j]
                         - beta0 * nu[j] * dm @ W[j] @ dm)
                  + log_b(W0, nu0) + (nu0 - d - 1) / 2 * log_lam[j]
                  - 0.5 * nu[j] * np.trace(W0_inv @ W[j]))
        entropy_lam = -log_b(W[j], nu[j]) - (nu[j] - d - 1) / 2 * log_lam[j] + nu[j] * d / 2
        total -= 0.5 * log_lam[j] + d / 2 * np.log(beta[j] / (2 * np.pi)) - d / 2 - entropy_lam
    with np.errstate(divide="ignore", invalid="ignore"):
        r_log_r = np.where(r > 0, r * np.log(r), 0.0).sum()
    return total + e_log_p_pi - r_log_r - e_log_q_pi


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_elbo_is_the_whole_bound_for_full_covariances(prior_type):
    """elbo_ = scikit-learn's lower_bound_ + the constants it drops equals the
    bound evaluated term by term (reg_covar=0, so that the M-step is exactly the
    variational optimum that the simplification assumes)."""
    pytest.importorskip("scipy")
    X = _BLOBS[:300]
    kw = dict(n_components=4, covariance_type="full", weight_concentration_prior_type=prior_type,
              reg_covar=0.0, random_state=0, init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = BayesianGaussianMixture(max_iter=0, **kw).fit(X)
        r = gm.predict_proba(X)  # the responsibilities of the next E-step
        gm.set_params(warm_start=True, max_iter=1).fit(X)
    assert gm.elbo_ == pytest.approx(_bishop_elbo(X, r, gm), rel=1e-10)
    assert gm.elbo_ != pytest.approx(gm.lower_bound_, rel=1e-3)  # the constants matter


def test_elbo_compares_numbers_of_components():
    """On data from 3 clusters the whole bound prefers 3 components to 1, and a
    finite-mixture (Dirichlet-distribution) fit with many more components does
    not beat it by much: the constants scikit-learn drops depend on K."""
    X = _BLOBS
    elbos = {}
    for k in (1, 3, 12):
        gm = BayesianGaussianMixture(n_components=k, weight_concentration_prior_type=
                                     "dirichlet_distribution", random_state=0,
                                     max_iter=300).fit(X)
        elbos[k] = gm.elbo_
    assert elbos[3] > elbos[1] + 100
    assert elbos[12] < elbos[3] + 5


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
@pytest.mark.parametrize("constant", ["every feature", "one feature"])
def test_constant_features_fit_without_a_false_alarm(covariance_type, constant):
    """A constant feature: every variance of the fit is reg_covar, which the
    M-step adds, so the bound may fall by what that costs (the allowance);
    it warned of an unstable fit at every iteration, and 'spherical' crashed
    on log(0) in elbo_. The default covariance prior stays scikit-learn's (the
    data's covariance, singular here), so elbo_ is -inf, as documented, and
    finite with a proper covariance_prior."""
    rng = np.random.default_rng(5)
    X = np.ones((60, 2)) if constant == "every feature" else np.c_[
        np.r_[rng.normal(size=30), rng.normal(size=30) + 5], np.ones(60)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, of instability or otherwise
        bgm = BayesianGaussianMixture(n_components=2, covariance_type=covariance_type,
                                      random_state=0).fit(X)
        assert np.isfinite(bgm.lower_bound_) and bgm.converged_
        singular = constant == "every feature" or covariance_type != "spherical"
        assert (bgm.elbo_ == -np.inf) if singular else np.isfinite(bgm.elbo_)
        prior = {"full": np.eye(2), "tied": np.eye(2), "diag": np.ones(2), "spherical": 1.0}
        proper = BayesianGaussianMixture(n_components=2, covariance_type=covariance_type,
                                         covariance_prior=prior[covariance_type],
                                         random_state=0).fit(X)
    assert np.isfinite(proper.elbo_)
