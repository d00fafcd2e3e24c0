"""
Fitting a memory-mapped file
============================

A fit of ``np.load(path, mmap_mode="r")`` reads the file block by block and
never copies it: the memory a fit needs is the map plus a few small arrays
per thread, so a file larger than RAM fits (the benchmarks fit a 29 GiB file
on a 23 GiB machine). Here a small file stands in for a large one, and the
fit is the one the same rows give in memory.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from fastem import GaussianMixture
from fastem.plot import plot_mixture

rng = np.random.default_rng(3)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "rows.npy")
rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(200_000, 8))
for start in range(0, rows.shape[0], 50_000):  # written in pieces, as a large file would be
    block = rng.normal(size=(50_000, 8)).astype(np.float32)
    block[: 25_000] += 3.0
    rows[start:start + 50_000] = block
rows.flush()
del rows

X = np.load(path, mmap_mode="r")
print(type(X).__name__, X.dtype, X.shape, f"{os.path.getsize(path) / 2**20:.1f} MiB on disk")
gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
in_memory = GaussianMixture(2, covariance_type="diag", random_state=0).fit(np.array(X))
print("same model as in memory:", np.allclose(gm.means_, in_memory.means_, rtol=1e-10))
print(f"converged after {gm.n_iter_} iterations; mean log-likelihood {gm.lower_bound_:.4f}")

# %%
# ``plot_mixture`` draws 20,000 rows picked from the map, not all of it.
ax = plot_mixture(gm, X, features=(0, 1))
plt.show()
