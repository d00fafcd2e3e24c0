"""The one driver of every model fitted by passes over the data.

A *family* brings only its math; the driver runs the loop, and a *backend*
runs the passes. The loop of one start is::

    stats  = backend.accumulate(X, family.kernel_inputs(params), weights)   # the E-step pass
    params' = family.m_step(stats)                                          # closed form
    (components that lost their points are re-seeded, when the family says so)
    bound  = family.lower_bound(stats, params, params')

until the bound changes by less than ``tol``; ``n_init`` starts are run and
the one with the highest final bound is kept. EM (maximum likelihood) and
mean-field variational inference are both instances: their passes are the
same Gaussian kernel with different inputs.

A family is any object with these attributes (see ``fastem/mixture/`` for the
two written so far, and the README's "Adding a model family"):

``name``
    Used in messages.
``initialize(data, backend, sample_weight, rng) -> params``
    Initial parameters (its initialisation passes go through ``backend``).
``kernel_inputs(params) -> KernelInputs``
    The pass's per-component means, precision factors and constants.
``m_step(stats, draw_rows) -> (params, n_reseeded)``
    Parameters from the additive statistics of one pass. A family that
    re-seeds components which lost their points calls ``draw_rows(m)`` for
    ``m`` data rows (a host array, drawn by sample weight from the driver's
    RandomState), and says how many it re-seeded.
``lower_bound(stats, params_before, params_after) -> float``
    The bound whose change is the convergence test; it must never decrease.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import config
from ._sampling import choose_rows



@dataclass
class FitResult:
    """The outcome of the best start of a fit.

    Attributes
    ----------
    params : the family's parameters after the last M-step
    lower_bound : float, the family's bound after the last iteration
        (the previous fit's bound for a warm start with ``max_iter=0``)
    converged : bool
    n_iter : int, iterations run by this start
    history : list of float, the bound after every iteration
    n_reseeds : int, components re-seeded during this start
    init_seconds : float, wall time of this start's initialisation
    seconds : list of float, wall time of every iteration
    """

    params: object
    lower_bound: float
    converged: bool
    n_iter: int
    history: list = field(default_factory=list)
    n_reseeds: int = 0
    init_seconds: float = 0.0
    seconds: list = field(default_factory=list)


@dataclass
class LoopSettings:
    """What the driver needs from an estimator's parameters."""

    n_init: int
    max_iter: int
    tol: float
    verbose: int = 0
    verbose_interval: int = 10
    progress: object = None  #: ``progress(n_iter, max_iter, bound, change, seconds)`` or None


def fit(family, data, backend, sample_weight, rng, settings: LoopSettings,
        start=None) -> FitResult:
    """Fit ``family`` to the data held by ``backend``; returns the best start.

    Parameters
    ----------
    family : see the module docstring
    data : what ``backend.prepare`` returned
    sample_weight : (n,) float64 or None
    rng : numpy RandomState; every random draw (initialisation, re-seeding) uses it
    settings : LoopSettings
    start : ``(params, lower_bound)`` to continue from (warm start; ``n_init`` is
        then 1), or None to initialise
    """
    n_init = 1 if start is not None else settings.n_init
    best = None
    for init in range(n_init):
        if settings.verbose:
            print(f"Initialization {init}")
        t0 = time.perf_counter()
        if start is None:
            params, bound = family.initialize(data, backend, sample_weight, rng), -np.inf
        else:
            params, bound = start
        init_seconds = time.perf_counter() - t0
        if settings.verbose >= 2:
            print(f"  Initialization took {init_seconds:.3f}s")
        run = _run(family, data, backend, sample_weight, rng, settings, params, bound)
        run.init_seconds = init_seconds
        if best is None or run.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
            best = run
    return best


def _run(family, data, backend, sample_weight, rng, settings, params, bound) -> FitResult:
    """One start: iterate from ``params`` until converged or ``max_iter``."""

    def draw_rows(count):
        n = data.shape[0]
        rows = choose_rows(n, min(count, n), sample_weight, rng)
        return backend.take_rows(data, rows)

    history, seconds = [], []
    converged = False
    n_iter = n_reseeds = 0
    reseeded_last = False
    for n_iter in range(1, settings.max_iter + 1):
        t0 = time.perf_counter()
        prev = bound
        stats = backend.accumulate(data, family.kernel_inputs(params), sample_weight)
        if not np.isfinite(stats.log_likelihood):
            raise ValueError(
                "The log-likelihood is not finite: squared Mahalanobis distances overflow "
                "float64 (the data's scale is extreme for the covariances; with "
                "init_params='k-means++' or 'random_from_data' the initial covariances "
                "are reg_covar * I). Rescale X, increase reg_covar or use init_params='kmeans'."
            )
        new, reseeded = family.m_step(stats, draw_rows)
        bound = family.lower_bound(stats, params, new)
        params = new
        n_reseeds += reseeded
        history.append(bound)
        seconds.append(time.perf_counter() - t0)
        change = bound - prev
        if (np.isfinite(prev) and not reseeded_last
                and change < -config.MONOTONICITY_SLACK * max(1.0, abs(prev))):
            warnings.warn(
                f"{family.name} lower bound decreased by {-change:.3g} at iteration {n_iter}, "
                "more than round-off; the fit may be numerically unstable.",
                RuntimeWarning, stacklevel=5,
            )
        reseeded_last = reseeded > 0
        if settings.progress is not None:
            settings.progress(n_iter, settings.max_iter, bound, change, seconds[-1])
        if settings.verbose >= 2 and n_iter % settings.verbose_interval == 0:
            print(f"  Iteration {n_iter}\t time lapse {seconds[-1]:.5f}s\t "
                  f"lower bound {bound:.8f}\t ll change {change:.5f}")
        if abs(change) < settings.tol:
            converged = True
            break
    if settings.verbose:
        state = "converged" if converged else "did not converge"
        print(f"Initialization {state}. n_iter={n_iter}, lower bound {bound:.8f}")
    return FitResult(params, bound, converged, n_iter, history, n_reseeds, 0.0, seconds)
