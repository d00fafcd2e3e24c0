"""fastem.GaussianMixture as a drop-in for scikit-learn's, judged by scikit-learn:
its estimator checks (GaussianMixtureImputer's too, as a transformer), its own
test file (import switched), its exception classes and its feature-name rules."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastem
from conftest import make_blobs
from fastem import GaussianMixture

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# fastem implements scikit-learn's estimator protocol itself instead of
# inheriting BaseEstimator, so that scikit-learn is not a run-time dependency;
# scikit-learn warns about that when it collects and runs the checks.
_NOT_BASE_ESTIMATOR = (r"Estimator \w*GaussianMixture\w* does not inherit from "
                       r"`sklearn.base.BaseEstimator`")
pytestmark = pytest.mark.filterwarnings(f"ignore:{_NOT_BASE_ESTIMATOR}")

#: The one estimator check that fails with more than one component, and why.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "the check shuffles the weighted rows, so the random initialisation starts elsewhere; "
        "given the same start, weights equal repeated rows (test_em_properties, test_bayesian)",
}


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=_NOT_BASE_ESTIMATOR)
    _with_checks = parametrize_with_checks(
        [GaussianMixture(), GaussianMixture(n_components=2, covariance_type="diag", max_iter=30),
         fastem.BayesianGaussianMixture(n_components=2, max_iter=30),
         fastem.GaussianMixtureImputer(n_components=2, max_iter=30)],
        expected_failed_checks=lambda est: (
            EXPECTED_FAILED_CHECKS if est.n_components > 1
            and not isinstance(est, fastem.GaussianMixtureImputer) else {}),
        xfail_strict=True)


@_with_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_sklearn_own_test_file_passes():
    """scikit-learn's test_gaussian_mixture.py with its import switched to fastem:
    every failure is a listed private-API use or a documented difference."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sklearn_suite
    finally:
        sys.path.pop(0)
    summary = sklearn_suite.run()
    unexpected = [r["name"] for r in summary["failures"] if r["kind"] == "unexpected"]
    assert not unexpected, unexpected
    assert summary["cases_run"] >= 40  # the file really ran
    assert summary["public_passed"] >= summary["public_cases_run"] - len(
        sklearn_suite.KNOWN_DIFFERENCES)


def test_exceptions_are_sklearns():
    from sklearn.exceptions import ConvergenceWarning, NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(np.zeros((3, 2)))
    X, _ = make_blobs(n=200, d=2, k=3, seed=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        GaussianMixture(3, max_iter=1, random_state=0).fit(X)  # would raise if not filtered
    assert issubclass(fastem.NotFittedError, NotFittedError)
    assert issubclass(fastem.ConvergenceWarning, ConvergenceWarning)
    assert issubclass(fastem.NotFittedError, (ValueError, AttributeError))


def test_exceptions_without_sklearn_installed():
    """Without scikit-learn the classes keep their meaning, and importing
    fastem never imports scikit-learn (it costs about half a second)."""
    code = (
        "import sys\n"
        "import fastem\n"
        "assert 'sklearn' not in sys.modules\n"
        "sys.modules['sklearn'] = None  # makes 'import sklearn' fail\n"
        "assert issubclass(fastem.NotFittedError, ValueError)\n"
        "assert issubclass(fastem.NotFittedError, AttributeError)\n"
        "assert issubclass(fastem.ConvergenceWarning, UserWarning)\n"
        "try:\n"
        "    fastem.GaussianMixture(2).predict([[0.0, 1.0]])\n"
        "except fastem.NotFittedError as e:\n"
        "    assert 'not fitted' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------
# Feature names
# ---------------------------------------------------------------------------

pd = pytest.importorskip("pandas")

X_NAMED, _ = make_blobs(n=300, d=3, k=2, seed=4)
COLUMNS = ["height", "weight", "age"]


def _df(X=X_NAMED, columns=COLUMNS):
    return pd.DataFrame(X, columns=columns)


def test_dataframe_sets_feature_names_and_checks_them():
    gm = GaussianMixture(2, random_state=0).fit(_df())
    np.testing.assert_array_equal(gm.feature_names_in_, COLUMNS)
    assert gm.feature_names_in_.dtype == object
    ref = GaussianMixture(2, random_state=0).fit(X_NAMED)
    np.testing.assert_array_equal(gm.means_, ref.means_)
    assert not hasattr(ref, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(gm.predict(_df()), ref.predict(X_NAMED))
    reordered = _df()[["weight", "height", "age"]]
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError, match="same order as they were in fit"):
            getattr(gm, method)(reordered)
    renamed = _df(columns=["height", "weight", "years"])
    with pytest.raises(ValueError, match="(?s)unseen at fit time:\n- years.*now missing:\n- age"):
        gm.predict(renamed)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "GaussianMixture was fitted with feature names"):
        gm.predict(X_NAMED)
    with pytest.warns(UserWarning, match="X has feature names, but GaussianMixture was fitted "
                                         "without feature names"):
        ref.predict(_df())


def test_refit_on_an_array_forgets_the_names():
    gm = GaussianMixture(2, random_state=0).fit(_df())
    gm.fit(X_NAMED)
    assert not hasattr(gm, "feature_names_in_")


def test_feature_name_types():
    gm = GaussianMixture(2, random_state=0).fit(pd.DataFrame(X_NAMED))  # integer column labels
    assert not hasattr(gm, "feature_names_in_")
    with pytest.raises(TypeError, match="all input features have string names"):
        GaussianMixture(2).fit(pd.DataFrame(X_NAMED, columns=["a", 1, "c"]))


def test_feature_names_survive_save_and_load(tmp_path):
    gm = GaussianMixture(2, random_state=0).fit(_df())
    gm.save(tmp_path / "m.npz")
    loaded = fastem.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.feature_names_in_, COLUMNS)
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(_df()[["age", "weight", "height"]])


def test_dataframe_interchange_protocol():
    pa = pytest.importorskip("pyarrow")
    table = pa.table({c: X_NAMED[:, i] for i, c in enumerate(COLUMNS)})
    from fastem._validation import feature_names_of

    np.testing.assert_array_equal(feature_names_of(table), COLUMNS)
    gm = GaussianMixture(2, random_state=0).fit(table)
    np.testing.assert_array_equal(gm.feature_names_in_, COLUMNS)
    np.testing.assert_allclose(gm.means_, GaussianMixture(2, random_state=0).fit(X_NAMED).means_)
