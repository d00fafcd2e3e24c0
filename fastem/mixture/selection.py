"""``fastem.GaussianMixtureIC``: the number of components (and the covariance
type) chosen by an information criterion, every candidate fitted in shared passes.

scikit-learn answers "how many components?" with a loop of separate fits.
Here all candidates advance together: each EM iteration is one pass over X
that computes the statistics of every candidate still running (their
components concatenated, a log-sum-exp per candidate; ``accumulate_many``),
and converged candidates drop out. The difference matters when X is a memory
map on disk or a Dask array on a cluster: the sweep reads X once per
iteration instead of once per candidate per iteration.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from .. import _em
from .. import _validation as val
from .._covariance import COVARIANCE_TYPES, n_parameters
from .._estimator import EstimatorBase
from .._sampling import check_random_state
from .._steps import answer
from .gaussian import GaussianMixture

CRITERIA = ("bic", "aic")


class GaussianMixtureIC(EstimatorBase):
    """Gaussian mixtures for several numbers of components (and covariance
    types), fitted together; the best by BIC or AIC is kept.

    Parameters
    ----------
    n_components : int or iterable of int, default=None
        The candidates' numbers of components; None: ``min_components`` to
        ``max_components``.
    min_components : int, default=1
        Smallest number of components when ``n_components`` is None (the
        range of scikit-learn's proposal, its issue #19338).
    max_components : int, default=10
        Largest number of components when ``n_components`` is None (included).
    covariance_type : str, list of str, or 'all', default='full'
        The candidates' covariance types; 'all' tries the four.
    criterion : {'bic', 'aic'}, default='bic'
        What chooses the best candidate (lowest wins).
    tol : float, default=1e-3
        As in :class:`GaussianMixture`, for every candidate.
    reg_covar : float, default=1e-6
        As in :class:`GaussianMixture`.
    max_iter : int, default=100
        As in :class:`GaussianMixture`.
    n_init : int, default=1
        As in :class:`GaussianMixture`.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        As in :class:`GaussianMixture`.
    random_state : int, RandomState instance or None, default=None
        With an integer every candidate gets its own ``RandomState(seed)``, so
        each is the model ``GaussianMixture(n_components=k,
        covariance_type=c, ...)`` fits alone with these parameters (to
        round-off of the shared pass).
    verbose : int, default=0
        As in :class:`GaussianMixture`.
    verbose_interval : int, default=10
        As in :class:`GaussianMixture`.
    backend : {'cpu', 'cuda'}, default='cpu'
        As in :class:`GaussianMixture`.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        As in :class:`GaussianMixture`.

    Attributes
    ----------
    best_estimator_ : GaussianMixture
    n_components_ : int
        The best candidate's number of components.
    covariance_type_ : str
        The best candidate's covariance type.
    estimators_ : list of GaussianMixture, one per candidate (in ``results_`` order)
    results_ : dict of equal-length ndarrays: ``n_components``,
        ``covariance_type``, ``bic``, ``aic``, ``lower_bound``, ``n_iter``,
        ``converged``, ``seconds`` (``pandas.DataFrame(results_)`` loads it)
    n_passes_ : int
        Passes of the sweep's EM iterations, each serving every candidate
        still running, plus the final scoring pass. Over incomplete data (NaN)
        such a pass reads X once per candidate on the CPU and GPU backends
        (once per chunk for all candidates on Dask).
    n_init_passes_ : int
        Passes over all of X during the initialisations (the k-means Lloyd
        passes and final assignment, shared by the candidates; seeding and the
        first Lloyd iterations run on a sample of rows and are not counted).
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,), dtype object
        Column names of a dataframe X, as in :class:`GaussianMixture`.

    Notes
    -----
    On the CPU, memory maps and Dask one kernel computes every candidate in
    a pass. On the GPU each chunk of X reaches the device once per pass and
    every candidate's kernel runs on it (for X resident on the GPU, one
    launch per candidate reads it from GPU memory).

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixtureIC
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6,
    ...           rng.normal(size=(300, 2)) - 6]
    >>> ic = GaussianMixtureIC(n_components=range(1, 6), random_state=0).fit(X)
    >>> ic.n_components_, ic.covariance_type_
    (3, 'full')
    >>> ic.results_["bic"].shape
    (5,)
    """

    _fitted_attribute = "best_estimator_"
    _fits_missing = True

    def __init__(self, n_components=None, *, min_components=1, max_components=10,
                 covariance_type="full", criterion="bic", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", random_state=None, verbose=0,
                 verbose_interval=10, backend="cpu", dtype=None):
        self.n_components = n_components
        self.min_components = min_components
        self.max_components = max_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------------

    def _candidates(self):
        """``[(k, covariance_type), ...]`` in the order of ``results_``."""
        if self.n_components is None:
            for name in ("min_components", "max_components"):
                val._check_int(getattr(self, name), name, 1)
            if self.max_components < self.min_components:
                raise ValueError(f"max_components={self.max_components} is smaller than "
                                 f"min_components={self.min_components}.")
            ks = list(range(self.min_components, self.max_components + 1))
        elif isinstance(self.n_components, numbers.Integral) and not isinstance(self.n_components, bool):
            ks = [int(self.n_components)]
        else:
            try:
                ks = list(self.n_components)
            except TypeError:
                raise ValueError(f"Invalid value for 'n_components': {self.n_components!r}; "
                                 "expected an int, an iterable of ints or None.") from None
            if not ks:
                raise ValueError("n_components is empty; give at least one candidate.")
            for k in ks:
                val._check_int(k, "n_components", 1)
            ks = [int(k) for k in ks]
        types = self.covariance_type
        if isinstance(types, str):
            types = list(COVARIANCE_TYPES) if types == "all" else [types]
        try:
            types = list(types)
        except TypeError:
            raise ValueError(f"Invalid value for 'covariance_type': {types!r}; expected a str, "
                             "a list of str or 'all'.") from None
        if not types:
            raise ValueError("covariance_type is empty; give at least one covariance type.")
        for t in types:
            if t not in COVARIANCE_TYPES:
                raise ValueError(f"Invalid value for 'covariance_type': {t!r}; expected one of "
                                 f"{list(COVARIANCE_TYPES)} or 'all'.")
        if self.criterion not in CRITERIA:
            raise ValueError(f"Invalid value for 'criterion': {self.criterion!r}; expected one "
                             f"of {list(CRITERIA)}.")
        return [(k, t) for t in dict.fromkeys(types) for k in dict.fromkeys(ks)]

    def _estimator(self, k, covariance_type):
        return GaussianMixture(k, covariance_type=covariance_type, tol=self.tol,
                               reg_covar=self.reg_covar, max_iter=self.max_iter,
                               n_init=self.n_init, init_params=self.init_params,
                               random_state=self.random_state, verbose=self.verbose,
                               verbose_interval=self.verbose_interval, backend=self.backend,
                               dtype=self.dtype)

    def fit(self, X, y=None, sample_weight=None):
        """Fit every candidate in shared passes; keep the best by ``criterion``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Also a memory map, a dask array, a dataframe or a GPU array, as in
            :meth:`GaussianMixture.fit`.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Counts: an integer weight stands for that many rows (scikit-learn's
            convention), so the criteria use ``log L = sum w log p(x)`` and
            ``n = sum w``. Multiplying every weight by ``c`` is replicating
            every row ``c`` times, which can change the choice (more rows,
            more evidence for a larger model); weights summing to fewer than
            the largest candidate's free parameters are warned about.
            ``best_estimator_.bic(X, sample_weight=...)`` gives ``results_``'s
            number.

        Returns
        -------
        self : GaussianMixtureIC
            The fitted sweep; ``best_estimator_`` is the chosen model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], covariance_type="all",
        ...                        random_state=0).fit(X)
        >>> len(ic.estimators_), ic.n_components_
        (12, 2)
        """
        candidates = self._candidates()
        estimators = [self._estimator(k, t) for k, t in candidates]
        for est in estimators:
            est._check_params()
        prep = self._prepare_fit(X, sample_weight, min_rows=max(k for k, _ in candidates))
        data, backend, sw, missing = prep.data, prep.backend, prep.sample_weight, prep.missing
        n_features = prep.n_features
        if sw is not None:
            most = max(n_parameters(t, k, n_features) for k, t in candidates)
            if sw.sum() < most:
                warnings.warn(
                    f"sample_weight sums to {sw.sum():.4g}, fewer than the {most} free "
                    "parameters of the largest candidate. The criteria read weights as counts "
                    "(n = sum(sample_weight), as scikit-learn's convention that an integer "
                    "weight stands for that many rows), so weights that do not count rows "
                    "(such as 1/n_samples) make n too small and favour the largest model; "
                    "scale them to counts.", UserWarning, stacklevel=2)
        families = [est._family(data, backend, sw, n_features, missing) for est in estimators]
        rngs = [check_random_state(self.random_state) for _ in estimators]
        settings = _em.LoopSettings(self.n_init, self.max_iter, self.tol, self.verbose,
                                    self.verbose_interval)
        passes = _CountingBackend(backend)
        t0 = time.perf_counter()
        best = _em.fit_many(families, data, passes, sw, rngs, settings)
        seconds = time.perf_counter() - t0
        for est, run in zip(estimators, best):
            est._set_fit_result(run, n_features, stacklevel=5)
            est.__dict__.pop("_fit_feature_names", None)
            if hasattr(self, "_fit_feature_names") and self._fit_feature_names is not None:
                est.feature_names_in_ = self._fit_feature_names
        # The criteria need each final model's log-likelihood: one more shared pass.
        final = answer([f.e_step(est._fitted_params()) for f, est in zip(families, estimators)],
                       passes, data, sw)
        total = final[0].weight_sum
        rows = {"n_components": [], "covariance_type": [], "bic": [], "aic": [],
                "lower_bound": [], "n_iter": [], "converged": [], "seconds": []}
        for (k, t), est, stats, run in zip(candidates, estimators, final, best):
            p = n_parameters(t, k, n_features)
            loglik = stats.log_likelihood
            rows["n_components"].append(k)
            rows["covariance_type"].append(t)
            rows["bic"].append(-2.0 * loglik + p * np.log(total))
            rows["aic"].append(-2.0 * loglik + 2.0 * p)
            rows["lower_bound"].append(est.lower_bound_)
            rows["n_iter"].append(est.n_iter_)
            rows["converged"].append(est.converged_)
            rows["seconds"].append(run.init_seconds + float(np.sum(run.seconds)))
        self.results_ = {name: np.asarray(v, dtype=object if name == "covariance_type" else None)
                         for name, v in rows.items()}
        self.results_["covariance_type"] = self.results_["covariance_type"].astype(str)
        best_index = int(np.argmin(self.results_[self.criterion]))
        self.estimators_ = estimators
        self.best_estimator_ = estimators[best_index]
        self.n_components_ = int(self.results_["n_components"][best_index])
        self.covariance_type_ = str(self.results_["covariance_type"][best_index])
        self.n_passes_ = passes.count
        self.n_init_passes_ = passes.init_count
        self.sweep_seconds_ = seconds
        self._set_feature_names(n_features)
        return self

    # -- the best model's methods ------------------------------------------------

    def predict(self, X):
        """Most probable component of each row under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the sweep was fitted on.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            ``best_estimator_.predict(X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.predict(X[:2]).shape
        (2,)
        """
        self._check_fitted()
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Posterior probability of each of the best model's components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the sweep was fitted on.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_components)
            ``best_estimator_.predict_proba(X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.predict_proba(X[:2]).shape
        (2, 2)
        """
        self._check_fitted()
        return self.best_estimator_.predict_proba(X)

    def score_samples(self, X):
        """Log-density of each row under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the sweep was fitted on.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``best_estimator_.score_samples(X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.score_samples(X[:2]).shape
        (2,)
        """
        self._check_fitted()
        return self.best_estimator_.score_samples(X)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-density of the rows of X under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the sweep was fitted on.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the mean.

        Returns
        -------
        score : float
            ``best_estimator_.score(X, sample_weight=sample_weight)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> bool(np.isclose(ic.score(X), ic.best_estimator_.score(X)))
        True
        """
        self._check_fitted()
        return self.best_estimator_.score(X, sample_weight=sample_weight)

    def sample(self, n_samples=1):
        """Draw rows from the best model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The rows, grouped by component.
        y : ndarray of shape (n_samples,)
            The component each row was drawn from.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureIC
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6]
        >>> ic = GaussianMixtureIC(n_components=[1, 2, 3], random_state=0).fit(X)
        >>> ic.sample(4)[0].shape
        (4, 2)
        """
        self._check_fitted()
        return self.best_estimator_.sample(n_samples)


class _CountingBackend:
    """A backend that counts the passes of a sweep (``accumulate_many`` calls,
    and ``accumulate`` once a single candidate is left running) and of its
    initialisations (``map_chunks`` calls)."""

    def __init__(self, backend):
        self._backend = backend
        self.count = 0
        self.init_count = 0

    def accumulate(self, data, inputs, sample_weight=None):
        self.count += 1
        return self._backend.accumulate(data, inputs, sample_weight)

    def accumulate_many(self, data, inputs_list, sample_weight=None):
        self.count += 1
        return self._backend.accumulate_many(data, inputs_list, sample_weight)

    def map_chunks(self, *args, **kwargs):
        self.init_count += 1
        return self._backend.map_chunks(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)
