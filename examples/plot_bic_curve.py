"""
Choosing the number of components with the BIC
==============================================

:class:`fastem.GaussianMixtureIC` fits a Gaussian mixture for every number of
components and covariance type in shared passes over the data (one pass per
iteration for all candidates) and keeps the one with the lowest Bayesian
information criterion, ``-2 log L + p log n``.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastem import GaussianMixtureIC
from fastem.plot import plot_criterion

rng = np.random.default_rng(0)
centres = np.array([[0, 0], [5, 0], [0, 5], [5, 5]])
X = np.concatenate([c + rng.normal(scale=0.8, size=(1500, 2)) for c in centres])

ic = GaussianMixtureIC(n_components=range(1, 9), covariance_type=["full", "diag"],
                       random_state=0).fit(X)
print(f"best: {ic.n_components_} components, covariance_type={ic.covariance_type_!r}")
print(f"passes over X during EM: {ic.n_passes_} for {len(ic.estimators_)} candidates")

# %%
# The criterion falls steeply until the true number of components, four, then
# rises slowly: each extra component costs ``p log n`` and explains little.
ax = plot_criterion(ic.results_, "bic")
plt.show()
