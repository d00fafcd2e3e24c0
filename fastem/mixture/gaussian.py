"""``fastem.GaussianMixture`` (maximum likelihood by EM) and its model family."""

from __future__ import annotations


import numpy as np

from .. import _validation as val
from .. import config
from .._covariance import n_parameters, parameter_shape
from ..model_file import ModelFile, check_factor_pair, check_simplex, register_model
from .._model import (Params, regularisation_loss, covariances_from_cholesky, m_step,
                      precision_cholesky_from_covariances, precisions_from_cholesky)
from .._missing import initialize_on_sample
from .._steps import GaussianPass, run_alone
from ..init import initial_params_steps
from ._base import NON_FINITE_ADVICE, MixtureBase



class GaussianFamily:
    """Maximum-likelihood Gaussian mixture: EM's math for the driver (``fastem._em``).

    Parameters are :class:`fastem._model.Params`; the bound is the mean
    (weighted) log-likelihood under the E-step's parameters, as scikit-learn's
    ``lower_bound_``.
    """

    name = "EM"

    def __init__(self, estimator, missing=None):
        self.estimator = estimator
        self.covariance_type = estimator.covariance_type
        self.reg_covar = estimator.reg_covar
        #: ``fastem._missing.MissingValues`` of the data when it has NaN: the
        #: passes are then EM's for incomplete data.
        self.missing = missing

    def initialize(self, data, backend, sample_weight, rng) -> Params:
        return run_alone(self.initialize_steps(data, backend, sample_weight, rng), backend, data,
                         sample_weight)

    def initialize_steps(self, data, backend, sample_weight, rng):
        if self.missing is not None:
            return initialize_on_sample(self.missing, self._initial_steps, data, backend,
                                        sample_weight, rng, self.estimator.n_components)
        return (yield from self._initial_steps(data, sample_weight, backend, rng))

    def _initial_steps(self, data, sample_weight, backend, rng):
        params, covariances = yield from initial_params_steps(data, sample_weight, self.estimator,
                                                              rng, backend)
        params.covariances = covariances
        return params

    non_finite_advice = NON_FINITE_ADVICE

    def kernel_inputs(self, params: Params):
        if self.missing is not None:
            return params.kernel_inputs().incomplete()
        return params.kernel_inputs()

    def e_step(self, params: Params) -> GaussianPass:
        """The pass request of the E-step under ``params``."""
        return GaussianPass(self.kernel_inputs(params))

    def m_step(self, stats, draw_rows):
        """Closed-form M-step; components that lost their points are re-seeded
        (onto drawn rows, missing values filled with the column means)."""
        ctype = self.covariance_type
        weights, means, cov = m_step(stats, ctype, self.reg_covar)
        empty = np.flatnonzero(stats.mass <= config.EMPTY_COMPONENT_MASS * stats.weight_sum)
        if empty.size:
            picked = draw_rows(empty.size)
            if self.missing is not None:
                picked = self.missing.filled(picked)
            weights, means, cov = _reseed(empty, weights, means, cov, ctype, picked)
        prec_chol = precision_cholesky_from_covariances(cov, ctype)
        return Params(weights, means, prec_chol, ctype, cov), int(empty.size)

    def lower_bound(self, stats, before, after) -> float:
        return stats.log_likelihood / stats.weight_sum

    def bound_allowance(self, params: Params) -> float:
        """How far the next bound may fall below this one without a defect:
        what ``reg_covar`` costs the M-step that made ``params``."""
        return regularisation_loss(params.weights, params.precisions_cholesky,
                                   self.covariance_type, self.reg_covar, params.means.shape[1])


def _covariance_shape(k, d, params):
    return parameter_shape(params["covariance_type"], k, d)


@register_model
class GaussianMixture(MixtureBase):
    """Gaussian mixture fitted by expectation-maximization.

    Same constructor parameters, fitted attributes and methods as
    ``sklearn.mixture.GaussianMixture``, plus ``backend`` and ``sample_weight``.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Each component's own full covariance, one full covariance shared by
        all ('tied'), diagonal covariances, or a single variance per component.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default=100
        EM iterations; 0 initialises only.
    n_init : int, default=1
        Initialisations; the one with the best final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the responsibilities of the first M-step are chosen: k-means
        (k-means++ seeding and Lloyd passes), k-means++ seeds alone, random
        responsibilities, or random rows as one-hot starts.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (replace those of ``init_params``).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), of shape
        (n_components,) for 'spherical', (n_features, n_features) for 'tied',
        (n_components, n_features) for 'diag', (n_components, n_features,
        n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation (and re-seeding of emptied components); an
        integer makes the fit reproducible, bit for bit, for any thread count.
    warm_start : bool, default=False
        Continue from the previous fit's parameters (``n_init`` is then ignored).
    verbose : int, default=0
        0 prints nothing; 1 draws a progress bar of the iterations (tqdm, on
        stderr); 2 prints a line every ``verbose_interval`` iterations with
        its time and lower bound, as scikit-learn does.
    verbose_interval : int, default=10
        Iterations between two lines at ``verbose=2``.
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
        'cuda' runs the passes on an NVIDIA GPU through numba.cuda (install
        ``fastem[cuda]``); X may then also be a GPU array (CuPy, PyTorch CUDA
        tensor, numba device array), used without a host copy.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Floating-point type the passes compute in (as scikit-learn's
        ``KBinsDiscretizer(dtype=...)``). None computes float32 input in float32
        (about twice as fast) and anything else in float64; numpy.float64
        computes float32 input in float64 too. float32 compute centres every
        row in float64 before narrowing it and keeps the statistics and the
        M-step in float64: the fit matches the float64 fit to about 1e-6
        relative. Fitted attributes are float64 either way.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray, shape by ``covariance_type`` as ``precisions_init``
    precisions_ : ndarray, same shape as ``covariances_``
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean (weighted) log-likelihood of the best initialisation's last E-step.
    lower_bounds_ : list of float
        The lower bound after every iteration of the best initialisation.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,), dtype object
        Column names of X when it was a dataframe with string column names
        (pandas, polars, ...); absent otherwise. Later inputs with other
        names, or the same names in another order, raise a ValueError; an
        array after a dataframe fit (or the reverse) warns, as in scikit-learn.
    n_reseeds_ : int
        Components re-seeded because they lost all their points (best run).
    init_seconds_ : float
        Wall time of the best run's initialisation, without compilation.
    iteration_seconds_ : list of float
        Wall time of each EM iteration of the best run, without compilation.
    compile_seconds_ : float
        Wall time the best run spent compiling kernels: only on the first use
        of a kernel on this CPU, since kernels are cached on disk
        (``fastem warmup`` compiles them all ahead of time).

    progress_callback : callable, optional (attribute, not a constructor parameter)
        When set, called after every EM iteration as
        ``progress_callback(n_iter, max_iter, lower_bound, change, seconds)``;
        the command line draws its progress bar with it.

    Notes
    -----
    Parameters are float64 whatever the input dtype; float32 input is read as
    float32 (never copied to float64), and statistics are accumulated in
    float64, centred on the previous means.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + [8, 0]]
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0]).round().astype(int)
    array([0, 8])
    >>> label = gm.predict([[7.5, 0.0]])[0]  # the component centred near (8, 0)
    >>> gm.means_[label].round().astype(int)
    array([8, 0])
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, batch_size=None, learning_decay=0.7,
                 learning_offset=10.0, backend="cpu", dtype=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
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
        unstored_params=("weights_init", "means_init", "precisions_init"),
        arrays={"weights": lambda k, d, p: (k,), "means": lambda k, d, p: (k, d),
                "covariances": _covariance_shape, "precisions_cholesky": _covariance_shape})

    def _saved_array(self, name):
        return getattr(self, name + "_")

    def _check_file_arrays(self, arrays):
        """A model file's arrays obey what a fit produces (``fastem.model_file``)."""
        check_simplex("weights", arrays["weights"])
        check_factor_pair(arrays["covariances"], arrays["precisions_cholesky"],
                          self.covariance_type)

    def _restore_arrays(self, arrays):
        self._store(Params(arrays["weights"], arrays["means"], arrays["precisions_cholesky"],
                           self.covariance_type, arrays["covariances"]))

    _fits_missing = True

    def _check_params(self):
        val.check_estimator_params(self)

    def _fitted_family(self):
        return GaussianFamily(self)

    def _family(self, data, backend, sample_weight, n_features, missing=None):
        k, ctype = self.n_components, self.covariance_type
        if self.weights_init is not None:
            val.check_weights(self.weights_init, k)
        if self.means_init is not None:
            val.check_means(self.means_init, k, n_features)
        if self.precisions_init is not None:
            val.check_precisions(self.precisions_init, ctype, k, n_features)
        return GaussianFamily(self, missing)

    def _store(self, params: Params):
        ctype = params.covariance_type
        self.weights_ = params.weights
        self.means_ = params.means
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = precisions_from_cholesky(params.precisions_cholesky, ctype)
        self.covariances_ = (params.covariances if params.covariances is not None
                             else covariances_from_cholesky(params.precisions_cholesky, ctype))

    def _fitted_params(self) -> Params:
        """The fitted attributes as Params, refused when they are not a
        mixture (set by hand; a fit's own always are)."""
        chol = np.asarray(self.precisions_cholesky_, dtype=np.float64)
        self._refuse_non_finite(weights_=self.weights_, means_=self.means_,
                                precisions_cholesky_=chol)
        weights = val.check_weights(self.weights_, np.shape(self.means_)[0], name="weights_")
        diagonal = (chol if self.covariance_type in ("diag", "spherical")
                    else np.diagonal(chol, axis1=-2, axis2=-1))
        if np.any(diagonal <= 0):
            raise ValueError("precisions_cholesky_ must be Cholesky factors with a positive "
                             "diagonal.")
        return Params(weights, np.asarray(self.means_, dtype=np.float64), chol,
                      self.covariance_type, self.covariances_)

    def _kernel_inputs(self):
        return self._fitted_params().kernel_inputs()

    def _n_parameters(self):
        return n_parameters(self.covariance_type, self.n_components, self.means_.shape[1])

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on X (lower is better):
        ``-2 log L + p log n``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.
        sample_weight : array-like of shape (n_samples,), default=None
            Counts, as in :meth:`fit`: an integer weight stands for that many
            rows, so ``log L = sum w log p(x)`` and ``n = sum w`` (the
            convention :class:`GaussianMixtureIC` uses, so its ``results_``
            and this method agree).

        Returns
        -------
        bic : float
            The criterion; compare it between models fitted to the same rows.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bics = [GaussianMixture(k, random_state=0).fit(X).bic(X) for k in (1, 2, 3)]
        >>> int(np.argmin(bics)) + 1
        2
        """
        loglik, n = self._total_log_likelihood(X, sample_weight)
        return -2.0 * loglik + self._n_parameters() * np.log(n)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on X (lower is better): ``-2 log L + 2 p``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.
        sample_weight : array-like of shape (n_samples,), default=None
            Counts, as in :meth:`bic`.

        Returns
        -------
        aic : float
            The criterion; compare it between models fitted to the same rows.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(gm.aic(X) < GaussianMixture(1).fit(X).aic(X))
        True
        """
        loglik, _ = self._total_log_likelihood(X, sample_weight)
        return -2.0 * loglik + 2.0 * self._n_parameters()

    def _total_log_likelihood(self, X, sample_weight):
        """``(sum w log p(x), sum w)`` (weights of 1 when None)."""
        logp = np.asarray(self.score_samples(X))
        sw = val.check_sample_weight(sample_weight, logp.shape[0])
        if sw is None:
            return float(logp.sum()), float(logp.shape[0])
        return float(np.dot(sw, logp)), float(sw.sum())


def _reseed(empty, weights, means, cov, covariance_type, picked):
    """Move empty components onto the data rows ``picked`` (drawn by sample weight).

    A re-seeded component gets the weighted mean covariance of the surviving
    components and the weight ``1/k`` before renormalisation.
    """
    k = weights.shape[0]
    alive = np.setdiff1d(np.arange(k), empty)
    means = means.copy()
    weights = weights.copy()
    cov = cov.copy()
    for j, row in zip(empty, picked):
        means[j] = row
        weights[j] = 1.0 / k
        if covariance_type != "tied" and alive.size:
            cov[j] = np.tensordot(weights[alive] / weights[alive].sum(), cov[alive], axes=1)
    return weights / weights.sum(), means, cov
