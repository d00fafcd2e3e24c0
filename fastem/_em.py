"""The one driver of every model fitted by passes over the data.

A *family* brings only its math; the driver runs the loop, and a *backend*
runs the passes. The loop of one start is::

    stats  = family.e_step(params).run(backend, X, weights)   # the E-step: a pass request
    params' = family.m_step(stats)                            # closed form
    (components that lost their points are re-seeded, when the family says so)
    bound  = family.lower_bound(stats, params, params')

until the bound changes by less than ``tol``; ``n_init`` starts are run and
the one with the highest final bound is kept. EM (maximum likelihood) and
mean-field variational inference are both instances: their E-steps request
the same Gaussian pass (``fastem._steps.GaussianPass``) with different
inputs. Several starts or models iterate together (:func:`fit_many`): each
iteration answers all their requests with one pass per request type
(``fastem._steps.answer``), so a family that brings a new kind of E-step
brings a new request type, and the backends answer it without knowing who
asked.

One loop runs every start (:func:`_iterate`), one monitor object follows
each (:class:`_Start`: bound, history, convergence, the monotonicity
warning, progress), and one function chooses between starts
(:func:`_better`).

A family is any object with these attributes (see ``fastem/mixture/`` for the
two written so far, and ``docs/contributing/adding_a_family.md``):

``name``
    Used in messages.
``initialize(data, backend, sample_weight, rng) -> params``
    Initial parameters (its initialisation passes go through ``backend``).
``initialize_steps(data, backend, sample_weight, rng)`` (optional)
    The same as a step generator (``fastem._steps``): the passes it yields
    are shared with the other models of :func:`fit_many`. Random draws only
    before the first request, or they would interleave with another start's.
``e_step(params) -> request``
    The pass its E-step needs, as a request (``fastem._steps``: ``run`` and
    ``run_many``) whose answer is the statistics ``m_step`` takes.
``m_step(stats, draw_rows) -> (params, n_reseeded)``
    Parameters from the additive statistics of one pass. A family that
    re-seeds components which lost their points calls ``draw_rows(m)`` for
    ``m`` data rows (a host array, drawn by sample weight from the driver's
    RandomState), and says how many it re-seeded.
``lower_bound(stats, params_before, params_after) -> float``
    The bound whose change is the convergence test; it must never decrease.
``bound_allowance(params) -> float`` (optional)
    How far the next bound may fall below this one without a warning.
``non_finite_advice`` (optional)
    A sentence the driver adds when a pass's log-likelihood is not finite.
``bound_name`` (optional)
    What the bound is called in messages (default "lower bound").
``converged(change, tol) -> bool`` (optional)
    The convergence test on the bound's change from the previous iteration
    (``inf`` at the first); default ``abs(change) < tol`` (scikit-learn's).
    hmmlearn's test is ``change < tol``: a fall stops the fit too.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import config
from ._compile_clock import compile_seconds
from .exceptions import user_stacklevel
from ._sampling import row_drawer
from ._steps import answer, run_together



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
    init_seconds : float, wall time of this start's initialisation (of an
        initialisation shared by several models, an equal share of its time)
    seconds : list of float, wall time of every iteration
    compile_seconds : float, time spent compiling kernels during this start
        (first use on this CPU only), left out of ``init_seconds`` and ``seconds``
    """

    params: object
    lower_bound: float
    converged: bool
    n_iter: int
    history: list = field(default_factory=list)
    n_reseeds: int = 0
    init_seconds: float = 0.0
    seconds: list = field(default_factory=list)
    compile_seconds: float = 0.0


class _Stopwatch:
    """Wall time of a piece of work without the kernels compiled during it
    (``_compile_clock``): a first fit's compilation is reported on its own,
    not as the time of its initialisation or first iteration."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.c0 = self.c_last = compile_seconds()

    def stop(self):
        """``(seconds of work since construction, seconds of compilation since
        construction or the previous stop)``: several starts stepped after one
        shared pass count its compilation once."""
        now = compile_seconds()
        compiled, self.c_last = now - self.c_last, now
        return max(0.0, time.perf_counter() - self.t0 - (now - self.c0)), compiled


def _report_compile(settings, seconds):
    if settings.verbose and seconds > 0:
        print(f"  compiling kernels for this CPU, first use only: {seconds:.2f}s")


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

    With ``n_init > 1`` the starts share the passes over X when the backend
    can (:func:`_batched_starts`), with the sequential loop's result.
    """
    n_init = 1 if start is not None else settings.n_init
    if n_init > 1 and hasattr(backend, "accumulate_many"):
        batched = _batched_starts(family, data, backend, sample_weight, rng, settings)
        if batched is not None:
            return batched
    best = None
    for init in range(n_init):
        if settings.verbose:
            print(f"Initialization {init}")
        watch = _Stopwatch()
        if start is None:
            params, bound = family.initialize(data, backend, sample_weight, rng), -np.inf
        else:
            params, bound = start
        init_seconds, compiled = watch.stop()
        _report_compile(settings, compiled)
        if settings.verbose >= 2:
            print(f"  Initialization took {init_seconds:.3f}s")
        run = _run(family, data, backend, sample_weight, rng, settings, params, bound)
        run.init_seconds = init_seconds
        run.compile_seconds += compiled
        best = _better(best, run)
    return best


def _better(best, run):
    """The start to keep of ``best`` (None before the first) and ``run``: the
    higher final bound, and any start over one whose bound is -inf (the one
    place where starts are compared)."""
    if best is None or run.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
        return run
    return best


class _Start:
    """One start while it iterates: the driver's bookkeeping around a family's
    M-step and bound, fed one pass's statistics at a time (so that several
    starts can share a pass, :func:`fit_many`)."""

    def __init__(self, family, data, backend, sample_weight, rng, settings, params, bound):
        self.family, self.settings = family, settings
        self.params, self.bound = params, bound
        self.history, self.seconds = [], []
        self.compile_seconds = 0.0
        self.converged = False
        self.n_reseeds = 0
        self.reseeded_last = False
        self.warm = bool(np.isfinite(bound))  # started from a fitted model's bound
        self.allowance = 0.0  # what reg_covar may cost the next bound (family.bound_allowance)

        self.draw_rows = row_drawer(backend, data, sample_weight, rng)

    @property
    def n_iter(self):
        return len(self.history)

    def step(self, stats, watch):
        """One iteration from the statistics of a pass under ``self.params``
        (``watch``: a :class:`_Stopwatch` started with the pass)."""
        settings, family = self.settings, self.family
        prev = self.bound
        if not np.isfinite(stats.log_likelihood):
            raise ValueError("The log-likelihood is not finite: "
                             + getattr(family, "non_finite_advice", "the fit cannot go on."))
        new, reseeded = family.m_step(stats, self.draw_rows)
        self.bound = family.lower_bound(stats, self.params, new)
        self.params = new
        allowance, self.allowance = self.allowance, (
            family.bound_allowance(new) if hasattr(family, "bound_allowance") else 0.0)
        self.n_reseeds += reseeded
        self.history.append(self.bound)
        seconds, compiled = watch.stop()
        self.seconds.append(seconds)
        self.compile_seconds += compiled
        _report_compile(settings, compiled)
        n_iter = self.n_iter
        change = self.bound - prev
        # A bound carried over from a previous fit (warm_start) may belong to
        # other rows: the first change of such a start is not a decrease.
        if (np.isfinite(prev) and not self.reseeded_last
                and not (n_iter == 1 and self.warm)
                and change < -max(config.MONOTONICITY_SLACK, stats.round_off)
                * max(1.0, abs(prev)) - allowance):
            warnings.warn(
                f"{family.name} {getattr(family, 'bound_name', 'lower bound')} decreased by "
                f"{-change:.3g} at iteration {n_iter}, "
                "more than round-off; the fit may be numerically unstable.",
                RuntimeWarning, stacklevel=user_stacklevel(),
            )
        self.reseeded_last = reseeded > 0
        if settings.progress is not None:
            settings.progress(n_iter, settings.max_iter, self.bound, change, self.seconds[-1])
        if settings.verbose >= 2 and n_iter % settings.verbose_interval == 0:
            print(f"  Iteration {n_iter}\t time lapse {self.seconds[-1]:.5f}s\t "
                  f"lower bound {self.bound:.8f}\t ll change {change:.5f}")
        if (family.converged(change, settings.tol) if hasattr(family, "converged")
                else abs(change) < settings.tol):
            self.converged = True

    def result(self, init_seconds=0.0, init_compile_seconds=0.0) -> FitResult:
        if self.settings.verbose:
            state = "converged" if self.converged else "did not converge"
            print(f"Initialization {state}. n_iter={self.n_iter}, lower bound {self.bound:.8f}")
        self.compile_seconds += init_compile_seconds
        return FitResult(self.params, self.bound, self.converged, self.n_iter, self.history,
                         self.n_reseeds, init_seconds, self.seconds, self.compile_seconds)


def _run(family, data, backend, sample_weight, rng, settings, params, bound) -> FitResult:
    """One start: iterate from ``params`` until converged or ``max_iter``."""
    start = _Start(family, data, backend, sample_weight, rng, settings, params, bound)
    _iterate([start], backend, data, sample_weight, settings.max_iter)
    return start.result()


def _iterate(starts, backend, data, sample_weight, max_iter):
    """The one EM loop: every start still running asks for its E-step, the
    requests are answered together (one pass per request type), each start
    takes its step, and a start leaves when it converges; at most
    ``max_iter`` iterations."""
    active = list(starts)
    for _ in range(max_iter):
        if not active:
            break
        watch = _Stopwatch()
        stats = answer([s.family.e_step(s.params) for s in active], backend, data,
                       sample_weight)
        for start, st in zip(active, stats):
            start.step(st, watch)
        active = [s for s in active if not s.converged]


def _batched_starts(family, data, backend, sample_weight, rng, settings):
    """The ``n_init`` starts of one fit in shared passes, or None to run them in turn.

    The starts are initialised one after the other from ``rng``, then iterate
    together (:func:`fit_many`). That uses ``rng`` exactly as the sequential
    loop does as long as no start re-seeds a component (re-seeding draws rows
    from ``rng`` between one start's initialisation and the next). When one
    does, the stream is rewound and None returned, and the caller runs the
    starts in turn: the result is always the sequential one.
    """
    state = rng.get_state()
    one_each = LoopSettings(1, settings.max_iter, settings.tol, settings.verbose,
                            settings.verbose_interval)
    runs = fit_many([family] * settings.n_init, data, backend, sample_weight,
                    [rng] * settings.n_init, one_each)
    if any(run.n_reseeds for run in runs):
        rng.set_state(state)
        return None
    best = None
    for run in runs:
        best = _better(best, run)
    if settings.progress is not None:
        for n_iter, (bound, seconds) in enumerate(zip(best.history, best.seconds), 1):
            prev = best.history[n_iter - 2] if n_iter > 1 else -np.inf
            settings.progress(n_iter, settings.max_iter, bound, bound - prev, seconds)
    return best


def fit_many(families, data, backend, sample_weight, rngs, settings: LoopSettings) -> list:
    """Fit several models in shared passes; returns each one's best start.

    Start ``i`` of every model is initialised (from that model's own ``rng``,
    in order), then all of them iterate together: each iteration is one
    ``backend.accumulate_many`` pass over X for the models still running, and
    a model drops out when it converges. Each model's random stream is used in
    the order its own :func:`fit` would use it, so each result is the one that
    model fits alone (to round-off of the shared pass).

    Parameters
    ----------
    families : list of families
    rngs : list of numpy RandomState, one per family
    settings : LoopSettings (``progress`` is not called)

    Returns
    -------
    list of FitResult
    """
    best = [None] * len(families)
    for init in range(settings.n_init):
        starts, init_seconds = [], []
        # Every model's initialisation at once: the passes they ask for are shared.
        watch = _Stopwatch()
        initial = run_together([_initialize_steps(f, data, backend, sample_weight, rng)
                                for f, rng in zip(families, rngs)], backend, data, sample_weight)
        seconds, compiled = watch.stop()
        _report_compile(settings, compiled)
        seconds, compiled = seconds / len(families), compiled / len(families)
        for family, rng, params in zip(families, rngs, initial):
            init_seconds.append(seconds)
            starts.append(_Start(family, data, backend, sample_weight, rng, settings, params,
                                 -np.inf))
        _iterate(starts, backend, data, sample_weight, settings.max_iter)
        for c, start in enumerate(starts):
            best[c] = _better(best[c], start.result(init_seconds[c], compiled))
    return best


def _initialize_steps(family, data, backend, sample_weight, rng):
    """A family's initialisation as steps: ``initialize_steps`` where it has
    one, else ``initialize`` (its passes then are its own)."""
    if hasattr(family, "initialize_steps"):
        return (yield from family.initialize_steps(data, backend, sample_weight, rng))
    return family.initialize(data, backend, sample_weight, rng)
