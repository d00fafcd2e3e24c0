"""``fastem.GaussianMixture``: scikit-learn's estimator, fitted by fused kernels."""

from __future__ import annotations

import inspect
import time
import warnings

import numpy as np

from . import _validation as val
from . import exceptions
from ._model import (Params, covariances_from_cholesky, m_step, n_parameters,
                     precision_cholesky_from_covariances, precisions_from_cholesky)
from .backends import get_backend
from .backends.dask import DaskData, is_dask_array, lazy_map
from ._sampling import check_random_state, choose_rows
from .init import initial_params


#: A component whose mass is below this fraction of the total weight has lost
#: its points; it is re-seeded instead of collapsing to a degenerate Gaussian.
EMPTY_COMPONENT_MASS = 1e-13

#: Relative drop of the lower bound, beyond round-off, that triggers a warning.
MONOTONICITY_SLACK = 1e-9


class GaussianMixture:
    """Gaussian mixture fitted by expectation-maximization.

    Same constructor parameters, fitted attributes and methods as
    ``sklearn.mixture.GaussianMixture``, plus ``backend`` and ``sample_weight``.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default=100
        EM iterations; 0 initialises only.
    n_init : int, default=1
        Initialisations; the one with the best final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        (n_components,) for 'spherical', (n_features, n_features) for 'tied',
        (n_components, n_features) for 'diag', (n_components, n_features,
        n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Continue from the previous fit's parameters (``n_init`` is then ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    backend : {'cpu', 'cuda'}, default='cpu'
        'cuda' runs the passes on an NVIDIA GPU through numba.cuda (install
        ``fastem[cuda]``); X may then also be a GPU array (CuPy, PyTorch CUDA
        tensor, numba device array), used without a host copy.

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
    feature_names_in_ : ndarray of shape (n_features_in_,), dtype object
        Column names of X when it was a dataframe with string column names
        (pandas, polars, ...); absent otherwise. Later inputs with other
        names, or the same names in another order, raise a ValueError; an
        array after a dataframe fit (or the reverse) warns, as in scikit-learn.
    n_reseeds_ : int
        Components re-seeded because they lost all their points (best run).
    init_seconds_ : float
        Wall time of the best run's initialisation.
    iteration_seconds_ : list of float
        Wall time of each EM iteration of the best run.

    progress_callback : callable, optional (attribute, not a constructor parameter)
        When set, called after every EM iteration as
        ``progress_callback(n_iter, max_iter, lower_bound, change, seconds)``;
        the command line draws its progress bar with it.

    Notes
    -----
    Parameters are float64 whatever the input dtype; float32 input is read as
    float32 (never copied to float64), and statistics are accumulated in
    float64, centred on the previous means.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, backend="cpu"):
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
        self.backend = backend

    # ------------------------------------------------------------------
    # scikit-learn estimator protocol (without importing scikit-learn)
    # ------------------------------------------------------------------

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Constructor parameters as a dict (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for GaussianMixture; valid: {valid}.")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = type(self)().get_params()
        changed = []
        for k, v in self.get_params().items():
            d = defaults[k]
            same = v is d if (isinstance(v, np.ndarray) or isinstance(d, np.ndarray)) else v == d
            if not same:
                changed.append(f"{k}={v!r}")
        return f"GaussianMixture({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags
        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts a row that many times.

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most probable component of each row, shape (n_samples,)
        (a lazy dask array for dask input)."""
        data, backend = self._fit(X, sample_weight)
        return self._map_rows(data, backend, _labels, None, np.int64)

    def _check_initial_arrays(self, n_features):
        k, ctype = self.n_components, self.covariance_type
        if self.weights_init is not None:
            val.check_weights(self.weights_init, k)
        if self.means_init is not None:
            val.check_means(self.means_init, k, n_features)
        if self.precisions_init is not None:
            val.check_precisions(self.precisions_init, ctype, k, n_features)

    def _check_X(self, X, reset):
        """Validated X: a float32/float64 ndarray, a GPU array for 'cuda', or a
        dask array (run chunk by chunk on the Dask scheduler).

        ``reset`` (fit): remember X's feature names for the end of the fit.
        Otherwise X must have the fitted model's feature names (if any) and
        number of features.
        """
        names = val.feature_names_of(X)
        name = type(self).__name__
        if reset:
            self._fit_feature_names = names
            n_features = None
        else:
            val.check_feature_names(getattr(self, "feature_names_in_", None), names, name)
            n_features = self.n_features_in_
        if is_dask_array(X):
            if self.backend != "cpu":
                raise ValueError("dask arrays run the CPU kernels on the Dask workers; "
                                 "use backend='cpu' with dask input.")
            from .backends.dask import check_dask_array
            return check_dask_array(X, n_features=n_features, estimator=name)
        if val.is_device_array(X):
            if self.backend != "cuda":
                raise TypeError(
                    f"X is a GPU array ({type(X).__name__}); use backend='cuda' or copy it "
                    "to the host first."
                )
            return val.check_device_array(X, n_features=n_features, estimator=name)
        return val.check_array(X, n_features=n_features, estimator=name)

    def _backend_for(self, X):
        if is_dask_array(X):
            from .backends.dask import DaskBackend
            return DaskBackend()
        return get_backend(self.backend)

    def _fit(self, X, sample_weight):
        val.check_estimator_params(self)
        backend = self._backend_for(X)
        X = self._check_X(X, reset=True)
        n_samples, n_features = X.shape
        if is_dask_array(sample_weight):
            sample_weight = sample_weight.compute()  # n floats, small next to X
        sw = val.check_sample_weight(sample_weight, n_samples)
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_samples}."
            )
        self._check_initial_arrays(n_features)
        X = backend.prepare(X)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if not do_init:
            if self.n_features_in_ != n_features:
                raise ValueError(
                    f"warm_start: X has {n_features} features, but the model was fitted "
                    f"with {self.n_features_in_} features."
                )
            k, d = self.n_components, n_features
            expected = {"full": (k, d, d), "tied": (d, d), "diag": (k, d),
                        "spherical": (k,)}[self.covariance_type]
            fitted_type = getattr(self, "_fitted_covariance_type", self.covariance_type)
            if (self.means_.shape[0] != k or np.shape(self.precisions_cholesky_) != expected
                    or fitted_type != self.covariance_type):
                raise ValueError(
                    "warm_start: n_components or covariance_type changed since the previous "
                    "fit; set warm_start=False to start afresh."
                )
        n_init = self.n_init if do_init else 1
        rng = check_random_state(self.random_state)

        best = None
        for init in range(n_init):
            if self.verbose:
                print(f"Initialization {init}")
            t0 = time.perf_counter()
            if do_init:
                params, covariances = initial_params(X, sw, self, rng, backend)
                lower_bound = -np.inf
            else:
                params, covariances = self._current_params(), self.covariances_
                lower_bound = self.lower_bound_
            init_seconds = time.perf_counter() - t0
            if self.verbose >= 2:
                print(f"  Initialization took {init_seconds:.3f}s")
            run = self._em(X, sw, params, covariances, lower_bound, backend, rng)
            run["init_seconds"] = init_seconds
            if best is None or run["lower_bound"] > best["lower_bound"] or best["lower_bound"] == -np.inf:
                best = run

        if not best["converged"] and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                exceptions.ConvergenceWarning, stacklevel=3,
            )
        self._set_params(best["params"], best["covariances"])
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        self.lower_bound_ = best["lower_bound"] if self.max_iter > 0 else -np.inf
        self.lower_bounds_ = best["history"]
        self.n_reseeds_ = best["n_reseeds"]
        self.init_seconds_ = best["init_seconds"]
        self.iteration_seconds_ = best["seconds"]
        self.n_features_in_ = n_features
        names = self.__dict__.pop("_fit_feature_names", None)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._fitted_covariance_type = self.covariance_type
        return X, backend

    def _em(self, X, sw, params, covariances, lower_bound, backend, rng):
        """EM from ``params``; returns the run's outcome as a dict."""
        history = []
        seconds = []
        converged = False
        n_iter = 0
        n_reseeds = 0
        reseeded_last = False
        for n_iter in range(1, self.max_iter + 1):
            t0 = time.perf_counter()
            prev = lower_bound
            stats = backend.accumulate(X, params, sw)
            lower_bound = stats.log_likelihood / stats.weight_sum
            if not np.isfinite(lower_bound):
                raise ValueError(
                    "The log-likelihood is not finite: squared Mahalanobis distances overflow "
                    "float64 (the data's scale is extreme for the covariances; with "
                    "init_params='k-means++' or 'random_from_data' the initial covariances "
                    "are reg_covar * I). Rescale X, increase reg_covar or use init_params='kmeans'."
                )
            params, covariances, reseeded = self._m_step(stats, X, sw, backend, rng)
            n_reseeds += reseeded
            history.append(lower_bound)
            seconds.append(time.perf_counter() - t0)
            change = lower_bound - prev
            if (np.isfinite(prev) and not reseeded_last
                    and change < -MONOTONICITY_SLACK * max(1.0, abs(prev))):
                warnings.warn(
                    f"EM lower bound decreased by {-change:.3g} at iteration {n_iter}, "
                    "more than round-off; the fit may be numerically unstable.",
                    RuntimeWarning, stacklevel=4,
                )
            reseeded_last = reseeded > 0
            hook = getattr(self, "progress_callback", None)
            if hook is not None:
                hook(n_iter, self.max_iter, lower_bound, change, seconds[-1])
            if self.verbose >= 2 and n_iter % self.verbose_interval == 0:
                print(f"  Iteration {n_iter}\t time lapse {seconds[-1]:.5f}s\t "
                      f"lower bound {lower_bound:.8f}\t ll change {change:.5f}")
            if abs(change) < self.tol:
                converged = True
                break
        if self.verbose:
            state = "converged" if converged else "did not converge"
            print(f"Initialization {state}. n_iter={n_iter}, lower bound {lower_bound:.8f}")
        return dict(params=params, covariances=covariances, lower_bound=lower_bound,
                    converged=converged, n_iter=n_iter, history=history, n_reseeds=n_reseeds,
                    seconds=seconds)

    def _m_step(self, stats, X, sw, backend, rng):
        """M-step, re-seeding components that lost their points.

        Returns
        -------
        params : Params
        covariances : ndarray
        n_reseeded : int
        """
        ctype = self.covariance_type
        weights, means, cov = m_step(stats, ctype, self.reg_covar)
        empty = np.flatnonzero(stats.mass <= EMPTY_COMPONENT_MASS * stats.weight_sum)
        if empty.size:
            weights, means, cov = _reseed(empty, weights, means, cov, ctype, X, sw, backend, rng)
        prec_chol = precision_cholesky_from_covariances(cov, ctype)
        return Params(weights, means, prec_chol, ctype), cov, int(empty.size)

    # ------------------------------------------------------------------
    # Parameters as attributes
    # ------------------------------------------------------------------

    def _set_params(self, params: Params, covariances):
        ctype = params.covariance_type
        self.weights_ = params.weights
        self.means_ = params.means
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = precisions_from_cholesky(params.precisions_cholesky, ctype)
        self.covariances_ = (covariances if covariances is not None
                             else covariances_from_cholesky(params.precisions_cholesky, ctype))

    def _current_params(self) -> Params:
        return Params(np.asarray(self.weights_, dtype=np.float64),
                      np.asarray(self.means_, dtype=np.float64),
                      np.asarray(self.precisions_cholesky_, dtype=np.float64),
                      self.covariance_type)

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise exceptions.NotFittedError(
                "This GaussianMixture instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    # ------------------------------------------------------------------
    # Prediction: one chunked map over the weighted log-densities
    # ------------------------------------------------------------------

    def _map_rows(self, data, backend, reduce, out_columns=None, dtype=np.float64):
        """``reduce`` applied to the weighted log-densities, chunk by chunk.

        ``reduce`` maps an (m, k) chunk to (m,) or (m, out_columns). Dask input
        gives a lazy dask array; otherwise an ndarray of (n,) or (n, out_columns).
        """
        params = self._current_params()
        if isinstance(data, DaskData):
            return lazy_map(data.array, params, reduce, out_columns, dtype)
        n = data.shape[0]
        out = np.empty((n,) if out_columns is None else (n, out_columns), dtype=dtype)
        for start, stop, wlp in backend.weighted_log_prob_chunks(data, params):
            out[start:stop] = reduce(wlp)
        return out

    def _predict_rows(self, X, reduce, out_columns=None, dtype=np.float64):
        """Validate X against the fitted model, then :meth:`_map_rows`."""
        self._check_fitted()
        backend = self._backend_for(X)
        data = backend.prepare(self._check_X(X, reset=False))
        return self._map_rows(data, backend, reduce, out_columns, dtype)

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64 (a lazy dask array for dask input)
        """
        return self._predict_rows(X, _labels, None, np.int64)

    def predict_proba(self, X):
        """Posterior probability of each component, shape (n_samples, n_components)
        (a lazy dask array for dask input)."""
        return self._predict_rows(X, _posteriors, self.n_components)

    def score_samples(self, X):
        """Log-likelihood of each row, ``log p(x)``, shape (n_samples,)
        (a lazy dask array for dask input)."""
        return self._predict_rows(X, _log_sum_exp)

    def score(self, X, y=None, sample_weight=None):
        """Mean (optionally weighted) log-likelihood of X, a float."""
        logp = self.score_samples(X)
        if is_dask_array(logp):
            logp = logp.compute()
        if is_dask_array(sample_weight):
            sample_weight = sample_weight.compute()
        sw = val.check_sample_weight(sample_weight, logp.shape[0])
        return float(np.average(logp, weights=sw))

    def _n_parameters(self):
        return n_parameters(self.covariance_type, self.n_components, self.means_.shape[1])

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = np.shape(X)[0] if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        n = np.shape(X)[0] if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def save(self, path):
        """Save the fitted model to ``path`` (.npz + JSON metadata, no pickle).

        See :mod:`fastem.io` for the format; :meth:`load` reads it back.
        """
        from .io import save_model
        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (never unpickles anything)."""
        from .io import load_model
        return load_model(path)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (same stream as scikit-learn).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,), component of each sample
        """
        self._check_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}; need an integer >= 1.")
        n_features = self.means_.shape[1]
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        ctype = self.covariance_type
        if ctype == "full":
            parts = [rng.multivariate_normal(m, c, int(s))
                     for m, c, s in zip(self.means_, self.covariances_, counts)]
        elif ctype == "tied":
            parts = [rng.multivariate_normal(m, self.covariances_, int(s))
                     for m, s in zip(self.means_, counts)]
        else:
            parts = [m + rng.standard_normal(size=(s, n_features)) * np.sqrt(c)
                     for m, c, s in zip(self.means_, self.covariances_, counts)]
        y = np.concatenate([np.full(s, j, dtype=int) for j, s in enumerate(counts)])
        return np.vstack(parts), y


def _labels(wlp):
    """Most probable component of each row of weighted log-densities (m, k)."""
    return wlp.argmax(axis=1)


def _posteriors(wlp):
    """Posterior probabilities from weighted log-densities (m, k)."""
    return np.exp(wlp - _log_sum_exp(wlp)[:, None])


def _log_sum_exp(a):
    """Row-wise log-sum-exp of (m, k), safe for rows of -inf."""
    mx = a.max(axis=1)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return mx + np.log(np.exp(a - mx[:, None]).sum(axis=1))


def _reseed(empty, weights, means, cov, covariance_type, X, sw, backend, rng):
    """Move empty components onto random rows of X (drawn by sample weight).

    A re-seeded component gets the weighted mean covariance of the surviving
    components and the weight ``1/k`` before renormalisation.
    """
    k = weights.shape[0]
    alive = np.setdiff1d(np.arange(k), empty)
    rows = choose_rows(X.shape[0], min(empty.size, X.shape[0]), sw, rng)
    picked = backend.take_rows(X, rows)
    means = means.copy()
    weights = weights.copy()
    cov = cov.copy()
    for j, row in zip(empty, picked):
        means[j] = row
        weights[j] = 1.0 / k
        if covariance_type != "tied" and alive.size:
            cov[j] = np.tensordot(weights[alive] / weights[alive].sum(), cov[alive], axes=1)
    return weights / weights.sum(), means, cov
