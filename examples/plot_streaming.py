"""
Streams and mini-batches: stepwise EM and stochastic VI
=======================================================

``partial_fit`` updates a mixture one batch at a time, in memory that does not
grow with the stream: the batch's statistics are averaged into running
statistics with step sizes ``(learning_offset + t)^(-learning_decay)``, and the
M-step follows every batch (stepwise EM; for ``BayesianGaussianMixture``,
stochastic variational inference). Batch EM moves once per pass over all rows;
stepwise EM moves after every batch, so it gets close to the optimum after
reading a fraction of the rows. ``GaussianMixture(batch_size=...)`` runs the
same steps over data that is all there.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from fastem import BayesianGaussianMixture, ConvergenceWarning, GaussianMixture
from fastem.problems import make_mixture

X = make_mixture(220_000, 8, 8, seed=7)[0]
train, test = X[:200_000], X[200_000:]
batch = 5_000

curves = {"batch EM": [], "stepwise EM (partial_fit)": [], "stochastic VI (partial_fit)": []}
em = GaussianMixture(8, random_state=0, max_iter=1, warm_start=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for i in range(1, 16):  # one batch-EM iteration per call
        em.fit(train)
        curves["batch EM"].append((i * len(train), em.score(test)))
for name, model in [("stepwise EM (partial_fit)", GaussianMixture(8, random_state=0)),
                    ("stochastic VI (partial_fit)",
                     BayesianGaussianMixture(n_components=8, random_state=0))]:
    rows = 0
    for _ in range(2):  # two passes over the rows, batch by batch
        for start in range(0, len(train), batch):
            model.partial_fit(train[start:start + batch])
            rows += batch
            if (start // batch) % 5 == 0:
                curves[name].append((rows, model.score(test)))

best = max(score for points in curves.values() for _, score in points)
fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
for name, points in curves.items():
    rows, score = zip(*points)
    ax.plot(rows, best - np.array(score), marker="o", markersize=3, label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("rows read")
ax.set_ylabel("held-out log-likelihood below the best (nats)")
ax.legend()
plt.show()

# %%
# Stepwise EM gets within 1e-3 nats of the best after reading well under one
# pass of rows, where batch EM has made two iterations; batch EM then keeps
# improving, while the stepwise steps leave a noise floor set by the batch size
# and the step sizes (``learning_decay``, ``learning_offset``).
