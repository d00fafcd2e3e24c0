"""Plots where people would rather look than read (``pip install "fastem[plot]"``).

matplotlib is imported when a plot is drawn, never by ``import fastem``. Every
function draws into ``ax`` (a new figure when None) and returns the axes.

- :func:`plot_lower_bound`: the bound per iteration of a fit (GaussianMixture,
  BayesianGaussianMixture) or the ELBO per epoch of a VAE;
- :func:`plot_mixture`: a fitted mixture over its data in 2-D, on two chosen
  features or the first two principal axes, points subsampled, one ellipse per
  component;
- :func:`plot_criterion`: an information criterion against the number of
  components, one line per covariance type, the best marked.
"""

from __future__ import annotations

import numpy as np

#: Points drawn by :func:`plot_mixture` at most (a uniform subsample beyond).
MAX_POINTS = 20_000


def _axes(ax):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'fastem[plot]'") from None
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    return ax


def plot_lower_bound(model, ax=None):
    """Plot the lower bound of a fit against the iteration.

    The bound after every iteration (``lower_bounds_``), or a VAE's ELBO per
    epoch (``elbo_history_``).

    Parameters
    ----------
    model : estimator
        A fitted GaussianMixture, BayesianGaussianMixture or VAE.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes by default.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastem import GaussianMixture, plot
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 5]
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> plot.plot_lower_bound(gm).get_xlabel()
    'iteration'
    """
    history = getattr(model, "lower_bounds_", None)
    label = "lower bound"
    if history is None:
        history, label = getattr(model, "elbo_history_", None), "ELBO per row"
    if history is None:
        raise ValueError(f"{type(model).__name__} has no fitted bound history to plot; fit it first.")
    ax = _axes(ax)
    steps = np.arange(1, len(history) + 1)
    ax.plot(steps, np.ravel(history), marker="o", markersize=3)
    ax.set_xlabel("iteration" if label == "lower bound" else "epoch")
    ax.set_ylabel(label)
    converged = getattr(model, "converged_", None)
    ax.set_title(f"{type(model).__name__}: {len(history)} steps"
                 + ("" if converged is None else f", converged={bool(converged)}"))
    ax.grid(alpha=0.3)
    return ax


def _full_covariances(model):
    """Every component's (d, d) covariance, whatever the covariance type."""
    cov = np.asarray(model.covariances_, dtype=np.float64)
    k, d = model.means_.shape
    ctype = model.covariance_type
    if ctype == "full":
        return cov
    if ctype == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if ctype == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(d)


def _projection(model, X, features):
    """``(offset (d,), P (d, 2), axis labels)`` of the 2-D view."""
    d = model.means_.shape[1]
    if features is not None:
        i, j = (int(f) for f in features)
        if not (0 <= i < d and 0 <= j < d and i != j):
            raise ValueError(f"features must be two different column indices in [0, {d}), "
                             f"got {features!r}.")
        P = np.zeros((d, 2))
        P[i, 0] = P[j, 1] = 1.0
        names = getattr(model, "feature_names_in_", None)
        labels = [str(names[f]) if names is not None else f"feature {f}" for f in (i, j)]
        return np.zeros(d), P, labels
    if d == 1:
        raise ValueError("a 2-D view needs at least two features.")
    # Principal axes of the mixture itself: its total covariance about its mean.
    w = model.weights_
    mean = w @ model.means_
    spread = model.means_ - mean
    total = np.tensordot(w, _full_covariances(model), axes=1) + (spread.T * w) @ spread
    vals, vecs = np.linalg.eigh(total)
    return mean, vecs[:, ::-1][:, :2], ["first principal axis", "second principal axis"]


def plot_mixture(model, X, features=None, max_points=MAX_POINTS, random_state=0, ax=None):
    """A fitted Gaussian mixture over its data: points coloured by component,
    one ellipse per component (1 and 2 standard deviations).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted mixture.
    X : array-like of shape (n_samples, n_features)
        The points; at most ``max_points`` rows, picked uniformly, are drawn.
    features : tuple of two int, optional
        The two columns to show; None shows the mixture's first two
        principal axes.
    max_points : int, default=20000
        Most points drawn.
    random_state : int, default=0
        Seeds the choice of points when there are more than ``max_points``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes by default.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastem import GaussianMixture, plot
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 5]
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> ax = plot.plot_mixture(gm, X)
    >>> len(ax.patches)  # two ellipses per component
    4
    """
    from matplotlib.patches import Ellipse

    model._check_fitted()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise ValueError(f"X must have shape (n_samples, {model.n_features_in_}), the features "
                         f"the model was fitted on; got {X.shape}.")
    n = X.shape[0]
    rows = (np.sort(np.random.RandomState(random_state).choice(n, size=max_points, replace=False))
            if n > max_points else np.arange(n))
    points = np.asarray(X[rows], dtype=np.float64)
    offset, P, labels = _projection(model, X, features)
    view = (points - offset) @ P
    colours = model.predict(points)
    ax = _axes(ax)
    ax.scatter(view[:, 0], view[:, 1], c=colours, s=4, cmap="tab10", alpha=0.5, linewidths=0)
    for j, (mu, cov) in enumerate(zip(model.means_, _full_covariances(model))):
        if model.weights_[j] < 1e-3:  # switched-off components (variational fits)
            continue
        centre = (mu - offset) @ P
        vals, vecs = np.linalg.eigh(P.T @ cov @ P)
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        for scale in (1.0, 2.0):
            width, height = 2 * scale * np.sqrt(np.maximum(vals[::-1], 0.0))
            ax.add_patch(Ellipse(centre, width, height, angle=angle, fill=False,
                                 color="black", lw=1.2 if scale == 1.0 else 0.6))
        ax.plot(*centre, marker="+", color="black")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    shown = f"{len(rows):,} of {n:,} points" if len(rows) < n else f"{n:,} points"
    ax.set_title(f"{type(model).__name__}, {model.n_components} components ({shown})")
    ax.autoscale_view()
    return ax


def plot_criterion(results, criterion="bic", ax=None):
    """An information criterion against the number of components.

    Parameters
    ----------
    results : mapping of str to array-like
        Equal-length columns with at least ``n_components``,
        ``covariance_type`` and ``criterion``: the layout of
        ``GaussianMixtureIC.results_`` (a DataFrame works too).
    criterion : {'bic', 'aic'}, default='bic'
        The column to plot; the lowest value is marked.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes by default.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on, one line per covariance type.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fastem import plot
    >>> results = {"n_components": [1, 2, 3], "covariance_type": ["full"] * 3,
    ...            "bic": [300.0, 250.0, 260.0]}
    >>> plot.plot_criterion(results).get_legend_handles_labels()[1]
    ['full', 'best: k=2, full']
    """
    if criterion not in ("bic", "aic"):
        raise ValueError(f"Invalid value for 'criterion': {criterion!r}; expected 'bic' or 'aic'.")
    k = np.asarray(results["n_components"])
    types = np.asarray(results["covariance_type"])
    values = np.asarray(results[criterion], dtype=np.float64)
    if not (k.shape == types.shape == values.shape) or k.ndim != 1 or k.size == 0:
        raise ValueError("results needs equal-length 1-D 'n_components', 'covariance_type' and "
                         f"'{criterion}' columns.")
    ax = _axes(ax)
    for ctype in dict.fromkeys(types.tolist()):
        sel = np.flatnonzero(types == ctype)
        order = sel[np.argsort(k[sel], kind="stable")]
        ax.plot(k[order], values[order], marker="o", label=ctype)
    best = int(np.argmin(values))
    ax.plot(k[best], values[best], marker="*", markersize=16, color="black", linestyle="none",
            label=f"best: k={k[best]}, {types[best]}")
    ax.set_xlabel("n_components")
    ax.set_ylabel(criterion.upper() + " (lower is better)")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


__all__ = ["plot_lower_bound", "plot_mixture", "plot_criterion"]
