"""Plots render to PNG (Agg) and draw what they claim: the bound history, one
ellipse pair per component on the chosen view, the criterion lines and the best."""

import warnings

import numpy as np
import pytest

import fastem

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from conftest import make_blobs  # noqa: E402
from fastem import plot  # noqa: E402

X, _ = make_blobs(n=3000, d=3, k=3, seed=2)


def _save(ax, path):
    ax.figure.savefig(path, dpi=60)
    plt.close(ax.figure)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.std() > 0.02  # a PNG with something drawn
    return image


def test_lower_bound_plot(tmp_path):
    gm = fastem.GaussianMixture(3, random_state=0).fit(X)
    ax = plot.plot_lower_bound(gm)
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(y, gm.lower_bounds_)
    np.testing.assert_array_equal(x, np.arange(1, gm.n_iter_ + 1))
    _save(ax, tmp_path / "lb.png")
    with pytest.raises(ValueError, match="no fitted bound history"):
        plot.plot_lower_bound(fastem.GaussianMixture(3))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_mixture_plot_draws_each_component(tmp_path, covariance_type):
    from matplotlib.patches import Ellipse

    gm = fastem.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    for features in (None, (0, 2)):
        ax = plot.plot_mixture(gm, X, features=features, max_points=1000)
        ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
        assert len(ellipses) == 2 * 3
        assert ax.collections[0].get_offsets().shape == (1000, 2)  # subsampled
        if features == (0, 2):
            centres = sorted(tuple(np.round(e.center, 9)) for e in ellipses[::2])
            want = sorted(tuple(np.round(m[[0, 2]], 9)) for m in gm.means_)
            assert centres == want
        _save(ax, tmp_path / f"m-{covariance_type}.png")
    with pytest.raises(ValueError, match="two different column indices"):
        plot.plot_mixture(gm, X, features=(1, 1))


def test_criterion_plot_marks_the_best(tmp_path):
    results = {"n_components": [], "covariance_type": [], "bic": []}
    for ctype in ("full", "spherical"):
        for k in (1, 2, 3, 4):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm = fastem.GaussianMixture(k, covariance_type=ctype, random_state=0).fit(X)
            results["n_components"].append(k)
            results["covariance_type"].append(ctype)
            results["bic"].append(gm.bic(X))
    ax = plot.plot_criterion(results)
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) >= {"full", "spherical"}
    best = int(np.argmin(results["bic"]))
    star = [line for label, line in lines.items() if label.startswith("best")][0]
    assert star.get_xdata()[0] == results["n_components"][best]
    assert results["n_components"][best] == 3  # three blobs
    _save(ax, tmp_path / "bic.png")
    with pytest.raises(ValueError, match="criterion"):
        plot.plot_criterion(results, criterion="hqic")


def test_cli_fit_plots_convergence(tmp_path):
    from fastem.cli import main

    np.save(tmp_path / "X.npy", X)
    assert main(["fit", str(tmp_path / "X.npy"), "--n-components", "3", "--random-state", "0",
                 "--out", str(tmp_path / "m.npz"), "--quiet",
                 "--plot", str(tmp_path / "convergence.png")]) == 0
    assert matplotlib.image.imread(tmp_path / "convergence.png").std() > 0.02


def test_mixture_plot_refuses_rows_of_other_features():
    """X with fewer columns than the model failed inside NumPy ('operands
    could not be broadcast together')."""
    gm = fastem.GaussianMixture(3, random_state=0).fit(X)
    for bad in (X[:, :2], X[:, 0]):
        with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
            plot.plot_mixture(gm, bad)
    plt.close("all")
