"""Bad input gets a clear ValueError/TypeError naming the problem."""

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture, NotFittedError

X_OK, _ = make_blobs(n=60, d=2, k=2)


@pytest.mark.parametrize("X, exc, match", [
    (np.array([[1.0, np.nan], [2.0, np.nan], [1.0, np.nan]]), ValueError,
     r"no observed value in column\(s\) \[1\]"),
    (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), ValueError, "infinity"),
    (np.empty((0, 3)), ValueError, "empty"),
    (np.empty((5, 0)), ValueError, "empty"),
    (np.arange(5.0), ValueError, "2-D"),
    (np.ones((2, 2, 2)), ValueError, "2-D"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
    (np.array([[1 + 1j, 2], [3, 4]]), ValueError, "Complex data not supported"),
    (np.array([[1, "x"], [2, 3]], dtype=object), TypeError, "non-numeric"),
    ([[1.0, 2.0], [3.0]], ValueError, "could not be converted"),
    ("not an array", TypeError, "array-like"),
    (None, TypeError, "array-like"),
])
def test_bad_X(X, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(np.ones((3, 2)))


@pytest.mark.parametrize("param, value", [
    ("n_components", 0), ("n_components", 1.5), ("n_components", True),
    ("covariance_type", "banana"), ("tol", -1.0), ("tol", np.nan), ("reg_covar", -1e-6),
    ("max_iter", -1), ("max_iter", 2.5), ("n_init", 0), ("init_params", "kmeans+++"),
    ("verbose", -1), ("verbose_interval", 0), ("warm_start", "yes"),
    ("random_state", "seed"), ("backend", "tpu"),
])
def test_invalid_parameters_name_the_parameter(param, value):
    gm = GaussianMixture(2).set_params(**{param: value})
    with pytest.raises(ValueError, match=param):
        gm.fit(X_OK)


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match="Invalid parameter 'n_clusters'"):
        GaussianMixture().set_params(n_clusters=3)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(weights_init=[0.5, 0.6]), ValueError, "should be normalized.*weights_init"),
    (dict(weights_init=[1.5, -0.5]), ValueError, r"\[0, 1\]"),
    (dict(weights_init=[1.0]), ValueError, "shape"),
    (dict(weights_init=[np.nan, 1.0]), ValueError, "NaN"),
    (dict(weights_init=["a", "b"]), TypeError, "numeric"),
    (dict(means_init=np.zeros((2, 3))), ValueError, r"'means' should have the shape of \(2, 2\), but got \(2, 3\) \('means_init'"),
    (dict(means_init=[[0, 0], [np.inf, 0]]), ValueError, "means_init.*NaN"),
    (dict(precisions_init=np.ones((2, 2, 2))), ValueError, "positive-definite"),
    (dict(precisions_init=np.array([[[1, 0.5], [0, 1]]] * 2)), ValueError, "symmetric"),
    (dict(precisions_init=np.ones((2, 3, 3))), ValueError, "shape"),
])
def test_bad_initial_arrays(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(2, **kwargs).fit(X_OK)


@pytest.mark.parametrize("covariance_type, prec", [
    ("diag", np.array([[1.0, 0.0], [1.0, 1.0]])),
    ("spherical", np.array([1.0, -1.0])),
    ("tied", np.array([[1.0, 2.0], [2.0, 1.0]])),
])
def test_non_positive_precisions(covariance_type, prec):
    with pytest.raises(ValueError, match="precisions_init"):
        GaussianMixture(2, covariance_type=covariance_type, precisions_init=prec).fit(X_OK)


@pytest.mark.parametrize("sw, exc, match", [
    (-np.ones(60), ValueError, "non-negative"),
    (np.r_[np.nan, np.ones(59)], ValueError, "NaN"),
    (np.zeros(60), ValueError, "sums to zero"),
    (np.full(60, 1e308), ValueError, "sums to more than float64 holds"),
    (np.ones(59), ValueError, r"shape \(60,\)"),
    (np.ones((60, 1)), ValueError, r"shape \(60,\)"),
    (np.array(["a"] * 60), TypeError, "numeric"),
])
def test_bad_sample_weight(sw, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(2).fit(X_OK, sample_weight=sw)


def test_too_few_positive_weights_for_random_from_data():
    sw = np.zeros(60)
    sw[0] = 1.0
    with pytest.raises(ValueError, match="positive sample_weight"):
        GaussianMixture(2, init_params="random_from_data").fit(X_OK, sample_weight=sw)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_methods_before_fit(method):
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(GaussianMixture(2), method)(X_OK)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).sample(3)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
def test_wrong_number_of_features(method):
    gm = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="3 features, but GaussianMixture is expecting 2 features as input"):
        getattr(gm, method)(np.ones((4, 3)))


def test_bad_sample_count():
    gm = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_warm_start_with_other_feature_count():
    gm = GaussianMixture(2, warm_start=True, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="warm_start"):
        gm.fit(np.random.default_rng(0).normal(size=(50, 3)))


def test_warm_start_after_changing_the_model():
    gm = GaussianMixture(2, warm_start=True, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="warm_start"):
        gm.set_params(covariance_type="diag").fit(X_OK)
    X3 = np.random.default_rng(1).normal(size=(60, 3))  # d != k, so tied and diag shapes differ
    tied = GaussianMixture(2, covariance_type="tied", warm_start=True, random_state=0).fit(X3)
    with pytest.raises(ValueError, match="warm_start"):
        tied.set_params(covariance_type="diag").fit(X3)
    with pytest.raises(ValueError, match="warm_start"):
        gm.set_params(covariance_type="full", n_components=3).fit(X_OK)


def test_sparse_input_is_refused():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse"):
        GaussianMixture(1).fit(sparse.csr_matrix(X_OK))


def test_masked_arrays_and_date_columns_are_refused_not_misread():
    """A masked array's mask was dropped (the values under it fitted as data),
    and a dataframe's dates became nanosecond counts (1.6e18) and fitted."""
    pd = pytest.importorskip("pandas")
    masked = np.ma.masked_array(X_OK, mask=X_OK > 1.0)
    with pytest.raises(TypeError, match=r"masked array.*filled\(np.nan\)"):
        GaussianMixture(2).fit(masked)
    gm = GaussianMixture(2, random_state=0).fit(masked.filled(np.nan))  # as missing values
    with pytest.raises(TypeError, match="masked array"):
        gm.predict(masked)
    unmasked = np.ma.masked_array(X_OK)  # nothing masked: plain data
    np.testing.assert_array_equal(GaussianMixture(2, random_state=0).fit(unmasked).means_,
                                  GaussianMixture(2, random_state=0).fit(X_OK).means_)
    frame = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=len(X_OK)),
                          "x": X_OK[:, 0]})
    for df in (frame, frame.assign(when=frame["when"] - frame["when"].iloc[0])):
        with pytest.raises(TypeError, match="date or duration columns \\(when\\)"):
            GaussianMixture(2).fit(df)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_list_and_matrix_input():
    gm = GaussianMixture(2, random_state=0).fit(X_OK.tolist())
    np.testing.assert_array_equal(gm.predict(np.asmatrix(X_OK)), gm.predict(X_OK))


# -- every public method refuses what fit refuses (#24 section 3) ---------------

def _fitted_estimators():
    import warnings

    from fastem import PPCA, BayesianGaussianMixture, GaussianMixtureIC

    X3, _ = make_blobs(n=60, d=2, k=2, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "GaussianMixture": (GaussianMixture(2, random_state=0), X3),
            "BayesianGaussianMixture": (BayesianGaussianMixture(n_components=2,
                                                                random_state=0), X3),
            "GaussianMixtureIC": (GaussianMixtureIC(n_components=[1, 2], random_state=0), X3),
            "PPCA": (PPCA(1), X3),
            **_vae(X3),
        }


def _vae(X3):
    try:
        import torch  # noqa: F401
    except ImportError:
        return {}
    from fastem import VAE

    return {"VAE": (VAE(1, hidden_layers=(4,), max_epochs=1, random_state=0), X3)}


ESTIMATORS = _fitted_estimators()
BAD_X = [
    np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]),
    np.empty((0, 2)),
    np.arange(5.0),
    np.array([["a", "b"], ["c", "d"]]),
    np.array([[1 + 1j, 2], [3, 4]]),
    np.array([[1, "x"], [2, 3]], dtype=object),
    [[1.0, 2.0], [3.0]],
    None,
]
METHODS = ("predict", "predict_proba", "score_samples", "score", "transform", "bic", "aic")


def _error(call):
    try:
        call()
    except (ValueError, TypeError) as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("bad", range(len(BAD_X)))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_method_refuses_what_fit_refuses_with_the_same_message(name, bad):
    import copy
    import warnings

    template, X_fit = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = copy.deepcopy(template).fit(X_fit)
    refused = _error(lambda: copy.deepcopy(template).fit(BAD_X[bad]))
    assert refused is not None
    for method in METHODS:
        if hasattr(fitted, method):
            assert _error(lambda: getattr(fitted, method)(BAD_X[bad])) == refused, method


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_nan_is_fitted_by_every_method_or_refused_by_every_method(name):
    """Missing values: an estimator that fits them predicts on them too; one
    that does not refuses them in every method with fit's message."""
    import copy
    import warnings

    template, X_fit = ESTIMATORS[name]
    holes = np.array(X_fit, dtype=np.float64)
    holes[1, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = copy.deepcopy(template).fit(X_fit)
        refused = _error(lambda: copy.deepcopy(template).fit(holes))
        for method in METHODS:
            if hasattr(fitted, method):
                assert _error(lambda: getattr(fitted, method)(holes)) == refused, method
    assert (refused is None) == getattr(template, "_fits_missing", False), refused
    if refused is not None:
        assert "NaN" in refused[1]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_score_refuses_the_sample_weight_fit_refuses(name):
    import copy
    import warnings

    template, X_fit = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = copy.deepcopy(template).fit(X_fit)
    for sw in (-np.ones(len(X_fit)), np.ones(3), np.full(len(X_fit), np.nan)):
        refused = _error(lambda: copy.deepcopy(template).fit(X_fit, sample_weight=sw))
        assert refused is not None
        assert _error(lambda: fitted.score(X_fit, sample_weight=sw)) == refused


# -- messages (#24 items 12, 14) --------------------------------------------------

def test_inverse_of_an_anisotropic_covariance_is_accepted_as_precisions_init():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) @ np.diag([1e-2, 1.0, 1e4])
    P = np.linalg.inv(np.cov(X.T))
    P[2, 1] += 4e-13 * np.abs(P).max()  # the asymmetry of the battery's case, 4e-13 of ||P||
    assert not np.allclose(P, P.T, rtol=1e-10, atol=0)  # what the old check demanded
    gm = GaussianMixture(1, precisions_init=P[None], reg_covar=0.0).fit(X)
    np.testing.assert_allclose(gm.covariances_[0], np.cov(X.T, bias=True), rtol=1e-6, atol=1e-9)
    grossly = P + np.triu(np.ones((3, 3)), 1) * 1e-3 * np.abs(P).max()
    with pytest.raises(ValueError, match="should be symmetric"):
        GaussianMixture(1, precisions_init=grossly[None]).fit(X)


def test_degrees_of_freedom_prior_message_matches_scikit_learn():
    from fastem import BayesianGaussianMixture

    X2 = make_blobs(n=60, d=2, k=2)[0]
    with pytest.raises(ValueError, match=r"should be greater than 1, but got 1\.000\.$"):
        BayesianGaussianMixture(degrees_of_freedom_prior=1).fit(X2)


def test_missing_values_in_a_dataframe_are_nan():
    """pd.NA and None in a dataframe are missing values: GaussianMixture fits
    them as NaN; an estimator that does not fit missing values names them NaN."""
    from fastem import PPCA

    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, pd.NA, 4.0], "b": [1, 2, 3, 4]})
    nullable = pd.DataFrame({"a": pd.array([1.0, None, 3.0, 4.0], dtype="Float64"),
                             "b": [1.0, 2.0, 3.0, 4.0]})
    for df, row in ((frame, 2), (nullable, 1)):
        plain = np.c_[np.array([1.0, 2.0, 3.0, 4.0]), np.arange(1.0, 5.0)]
        plain[row, 0] = np.nan
        expected = GaussianMixture(1).fit(plain).means_
        np.testing.assert_array_equal(GaussianMixture(1).fit(df).means_, expected)
        with pytest.raises(ValueError, match="X contains NaN"):
            PPCA(1).fit(df)


def test_sparse_sample_weight_says_so():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sample_weight is a sparse matrix"):
        GaussianMixture(1).fit(X_OK, sample_weight=sparse.csr_matrix(np.ones((1, len(X_OK)))))


def _methods(model, X):
    calls = [lambda: model.score(X), lambda: model.sample(3)]
    if hasattr(model, "predict"):
        calls += [lambda: model.predict(X), lambda: model.predict_proba(X),
                  lambda: model.score_samples(X), lambda: model.partial_fit(X)]
    else:
        calls += [lambda: model.transform(X), lambda: model.score_samples(X)]
    return calls


@pytest.mark.parametrize("name, attribute, value", [
    ("GaussianMixture", "means_", lambda m: np.where(np.arange(m.size).reshape(m.shape) == 0,
                                                     np.nan, m)),
    ("GaussianMixture", "weights_", lambda w: np.r_[np.nan, w[1:]]),
    ("GaussianMixture", "weights_", lambda w: w * 1.4),
    ("GaussianMixture", "weights_", lambda w: np.r_[-0.5, 1.5]),
    ("GaussianMixture", "precisions_cholesky_", lambda p: -p),
    ("GaussianMixture", "precisions_cholesky_", lambda p: p * np.inf),
    ("BayesianGaussianMixture", "means_", lambda m: m * np.nan),
    ("BayesianGaussianMixture", "degrees_of_freedom_", lambda d: d * np.inf),
    ("PPCA", "components_", lambda c: c * np.nan),
    ("PPCA", "noise_variance_", lambda s: np.inf),
])
def test_fitted_attributes_set_to_no_model_are_refused(name, attribute, value):
    """Set by hand to NaN, infinity, weights that do not sum to 1 or a
    Cholesky factor with a negative diagonal, the attributes scored NaN or a
    wrong number and predicted a component without a word."""
    import fastem

    X = make_blobs(n=200, d=2, k=2, seed=3)[0]
    make = {"GaussianMixture": lambda: fastem.GaussianMixture(2, random_state=0),
            "BayesianGaussianMixture": lambda: fastem.BayesianGaussianMixture(
                n_components=2, random_state=0),
            "PPCA": lambda: fastem.PPCA(1)}[name]
    model = make().fit(X)
    setattr(model, attribute, value(getattr(model, attribute)))
    for call in _methods(model, X):
        with pytest.raises(ValueError, match=f"{attribute}|{attribute.rstrip('_')}"):
            call()
    if name != "PPCA":
        model.set_params(warm_start=True)
        with pytest.raises(ValueError, match=attribute):
            model.fit(X)
    assert np.isfinite(make().fit(X).score(X))
