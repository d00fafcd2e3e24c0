"""
Sample weights are counts
=========================

``sample_weight`` follows scikit-learn's convention: an integer weight stands
for that many copies of the row. A weighted fit of the distinct rows of a
data set with many repeats is therefore the fit of the full data set, from
far fewer rows, and multiplying every weight by a constant changes nothing.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastem import GaussianMixture
from fastem.plot import plot_mixture

rng = np.random.default_rng(5)
# Points on a grid: many rows repeat exactly (counts, binned data, ...).
full = np.round(np.concatenate([rng.normal(size=(20_000, 2)),
                                rng.normal(size=(20_000, 2)) * 0.7 + [3, 1]]), 1)
distinct, counts = np.unique(full, axis=0, return_counts=True)
print(f"{len(full):,} rows, {len(distinct):,} distinct")

# The same start for every fit, so that only the rows differ.
start = dict(weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [3.0, 1.0]],
             precisions_init=np.stack([np.eye(2)] * 2), tol=1e-8, max_iter=500)
repeated = GaussianMixture(2, **start).fit(full)
weighted = GaussianMixture(2, **start).fit(distinct, sample_weight=counts)
scaled = GaussianMixture(2, **start).fit(distinct, sample_weight=counts * 1e-6)
print("weighted == repeated rows:", np.allclose(weighted.means_, repeated.means_, rtol=1e-9))
print("weights x 1e-6 change nothing:", np.allclose(scaled.means_, weighted.means_, rtol=1e-9))

fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
plot_mixture(weighted, distinct, features=(0, 1), ax=ax)
ax.set_title("fitted on the distinct rows, weighted by their counts")
plt.show()
