"""
Variational inference switches off components it does not need
===============================================================

:class:`fastem.BayesianGaussianMixture` puts a Dirichlet-process prior on the
weights. Given ten components for data from three, the posterior leaves the
surplus components with weights near zero, so ``n_components`` is an upper
bound rather than a choice.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastem import BayesianGaussianMixture
from fastem.plot import plot_mixture

rng = np.random.default_rng(2)
X = np.concatenate([rng.normal(size=(1000, 2)) + c for c in ([0, 0], [6, 1], [2, 6])])

bgm = BayesianGaussianMixture(n_components=10, weight_concentration_prior=1e-2,
                              max_iter=1000, random_state=0).fit(X)
print(f"converged after {bgm.n_iter_} iterations")
print("weights:", np.round(bgm.weights_, 3))
print("components in use (weight > 1%):", int((bgm.weights_ > 0.01).sum()))

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
left.bar(np.arange(10), bgm.weights_)
left.set_xlabel("component")
left.set_ylabel("posterior mean weight")
left.set_title("three of ten components carry the data")
plot_mixture(bgm, X, features=(0, 1), ax=right)
plt.show()
