"""Degenerate but valid data fits with finite parameters."""

import warnings

import numpy as np
import pytest

from fastem import GaussianMixture

rng = np.random.default_rng(0)
CASES = {
    "duplicated_points": np.repeat(rng.normal(size=(6, 3)), 20, axis=0),
    "constant_column": np.c_[rng.normal(size=(120, 2)), np.full(120, 7.0)],
    "all_identical": np.full((50, 3), 2.5),
    "n_samples_equals_k": rng.normal(size=(4, 2)),
    "huge_values": rng.normal(size=(200, 3)) * 1e150,
    "tiny_values": rng.normal(size=(200, 3)) * 1e-150,
    "integer_input": rng.integers(0, 10, size=(100, 3)),
    "boolean_input": rng.integers(0, 2, size=(100, 3)).astype(bool),
    "fortran_order": np.asfortranarray(rng.normal(size=(100, 3))),
    "strided": rng.normal(size=(200, 6))[::2, ::2],
    "float16": rng.normal(size=(100, 2)).astype(np.float16),
    "one_feature": rng.normal(size=(100, 1)),
    "large_offset": 1e8 + rng.normal(size=(150, 2)),
}


def _finite(gm):
    return all(np.all(np.isfinite(a)) for a in
               (gm.weights_, gm.means_, gm.covariances_, gm.precisions_, gm.precisions_cholesky_))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_degenerate_data_fits(name, init_params, covariance_type):
    X = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(4, covariance_type=covariance_type, init_params=init_params,
                             random_state=0).fit(X)
    assert _finite(gm)
    assert np.isfinite(gm.lower_bound_)
    assert np.isclose(gm.weights_.sum(), 1.0)
    labels = gm.predict(X)
    assert labels.shape == (len(X),) and labels.min() >= 0 and labels.max() < 4
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("init_params", ["random_from_data", "k-means++"])
def test_point_inits_on_degenerate_data(init_params, covariance_type):
    for name in ("duplicated_points", "constant_column", "all_identical", "tiny_values"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(3, covariance_type=covariance_type, init_params=init_params,
                                 random_state=1).fit(CASES[name])
        assert _finite(gm), name


def test_point_inits_at_extreme_scale_give_clear_error():
    """reg_covar * I around points at 1e153: squared distances overflow float64."""
    X = rng.normal(size=(50, 2)) * 1e153
    with pytest.raises(ValueError, match="overflow float64"):
        GaussianMixture(4, init_params="random_from_data", random_state=0).fit(X)


def test_empty_component_is_reseeded_and_counted():
    X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 10]
    # A component far from every point loses all responsibility at once.
    gm = GaussianMixture(3, means_init=[[0, 0], [10, 10], [1e6, 1e6]], max_iter=50,
                         random_state=0).fit(X)
    assert gm.n_reseeds_ >= 1
    assert _finite(gm)
    assert np.all(np.abs(gm.means_) < 100)
    assert np.all(gm.weights_ > 0)


def test_rows_beyond_float64s_range_are_refused_where_no_answer_exists():
    """A row 1e200 from a mixture of unit-scale components: its squared
    distances overflow float64, so its log-density is -inf (the float64 value)
    and its component probabilities and label cannot be computed: an error,
    not NaN probabilities or label 0."""
    X = rng.normal(size=(300, 3))
    gm = GaussianMixture(2, random_state=0).fit(X)
    far = X[:3].copy()
    far[1] *= 1e200
    score = gm.score_samples(far)
    assert np.isneginf(score[1]) and np.all(np.isfinite(score[[0, 2]]))
    for method in (gm.predict, gm.predict_proba):
        with pytest.raises(ValueError, match="overflow float64"):
            method(far)
    np.testing.assert_array_equal(gm.predict(far[[0, 2]]), gm.predict(X[[0, 2]]))
