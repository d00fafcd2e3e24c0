"""What every mixture estimator shares: fit through the one driver, and the
predictions, which are a chunked map over the pass's weighted log-densities.

A subclass supplies the hooks

``_check_params()``
    validate its scalar constructor parameters;
``_family(data, backend, sample_weight, n_features, missing=None)``
    the model family the driver runs (``fastem._em``); ``missing`` is what
    ``fastem._missing.scan`` found in X (None: no NaN), for an estimator
    whose ``_fits_missing`` is True;
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

from .. import _em, config
from .. import _validation as val
from .. import exceptions
from . import _stream
from .._progress import FitProgress
from .._covariance import parameter_shape
from .._estimator import EstimatorBase, SaveLoad
from .._sampling import check_random_state, sample_sorted
from .._precision import check_dtype
from ..backends import backend_for, get_backend



#: What the driver (``fastem._em``) adds to its error when a pass's
#: log-likelihood is not finite, for the Gaussian mixtures' families.
NON_FINITE_ADVICE = (
    "squared Mahalanobis distances overflow float64 (the data's scale is extreme for the "
    "covariances; with init_params='k-means++' or 'random_from_data' the initial covariances "
    "are reg_covar * I). Rescale X, increase reg_covar or use init_params='kmeans'.")

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
        data, backend, missing = self._fit(X, sample_weight)
        inputs = self._kernel_inputs()
        if missing is not None:
            inputs = inputs.incomplete()
        return backend.map_rows(data, inputs, _labels, None, np.int64)

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one batch of rows (stepwise EM, or stochastic VI).

        The first call initialises the model from its batch by ``init_params``
        (k-means runs on that batch alone, so it should hold every cluster),
        then every call makes one step: the batch's statistics under the
        current parameters are averaged into running statistics with the step
        size ``(learning_offset + t)^(-learning_decay)`` of the t-th batch, and
        the M-step runs on them. Memory does not grow with the number of
        batches. After ``fit`` or ``load`` the first call continues from the
        fitted parameters. Each batch is one pass on the backend that holds it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch of rows (an array, memory map, dask array, dataframe or,
            with ``backend='cuda'``, GPU array); the first batch needs at least
            ``n_components`` rows.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts a row that many
            times. A batch whose weights sum to zero is refused.

        Returns
        -------
        self : estimator
            The updated model. ``n_batches_seen_`` (and ``n_iter_``) count the
            calls since the first or since the last ``fit``; ``lower_bound_``
            is the bound of the running statistics after this step (for EM,
            the running mean log-likelihood per row), ``lower_bounds_`` and
            ``iteration_seconds_`` hold this step's only, and ``converged_``
            stays False: a stream has no end to converge at.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> gm = GaussianMixture(2, random_state=0)
        >>> for _ in range(20):
        ...     batch = np.r_[rng.normal(size=(250, 2)), rng.normal(size=(250, 2)) + 6]
        ...     gm = gm.partial_fit(batch)
        >>> gm.n_batches_seen_, np.sort(gm.means_[:, 0]).round().astype(int)
        (20, array([0, 6]))
        """
        self._check_params()
        fitted = hasattr(self, self._fitted_attribute)
        prep = self._prepare_fit(
            X, sample_weight, reset=not fitted, min_rows=0 if fitted else self.n_components,
            note=" (the first batch of partial_fit initialises every component)")
        data, backend, sw, missing = prep.data, prep.backend, prep.sample_weight, prep.missing
        n_features = prep.n_features
        stream = getattr(self, "_stream", None)
        watch = _em._Stopwatch()
        if not fitted:
            family = self._family(data, backend, sw, n_features, missing)
            stream = _stream.Stream(family, check_random_state(self.random_state))
            params = family.initialize(data, backend, sw, stream.rng)
            self.n_batches_seen_, self.n_reseeds_, self.compile_seconds_ = 0, 0, 0.0
            self.init_seconds_, compiled = watch.stop()
            self.compile_seconds_ += compiled
            watch = _em._Stopwatch()
        else:
            self._check_warm_start(n_features, "partial_fit")
            if stream is None:  # after fit or load: continue from the fitted model
                stream = _stream.Stream(self._fitted_family(),
                                        check_random_state(self.random_state))
                self.n_batches_seen_ = 0
                self.n_reseeds_ = getattr(self, "n_reseeds_", 0)
                self.compile_seconds_ = getattr(self, "compile_seconds_", 0.0)
            family, params = stream.family, self._fitted_params()
            # this batch's missing values are integrated out (a complete
            # batch takes the complete-data pass)
            family.missing = missing
        new, bound, reseeded = stream.step(params, backend, data, sw, self.learning_decay,
                                           self.learning_offset)
        self._stream = stream
        self._store(new)
        seconds, compiled = watch.stop()
        self.n_batches_seen_ += 1
        self.n_iter_ = self.n_batches_seen_
        self.n_reseeds_ += reseeded
        self.converged_ = False  # a stream has no end to converge at
        # The latest step only: a stream's memory must not grow with its length.
        self.lower_bound_, self.lower_bounds_ = bound, [bound]
        self.iteration_seconds_ = [seconds]
        self.compile_seconds_ += compiled
        if not fitted:
            self._fitted_covariance_type = self.covariance_type
            self._set_feature_names(n_features)
        self._after_step(stream)
        return self

    def _fit_in_batches(self, X, sample_weight):
        """``fit`` with ``batch_size``: passes of stepwise EM (or stochastic VI)
        over consecutive blocks of ``batch_size`` rows.

        Each start initialises on 20,000 rows (or all of X, if fewer) drawn at
        random from all of X (``config.KMEANS_SAMPLE_ROWS``, k-means' own
        sample), or continues from the fitted model with ``warm_start``; the
        start's statistics on those rows are stepwise EM's first step, so
        that no block, however its rows are sorted, replaces what the start
        knows of all of X. Each pass visits every block once, in an order
        drawn from the same RandomState (so the fit is deterministic), and the M-step follows
        every block. A pass is an "iteration" for ``max_iter``, ``tol``,
        ``n_iter_``, ``lower_bounds_`` and ``verbose``; the progress callback
        is called after every block, counting rows.
        """
        self._check_params()
        prep = self._prepare_fit(X, sample_weight, min_rows=self.n_components, stacklevel=4)
        data, backend, X, sw, missing = (prep.data, prep.backend, prep.X, prep.sample_weight,
                                         prep.missing)
        n_samples, n_features = prep.n_samples, prep.n_features
        rng = check_random_state(self.random_state)
        blocks = _stream.batches(n_samples, int(self.batch_size))
        data_weight = float(n_samples if sw is None else sw.sum())
        progress = getattr(self, "progress_callback", None)
        from ..backends.dask import is_dask_array

        dask_host = get_backend("cpu", check_dtype(self.dtype)) if is_dask_array(X) else None
        warm = self.warm_start and hasattr(self, "converged_")
        if warm:
            self._check_warm_start(n_features)
            family, start = self._fitted_family(), self._fitted_params()
            family.missing = missing
            if hasattr(self, "_total_weight"):  # the variational bound's constants: these rows
                self._total_weight = data_weight
        else:
            family = self._family(data, backend, sw, n_features, missing)  # priors from all of X
        best = None
        for init in range(1 if warm else self.n_init):
            if self.verbose:
                print(f"Initialization {init}")
            watch = _em._Stopwatch()
            # k-means' own sample, whatever batch_size: more rows only refine with
            # Lloyd passes that the first blocks' steps repeat anyway, and fewer (a
            # sample of batch_size rows) started small batches from a poor model
            # that stepwise EM did not leave (batch_size=10: one component on both
            # clusters). 20,000 rows of float64: 160 kB per feature.
            size = min(config.KMEANS_SAMPLE_ROWS, n_samples)
            rows = sample_sorted(n_samples, max(size, self.n_components), rng)
            host = get_backend("cpu", check_dtype(self.dtype))
            sample = host.prepare(backend.take_rows(data, rows))
            sample_weight_rows = None if sw is None else sw[rows]
            params = start if warm else family.initialize(sample, host, sample_weight_rows, rng)
            stream = _stream.Stream(family, rng)
            # the start's statistics on rows from all of X are the first step's
            stream.seed(family.e_step(params).run(host, sample, sample_weight_rows))
            init_seconds, compile_seconds = watch.stop()
            history, seconds, reseeds, converged, bound = [], [], 0, False, -np.inf
            rows_read = 0
            for _ in range(self.max_iter):
                watch = _em._Stopwatch()
                for i in rng.permutation(len(blocks)):
                    a, b = blocks[i]
                    rows_read += b - a
                    if sw is not None and not sw[a:b].sum() > 0:
                        continue  # a block of weightless rows has nothing to step on
                    part, part_backend = self._batch(X, a, b, backend, dask_host)
                    params, step_bound, reseeded = stream.step(
                        params, part_backend, part, None if sw is None else sw[a:b],
                        self.learning_decay, self.learning_offset, data_weight)
                    reseeds += reseeded
                    if progress is not None:
                        progress(rows_read, n_samples * self.max_iter, step_bound,
                                 step_bound - bound, 0.0)
                change, bound = step_bound - bound, step_bound
                pass_seconds, compiled = watch.stop()
                history.append(bound)
                seconds.append(pass_seconds)
                compile_seconds += compiled
                if self.verbose >= 2 and len(history) % self.verbose_interval == 0:
                    print(f"  Pass {len(history)}\t time lapse {pass_seconds:.5f}s\t "
                          f"lower bound {bound:.8f}\t ll change {change:.5f}")
                if abs(change) < self.tol:
                    converged = True
                    break
            run = _em.FitResult(params, bound, converged, len(history), history, reseeds,
                                init_seconds, seconds, compile_seconds)
            if best is None or run.lower_bound > best.lower_bound:
                best = run
        self._set_fit_result(best, n_features, stacklevel=5)
        return data, backend, missing

    def _batch(self, X, start, stop, backend, host):
        """Rows ``start:stop`` of X and the backend that holds them: a slice of
        an array or memory map (a view: read when the pass reaches it); for a
        dask array (``host``, the CPU backend, given), its rows computed to the
        host, chunk by chunk."""
        if host is not None:
            return host.prepare(np.ascontiguousarray(X[start:stop].compute())), host
        return backend.prepare(X[start:stop]), backend

    def _after_step(self, stream):
        """A subclass's fitted attributes that follow each partial_fit step."""

    def _fit(self, X, sample_weight):
        self.__dict__.pop("_stream", None)  # a fit ends any stream; partial_fit continues from it
        if getattr(self, "batch_size", None) is not None:
            return self._fit_in_batches(X, sample_weight)
        self._check_params()
        prep = self._prepare_fit(X, sample_weight, min_rows=self.n_components, stacklevel=3)
        data, backend, sw, missing = prep.data, prep.backend, prep.sample_weight, prep.missing
        n_features = prep.n_features
        start = None
        if self.warm_start and hasattr(self, "converged_"):
            self._check_warm_start(n_features)
            start = (self._fitted_params(), self.lower_bound_)
        family = self._family(data, backend, sw, n_features, missing)
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
        return data, backend, missing

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

    def _check_fitted(self):
        """Fitted, and with arrays in the layout of the covariance type the
        parameters name: after ``set_params(covariance_type=...)`` every
        method failed inside NumPy ('cannot reshape array of size 18')."""
        super()._check_fitted()
        if np.ndim(self.means_) != 2:
            return  # set by hand: the methods' own checks name it
        if self._covariance_type_changed():
            raise ValueError(
                f"This {type(self).__name__} was fitted with covariance_type="
                f"{self._fitted_type()!r} (precisions_cholesky_ of shape "
                f"{np.shape(self.precisions_cholesky_)}), but covariance_type is now "
                f"{self.covariance_type!r}: fit it again, or set covariance_type back.")

    def _fitted_type(self):
        return getattr(self, "_fitted_covariance_type", self.covariance_type)

    def _covariance_type_changed(self) -> bool:
        """Whether the fitted arrays are not in the layout ``covariance_type`` now names."""
        k, d = np.shape(self.means_)
        return (self._fitted_type() != self.covariance_type
                or np.shape(self.precisions_cholesky_) != parameter_shape(self.covariance_type,
                                                                          k, d))

    def _check_warm_start(self, n_features, what="warm_start"):
        if self.n_features_in_ != n_features:
            raise ValueError(
                f"{what}: X has {n_features} features, but the model was fitted "
                f"with {self.n_features_in_} features."
            )
        if self.means_.shape[0] != self.n_components or self._covariance_type_changed():
            raise ValueError(
                f"{what}: n_components or covariance_type changed since the previous "
                "fit; " + ("set warm_start=False to start afresh." if what == "warm_start"
                           else "call fit to start afresh.")
            )

    # ------------------------------------------------------------------
    # Predictions: one chunked map over the weighted log-densities
    # ------------------------------------------------------------------

    def _predict_rows(self, X, reduce, out_columns=None, dtype=np.float64):
        """Validate X against the fitted model, then ``backend.map_rows``."""
        self._check_fitted()
        backend = backend_for(X, self.backend, check_dtype(self.dtype))
        X = self._check_X(X, reset=False, backend=backend)
        inputs = self._kernel_inputs()
        if self._scan_missing(X, backend, fitting=False) is not None:
            inputs = inputs.incomplete()
        return backend.map_rows(backend.prepare(X), inputs, reduce, out_columns, dtype)

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
        self._fitted_params()  # refuses attributes set by hand to no model
        # and what sampling reads besides (a variational model's weights_ are derived)
        self._refuse_non_finite(weights_=self.weights_, covariances_=self.covariances_)
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


#: Why a row's component probabilities cannot be computed.
_UNRESOLVED = (
    "X has rows so far from every component that their squared Mahalanobis distances overflow "
    "float64, so their component probabilities cannot be computed (score_samples gives them "
    "-inf, the float64 value of their log-density). Rescale X, or drop those rows.")


def _resolved(wlp):
    """``wlp`` (m, k), refusing a row whose weighted log-densities are all
    -inf (its responsibilities would be NaN, its label an arbitrary 0)."""
    if not (wlp.max(axis=1) > -np.inf).all():
        raise ValueError(_UNRESOLVED)
    return wlp


def _labels(wlp):
    """Most probable component of each row of weighted log-densities (m, k)."""
    return _resolved(wlp).argmax(axis=1)


def _posteriors(wlp):
    """Posterior probabilities from weighted log-densities (m, k)."""
    return np.exp(wlp - _log_sum_exp(_resolved(wlp))[:, None])


def _log_sum_exp(a):
    """Row-wise log-sum-exp of (m, k), safe for rows of -inf."""
    mx = a.max(axis=1)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return mx + np.log(np.exp(a - mx[:, None]).sum(axis=1))
