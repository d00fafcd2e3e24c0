"""``fastem.PPCA``: probabilistic PCA (Tipping & Bishop 1999), exact.

The model is ``z ~ N(0, I_q)``, ``x | z ~ N(W z + mu, sigma^2 I_d)``, so
``x ~ N(mu, C)`` with ``C = W W^T + sigma^2 I``. Its maximum-likelihood
solution is closed-form: with ``S`` the (weighted) covariance of the data with
the ``1/N`` convention and ``lambda_1 >= ... >= lambda_d`` its eigenvalues,

    sigma^2 = mean(lambda_{q+1}, ..., lambda_d),
    W = U_q (Lambda_q - sigma^2 I)^{1/2}          (rotation R = I),
    log L = -N/2 [d log 2pi + sum_{j<=q} log lambda_j + (d - q) log sigma^2 + d].

The fit is one fused pass: the mixture kernel with one component gives the
weighted scatter, centred on a data row (so large offsets do not cancel), on
every backend; everything after it is a d x d eigendecomposition. Scoring is
the same kernel again with the Gaussian ``N(mu, C)``.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as val
from .._estimator import EstimatorBase, SaveLoad
from .._model import LOG_2PI, KernelInputs
from .._sampling import check_random_state
from .._steps import GaussianPass, run_alone
from ..backends import backend_for
from ..model_file import FileError, ModelFile, check_positive, register_model


def _column(wlp):
    """The single component's log-density, shape (m,)."""
    return wlp[:, 0]


@register_model
class PPCA(SaveLoad, EstimatorBase):
    """Probabilistic PCA fitted by maximum likelihood (exact, one pass over X).

    Parameters
    ----------
    n_components : int
        Latent dimensions ``q``; ``1 <= q < n_features`` (the noise variance
        is the mean of the ``d - q`` discarded eigenvalues).
    backend : {'cpu', 'cuda'}, default='cpu'
        Where the pass runs; X may also be a memory map or a dask array (for
        'cpu') or a GPU array (for 'cuda'). The pass computes in float64 for
        every input dtype: PPCA is one pass, and its closed form is exact.
    random_state : int, RandomState or None, default=None
        Used by :meth:`sample`.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Weighted mean of X.
    components_ : ndarray of shape (n_components, n_features)
        Principal axes (orthonormal rows), by decreasing variance; each row's
        largest entry in absolute value is positive (scikit-learn's sign rule).
    explained_variance_ : ndarray of shape (n_components,)
        The top eigenvalues of the covariance, with the maximum-likelihood
        ``1/N`` convention (``N = sum(sample_weight)``; scikit-learn's PCA uses
        ``1/(N - 1)``).
    noise_variance_ : float
        ``sigma^2``, the mean of the other eigenvalues.
    loadings_ : ndarray of shape (n_features, n_components)
        ``W = components_.T * sqrt(explained_variance_ - noise_variance_)``.
    log_likelihood_ : float
        Total (weighted) log-likelihood of the training data at the optimum,
        from the closed form.
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,), dtype object
        Column names of a dataframe X, as in :class:`GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import PPCA
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
    >>> ppca = PPCA(n_components=2).fit(X)
    >>> round(ppca.noise_variance_, 2)
    0.01
    >>> ppca.transform(X).shape
    (500, 2)
    """

    _fitted_attribute = "components_"
    _model_file = ModelFile(
        arrays={"mean": lambda q, d, p: (d,), "components": lambda q, d, p: (q, d),
                "explained_variance": lambda q, d, p: (q,)},
        scalars=("noise_variance_", "log_likelihood_"))

    def __init__(self, n_components=1, *, backend="cpu", random_state=None):
        self.n_components = n_components
        self.backend = backend
        self.random_state = random_state

    def _compute_dtype(self):
        return np.float64  # every input dtype: one pass, and the closed form is exact

    def _check_params(self):
        val._check_int(self.n_components, "n_components", 1)
        val.check_backend(self.backend)
        val.check_random_state_param(self.random_state)

    # ------------------------------------------------------------------
    # Fit: one pass of centred scatter, then an eigendecomposition
    # ------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit the maximum-likelihood pPCA model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Also a memory map, a dask array, a dataframe, or a GPU array for
            ``backend='cuda'``.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts a row that many times.

        Returns
        -------
        self : PPCA
            The fitted model.

        Raises
        ------
        ValueError
            ``n_components`` not in ``[1, n_features)``; fewer rows than
            ``n_components + 1`` of positive weight; or data that lie in an
            affine subspace of dimension ``<= n_components`` (then ``sigma^2 = 0``
            and the likelihood is unbounded).

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> ppca.components_.shape, ppca.explained_variance_.shape
        ((2, 5), (2,))
        """
        self._check_params()
        prep = self._prepare_fit(X, sample_weight, stacklevel=3)
        data, backend, sw = prep.data, prep.backend, prep.sample_weight
        n, d = prep.n_samples, prep.n_features
        q = int(self.n_components)
        if q >= d:
            raise ValueError(f"n_components={q} must be smaller than n_features={d}: the noise "
                             "variance is the mean of the d - q discarded eigenvalues.")
        total = float(n if sw is None else sw.sum())
        mean, cov = _mean_and_covariance(data, backend, sw, d)
        eigval, eigvec = np.linalg.eigh(cov)
        eigval, eigvec = np.maximum(eigval[::-1], 0.0), eigvec[:, ::-1]
        sigma2 = float(eigval[q:].mean())
        # The eigenvalues of a covariance summed in float64 are known to about
        # d * eps * (largest eigenvalue); a mean of discarded ones below a
        # margin of that is round-off, not variance. (A fixed 1e-12 of the
        # largest refused a real variance of 1 beside one of 4e12.)
        resolution = _NOISE_MARGIN * d * np.finfo(np.float64).eps * float(eigval[0])
        if not sigma2 > max(resolution, np.finfo(np.float64).tiny):
            raise ValueError(
                f"X lies in an affine subspace of dimension <= {q} (the discarded eigenvalues "
                "are 0), so the noise variance would be 0 and the likelihood unbounded; "
                "use a smaller n_components.")
        components = eigvec[:, :q].T.copy()
        flip = np.sign(components[np.arange(q), np.argmax(np.abs(components), axis=1)])
        components *= flip[:, None]
        self.mean_ = mean
        self.components_ = components
        self.explained_variance_ = eigval[:q].copy()
        self.noise_variance_ = sigma2
        self.log_likelihood_ = float(-0.5 * total * (d * LOG_2PI + np.log(eigval[:q]).sum()
                                                     + (d - q) * np.log(sigma2) + d))
        self._set_feature_names(d)
        return self

    # ------------------------------------------------------------------
    # Model quantities
    # ------------------------------------------------------------------

    @property
    def loadings_(self):
        """The factor loadings ``W``, shape (n_features, n_components):
        ``components_.T * sqrt(explained_variance_ - noise_variance_)``."""
        self._check_fitted()
        return self.components_.T * np.sqrt(self.explained_variance_ - self.noise_variance_)

    def get_covariance(self):
        """The model's covariance ``C = W W^T + sigma^2 I``.

        Returns
        -------
        covariance : ndarray of shape (n_features, n_features)
            The covariance of x under the fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> np.allclose(ppca.get_covariance() @ ppca.get_precision(), np.eye(5))
        True
        """
        W = self.loadings_
        return W @ W.T + self.noise_variance_ * np.eye(W.shape[0])

    def get_precision(self):
        """The inverse of the model's covariance, by the Woodbury identity.

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)
            ``C^-1``, computed without inverting a d x d matrix.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> ppca.get_precision().shape
        (5, 5)
        """
        self._check_fitted()
        d = self.components_.shape[1]
        # C = sigma^2 I + U diag(l - s) U^T with orthonormal U: C^-1 = I/s - U diag((l-s)/(s l)) U^T
        s, lam, U = self.noise_variance_, self.explained_variance_, self.components_.T
        return np.eye(d) / s - (U * ((lam - s) / (s * lam))) @ U.T

    def _check_fitted(self):
        """Fitted, with finite attributes (set by hand to NaN, every score,
        latent mean and sample came out NaN)."""
        super()._check_fitted()
        self._refuse_non_finite(components_=self.components_,
                                explained_variance_=self.explained_variance_,
                                noise_variance_=self.noise_variance_, mean_=self.mean_)

    def _kernel_inputs(self):
        """One Gaussian ``N(mean_, C)`` in the pass's layout (upper ``U``, ``C^-1 = U U^T``)."""
        precision = self.get_precision()
        flipped = precision[::-1, ::-1]
        upper = np.ascontiguousarray(np.linalg.cholesky(flipped)[::-1, ::-1])
        d = upper.shape[0]
        log_const = -0.5 * d * LOG_2PI + np.log(np.diag(upper)).sum()
        return KernelInputs(self.mean_[None].copy(), upper.reshape(1, d * d).copy(),
                            np.array([log_const]), "full")

    # ------------------------------------------------------------------
    # Rows: scores, latent means, reconstructions, samples
    # ------------------------------------------------------------------

    def _rows(self, X):
        self._check_fitted()
        backend = backend_for(X, self.backend, self._compute_dtype())
        return backend, backend.prepare(self._check_X(X, reset=False, backend=backend))

    def score_samples(self, X):
        """Exact log-likelihood ``log N(x; mean_, C)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            A lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> bool(np.isclose(ppca.score_samples(X).sum(), ppca.log_likelihood_))
        True
        """
        backend, data = self._rows(X)
        return backend.map_rows(data, self._kernel_inputs(), _column)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood of the rows of X.

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
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> bool(np.isclose(ppca.score(X) * len(X), ppca.log_likelihood_))
        True
        """
        logp = np.asarray(self.score_samples(X))
        sw = val.check_sample_weight(sample_weight, logp.shape[0])
        return float(np.average(logp, weights=sw))

    def transform(self, X):
        """Posterior means of the latent variables, ``E[z | x] = M^-1 W^T (x - mean_)``.

        ``M = W^T W + sigma^2 I``; computed chunk by chunk.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            A lazy dask array for dask input.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> ppca.transform(X[:3]).shape
        (3, 2)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False, backend=backend_for(X, "cpu"))
        W = self.loadings_
        M = W.T @ W + self.noise_variance_ * np.eye(W.shape[1])
        return _affine_rows(X, self.mean_, np.linalg.solve(M, W.T).T)

    def inverse_transform(self, Z):
        """The reconstruction ``W (W^T W)^-1 M z + mean_`` of posterior means ``z``
        (Tipping & Bishop 1999, sec. 3.2): applied to :meth:`transform`'s output,
        the orthogonal projection of x onto the principal subspace.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Latent coordinates, such as :meth:`transform`'s output.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The reconstructed rows.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> error = ppca.inverse_transform(ppca.transform(X)) - X
        >>> bool(np.abs(error).max() < 1)
        True
        """
        self._check_fitted()
        Z = val.check_array(Z, name="Z", n_features=self.components_.shape[0], estimator="PPCA")
        W = self.loadings_
        M = W.T @ W + self.noise_variance_ * np.eye(W.shape[1])
        return (W @ np.linalg.solve(W.T @ W, M @ np.asarray(Z, dtype=np.float64).T)).T + self.mean_

    def sample(self, n_samples=1):
        """Draw rows ``x = W z + mean_ + sigma eps`` from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw (from ``random_state``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The rows.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import PPCA
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
        >>> ppca = PPCA(n_components=2).fit(X)
        >>> ppca.sample(3).shape
        (3, 5)
        """
        self._check_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}; need an integer >= 1.")
        rng = check_random_state(self.random_state)
        W = self.loadings_
        z = rng.standard_normal(size=(n_samples, W.shape[1]))
        eps = rng.standard_normal(size=(n_samples, W.shape[0]))
        return z @ W.T + self.mean_ + np.sqrt(self.noise_variance_) * eps

    # ------------------------------------------------------------------
    # Model files
    # ------------------------------------------------------------------

    def _saved_array(self, name):
        return getattr(self, name + "_")

    def _check_file_arrays(self, arrays):
        """A model file's arrays obey what a fit produces (``fastem.model_file``):
        orthonormal components, eigenvalues in decreasing order above a
        positive noise variance."""
        components, variance = arrays["components"], arrays["explained_variance"]
        q, d = components.shape
        if q >= d:
            raise FileError("components", f"{q} components of {d} features; need fewer")
        gap = np.abs(components @ components.T - np.eye(q)).max()
        if gap > 1e-6:
            raise FileError("components", f"rows must be orthonormal (off by {gap:.3g})")
        check_positive("noise_variance_", self.noise_variance_)
        if np.any(np.diff(variance) > 0) or not variance[-1] >= self.noise_variance_:
            raise FileError("explained_variance", "must decrease and stay >= noise_variance_")
        if not np.isfinite(self.noise_variance_) or not np.isfinite(self.log_likelihood_):
            raise FileError("noise_variance_", "and log_likelihood_ must be finite")

    def _restore_arrays(self, arrays):
        self.mean_ = arrays["mean"]
        self.components_ = arrays["components"]
        self.explained_variance_ = arrays["explained_variance"]


#: Multiple of ``d * eps * largest eigenvalue`` below which the noise variance
#: is round-off (the data lie in an affine subspace).
_NOISE_MARGIN = 64


def _mean_and_covariance(data, backend, sample_weight, n_features):
    """Weighted mean and ``1/N`` covariance from one pass of the mixture kernel
    with one component (every responsibility is 1), centred on the first row:
    the pass a mixture's E-step asks for (:class:`fastem._steps.GaussianPass`),
    so every backend answers it as it answers a mixture's.

    With ``c`` that row, ``N = sum w``, ``S = sum w (x - c)`` and
    ``SS = sum w (x - c)(x - c)^T``: ``mean = c + S/N`` and
    ``cov = SS/N - (S/N)(S/N)^T``; centring on a data row keeps the offset of
    the order of the spread, so nothing cancels.
    """
    centre = np.asarray(backend.take_rows(data, [0])[0], dtype=np.float64)
    d = n_features
    inputs = KernelInputs(centre[None].copy(), np.eye(d).reshape(1, d * d), np.zeros(1), "full")
    stats = run_alone(_moments(inputs), backend, data, sample_weight)
    total = stats.mass[0]
    shift = stats.first[0] / total
    cov = stats.second[0] / total - np.outer(shift, shift)
    # a row whose squared distance to the first overflows has density 0
    # (log-likelihood -inf) and would be left out of the moments silently
    if not (np.isfinite(stats.log_likelihood) and np.all(np.isfinite(cov))):
        raise ValueError("X's covariance overflows float64 (values near 1e154 or beyond): "
                         "rescale X.")
    return centre + shift, 0.5 * (cov + cov.T)


def _moments(inputs):
    """The one request of :func:`_mean_and_covariance`, as steps."""
    return (yield GaussianPass(inputs))


def _affine_rows(X, offset, matrix):
    """``(X - offset) @ matrix`` row chunk by row chunk (no n x d float64 copy of
    X); a lazy dask array for dask input."""
    from .. import config
    from ..backends.dask import is_dask_array

    if is_dask_array(X):
        return (X.astype(np.float64) - offset) @ matrix
    out = np.empty((X.shape[0], matrix.shape[1]))
    for start in range(0, X.shape[0], config.CHUNK_ROWS):
        stop = min(X.shape[0], start + config.CHUNK_ROWS)
        out[start:stop] = (np.asarray(X[start:stop], dtype=np.float64) - offset) @ matrix
    return out
