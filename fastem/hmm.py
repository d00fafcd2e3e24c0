"""``GaussianHMM``: hidden Markov models with Gaussian emissions (Baum-Welch).

hmmlearn's ``GaussianHMM`` interface, with its parameters, defaults, fitted
attributes and updates (including its priors), so that given the same
initial parameters the two fit the same model.

The E-step of one sequence: emission log-densities ``log N(x_t; mu_j, C_j)``
from the mixtures' Gaussian kernel, the forward-backward recursions
(``kernels/cpu/hmm.py``: state posteriors ``gamma`` and expected
transitions ``xi``), and the mixtures' weighted statistics with ``gamma`` as
the weights (``sum gamma``, ``sum gamma (x - mu)``, ``sum gamma (x - mu)(x - mu)^T``
about each state's mean), plus the start and transition counts. Parts of
whole sequences run in parallel and are summed in their order (the same
bits for any number of threads); the M-step is hmmlearn's closed form.

The fit is a family (:class:`_BaumWelch`) of the one EM driver that fits
every model (``fastem._em``): the driver runs the loop, its convergence
test is the family's (hmmlearn's), and ``monitor_`` records it. The passes
(E-step, scoring, Viterbi) are the backend's (``sequence_passes``:
``backends/cpu_hmm.py``, ``backends/cuda_hmm.py``, and the CPU's on every
chunk of a dask array, ``backends/dask.py``); this module gives them the
emission densities (``KernelInputs``), ``startprob_`` and ``transmat_``.
"""

from __future__ import annotations

import sys
import warnings
from typing import NamedTuple

import numpy as np

from . import _em
from . import _validation as val
from . import config
from ._compile_clock import compile_seconds
from ._covariance import COVARIANCE_TYPES, Layout, layout_of, parameter_shape
from ._estimator import EstimatorBase, PreparedFit, SaveLoad
from ._model import factor_inputs, full_from_lower, precision_cholesky_from_covariances
from ._precision import check_dtype
from ._sampling import check_random_state
from .backends import BACKENDS, backend_for
from .backends.cuda import CudaData
from .backends.dask import DaskData, at_sequence_boundaries, check_dask_array, is_dask_array
from .exceptions import user_stacklevel
from .model_file import FileError, ModelFile, check_simplex, register_model

#: Added to a covariance that is not positive-definite, for its density only
#: (hmmlearn's ``_log_multivariate_normal_density_full`` fallback).
_COLLAPSE_COVAR = 1e-7
#: A covariance whose smallest eigenvalue is below this times n_features
#: times its largest is singular to round-off (collapsed).
_SINGULAR = 10 * np.finfo(np.float64).eps


def split_lengths(n_samples, lengths):
    """Row boundaries of the sequences: sequence ``s`` is rows
    ``bounds[s]:bounds[s + 1]``; one sequence, all of X, when ``lengths`` is None.

    Returns
    -------
    bounds : ndarray of shape (n_sequences + 1,), int64

    Raises
    ------
    ValueError
        For lengths that are not positive integers or do not sum to n_samples.
    """
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a non-empty 1-D array of integers, got {lengths!r:.80}")
    if np.any(arr <= 0):
        raise ValueError(f"lengths must be positive; got {int(arr.min())}.")
    if int(arr.sum()) != n_samples:
        raise ValueError(f"lengths sum to {int(arr.sum())}, but X has {n_samples} rows.")
    return np.concatenate([[0], np.cumsum(arr)]).astype(np.int64)


class ConvergenceMonitor:
    """hmmlearn's convergence monitor: ``history`` of the log-likelihood
    before each M-step, ``iter``, and ``converged`` (``n_iter`` reached or a
    gain below ``tol``).

    Parameters
    ----------
    tol : float
        Smallest gain in log-likelihood that continues EM.
    n_iter : int
        Most iterations.
    verbose : bool
        Print each iteration's log-likelihood and gain to stderr.
    """

    def __init__(self, tol, n_iter, verbose):
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history, self.iter = [], 0

    def report(self, log_prob):
        """Record one iteration's log-likelihood (and warn if it fell).

        Parameters
        ----------
        log_prob : float
            The log-likelihood of the data before this iteration's M-step.
        """
        if self.history and log_prob - self.history[-1] < -1e-10 * max(1.0, abs(log_prob)):
            warnings.warn(f"GaussianHMM log-likelihood decreased by {self.history[-1] - log_prob:.3g} "
                          f"at iteration {self.iter + 1}; the fit may be numerically unstable.",
                          RuntimeWarning, stacklevel=2)
        self._record(log_prob)

    def _record(self, log_prob):
        """:meth:`report` without its warning: a fit's driver (``fastem._em``)
        warns of a fall itself."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            print(f"{self.iter + 1:>10d} {log_prob:>16.8f} {delta:>+16.8f}", file=sys.stderr)
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self):
        """Whether EM stopped: ``n_iter`` reached, or the last gain below ``tol``."""
        return (self.iter == self.n_iter
                or (len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol))

    def __repr__(self):
        return (f"ConvergenceMonitor(history={self.history[-2:]!r}, iter={self.iter}, "
                f"n_iter={self.n_iter}, tol={self.tol}, verbose={self.verbose}, "
                f"converged={self.converged})")


@register_model
class GaussianHMM(SaveLoad, EstimatorBase):
    """Hidden Markov model with Gaussian emissions, fitted by Baum-Welch (EM).

    hmmlearn's ``GaussianHMM``: the same parameters with the same names,
    defaults and meaning, fitted attributes and methods; plus ``backend``
    and per-sequence ``sample_weight``.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        Emission covariances: one variance per state, a diagonal per state,
        a full matrix per state, or one full matrix shared by all states.
    min_covar : float, default=1e-3
        Added to the diagonal of the data's covariance for the initial
        covariances.
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior on ``startprob_`` (1: none).
    transmat_prior : float or array-like of shape (n_components, n_components), default=1.0
        Dirichlet prior on each row of ``transmat_`` (1: none).
    means_prior : float or array-like, default=0
        Mean of the normal prior on ``means_``: a float, one value per state
        (shape (n_components,)) or per state and feature (n_components,
        n_features).
    means_weight : float or array-like of shape (n_components,), default=0
        Precision of the normal prior on ``means_`` (0: none), per state.
    covars_prior : float or array-like, default=1e-2
        Scale of the (inverse-gamma or inverse-Wishart) prior on the
        covariances: a float, one value per state, or an array in the layout
        of ``covars_`` for 'diag' and 'full' ((n_components, n_features),
        (n_components, n_features, n_features)); (n_features, n_features)
        for 'tied'.
    covars_weight : float or array-like, default=1
        Shape of that prior: a float, or one value per state ('diag' also
        takes (n_components, n_features)).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of :meth:`decode` and :meth:`predict`: the most probable path,
        or each step's most probable state.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    n_iter : int, default=10
        Most EM iterations.
    tol : float, default=1e-2
        EM stops when the log-likelihood gains less than this.
    verbose : bool, default=False
        Print each iteration's log-likelihood to stderr.
    params : str, default='stmc'
        Parameters updated by EM: 's' startprob, 't' transmat, 'm' means,
        'c' covars.
    init_params : str, default='stmc'
        Parameters initialised by ``fit`` (the others must be set before).
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of forward-backward arithmetic, accepted for
        compatibility: both run the same recursion, rescaled probabilities,
        with a sequence redone in logarithms when rescaling would lose what
        matters, which is as fast as hmmlearn's 'scaling' and as robust as
        its 'log' (both agree with hmmlearn's to round-off); the GPU runs
        the log-space recursion.
    backend : {'cpu', 'cuda'}, default='cpu'
        Where the passes run: the CPU kernels (on the Dask workers when X is
        a dask array, whose row chunks are cut at sequence boundaries so that
        no sequence is split), or an NVIDIA GPU through numba.cuda (X, a
        host array or a GPU array such as CuPy's, is placed on the GPU once
        per call, or streamed in groups of whole sequences when it does not
        fit; one CUDA block runs one sequence).
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Compute dtype of the emission densities and statistics: None follows
        the data (float32 data compute in float32, with the mixtures'
        safeguards: rows centred in float64, a pass the model's scale cannot
        resolve in float32 runs in float64); the recursions and the M-step
        are float64 always.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state distribution.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition probabilities; each row sums to 1.
    means_ : ndarray of shape (n_components, n_features)
        Emission means.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Emission covariances as full matrices (hmmlearn's property); set it
        in the layout of ``covariance_type``: (n_components,) 'spherical',
        (n_components, n_features) 'diag', (n_features, n_features) 'tied',
        (n_components, n_features, n_features) 'full'.
    n_features : int
        Dimensions of the emissions.
    monitor_ : ConvergenceMonitor
        ``history`` of the log-likelihood per iteration, ``iter``, ``converged``.
    compile_seconds_ : float
        Wall time the fit spent compiling kernels: only on a kernel's first
        use on this CPU, since kernels are cached on disk (``fastem warmup``
        compiles them ahead of time); with ``verbose`` it is printed on a
        line of its own.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianHMM
    >>> rng = np.random.default_rng(0)
    >>> states = np.repeat([0, 1, 0, 1], 50)
    >>> X = rng.normal(size=(200, 1)) + 5 * states[:, None]
    >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X)
    >>> np.sort(hmm.means_[:, 0]).round().astype(int)
    array([0, 5])
    >>> bool((hmm.transmat_.diagonal() > 0.9).all())  # states persist
    True
    """

    _fitted_attribute = "startprob_"
    _model_file = ModelFile(arrays={
        "startprob": lambda k, d, p: (k,), "transmat": lambda k, d, p: (k, k),
        "means": lambda k, d, p: (k, d),
        "covars": lambda k, d, p: parameter_shape(p["covariance_type"], k, d)})

    def _saved_array(self, name):
        return self._covars_ if name == "covars" else getattr(self, name + "_")

    def _check_file_arrays(self, arrays):
        """A model file's arrays are a valid model (``fastem.model_file``)."""
        check_simplex("startprob", arrays["startprob"])
        for i, row in enumerate(arrays["transmat"]):
            check_simplex(f"transmat[{i}]", row)
        for name in ("means", "covars"):
            if not np.all(np.isfinite(arrays[name])):
                raise FileError(name, "must be finite")
        c = arrays["covars"]
        if c.ndim < 2:
            ok = np.all(c > 0)
        elif self.covariance_type == "diag":
            ok = np.all(c > 0)
        else:
            mats = c.reshape(-1, c.shape[-1], c.shape[-1])
            ok = (np.allclose(mats, np.swapaxes(mats, 1, 2))
                  and all(np.linalg.eigvalsh(m).min() > 0 for m in mats))
        if not ok:
            raise FileError("covars", f"'{self.covariance_type}' covariances must be positive "
                            "(symmetric positive-definite for 'full' and 'tied')")

    def _restore_arrays(self, arrays):
        self.startprob_, self.transmat_ = arrays["startprob"], arrays["transmat"]
        self.means_, self._covars_ = arrays["means"], arrays["covars"]
        self.n_features = self.means_.shape[1]
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", backend="cpu", dtype=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.backend = backend
        self.dtype = dtype

    # -- parameters -----------------------------------------------------------

    @property
    def covars_(self):
        """Emission covariances as full (n_components, n_features, n_features) matrices."""
        c, k = self._covars_, self.n_components
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "tied":
            return np.tile(c, (k, 1, 1))
        if self.covariance_type == "diag":
            return np.stack([np.diag(v) for v in c])
        return np.ravel(c)[:, None, None] * np.eye(self.means_.shape[1])[None]

    @covars_.setter
    def covars_(self, covars):
        self._covars_ = np.array(covars, dtype=np.float64, copy=True)

    def _check_params(self):
        val._check_int(self.n_components, "n_components", 1)
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"Invalid value for 'covariance_type': {self.covariance_type!r}; "
                             f"expected one of {list(COVARIANCE_TYPES)}.")
        val._check_real(self.min_covar, "min_covar", 0.0)
        val._check_int(self.n_iter, "n_iter", 1)
        val._check_real(self.tol, "tol", -np.inf)
        if self.algorithm not in ("viterbi", "map"):
            raise ValueError(f"Invalid value for 'algorithm': {self.algorithm!r}; expected "
                             "'viterbi' or 'map'.")
        if self.implementation not in ("log", "scaling"):
            raise ValueError(f"Invalid value for 'implementation': {self.implementation!r}; "
                             "expected 'log' or 'scaling'.")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or set(value) - set("stmc"):
                raise ValueError(f"Invalid value for '{name}': {value!r}; expected a string of "
                                 "the letters 's', 't', 'm', 'c'.")
        for name in ("startprob_prior", "transmat_prior", "means_prior", "means_weight",
                     "covars_prior", "covars_weight"):
            value = getattr(self, name)
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is None or isinstance(value, (bool, str)) or arr.ndim > 3 \
                    or not np.all(np.isfinite(arr)):
                raise ValueError(f"Invalid value for '{name}': {value!r:.80}; expected a finite "
                                 "number or an array of them.")
            # a mean may be negative; a Dirichlet parameter, a weight or a
            # scale may not (covars_prior=-1 fitted, and could make variances negative)
            if name != "means_prior" and np.any(arr < 0):
                raise ValueError(f"Invalid value for '{name}': {value!r:.80}; expected a finite "
                                 "number >= 0 or an array of them.")
        if self.backend not in BACKENDS:
            raise ValueError(f"Invalid value for 'backend': {self.backend!r}; expected one of "
                             f"{list(BACKENDS)}.")
        val.check_random_state_param(self.random_state)
        check_dtype(self.dtype)

    def _check_model(self):
        """The current parameters are a valid model (set by hand or fitted)."""
        k = self.n_components
        start = np.asarray(self.startprob_, dtype=np.float64)
        trans = np.asarray(self.transmat_, dtype=np.float64)
        if start.shape != (k,) or np.any(start < 0) or not np.isclose(start.sum(), 1.0):
            raise ValueError(f"startprob_ must be {k} non-negative numbers summing to 1; got "
                             f"{start!r:.80}")
        if trans.shape != (k, k) or np.any(trans < 0) or not np.allclose(trans.sum(axis=1), 1.0):
            raise ValueError(f"transmat_ rows must be {k} non-negative numbers summing to 1; got "
                             f"row sums {trans.sum(axis=-1) if trans.ndim == 2 else trans!r:.80}")
        means = np.asarray(self.means_, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape (n_components, n_features); got {means.shape}")
        d = means.shape[1]
        expected = {"spherical": (k,), "diag": (k, d), "tied": (d, d),
                    "full": (k, d, d)}[self.covariance_type]
        c = self._covars_
        if c.shape != expected:
            raise ValueError(f"'{self.covariance_type}' covars must have shape {expected}; "
                             f"got {c.shape}")
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(c))):
            # NaN passed every check below and scored NaN; an infinite
            # covariance comes from X's variance overflowing float64 (|X| ~ 1e155)
            raise ValueError("means_ and covars must be finite; when fit initialises them from "
                             "X, X's variance overflows float64: rescale X")
        if self.covariance_type in ("spherical", "diag"):
            if not np.all(c > 0):
                raise ValueError(f"'{self.covariance_type}' covars must be positive")
        else:
            for m in (c[None] if c.ndim == 2 else c):
                # singular to round-off is a collapsed state, which the
                # densities handle as hmmlearn's do (_precision_factors)
                if not np.allclose(m, m.T) or np.linalg.eigvalsh(m).min() <= -_COLLAPSE_COVAR:
                    raise ValueError(f"'{self.covariance_type}' covars must be symmetric, "
                                     "positive-definite")
        self.startprob_, self.transmat_, self.means_ = start, trans, means
        self.n_features = d

    # -- the E-step -------------------------------------------------------------

    def _emission_inputs(self):
        """The emission densities as the Gaussian kernels take them
        (``KernelInputs``, no weights in their constants)."""
        return factor_inputs(self.means_, self._precision_factors(), self.covariance_type,
                             np.zeros(self.n_components))

    def _passes(self, backend, data):
        """The model's passes over the sequences of ``data`` on ``backend``
        (``sequence_passes``: ``estep``, ``scores``, ``viterbi``)."""
        return backend.sequence_passes(data, self._emission_inputs(), self.startprob_,
                                       self.transmat_)

    def _precision_factors(self):
        """Upper Cholesky factors of the precisions (``fastem._model``'s layout)."""
        c, ctype = self._covars_, self.covariance_type
        if ctype not in ("full", "tied"):
            return precision_cholesky_from_covariances(c, ctype)
        mats = c[None] if ctype == "tied" else c
        out = np.empty_like(mats)
        for j, m in enumerate(mats):
            # hmmlearn's fallback for a state collapsing onto too few points:
            # its density uses the covariance + 1e-7 I. hmmlearn takes it when
            # a Cholesky factorisation fails, which for a covariance singular
            # to round-off is a coin toss between two round-offs; fastem
            # takes it for any covariance singular to round-off (and says so)
            eig = np.linalg.eigvalsh(m)
            if eig[0] > _SINGULAR * m.shape[0] * eig[-1]:
                out[j] = precision_cholesky_from_covariances(m, "tied")
                continue
            try:
                out[j] = precision_cholesky_from_covariances(
                    m + _COLLAPSE_COVAR * np.eye(m.shape[0]), "tied")
            except ValueError:
                raise ValueError(
                    f"'covars' must be symmetric, positive-definite: state {j}'s is not, even "
                    f"with {_COLLAPSE_COVAR:g} added to its diagonal (after a fit: the state "
                    "collapsed onto too few points for a full covariance; fewer states, "
                    "covariance_type='diag', or a covars_prior such as c * np.eye(n_features) "
                    "help; a float covars_prior is added to every entry of a full covariance, "
                    "as in hmmlearn)") from None
            warnings.warn(f"GaussianHMM: the covariance of state {j} is not positive-"
                          f"definite (a state collapsing onto few points); its density "
                          f"adds {_COLLAPSE_COVAR:g} to the diagonal, as hmmlearn's does. "
                          "Consider fewer states or a larger covars_prior.",
                          RuntimeWarning, stacklevel=user_stacklevel())
        return out[0] if ctype == "tied" else out

    @property
    def _layout(self):
        return layout_of(self.covariance_type)

    def _finish_stats(self, stats):
        """The M-step's names for the second moments (full matrices from
        lower triangles)."""
        second = stats.pop("second")
        if self._layout is Layout.FULL:
            stats["obs*obs.T"] = full_from_lower(second, self.means_.shape[1])
        else:
            stats["obs**2"] = second
        return stats

    def _sequence_passes(self, prepared, want_post):
        """Per-sequence log-likelihoods (n_sequences,) and, with ``want_post``,
        the state posteriors (n, k) of every row."""
        log_probs, post = self._passes(prepared.backend, prepared.data).scores(prepared.bounds,
                                                                              want_post)
        if want_post and not (log_probs > -np.inf).all():
            raise ValueError(_UNREACHED)
        return log_probs, post


    # -- the M-step ---------------------------------------------------------------

    def _priors(self, k, d):
        """The priors as arrays of the shapes the M-step combines them with.

        A float applies to every entry. A 1-D array of ``n_components``
        values gives each state its own value of a per-state prior
        (``means_prior``, ``means_weight``, ``covars_prior``,
        ``covars_weight``), as hmmlearn documents them; otherwise an array
        must broadcast to the shape, by NumPy's rules.
        """
        tied = self.covariance_type == "tied"
        cov = {"spherical": (k, d), "diag": (k, d), "full": (k, d, d),
               "tied": (d, d)}[self.covariance_type]
        weight = {"full": (k, 1, 1), "tied": ()}.get(self.covariance_type, (k, d))
        # name: (shape, whether its first axis is the states')
        shapes = {"startprob_prior": ((k,), True), "transmat_prior": ((k, k), False),
                  "means_prior": ((k, d), True), "means_weight": ((k, 1), True),
                  "covars_prior": (cov, not tied), "covars_weight": (weight, not tied)}
        priors = {}
        for name, (shape, per_state) in shapes.items():
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if per_state and arr.shape == (k,):
                arr = arr.reshape((k,) + (1,) * (len(shape) - 1))
            try:
                priors[name] = np.broadcast_to(arr, shape)
            except ValueError:
                raise ValueError(f"'{name}' has shape {arr.shape}; expected a float, "
                                 f"{k} values (one per state) or an array that broadcasts to "
                                 f"{shape} (covariance_type={self.covariance_type!r})."
                                 ) from None
        return priors

    def _mstep(self, stats, priors):
        """hmmlearn's closed-form updates, with its priors (:meth:`_priors`)."""
        if "s" in self.params:
            start = np.maximum(priors["startprob_prior"] - 1.0 + stats["start"], 0.0)
            start = np.where(self.startprob_ == 0, 0.0, start)
            if start.sum() > 0:  # else nothing to update from (a prior below 1): kept
                self.startprob_ = start / start.sum()
        if "t" in self.params:
            trans = np.maximum(priors["transmat_prior"] - 1.0 + stats["trans"], 0.0)
            trans = np.where(self.transmat_ == 0, 0.0, trans)
            sums = trans.sum(axis=1, keepdims=True)
            # A state no transition was seen from keeps its row: hmmlearn
            # zeroes it, a transmat_ no sequence of two steps could then have
            self.transmat_ = np.where(sums > 0, trans / np.where(sums > 0, sums, 1.0),
                                      self.transmat_)
            self._rows_kept = int(np.sum(sums == 0))
        # hmmlearn's formulas in coordinates centred on ``centre``: the
        # statistics' moments are taken about it, so that ``sum x^2`` and
        # ``mean^2 N`` do not cancel for data far from the origin
        centre = stats["centre"]
        denom = stats["post"][:, None]
        mw = priors["means_weight"]
        mp = priors["means_prior"] - centre
        means = self.means_ - centre
        # A state with no posterior mass (never reached by any sequence) has
        # no update where the prior does not give one (0/0): it keeps its
        # parameters; hmmlearn's arithmetic makes them NaN
        unseen = stats["post"] == 0
        if "m" in self.params:
            kept = unseen & (mw[:, 0] == 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = (mw * mp + stats["obs"]) / (mw + denom)
            means = np.where(kept[:, None], means, new)
            self.means_ = means + centre
            self._states_kept |= kept
        if "c" in self.params:
            cp, cw = priors["covars_prior"], priors["covars_weight"]
            meandiff = means - mp
            if self.covariance_type in ("spherical", "diag"):
                c_n = (mw * meandiff ** 2 + stats["obs**2"] - 2.0 * means * stats["obs"]
                       + means ** 2 * denom)
                c_d = np.maximum(cw - 1.0, 0.0) + denom
                cov = (cp + c_n) / np.maximum(c_d, 1e-5)
                cov = cov.mean(axis=1) if self.covariance_type == "spherical" else cov
                kept = unseen & np.all(c_d == 0, axis=1)
                self._covars_ = np.where(kept.reshape((-1,) + (1,) * (cov.ndim - 1)),
                                         self._covars_, cov)
                self._states_kept |= kept
            else:
                d = means.shape[1]
                obsmean = stats["obs"][:, :, None] * means[:, None, :]
                mdiff = np.broadcast_to(meandiff, means.shape)
                c_n = mw[:, :, None] * mdiff[:, :, None] * mdiff[:, None, :]
                c_n = (c_n + stats["obs*obs.T"] - obsmean - np.swapaxes(obsmean, 1, 2)
                       + means[:, :, None] * means[:, None, :] * stats["post"][:, None, None])
                cvweight = np.maximum(cw - d, 0.0)
                if self.covariance_type == "tied":
                    self._covars_ = (cp + c_n.sum(axis=0)) / (cvweight + stats["post"].sum())
                else:
                    c_d = cvweight + stats["post"][:, None, None]
                    kept = unseen & (c_d[:, 0, 0] == 0)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        cov = (cp + c_n) / c_d
                    self._covars_ = np.where(kept[:, None, None], self._covars_, cov)
                    self._states_kept |= kept

    # -- fit ------------------------------------------------------------------------

    def _init(self, data, backend, sw_rows, rng):
        """hmmlearn's initialisation of the parameters in ``init_params``
        (and of any not set yet) from the rows ``data`` held by ``backend``,
        drawing from ``rng``."""
        k, d = self.n_components, data.shape[1]
        if "s" in self.init_params or not hasattr(self, "startprob_"):
            self.startprob_ = rng.dirichlet(np.full(k, 1.0 / k))
        if "t" in self.init_params or not hasattr(self, "transmat_"):
            self.transmat_ = rng.dirichlet(np.full(k, 1.0 / k), size=k)
        if "m" in self.init_params or not hasattr(self, "means_"):
            from .kmeans import kmeans_init

            if isinstance(data, np.ndarray):  # k-means in float64, whatever X's dtype
                self.means_ = kmeans_init(np.ascontiguousarray(data, dtype=np.float64), k,
                                          sw_rows, rng)
            else:
                self.means_ = kmeans_init(data, k, sw_rows, rng, backend=backend)
        if "c" in self.init_params or not hasattr(self, "_covars_"):
            cv = np.atleast_2d(_covariance(data)) + self.min_covar * np.eye(d)
            self._covars_ = {"spherical": np.full(k, cv.diagonal().mean()),
                             "diag": np.tile(np.diag(cv), (k, 1)), "tied": cv,
                             "full": np.tile(cv, (k, 1, 1))}[self.covariance_type]

    def fit(self, X, lengths=None, sample_weight=None):
        """Estimate the model's parameters by Baum-Welch (EM).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another (an array or memory map).
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence; they sum to n_samples. None: X is one
            sequence.
        sample_weight : array-like of shape (n_sequences,), default=None
            Non-negative weight of each sequence; an integer weight counts
            the sequence that many times.

        Returns
        -------
        self : GaussianHMM
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X, lengths=[100, 200])
        >>> hmm.monitor_.iter <= 10
        True
        """
        self._check_params()
        prepared = self._prepare_sequences(X, lengths, sample_weight, None)
        n_samples, n_features = prepared.X.shape
        if hasattr(self, "n_features") and "m" not in self.init_params and \
                self.n_features != n_features:
            raise ValueError(f"X has {n_features} features, but the model has "
                             f"{self.n_features}.")
        if n_samples < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {n_samples}.")
        family = _BaumWelch(self, prepared)  # the priors are refused before any pass
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        self._rows_kept = 0
        self._states_kept = np.zeros(self.n_components, dtype=bool)
        settings = _em.LoopSettings(n_init=1, max_iter=self.n_iter, tol=self.tol,
                                    progress=self._progress())
        result = _em.fit(family, prepared.data, prepared.backend, prepared.sample_weight,
                         check_random_state(self.random_state), settings)
        self._set_params(result.params)
        self.compile_seconds_ = result.compile_seconds
        if self._states_kept.any():
            warnings.warn(f"state(s) {np.flatnonzero(self._states_kept).tolist()} had no "
                          "posterior mass (no sequence reaches them under startprob_ and "
                          "transmat_): they kept their previous means_/covars_ where the "
                          "priors give no update (hmmlearn makes them NaN).", RuntimeWarning,
                          stacklevel=2)
        if self._rows_kept:
            warnings.warn(f"{self._rows_kept} row(s) of transmat_ kept their previous values: no "
                          "transition from the state was ever observed (hmmlearn sets such rows "
                          "to zero).", RuntimeWarning, stacklevel=2)
        self.n_features_in_ = n_features
        return self

    def _progress(self):
        """The driver's per-iteration callback: ``monitor_`` records the
        log-likelihood (and prints hmmlearn's line when ``verbose``), after a
        line of its own for the kernels compiled since the last iteration (a
        first use on this CPU), so that compiling is not read as fitting."""
        clock = [compile_seconds()]

        def progress(n_iter, max_iter, bound, change, seconds):
            now = compile_seconds()
            compiled, clock[0] = now - clock[0], now
            if self.verbose and compiled > 0:
                print(f"  compiling kernels for this CPU, first use only: {compiled:.2f}s",
                      file=sys.stderr)
            self.monitor_._record(bound)

        return progress

    def _prepare_sequences(self, X, lengths, sample_weight, n_features):
        """X validated and placed for the passes, cut into its sequences.

        Returns
        -------
        PreparedFit
            ``bounds`` the sequences' row boundaries; ``sample_weight`` one
            weight per sequence, or None; ``data`` the rows as the passes
            read them (a dask array's chunks cut at sequence boundaries).
        """
        backend = backend_for(X, self.backend, check_dtype(self.dtype))
        X = _check_data(X, n_features, backend)
        bounds = split_lengths(X.shape[0], lengths)
        if is_dask_array(X):
            X = at_sequence_boundaries(X, bounds)
        if sample_weight is not None:
            sample_weight = val.check_sample_weight(sample_weight, len(bounds) - 1,
                                                    matching="one per sequence of lengths")
        return PreparedFit(backend.prepare(X), backend, X, sample_weight, None, bounds)

    def _params_now(self):
        return _Params(self.startprob_, self.transmat_, self.means_, self._covars_)

    def _set_params(self, params):
        self.startprob_, self.transmat_, self.means_, self._covars_ = params


    # -- scoring and decoding --------------------------------------------------------

    def _rows(self, X, lengths):
        self._check_fitted()
        self._check_model()
        return self._prepare_sequences(X, lengths, None, self.n_features)

    def score_samples(self, X, lengths=None):
        """Log-likelihood of X and the state posteriors of every step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        log_prob : float
            ``log p(X)``, summed over the sequences.
        posteriors : ndarray of shape (n_samples, n_components)
            ``p(state at step t | its sequence)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(100, 1))
        >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X)
        >>> log_prob, posteriors = hmm.score_samples(X)
        >>> posteriors.shape, bool(np.allclose(posteriors.sum(axis=1), 1))
        ((100, 2), True)
        """
        log_probs, post = self._sequence_passes(self._rows(X, lengths), want_post=True)
        return float(log_probs.sum()), post

    def score(self, X, lengths=None):
        """Log-likelihood of X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        log_prob : float
            ``log p(X)``, summed over the sequences (the forward recursion).

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(100, 1))
        >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X)
        >>> bool(np.isclose(hmm.score(X), hmm.score_samples(X)[0]))
        True
        """
        return float(self._sequence_passes(self._rows(X, lengths), want_post=False)[0].sum())

    def decode(self, X, lengths=None, algorithm=None):
        """The most likely state sequence of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).
        algorithm : {'viterbi', 'map'}, default=None
            The decoder; None uses the model's ``algorithm``.

        Returns
        -------
        log_prob : float
            For 'viterbi', the joint log-probability of X and the path; for
            'map', the sum of each step's largest log posterior, as hmmlearn.
        state_sequence : ndarray of shape (n_samples,)
            The decoded state of every step.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.r_[np.zeros((20, 1)), np.full((20, 1), 5.0)]
        >>> X += np.random.default_rng(0).normal(scale=0.1, size=X.shape)
        >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X)
        >>> _, states = hmm.decode(X)
        >>> int(np.abs(np.diff(states)).sum())  # one switch
        1
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"Invalid value for 'algorithm': {algorithm!r}; expected 'viterbi' "
                             "or 'map'.")
        prepared = self._rows(X, lengths)
        if algorithm == "map":
            _, post = self._sequence_passes(prepared, want_post=True)
            # hmmlearn's figure: the sum over steps of the largest posterior
            return float(np.max(post, axis=1).sum()), np.argmax(post, axis=1)
        total, states = self._passes(prepared.backend, prepared.data).viterbi(prepared.bounds)
        if not total > -np.inf:  # a sequence's path would be an arbitrary one
            raise ValueError(_UNREACHED)
        return float(total), states

    def predict(self, X, lengths=None):
        """The state of every step, by the model's ``algorithm``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        state_sequence : ndarray of shape (n_samples,)
            :meth:`decode`'s states.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(50, 2))
        >>> GaussianHMM(n_components=2, random_state=0).fit(X).predict(X).shape
        (50,)
        """
        return self.decode(X, lengths)[1]

    def predict_proba(self, X, lengths=None):
        """The posterior probability of every state at every step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        posteriors : ndarray of shape (n_samples, n_components)
            Rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(50, 2))
        >>> GaussianHMM(n_components=3, random_state=0).fit(X).predict_proba(X).shape
        (50, 3)
        """
        return self.score_samples(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Generate a sequence from the model.

        Parameters
        ----------
        n_samples : int, default=1
            Steps to generate.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None uses the model's ``random_state``.
        currstate : int, default=None
            The first step's state; None draws it from ``startprob_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The emissions.
        state_sequence : ndarray of shape (n_samples,)
            The hidden states.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(50, 2))
        >>> rows, states = GaussianHMM(2, random_state=0).fit(X).sample(10)
        >>> rows.shape, states.shape
        ((10, 2), (10,))
        """
        self._check_fitted()
        self._check_model()
        val._check_int(n_samples, "n_samples", 1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        cum_start, cum_trans = np.cumsum(self.startprob_), np.cumsum(self.transmat_, axis=1)
        covars = self.covars_
        states = np.empty(n_samples, dtype=np.int64)
        rows = np.empty((n_samples, self.n_features))
        if currstate is not None:
            val._check_int(currstate, "currstate", 0)
            if currstate >= self.n_components:
                raise ValueError(f"Invalid value for 'currstate': {currstate}; the model has "
                                 f"states 0 to {self.n_components - 1}.")
        state = int((cum_start > rng.rand()).argmax()) if currstate is None else int(currstate)
        for t in range(n_samples):
            states[t] = state
            rows[t] = rng.multivariate_normal(self.means_[state], covars[state])
            state = int((cum_trans[state] > rng.rand()).argmax())
        return rows, states

    def get_stationary_distribution(self):
        """The stationary distribution of the hidden states, ``pi = pi transmat_``.

        Returns
        -------
        ndarray of shape (n_components,)
            Non-negative, summing to 1: the left eigenvector of ``transmat_``
            for its eigenvalue 1 (hmmlearn's). A chain with several closed
            classes of states has several; this is the one of the eigenvalue
            nearest 1 that the eigensolver returns first.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> hmm = GaussianHMM(2, init_params="", params="")
        >>> hmm.startprob_ = np.array([1.0, 0.0])
        >>> hmm.transmat_ = np.array([[0.9, 0.1], [0.3, 0.7]])
        >>> hmm.means_, hmm.covars_ = np.zeros((2, 1)), np.ones((2, 1))
        >>> hmm.get_stationary_distribution().round(3)
        array([0.75, 0.25])
        """
        self._check_fitted()
        self._check_model()
        values, vectors = np.linalg.eig(self.transmat_.T)
        vector = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1.0))]))
        return vector / vector.sum()

    def _n_parameters(self):
        k, d = self.n_components, self.n_features
        counts = {"s": k - 1, "t": k * (k - 1), "m": k * d,
                  "c": {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2,
                        "tied": d * (d + 1) // 2}[self.covariance_type]}
        return sum(counts[p] for p in self.params)

    def aic(self, X, lengths=None):
        """Akaike information criterion on X: ``-2 log L + 2 p`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        aic : float
            ``p`` counts the free parameters that ``params`` updates.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(100, 1))
        >>> hmm = GaussianHMM(2, random_state=0).fit(X)
        >>> bool(np.isfinite(hmm.aic(X)))
        True
        """
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()

    def bic(self, X, lengths=None):
        """Bayesian information criterion on X: ``-2 log L + p log n`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, one after another.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence (None: one sequence).

        Returns
        -------
        bic : float
            ``n`` is the number of steps, ``p`` as in :meth:`aic`.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianHMM
        >>> X = np.random.default_rng(0).normal(size=(100, 1))
        >>> hmm = GaussianHMM(2, random_state=0).fit(X)
        >>> bool(hmm.bic(X) > hmm.aic(X))
        True
        """
        return -2.0 * self.score(X, lengths) + self._n_parameters() * float(np.log(len(X)))


class _Params(NamedTuple):
    """A GaussianHMM's parameters (its fitted attributes) at one iteration."""

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray  #: in the layout of ``covariance_type`` (``_covars_``)


class _Stats(dict):
    """One E-step's statistics (:meth:`GaussianHMM._estep`'s names), with
    what the driver reads (``log_likelihood``; ``round_off`` 0: its own
    slack), and the parameters they were computed under."""

    round_off = 0.0

    def __init__(self, stats, params):
        super().__init__(stats)
        self.params = params

    @property
    def log_likelihood(self) -> float:
        return float(self["log_prob"])


class SequencePass:
    """The E-step pass of a hidden Markov model (a pass request,
    ``fastem._steps``): forward-backward over every sequence, and the
    statistics the state posteriors weight, under ``params``."""

    def __init__(self, family, params):
        self.family, self.params = family, params

    def run(self, backend, X, sample_weight):
        return self.family.statistics(self.params, backend, X)

    @staticmethod
    def run_many(backend, X, sample_weight, requests):
        # the recursions run one model per pass: each request is its own pass
        return [r.run(backend, X, sample_weight) for r in requests]


class _BaumWelch:
    """Baum-Welch as a family of the one EM driver (``fastem._em``): the
    driver runs the loop; this brings hmmlearn's initialisation, E-step
    (:class:`SequencePass`), M-step with its priors, and convergence test.

    The sequences come with the prepared data (``prepared.bounds``); the
    passes and the M-step are ``model``'s methods, run under the parameters
    they are given (set as ``model``'s attributes, which the fit sets to the
    result in the end).
    """

    name = "GaussianHMM"
    bound_name = "log-likelihood"
    non_finite_advice = ("a sequence has probability 0 under the model (startprob_ or "
                         "transmat_ forbid its path).")

    def __init__(self, model, prepared):
        self.model, self.bounds = model, prepared.bounds
        self.weighted = prepared.sample_weight is not None
        self.weights = (prepared.sample_weight if self.weighted
                        else np.ones(len(self.bounds) - 1))
        self.priors = model._priors(model.n_components, prepared.X.shape[1])

    def initialize(self, data, backend, sample_weight, rng):
        rows = np.repeat(self.weights, np.diff(self.bounds)) if self.weighted else None
        self.model._init(data, backend, rows, rng)
        self.model._check_model()
        return self.model._params_now()

    def e_step(self, params):
        return SequencePass(self, params)

    def statistics(self, params, backend, data):
        """The E-step's statistics of every sequence of ``data`` under ``params``."""
        model = self.model
        model._set_params(params)
        stats = model._passes(backend, data).estep(self.bounds, self.weights, "t" in model.params)
        return _Stats(model._finish_stats(stats), params)

    def m_step(self, stats, draw_rows):
        """hmmlearn's updates; no state is re-seeded (hmmlearn's does not)."""
        self.model._set_params(stats.params)
        self.model._mstep(stats, self.priors)
        return self.model._params_now(), 0

    def lower_bound(self, stats, params_before, params_after):
        """The log-likelihood under ``params_before`` (hmmlearn's ``history``)."""
        return stats.log_likelihood

    @staticmethod
    def converged(change, tol):
        """hmmlearn's test: a gain below ``tol``, or any fall, stops EM."""
        return change < tol


def _check_data(X, n_features, backend):
    """X validated for ``backend``: a NumPy array or memory map, a dask
    array, or for the CUDA backend a host or GPU array."""
    try:
        if is_dask_array(X):
            return check_dask_array(X, n_features, "GaussianHMM")
        if backend.name == "cuda":
            return backend.check_input(X, n_features=n_features, estimator="GaussianHMM")
        return val.check_array(X, n_features=n_features, estimator="GaussianHMM")
    except ValueError as exc:
        if "NaN or infinity" not in str(exc):
            raise
        raise ValueError(f"{exc} GaussianHMM does not fit missing values (NaN) yet: remove or "
                         "impute them first (infinite values are never valid).") from None


def _covariance(X):
    """The rows' (d, d) covariance (``np.cov``'s) of a backend's data: an
    array, a dask array, or the CUDA backend's (rows on the GPU copied chunk
    by chunk)."""
    if isinstance(X, CudaData):
        if X.host is not None:
            return _covariance(X.host)
        chunks = [X.device[a:a + config.CHUNK_ROWS] for a in range(0, X.n_samples,
                                                                    config.CHUNK_ROWS)]
        mean = sum(c.copy_to_host().sum(axis=0, dtype=np.float64) for c in chunks) / X.n_samples
        total = 0.0
        for c in chunks:
            Y = c.copy_to_host().astype(np.float64) - mean
            total = total + Y.T @ Y
        return total / (X.n_samples - 1)
    if isinstance(X, DaskData):
        X = X.array
    if not is_dask_array(X):
        return np.cov(np.asarray(X, dtype=np.float64).T)
    Y = X.astype(np.float64)
    Y = Y - Y.mean(axis=0)
    return (Y.T @ Y).compute() / (X.shape[0] - 1)


#: Why a sequence's state posteriors or path cannot be computed.
_UNREACHED = (
    "X has steps so far from every state that their squared Mahalanobis distances overflow "
    "float64, so the state posteriors and the most likely path cannot be computed (score gives "
    "-inf, the float64 value of log p(X)). Rescale X, or drop those steps.")


__all__ = ["GaussianHMM", "ConvergenceMonitor", "split_lengths"]
