"""What every mixture estimator shares: fit through the one driver, and the
predictions, which are a chunked map over the pass's weighted log-densities.

A subclass supplies the hooks

``_check_params()``
    validate its scalar constructor parameters;
``_family(data, backend, sample_weight, n_features)``
    the model family the driver runs (``fastem._em``);
``_fitted_params()``
    its fitted attributes as the family's parameters (warm start);
``_store(params)``
    set its fitted attributes from the family's parameters;
``_kernel_inputs()``
    the pass's inputs from the fitted attributes (predictions);

and the attributes ``weights_``, ``means_``, ``covariances_`` after a fit.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _em
from .. import _validation as val
from .. import exceptions
from .._progress import FitProgress
from .._covariance import parameter_shape
from .._estimator import EstimatorBase, SaveLoad
from .._sampling import check_random_state
from .._precision import check_dtype
from ..backends import backend_for


class MixtureBase(SaveLoad, EstimatorBase):
    """Fit and predictions of a mixture of Gaussians (EM or variational)."""

    _fitted_attribute = "means_"

    def fit(self, X, y=None, sample_weight=None):
        """Fit the model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Also a memory map, a dask array, a dataframe, or (``backend='cuda'``)
            a GPU array.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts a row that many times.

        Returns
        -------
        self : estimator
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(gm.converged_), np.sort(gm.means_[:, 0]).round().astype(int)
        (True, array([0, 6]))
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model to X, then label each row with its most probable component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            As in :meth:`fit`.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            A lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> labels = GaussianMixture(2, random_state=0).fit_predict(X)
        >>> np.bincount(labels)
        array([100, 100])
        """
        data, backend = self._fit(X, sample_weight)
        return backend.map_rows(data, self._kernel_inputs(), _labels, None, np.int64)

    def _fit(self, X, sample_weight):
        self._check_params()
        backend = backend_for(X, self.backend, check_dtype(self.dtype))
        X = self._check_X(X, reset=True, backend=backend)
        n_samples, n_features = X.shape
        sw = val.check_sample_weight(sample_weight, n_samples)  # (a dask array is computed)
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_samples}."
            )
        data = backend.prepare(X)
        start = None
        if self.warm_start and hasattr(self, "converged_"):
            self._check_warm_start(n_features)
            start = (self._fitted_params(), self.lower_bound_)
        family = self._family(data, backend, sw, n_features)
        progress = getattr(self, "progress_callback", None)
        bar = None
        if progress is None and self.verbose == 1:  # verbose=2 prints a line per iteration instead
            progress = bar = FitProgress(family.name)
        settings = _em.LoopSettings(self.n_init, self.max_iter, self.tol, self.verbose,
                                    self.verbose_interval, progress)
        try:
            best = _em.fit(family, data, backend, sw, check_random_state(self.random_state),
                           settings, start)
        finally:
            if bar is not None:
                bar.close()
        self._set_fit_result(best, n_features, stacklevel=4)
        return data, backend

    def _set_fit_result(self, best, n_features, stacklevel=3):
        """The fitted attributes from the driver's best start (``fastem._em.FitResult``)."""
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                exceptions.ConvergenceWarning, stacklevel=stacklevel,
            )
        self._store(best.params)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound if self.max_iter > 0 else -np.inf
        self.lower_bounds_ = best.history
        self.n_reseeds_ = best.n_reseeds
        self.init_seconds_ = best.init_seconds
        self.iteration_seconds_ = best.seconds
        self.compile_seconds_ = best.compile_seconds
        self._fitted_covariance_type = self.covariance_type
        self._set_feature_names(n_features)

    def _check_warm_start(self, n_features):
        if self.n_features_in_ != n_features:
            raise ValueError(
                f"warm_start: X has {n_features} features, but the model was fitted "
                f"with {self.n_features_in_} features."
            )
        expected = parameter_shape(self.covariance_type, self.n_components, n_features)
        fitted_type = getattr(self, "_fitted_covariance_type", self.covariance_type)
        if (self.means_.shape[0] != self.n_components
                or np.shape(self.precisions_cholesky_) != expected
                or fitted_type != self.covariance_type):
            raise ValueError(
                "warm_start: n_components or covariance_type changed since the previous "
                "fit; set warm_start=False to start afresh."
            )

    # ------------------------------------------------------------------
    # Predictions: one chunked map over the weighted log-densities
    # ------------------------------------------------------------------

    def _predict_rows(self, X, reduce, out_columns=None, dtype=np.float64):
        """Validate X against the fitted model, then ``backend.map_rows``."""
        self._check_fitted()
        backend = backend_for(X, self.backend, check_dtype(self.dtype))
        data = backend.prepare(self._check_X(X, reset=False, backend=backend))
        return backend.map_rows(data, self._kernel_inputs(), reduce, out_columns, dtype)

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            A lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> gm.predict(X[:3]).shape
        (3,)
        """
        return self._predict_rows(X, _labels, None, np.int64)

    def predict_proba(self, X):
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_components)
            Rows sum to 1; a lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> gm.predict_proba(X[:3]).sum(axis=1)
        array([1., 1., 1.])
        """
        return self._predict_rows(X, _posteriors, self.n_components)

    def score_samples(self, X):
        """Log-density of each row under the mixture.

        The log-sum-exp over components of the weighted log-densities:
        ``log p(x)`` for a maximum-likelihood mixture (for the variational
        mixture, the same expression at the posterior's expected weights,
        means and covariances, as scikit-learn computes it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            A lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(gm.score_samples(X[:1])[0] > gm.score_samples(X[:1] + 50)[0])
        True
        """
        return self._predict_rows(X, _log_sum_exp)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-density of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the mean.

        Returns
        -------
        score : float
            The (weighted) mean of :meth:`score_samples`.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(np.isclose(gm.score(X), gm.lower_bound_))
        True
        """
        logp = np.asarray(self.score_samples(X))  # computes a lazy dask result
        sw = val.check_sample_weight(sample_weight, logp.shape[0])
        return float(np.average(logp, weights=sw))

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture.

        The draws follow scikit-learn's: the same ``random_state`` gives the
        same rows.

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
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6]
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> rows, components = gm.sample(5)
        >>> rows.shape, components.shape
        ((5, 2), (5,))
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
