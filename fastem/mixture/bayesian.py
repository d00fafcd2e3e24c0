"""``fastem.BayesianGaussianMixture``: mean-field variational inference on the
same fused pass as EM.

The variational E-step is the Gaussian kernel with the expected precision's
Cholesky factor and a per-component constant (Bishop 10.64-10.65)::

    log rho_ij = E[log pi_j] - d/2 log 2pi + log det U_j - d/2 log nu_j
                 + 1/2 [sum_i psi((nu_j - i) / 2) + d log 2] - d / (2 beta_j)
                 - 1/2 ||(x_i - m_j)^T U_j||^2

where ``U_j`` is the Cholesky factor of ``nu_j W_j`` (scikit-learn's
``precisions_cholesky_``, since its ``covariances_`` are ``(nu_j W_j)^-1``).
So one pass gives the statistics of the responsibilities, and the M-step
(:class:`VariationalFamily`) and the bound are small per-component math.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validation as val
from .._covariance import parameter_shape
from ..model_file import FileError, ModelFile, check_factor_pair, check_positive, register_model
from .._model import (LOG_2PI, factor_inputs, mass_guard, log_det_cholesky, m_step,
                      precision_cholesky_from_covariances, precisions_from_cholesky,
                      regularisation_loss)
from .._missing import filled_chunk, initialize_on_sample
from .._special import betaln, digamma, gammaln
from .._steps import GaussianPass, run_alone
from ..init import column_sum_chunk, initial_stats_steps
from ._base import NON_FINITE_ADVICE, MixtureBase

WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass
class Priors:
    """The prior's hyper-parameters, as scikit-learn resolves them (the ``*_prior_``
    attributes).

    Attributes
    ----------
    weight_concentration : float
    mean_precision : float
    mean : (d,) ndarray
    degrees_of_freedom : float
    covariance : (d, d) for full/tied, (d,) for diag, float for spherical
    """

    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: object


@dataclass
class VariationalParams:
    """The variational posterior q(pi) q(mu, Lambda), in scikit-learn's terms.

    Attributes
    ----------
    weight_concentration : tuple of two (k,) arrays (Beta parameters of the
        stick-breaking weights; 'dirichlet_process') or a (k,) array (Dirichlet)
    mean_precision : (k,) ``beta_j``
    means : (k, d) ``m_j``
    degrees_of_freedom : (k,) ``nu_j`` (a float for 'tied')
    covariances : ``(nu_j W_j)^-1``, shape by covariance type
    precisions_cholesky : Cholesky factor of ``nu_j W_j``, shape by covariance type
    """

    weight_concentration: object
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: object
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def expected_log_weights(weight_concentration, prior_type):
    """``E[log pi_j]`` under q(pi), shape (k,)."""
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        digamma_sum = digamma(a + b)
        from_b = np.cumsum(digamma(b) - digamma_sum)[:-1]
        return digamma(a) - digamma_sum + np.hstack((0.0, from_b))
    alpha = np.asarray(weight_concentration)
    return digamma(alpha) - digamma(np.sum(alpha))


def mixture_weights(weight_concentration, prior_type):
    """The posterior mean weights (scikit-learn's ``weights_``), shape (k,)."""
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        total = a + b
        weights = a / total * np.hstack((1.0, np.cumprod(b / total)[:-1]))
        return weights / np.sum(weights)
    alpha = np.asarray(weight_concentration)
    return alpha / np.sum(alpha)


def _log_wishart_norm(dof, log_det_chol, n_features):
    """scikit-learn's log Wishart normaliser (without its ``log pi`` term), per component."""
    dof = np.asarray(dof, dtype=np.float64)
    i = np.arange(n_features)[:, None]
    return -(dof * log_det_chol + dof * n_features * 0.5 * math.log(2.0)
             + np.sum(gammaln(0.5 * (dof - i)), axis=0))


def _quadratic_sums(stats, factor, covariance_type):
    """``Q_j = sum_i w_i r_ij ||(x_i - c_j) F_j||^2`` from the centred second moments."""
    k, d = stats.first.shape
    if covariance_type in ("full", "tied"):
        upper = factor.reshape(k, d, d)
        precision = upper @ np.swapaxes(upper, 1, 2)
        return np.einsum("jab,jab->j", precision, stats.second)
    return np.einsum("jd,jd->j", factor * factor, stats.second)


class VariationalFamily:
    """Mean-field variational inference for a Gaussian mixture (scikit-learn's updates).

    The updates are scikit-learn's, including its unusual ones: 'tied' uses
    ``nu_0 + N / K`` degrees of freedom and averages the scatter over ``K``;
    'diag' and 'spherical' reuse the full-Wishart digamma sum in the E-step
    and the bound.
    """

    name = "Variational"

    def __init__(self, estimator, priors: Priors, n_features: int, missing=None):
        self.estimator = estimator
        #: ``fastem._missing.MissingValues`` when the data has NaN: the
        #: missing values are latent, with a Gaussian factor ``q(x_m | z)``
        #: in the mean-field posterior (the same incomplete-data pass).
        self.missing = missing
        self.priors = priors
        self.covariance_type = estimator.covariance_type
        self.prior_type = estimator.weight_concentration_prior_type
        self.reg_covar = estimator.reg_covar
        self.n_components = estimator.n_components
        self.n_features = n_features

    # -- the driver's hooks --------------------------------------------------

    def initialize(self, data, backend, sample_weight, rng) -> VariationalParams:
        return run_alone(self.initialize_steps(data, backend, sample_weight, rng), backend, data,
                         sample_weight)

    def initialize_steps(self, data, backend, sample_weight, rng):
        if self.missing is not None:
            return initialize_on_sample(self.missing, self._initial_steps, data, backend,
                                        sample_weight, rng, self.n_components)
        return (yield from self._initial_steps(data, sample_weight, backend, rng))

    def _initial_steps(self, data, sample_weight, backend, rng):
        stats = yield from initial_stats_steps(data, sample_weight, self.n_components,
                                               self.covariance_type, self.estimator.init_params,
                                               rng, backend)
        return self.update(stats)

    def kernel_inputs(self, p: VariationalParams):
        d = self.n_features
        dof = np.asarray(p.degrees_of_freedom, dtype=np.float64)
        log_lambda = d * math.log(2.0) + np.sum(
            digamma(0.5 * (dof - np.arange(d)[:, None])), axis=0)
        offset = (expected_log_weights(p.weight_concentration, self.prior_type)
                  - 0.5 * d * np.log(dof) + 0.5 * (log_lambda - d / p.mean_precision))
        inputs = factor_inputs(p.means, p.precisions_cholesky, self.covariance_type, offset)
        return inputs.incomplete() if self.missing is not None else inputs

    def e_step(self, p: VariationalParams) -> GaussianPass:
        """The pass request of the E-step under ``p``: the Gaussian pass with
        the variational expectations."""
        return GaussianPass(self.kernel_inputs(p))

    non_finite_advice = NON_FINITE_ADVICE

    def m_step(self, stats, draw_rows):
        return self.update(stats), 0

    def bound_allowance(self, params: VariationalParams) -> float:
        """How far the next bound may fall below this one without a defect:
        what ``reg_covar`` costs the M-step that made ``params``.

        The M-step adds ``N_k c`` to the Wishart scale's inverse ``A_k`` (its
        optimum), which costs the bound ``nu_k / 2 sum_i h(y_i)``, ``h(y) =
        -log(1 - y) - y``, ``y_i = N_k c / lambda_i(A_k + N_k c I)``. As ``A_k
        = nu_k C_k`` (``C_k`` the posterior covariance) and ``h(t y) <= t h(y)``
        for ``t = N_k / nu_k <= 1``, that is at most ``N_k`` times what
        :func:`fastem._model.regularisation_loss` charges EM per unit weight
        for ``C_k`` (``N_k = beta_k - beta_0``). Without it, data whose
        variances are all ``reg_covar`` (a constant feature) warned of an
        unstable fit at every iteration."""
        nk = np.maximum(np.asarray(params.mean_precision) - self.priors.mean_precision, 0.0)
        total = float(nk.sum())
        if total <= 0.0:
            return 0.0
        return total * regularisation_loss(nk / total, params.precisions_cholesky,
                                           self.covariance_type, self.reg_covar, self.n_features)

    def lower_bound(self, stats, before: VariationalParams, after: VariationalParams) -> float:
        """scikit-learn's ``lower_bound_``: the bound at (responsibilities of the
        pass, the posterior after the M-step), without the constants it drops.

        The entropy of the responsibilities comes from the statistics:
        ``sum_ij w_i r_ij log r_ij = sum_j (N_j log_const_j - Q_j / 2) - sum_i w_i log Z_i``.
        """
        inputs = self.kernel_inputs(before)
        q = _quadratic_sums(stats, inputs.factor, self.covariance_type)
        with np.errstate(invalid="ignore"):
            expected = np.where(stats.mass > 0, stats.mass * inputs.log_const, 0.0) - 0.5 * q
        entropy = stats.log_likelihood - float(np.sum(expected))
        return entropy + self.parameter_terms(after)

    def elbo_constant(self, total_weight: float) -> float:
        """What scikit-learn's bound leaves out: ``elbo = lower_bound + this``.

        For 'full' covariances the sum is the evidence lower bound of the
        Gaussian-Wishart mixture with every constant (Bishop 10.70-10.77; the
        derivation is in ``tests/test_bayesian.py``, which checks it against a
        direct evaluation): the prior's Dirichlet normaliser
        (``K log alpha_0`` for the stick-breaking prior), ``K`` Wishart prior
        normalisers with the ``log pi`` term scikit-learn removes from the
        posterior ones, ``-N d/2 log 2pi`` and ``K d/2 log beta_0``. The other
        covariance types use scikit-learn's bound, built from the same
        full-Wishart expressions, plus the same constants.

        Parameters
        ----------
        total_weight : float, ``N = sum_i w_i``
        """
        pr, d, k = self.priors, self.n_features, self.n_components
        a0, nu0 = pr.weight_concentration, pr.degrees_of_freedom
        if self.prior_type == "dirichlet_process":
            weights = k * math.log(a0)
        else:
            weights = float(gammaln(k * a0) - k * gammaln(a0))
        cov = np.asarray(pr.covariance, dtype=np.float64)
        # -inf for a singular prior (the default one of data with a constant
        # feature): an improper Wishart prior has no normaliser
        with np.errstate(divide="ignore"):
            if self.covariance_type in ("full", "tied"):
                sign, log_det_prior = np.linalg.slogdet(cov)
                log_det_prior = float(log_det_prior) if sign > 0 else -np.inf
            elif self.covariance_type == "diag":
                log_det_prior = float(np.sum(np.log(cov)))
            else:
                log_det_prior = d * float(np.log(cov))
        wishart = (0.5 * nu0 * log_det_prior - 0.5 * nu0 * d * math.log(2.0)
                   - float(np.sum(gammaln(0.5 * (nu0 - np.arange(d))))))
        return (weights + k * wishart - 0.5 * total_weight * d * LOG_2PI
                + 0.5 * k * d * math.log(pr.mean_precision))

    # -- the math --------------------------------------------------------------

    def parameter_terms(self, p: VariationalParams) -> float:
        """The bound's terms that depend only on q(theta) (scikit-learn's, same constants)."""
        d, k = self.n_features, self.n_components
        dof = p.degrees_of_freedom
        log_det = (log_det_cholesky(p.precisions_cholesky, self.covariance_type, d)
                   - 0.5 * d * np.log(dof))
        if self.covariance_type == "tied":
            log_wishart = k * float(np.sum(_log_wishart_norm(dof, log_det, d)))
        else:
            log_wishart = float(np.sum(_log_wishart_norm(dof, log_det, d)))
        if self.prior_type == "dirichlet_process":
            log_norm_weight = -float(np.sum(betaln(*p.weight_concentration)))
        else:
            alpha = p.weight_concentration
            log_norm_weight = float(gammaln(np.sum(alpha)) - np.sum(gammaln(alpha)))
        return -log_wishart - log_norm_weight - 0.5 * d * float(np.sum(np.log(p.mean_precision)))

    def update(self, stats) -> VariationalParams:
        """The variational M-step from the statistics of one pass (or of the
        initial responsibilities)."""
        pr, ctype, k = self.priors, self.covariance_type, self.n_components
        nk = stats.mass + mass_guard(stats)
        _, xk, sk = m_step(stats, ctype, self.reg_covar)
        if self.prior_type == "dirichlet_process":
            tail = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))
            concentration = (1.0 + nk, pr.weight_concentration + tail)
        else:
            concentration = pr.weight_concentration + nk
        beta = pr.mean_precision + nk
        means = (pr.mean_precision * pr.mean + nk[:, None] * xk) / beta[:, None]
        diff = xk - pr.mean
        if ctype == "full":
            dof = pr.degrees_of_freedom + nk
            outer = diff[:, :, None] * diff[:, None, :]
            cov = (pr.covariance + nk[:, None, None] * sk
                   + (nk * pr.mean_precision / beta)[:, None, None] * outer)
            cov = cov / dof[:, None, None]
        elif ctype == "tied":
            dof = pr.degrees_of_freedom + nk.sum() / k
            cov = (pr.covariance + sk * nk.sum() / k
                   + pr.mean_precision / k * np.dot((nk / beta) * diff.T, diff))
            cov = cov / dof
        elif ctype == "diag":
            dof = pr.degrees_of_freedom + nk
            cov = pr.covariance + nk[:, None] * (sk + (pr.mean_precision / beta)[:, None] * diff ** 2)
            cov = cov / dof[:, None]
        else:
            dof = pr.degrees_of_freedom + nk
            cov = pr.covariance + nk * (sk + pr.mean_precision / beta * np.mean(diff ** 2, axis=1))
            cov = cov / dof
        return VariationalParams(concentration, beta, means, dof, cov,
                                 precision_cholesky_from_covariances(cov, ctype))


def _scatter_chunk(X, w, centre):
    """Weighted scatter about ``centre`` of a chunk: (d, d) full, as a 1-tuple."""
    diff = np.asarray(X, dtype=np.float64) - centre
    return ((diff.T if w is None else diff.T * w) @ diff,)


def data_moments(data, backend, sample_weight, missing=None):
    """Weighted mean and covariance of the data (two backend passes).

    The covariance divides by ``sum(w) - 1``: NumPy's ``np.cov`` of the rows
    repeated by their integer weights, which is scikit-learn's default prior.
    With missing values (``missing``, a ``fastem._missing.MissingValues``),
    the moments of the data with each one replaced by its column's observed
    mean (a covariance, so positive semi-definite; a weak prior's scale).

    Returns
    -------
    mean : (d,), covariance : (d, d)
    """
    from ..init import _sum_in_order
    from .. import config

    def pass_of(fn, args=()):
        if missing is not None:
            fn, args = filled_chunk, (fn, missing.fill, *args)
        return _sum_in_order(backend.map_chunks(data, fn, sample_weight, args=args,
                                                max_rows=config.CHUNK_ROWS))

    n = data.shape[0]
    total = float(n if sample_weight is None else sample_weight.sum())
    (column_sum,) = pass_of(column_sum_chunk)
    mean = column_sum / total
    (scatter,) = pass_of(_scatter_chunk, (mean,))
    return mean, scatter / max(total - 1.0, np.finfo(np.float64).tiny)


def _covariance_shape(k, d, params):
    return parameter_shape(params["covariance_type"], k, d)


def _prior_covariance_shape(k, d, params):
    return {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": ()}[params["covariance_type"]]


@register_model
class BayesianGaussianMixture(MixtureBase):
    """Variational Bayesian estimation of a Gaussian mixture (mean-field).

    scikit-learn's ``BayesianGaussianMixture``: the same constructor
    parameters, fitted attributes and methods, and the same updates, so that
    fits agree to round-off given the same initial responsibilities; plus
    ``backend``, ``sample_weight`` (integer weights count rows), Dask arrays,
    memory maps and GPU arrays, ``save``/``load``, and ``elbo_``.

    Parameters
    ----------
    n_components : int, default=1
        An upper bound on the components used; the prior switches off the rest.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        As in :class:`GaussianMixture`.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default=100
        Variational iterations; 0 initialises only.
    n_init : int, default=1
        Initialisations; the one with the best final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        The first responsibilities, as in :class:`GaussianMixture`.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        The prior on the weights: a stick-breaking (truncated Dirichlet
        process) prior, or a finite Dirichlet distribution.
    weight_concentration_prior : float, default=None
        Concentration of the weight prior (> 0); None means
        ``1 / n_components``. Small values leave unneeded components empty.
    mean_precision_prior : float, default=None
        Precision of the prior on the means (> 0); None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        Prior mean; None means the data's weighted mean.
    degrees_of_freedom_prior : float, default=None
        Degrees of freedom of the Wishart prior (> n_features - 1); None
        means n_features.
    covariance_prior : float or array-like, default=None
        Prior covariance: (n_features, n_features) for 'full'/'tied',
        (n_features,) for 'diag', a float for 'spherical'. None means the
        data's weighted covariance (``ddof=1``; its diagonal for 'diag', the
        mean of that for 'spherical').
    random_state : int, RandomState instance or None, default=None
        As in :class:`GaussianMixture`.
    warm_start : bool, default=False
        Continue from the previous fit's posterior.
    verbose : int, default=0
        As in :class:`GaussianMixture`.
    verbose_interval : int, default=10
        As in :class:`GaussianMixture`.
    batch_size : int, default=None
        None fits by batch EM, reading all of X every iteration. An integer
        fits by passes of stepwise EM (stochastic VI for the Bayesian
        mixture) over consecutive blocks of ``batch_size`` rows, as
        :meth:`partial_fit` does for a stream: the model moves after every
        block, so a pass or two can reach what batch EM needs many
        iterations for. Each start initialises on 20,000 rows (or all of
        X) drawn at random, and their statistics under the start are the
        first step, so rows sorted by cluster or time fit as shuffled ones
        do; blocks are visited in an order drawn from
        ``random_state`` (deterministic); ``max_iter`` and ``tol`` count
        passes.
    learning_decay : float, default=0.7
        ``partial_fit``'s step sizes ``(learning_offset + t)^(-learning_decay)``
        for the t-th batch, as scikit-learn's ``LatentDirichletAllocation``
        names them; in (0.5, 1] (Robbins–Monro: the steps sum to infinity and
        their squares do not). Larger forgets earlier batches faster at first
        and averages more later. ``fit`` ignores it.
    learning_offset : float, default=10.0
        Slows the first steps of ``partial_fit`` (>= 0): the second batch
        weighs ``(learning_offset + 2)^(-learning_decay)``. ``fit`` ignores it.
    backend : {'cpu', 'cuda'}, default='cpu'
        As in :class:`GaussianMixture`.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        As in :class:`GaussianMixture`: float32 input computes in float32
        unless numpy.float64 is given.

    Attributes
    ----------
    weights_ : (n_components,)
    means_ : (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : shape by covariance type
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        scikit-learn's lower bound (it drops terms that are constant for a
        given data set and ``n_components``).
    lower_bounds_ : list of float
    elbo_ : float
        ``lower_bound_`` with the constants scikit-learn drops put back
        (:meth:`VariationalFamily.elbo_constant`): for 'full' the evidence
        lower bound of the model itself, comparable across ``n_components``.
        ``-inf`` when ``covariance_prior_`` is singular, as the default (the
        data's covariance) is for data with a constant feature: such a
        Wishart prior has no normaliser; pass ``covariance_prior`` for one.
    weight_concentration_prior_, weight_concentration_ : float, and a tuple
        of two (n_components,) arrays ('dirichlet_process') or (n_components,)
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,)
        (a float for 'tied')
    covariance_prior_ : shape as ``covariance_prior``
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,), dtype object
        Column names of a dataframe X, as in :class:`GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + [8, 0]]
    >>> bgm = BayesianGaussianMixture(n_components=6, weight_concentration_prior=1e-3,
    ...                               random_state=0).fit(X)
    >>> int((bgm.weights_ > 0.01).sum())  # components in use
    2
    """

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, batch_size=None,
                 learning_decay=0.7, learning_offset=10.0, backend="cpu", dtype=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.batch_size = batch_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.backend = backend
        self.dtype = dtype

    _model_file = ModelFile(
        unstored_params=("mean_prior", "covariance_prior"),
        arrays={
            "weights": lambda k, d, p: (k,), "means": lambda k, d, p: (k, d),
            "covariances": _covariance_shape, "precisions_cholesky": _covariance_shape,
            "mean_precision": lambda k, d, p: (k,),
            "degrees_of_freedom": lambda k, d, p: () if p["covariance_type"] == "tied" else (k,),
            "weight_concentration": lambda k, d, p: (
                (2, k) if p["weight_concentration_prior_type"] == "dirichlet_process" else (k,)),
            "mean_prior": lambda k, d, p: (d,), "covariance_prior": _prior_covariance_shape,
        },
        scalars=("weight_concentration_prior_", "mean_precision_prior_",
                 "degrees_of_freedom_prior_"))

    def _saved_array(self, name):
        value = getattr(self, name + "_")
        return np.stack(value) if isinstance(value, tuple) else value

    def _check_file_arrays(self, a):
        """A model file's arrays and prior scalars obey what a fit produces
        (``fastem.model_file``)."""
        d = a["means"].shape[1]
        check_factor_pair(a["covariances"], a["precisions_cholesky"], self.covariance_type)
        check_positive("mean_precision", a["mean_precision"])
        check_positive("degrees_of_freedom", a["degrees_of_freedom"], above=d - 1.0)
        check_positive("weight_concentration", a["weight_concentration"])
        check_positive("weight_concentration_prior_", self.weight_concentration_prior_)
        check_positive("mean_precision_prior_", self.mean_precision_prior_)
        check_positive("degrees_of_freedom_prior_", self.degrees_of_freedom_prior_, above=d - 1.0)
        prior = a["covariance_prior"]
        if self.covariance_type in ("full", "tied"):
            if np.any(prior != prior.T) or not np.all(np.linalg.eigvalsh(prior) > 0):
                raise FileError("covariance_prior", "must be symmetric positive-definite")
        else:
            check_positive("covariance_prior", prior)
        wc = a["weight_concentration"]
        derived = mixture_weights((wc[0], wc[1]) if wc.ndim == 2 else wc,
                                  self.weight_concentration_prior_type)
        if not np.allclose(a["weights"], derived, rtol=1e-8, atol=1e-12):
            raise FileError("weights", "inconsistent with weight_concentration")

    def _restore_arrays(self, a):
        self.mean_prior_ = a["mean_prior"]
        cov_prior = a["covariance_prior"]
        self.covariance_prior_ = float(cov_prior) if cov_prior.ndim == 0 else cov_prior
        wc = a["weight_concentration"]
        dof = a["degrees_of_freedom"]
        self._store(VariationalParams(
            (wc[0], wc[1]) if wc.ndim == 2 else wc, a["mean_precision"], a["means"],
            float(dof) if dof.ndim == 0 else dof, a["covariances"], a["precisions_cholesky"]))

    # -- hooks of MixtureBase ----------------------------------------------------

    def _check_params(self):
        val.check_estimator_params(self)
        if self.weight_concentration_prior_type not in WEIGHT_PRIOR_TYPES:
            raise ValueError(
                "Invalid value for 'weight_concentration_prior_type': "
                f"{self.weight_concentration_prior_type!r}; expected one of "
                f"{list(WEIGHT_PRIOR_TYPES)}.")
        for name in ("weight_concentration_prior", "mean_precision_prior"):
            value = getattr(self, name)
            if value is not None:
                val.check_positive_real(value, name)

    def _priors(self, data, backend, sample_weight, n_features, missing=None) -> Priors:
        d, ctype = n_features, self.covariance_type
        need_moments = self.mean_prior is None or self.covariance_prior is None
        mean, cov = (data_moments(data, backend, sample_weight, missing) if need_moments
                     else (None, None))
        if self.mean_prior is None:
            mean_prior = mean
        else:
            mean_prior = val.check_vector(self.mean_prior, "mean_prior", d)
        if self.degrees_of_freedom_prior is None:
            dof = float(d)
        else:
            val.check_positive_real(self.degrees_of_freedom_prior, "degrees_of_freedom_prior",
                                    above=d - 1.0)
            dof = float(self.degrees_of_freedom_prior)
        if self.covariance_prior is None:
            cov_prior = {"full": cov, "tied": cov, "diag": np.diag(cov).copy(),
                         "spherical": float(np.diag(cov).mean())}[ctype]
        else:
            cov_prior = val.check_covariance_prior(self.covariance_prior, ctype, d)
        wcp = (1.0 / self.n_components if self.weight_concentration_prior is None
               else float(self.weight_concentration_prior))
        mpp = 1.0 if self.mean_precision_prior is None else float(self.mean_precision_prior)
        return Priors(wcp, mpp, mean_prior, dof, cov_prior)

    def _fit(self, X, sample_weight):
        fitted = super()._fit(X, sample_weight)
        self.elbo_ = self.lower_bound_ + self._fitted_family().elbo_constant(self._total_weight)
        return fitted

    def _after_step(self, stream):
        self._total_weight = stream.weight_seen
        self.elbo_ = self.lower_bound_ + stream.family.elbo_constant(stream.weight_seen)

    _fits_missing = True

    def _family(self, data, backend, sample_weight, n_features, missing=None):
        self._total_weight = float(data.shape[0] if sample_weight is None
                                   else sample_weight.sum())
        priors = self._priors(data, backend, sample_weight, n_features, missing)
        self.weight_concentration_prior_ = priors.weight_concentration
        self.mean_precision_prior_ = priors.mean_precision
        self.mean_prior_ = priors.mean
        self.degrees_of_freedom_prior_ = priors.degrees_of_freedom
        self.covariance_prior_ = priors.covariance
        self._priors_ = priors
        return VariationalFamily(self, priors, n_features, missing)

    def _store(self, p: VariationalParams):
        ctype = self.covariance_type
        self.weight_concentration_ = p.weight_concentration
        self.mean_precision_ = p.mean_precision
        self.means_ = p.means
        self.degrees_of_freedom_ = p.degrees_of_freedom
        self.covariances_ = p.covariances
        self.precisions_cholesky_ = p.precisions_cholesky
        self.precisions_ = precisions_from_cholesky(p.precisions_cholesky, ctype)
        self.weights_ = mixture_weights(p.weight_concentration, self.weight_concentration_prior_type)

    def _fitted_params(self) -> VariationalParams:
        concentration = self.weight_concentration_  # a pair of arrays for the process prior
        self._refuse_non_finite(
            weight_concentration_=np.concatenate([np.ravel(c) for c in concentration])
            if isinstance(concentration, tuple) else concentration,
            mean_precision_=self.mean_precision_, means_=self.means_,
            degrees_of_freedom_=self.degrees_of_freedom_, covariances_=self.covariances_,
            precisions_cholesky_=self.precisions_cholesky_)
        return VariationalParams(self.weight_concentration_, self.mean_precision_, self.means_,
                                 self.degrees_of_freedom_, self.covariances_,
                                 self.precisions_cholesky_)

    def _fitted_family(self) -> VariationalFamily:
        priors = Priors(self.weight_concentration_prior_, self.mean_precision_prior_,
                        self.mean_prior_, self.degrees_of_freedom_prior_, self.covariance_prior_)
        return VariationalFamily(self, priors, self.means_.shape[1])

    def _kernel_inputs(self):
        return self._fitted_family().kernel_inputs(self._fitted_params())
