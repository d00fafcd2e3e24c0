"""``partial_fit``: stepwise EM and stochastic variational inference.

Both keep *running statistics*: after the t-th batch,

    s_t = (1 - rho_t) s_(t-1) + rho_t * s_hat(batch t),   rho_t = (tau + t)^(-kappa),

where ``s_hat`` is the batch's statistics per unit of weight (its pass under
the current parameters, divided by the batch's total weight) and the first
batch sets ``s_1 = s_hat`` (``rho_1 = 1``). The M-step then runs on ``s_t``
scaled to the weight of every row seen so far. For the maximum-likelihood
mixture this is stepwise EM (Cappé & Moulines 2009; Liang & Klein 2009): the
closed-form M-step is scale-free. For the variational mixture, whose
posterior is the prior plus the statistics, it is stochastic variational
inference's natural-gradient step on the global parameters (Hoffman et al.
2013) with the data size taken as the weight seen so far, so that the
posterior is that of the rows streamed so far.

With ``rho = 1`` on a batch that is all of X, one step is one iteration of
batch EM (or VB) to round-off: stepwise EM contains batch EM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._sampling import row_drawer


def step_size(t: int, decay: float, offset: float) -> float:
    """``rho_t = (offset + t)^(-decay)``; 1 for the first batch, which has
    nothing to average with."""
    return 1.0 if t <= 1 else float((offset + t) ** -decay)


@dataclass
class Stream:
    """What ``partial_fit`` keeps between calls (not saved in model files):
    a fixed amount of memory, however long the stream."""

    family: object
    rng: np.random.RandomState
    running: object = None  #: Stats per unit of weight, or None before the first batch
    steps: int = 0
    weight_seen: float = 0.0
    rho: float = 1.0  #: the latest step size

    def seed(self, sample):
        """Start from ``sample``'s statistics (a pass over rows drawn at random
        from all of X, under the starting model) as ``s_1``, so that the first
        block is the second step: ``fit`` with ``batch_size`` knows the start
        it drew from all of X (a first block from one end of sorted rows set
        ``s_1`` alone, and a component it did not reach lost its mass)."""
        if not sample.weight_sum > 0:
            return  # every sampled row weightless: the first block starts instead
        self.running = sample.scaled(1.0 / sample.weight_sum)
        self.steps = 1

    def update(self, batch, decay, offset, data_weight=None):
        """Fold one batch's statistics in; returns the statistics the M-step
        takes: the running ones scaled to ``data_weight`` (the weight of all
        of X, when X is all there) or else to the weight seen so far."""
        self.steps += 1
        rho = step_size(self.steps, decay, offset)
        unit = batch.scaled(1.0 / batch.weight_sum)
        if self.running is None or rho == 1.0:
            self.running = unit
        else:
            previous = self.running.recentred(unit.centres).scaled(1.0 - rho)
            self.running = previous + unit.scaled(rho)
        self.rho = rho
        self.weight_seen += batch.weight_sum
        return self.running.scaled(self.weight_seen if data_weight is None else data_weight)

    def step(self, params, backend, data, sample_weight, decay, offset, data_weight=None):
        """One step on one batch held by ``backend``: its pass under ``params``,
        the running statistics, the M-step. Returns ``(params, bound, n_reseeded)``."""
        stats = self.family.e_step(params).run(backend, data, sample_weight)
        if not np.isfinite(stats.log_likelihood):
            raise ValueError("the batch's log-likelihood is not finite under the current model "
                             "(rows far outside its scale?); rescale X or increase reg_covar.")
        total = self.update(stats, decay, offset, data_weight)
        # re-seeded components start at rows of this batch
        new, reseeded = self.family.m_step(total, row_drawer(backend, data, sample_weight,
                                                              self.rng))
        return new, self.family.lower_bound(total, params, new), reseeded


def batches(n_samples, batch_size):
    """``[(start, stop), ...]``: consecutive blocks of ``batch_size`` rows (the
    last one shorter), so that each batch is a slice of X read in one piece."""
    return [(a, min(a + batch_size, n_samples)) for a in range(0, n_samples, batch_size)]

