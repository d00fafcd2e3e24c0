"""
Probabilistic PCA against PCA
=============================

:class:`fastem.PPCA` fits the maximum-likelihood probabilistic PCA model
(Tipping & Bishop 1999) in one pass over the data. Its principal axes are
PCA's; its variances use the maximum-likelihood ``1/N`` (scikit-learn's
``PCA`` divides by ``N - 1``); and, being a density, it scores rows, which
PCA cannot.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from fastem import PPCA

X = StandardScaler().fit_transform(load_wine().data)
n = X.shape[0]

ppca = PPCA(n_components=4).fit(X)
pca = PCA(n_components=4).fit(X)

cosines = np.abs(np.sum(ppca.components_ * pca.components_, axis=1))
print("|cos| between the axes:", np.round(cosines, 10))
print("explained variance ratio to PCA's:",
      np.round(ppca.explained_variance_ / pca.explained_variance_, 6), f"(N-1)/N = {(n - 1) / n:.6f}")
print(f"noise variance {ppca.noise_variance_:.4f}; mean log-likelihood {ppca.score(X):.3f} nats")

# %%
# The eigenvalue spectrum: PPCA keeps the top four and replaces the rest by
# their mean, the noise variance σ².
spectrum = np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]
fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
ax.plot(np.arange(1, 14), spectrum, "o-", label="eigenvalues of the covariance")
ax.plot(np.arange(1, 5), ppca.explained_variance_, "s", markersize=10, fillstyle="none",
        label="PPCA explained_variance_")
ax.axhline(ppca.noise_variance_, color="gray", linestyle="--", label="PPCA noise_variance_")
ax.set_xlabel("component")
ax.set_ylabel("variance")
ax.legend()
plt.show()
