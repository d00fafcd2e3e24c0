"""The registry of benchmark problems (``fastem.problems``): every named
problem builds, at a small size, the data it describes."""

import numpy as np
import pytest

from fastem.problems import PROBLEMS, make_mixture, remove_at_random


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_problem_builds_what_it_names(name):
    problem = PROBLEMS[name]
    X = problem.make(n_samples=2000, dtype=np.float32, seed=3)
    assert X.shape == (2000, problem.n_features) and X.dtype == np.float32
    share = np.isnan(X).mean()
    assert abs(share - problem.missing) < 0.02
    assert np.isfinite(X[~np.isnan(X)]).all()
    assert name.endswith(f"-{problem.covariance_type}-d{problem.n_features}-k{problem.n_components}")
    kind, n, d, k = problem.spec.split(":")
    assert (kind, int(n), int(d), int(k)) == (problem.covariance_type, problem.n_samples,
                                              problem.n_features, problem.n_components)
    np.testing.assert_array_equal(problem.make(n_samples=50, seed=3),
                                  problem.make(n_samples=50, seed=3))  # reproducible by seed


def test_ill_conditioned_problem_is_ill_conditioned():
    """What float32_reach measures: covariances spanning several decades."""
    from fastem.problems import make_ill_conditioned

    _, _, _, cov = make_ill_conditioned(10, 16, 16, seed=0)
    eig = np.linalg.eigvalsh(cov)
    assert eig.min() < 1e-3 and eig.max() > 1.0


def test_remove_at_random_copies_and_removes_the_share_asked():
    X = make_mixture(5000, 4, 3, seed=0)[0]
    holes = remove_at_random(X, 0.3, seed=2)
    assert not np.isnan(X).any()
    assert abs(np.isnan(holes).mean() - 0.3) < 0.01
    np.testing.assert_array_equal(holes[~np.isnan(holes)], X[~np.isnan(holes)])


def test_bad_problems_are_refused():
    from fastem.problems import Problem

    with pytest.raises(ValueError, match="data must be"):
        Problem("full", 100, 2, 2, data="blobs")
    with pytest.raises(ValueError, match="missing must be"):
        Problem("full", 100, 2, 2, missing=1.5)
    with pytest.raises(ValueError, match="fraction must be"):
        remove_at_random(np.zeros((3, 2)), -0.1)
