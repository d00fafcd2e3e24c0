"""
The ellipses of a fitted mixture, for each covariance type
==========================================================

A Gaussian mixture's components are ellipses: full covariances can tilt,
'tied' components share one shape, 'diag' ones align with the axes and
'spherical' ones are circles. :func:`fastem.plot.plot_mixture` draws the
points coloured by their most probable component and each component's
1σ and 2σ ellipses.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastem import GaussianMixture
from fastem.plot import plot_mixture

rng = np.random.default_rng(1)
A = np.array([[1.5, 0.9], [0.0, 0.4]])
X = np.concatenate([rng.normal(size=(800, 2)) @ A,
                    rng.normal(size=(800, 2)) @ A.T + [4, 2],
                    rng.normal(scale=0.5, size=(800, 2)) + [0, 4]])

fig, axes = plt.subplots(2, 2, figsize=(9, 8), constrained_layout=True)
for ax, covariance_type in zip(axes.ravel(), ["full", "tied", "diag", "spherical"]):
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    plot_mixture(gm, X, features=(0, 1), ax=ax)
    ax.set_title(f"{covariance_type}: BIC {gm.bic(X):,.0f}")
plt.show()
