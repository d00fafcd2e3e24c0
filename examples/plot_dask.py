"""
A Dask fit
==========

A Dask array is fitted where its chunks live (``pip install "fastem[dask]"``):
every EM pass is a round of tasks, each chunk computes its statistics with
the same compiled kernel, and the statistics are summed in a fixed order, so
the model equals the in-memory one to round-off. With a
``distributed.Client`` the same code runs on a cluster, and
``fastem.warmup(client=client)`` compiles the kernels on every worker first.
"""

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np

from fastem import GaussianMixture

rng = np.random.default_rng(4)
X = np.concatenate([rng.normal(size=(30_000, 3)) + c for c in ([0, 0, 0], [4, 4, 0], [0, 4, 4])])
chunked = da.from_array(X, chunks=(10_000, 3))
print(f"{chunked.npartitions} chunks")

gm = GaussianMixture(3, random_state=0).fit(chunked)
reference = GaussianMixture(3, random_state=0).fit(X)
print("means equal to the in-memory fit's:", np.allclose(gm.means_, reference.means_, rtol=1e-10))

labels = gm.predict(chunked)  # a lazy dask array
counts = np.bincount(labels.compute(), minlength=3)
fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
ax.bar(range(3), counts)
ax.set_xlabel("component")
ax.set_ylabel("rows")
ax.set_title("rows per component, predicted chunk by chunk")
plt.show()
