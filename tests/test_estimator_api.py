"""scikit-learn estimator protocol and the semantics of the fit loop."""

import pickle
import warnings

import numpy as np
import pytest

from conftest import make_blobs
from fastem import ConvergenceWarning, GaussianMixture

X, TRUE_LABELS = make_blobs(n=400, d=3, k=3, seed=9)


def test_params_round_trip_and_repr():
    gm = GaussianMixture(3, covariance_type="diag", tol=1e-4)
    params = gm.get_params()
    assert params["n_components"] == 3 and params["backend"] == "cpu"
    assert set(params) >= {"n_components", "covariance_type", "tol", "reg_covar", "max_iter",
                           "n_init", "init_params", "weights_init", "means_init",
                           "precisions_init", "random_state", "warm_start", "verbose",
                           "verbose_interval", "backend"}
    assert GaussianMixture(**params).get_params() == params
    assert repr(gm) == "GaussianMixture(covariance_type='diag', n_components=3, tol=0.0001)"


def test_defaults_match_sklearn():
    sk = pytest.importorskip("sklearn.mixture").GaussianMixture().get_params()
    ours = GaussianMixture().get_params()
    for name, value in sk.items():
        assert ours[name] == value, name


def test_sklearn_clone_pipeline_gridsearch():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    gm = GaussianMixture(2, random_state=0)
    cloned = clone(gm)
    assert cloned is not gm and cloned.get_params() == gm.get_params()
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    assert pipe.predict(X).shape == (len(X),)
    assert np.isfinite(pipe.score(X))
    search = GridSearchCV(GaussianMixture(random_state=0),
                          {"n_components": [1, 3], "covariance_type": ["full", "diag"]}, cv=3)
    search.fit(X)
    assert search.best_params_["n_components"] == 3
    assert sklearn.base.is_outlier_detector(search.best_estimator_) is False  # tags work


def test_fit_predict_equals_fit_then_predict():
    for max_iter in (1, 3, 100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = GaussianMixture(3, random_state=1, max_iter=max_iter).fit_predict(X)
            b = GaussianMixture(3, random_state=1, max_iter=max_iter).fit(X).predict(X)
        np.testing.assert_array_equal(a, b)


def test_fit_recovers_blobs_and_probabilities_sum_to_one():
    gm = GaussianMixture(3, random_state=0).fit(X)
    assert gm.converged_
    labels = gm.predict(X)
    # Labels agree with the truth up to a permutation.
    agree = sum(np.bincount(labels[TRUE_LABELS == c]).max() for c in range(3))
    assert agree / len(X) > 0.97
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), labels)
    np.testing.assert_allclose(gm.score(X), gm.score_samples(X).mean())
    assert gm.n_features_in_ == 3
    assert gm.lower_bounds_[-1] == gm.lower_bound_
    assert len(gm.lower_bounds_) == gm.n_iter_


def test_max_iter_zero_initialises_only():
    gm = GaussianMixture(3, random_state=0, max_iter=0).fit(X)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == [] and gm.lower_bound_ == -np.inf
    assert not gm.converged_
    assert gm.means_.shape == (3, 3)


def test_convergence_warning_when_max_iter_reached():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(3, random_state=0, max_iter=1, tol=0).fit(X)


def test_warm_start_continues_exactly():
    ten = GaussianMixture(3, random_state=0, max_iter=10, tol=0)
    five = GaussianMixture(3, random_state=0, max_iter=5, tol=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ten.fit(X)
        five.fit(X)
        five.fit(X)
    np.testing.assert_array_equal(five.means_, ten.means_)
    np.testing.assert_array_equal(five.covariances_, ten.covariances_)
    np.testing.assert_array_equal(five.weights_, ten.weights_)


def test_n_init_keeps_best_lower_bound():
    Xh, _ = make_blobs(n=300, d=2, k=6, seed=2, spread=2.0)
    multi = GaussianMixture(6, init_params="random", n_init=5, random_state=0).fit(Xh)
    rs = np.random.RandomState(0)
    singles = []
    for _ in range(5):  # the same stream n_init draws from
        singles.append(GaussianMixture(6, init_params="random", random_state=rs).fit(Xh).lower_bound_)
    assert multi.lower_bound_ == pytest.approx(max(singles), rel=1e-12)


def test_sample_shapes_and_labels(covariance_type):
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    Xs, ys = gm.sample(500)
    assert Xs.shape == (500, 3) and ys.shape == (500,)
    assert set(np.unique(ys)) <= {0, 1, 2}
    # Samples of a component concentrate around its mean.
    for j in np.unique(ys):
        assert np.linalg.norm(Xs[ys == j].mean(axis=0) - gm.means_[j]) < 1.0


def test_bic_aic_prefer_true_number_of_components():
    bics = [GaussianMixture(k, random_state=0).fit(X).bic(X) for k in (1, 2, 3, 4, 5)]
    aics = [GaussianMixture(k, random_state=0).fit(X).aic(X) for k in (1, 2, 3)]
    assert int(np.argmin(bics)) + 1 == 3
    assert aics[2] < aics[0]


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("fitted, now", [("full", "tied"), ("full", "diag"), ("diag", "spherical"),
                                         ("spherical", "diag"), ("tied", "full")])
def test_every_method_refuses_a_covariance_type_changed_after_fit(estimator, fitted, now):
    """set_params(covariance_type=...) after fit leaves arrays of the old
    layout: every method says so (it failed inside NumPy: 'cannot reshape
    array of size 18 into shape (1,9)'), and setting it back restores them."""
    import fastem

    X, _ = make_blobs(n=300, d=3, k=2, seed=0)
    model = getattr(fastem, estimator)(n_components=2, covariance_type=fitted,
                                       random_state=0).fit(X)
    want = model.predict_proba(X[:5])
    model.set_params(covariance_type=now)
    for method in (model.predict, model.predict_proba, model.score_samples, model.score):
        with pytest.raises(ValueError, match=f"fitted with covariance_type='{fitted}'"):
            method(X[:5])
    with pytest.raises(ValueError, match="fit it again"):
        model.sample(2)
    model.set_params(covariance_type=fitted)
    np.testing.assert_array_equal(model.predict_proba(X[:5]), want)


def test_pickle_round_trip():
    gm = GaussianMixture(3, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(again.predict(X), gm.predict(X))


def test_verbose_prints_progress(capsys):
    GaussianMixture(3, random_state=0, verbose=2, verbose_interval=1).fit(X)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 1" in out and "converged" in out


@pytest.mark.filterwarnings("ignore::fastem.exceptions.ConvergenceWarning")
def test_verbose_1_draws_a_progress_bar_of_iterations(capsys):
    gm = GaussianMixture(3, random_state=0, verbose=1, tol=0, max_iter=7).fit(X)
    err = capsys.readouterr().err
    assert "EM" in err and "7/7" in err and f"{gm.lower_bound_:.6f}" in err


def test_progress_bar_restarts_for_each_start():
    import io

    from fastem._progress import FitProgress

    stream = io.StringIO()
    bar = FitProgress("EM", file=stream)
    for n_iter in (1, 2, 3, 1, 2):  # two starts
        bar(n_iter, 5, -1.0 * n_iter, 0.1, 0.01)
    assert bar._bar.n == 2 and bar._bar.total == 5
    bar.close()
    assert "2/5" in stream.getvalue()


def test_python_m_fastem_runs_the_command_line_and_reports_the_version():
    import subprocess
    import sys

    import fastem

    out = subprocess.run([sys.executable, "-m", "fastem", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"fastem {fastem.__version__}"
    usage = subprocess.run([sys.executable, "-m", "fastem", "--help"], capture_output=True,
                           text=True, check=True).stdout
    assert "demo" in usage and "warmup" in usage
