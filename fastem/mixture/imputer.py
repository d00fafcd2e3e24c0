"""``fastem.GaussianMixtureImputer``: missing values filled from a Gaussian
mixture fitted to the incomplete data by EM."""

from __future__ import annotations

import sys


import numpy as np

from .._estimator import EstimatorBase
from .._sampling import check_random_state
from ..backends import backend_for
from .gaussian import GaussianMixture


class GaussianMixtureImputer(EstimatorBase):
    """Fill missing values (NaN) with their conditional expectation under a
    Gaussian mixture fitted to the incomplete data.

    ``fit`` fits a :class:`GaussianMixture` by EM for incomplete data (the
    missing values are integrated out, never filled first); ``transform``
    replaces each row's missing values by ``E[x_m | x_o] = sum_j r_j(x_o)
    (mu_jm + Sigma_jmo Sigma_joo^-1 (x_o - mu_jo))``, the responsibilities
    ``r_j`` those of the row's observed values, or with
    ``sample_posterior=True`` by a draw from that conditional distribution
    (as scikit-learn's ``IterativeImputer``). A row with nothing observed gets
    the mixture's mean (or a draw from the mixture). A scikit-learn
    transformer: usable in a ``Pipeline``, ``clone`` and grid searches.

    Parameters
    ----------
    n_components : int, default=1
        Mixture components; 1 is the conditional expectation under one
        Gaussian (a linear regression of the missing on the observed values).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Only 'full' and 'tied' relate the features, so only they fill a value
        from the row's other values beyond picking components; 'diag' and
        'spherical' fill with a responsibility-weighted mix of the means.
    sample_posterior : bool, default=False
        Draw each filled value from its conditional distribution instead of
        taking its expectation.
    random_state : int, RandomState instance or None, default=None
        Seeds the mixture's initialisation and the draws of
        ``sample_posterior`` (the same seed gives the same output).
    max_iter, tol, reg_covar, n_init, init_params, backend, dtype : see GaussianMixture
        Passed to the :class:`GaussianMixture` that is fitted (``backend``
        says where it is fitted; ``transform`` runs on the CPU, on host rows).

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture.
    n_iter_ : int
        EM iterations of the fit (the best start's, ``mixture_.n_iter_``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a dataframe with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 1))
    >>> X = np.c_[z, 2 * z + 0.1 * rng.normal(size=(500, 1))]
    >>> X[:5, 1] = np.nan
    >>> filled = GaussianMixtureImputer(random_state=0).fit_transform(X)
    >>> bool(np.abs(filled[:5, 1] - 2 * X[:5, 0]).max() < 0.1)
    True
    """

    _fitted_attribute = "mixture_"
    _fits_missing = True

    def __init__(self, n_components=1, *, covariance_type="full", sample_posterior=False,
                 random_state=None, max_iter=100, tol=1e-3, reg_covar=1e-6, n_init=1,
                 init_params="kmeans", backend="cpu", dtype=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.init_params = init_params
        self.backend = backend
        self.dtype = dtype

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
                    input_tags=InputTags(allow_nan=True),
                    regressor_tags=None, classifier_tags=None)

    def _mixture(self):
        if not isinstance(self.sample_posterior, (bool, np.bool_)):
            raise ValueError(f"Invalid value for 'sample_posterior': {self.sample_posterior!r}; "
                             "expected True or False.")
        return GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                               tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                               n_init=self.n_init, init_params=self.init_params,
                               random_state=self.random_state, backend=self.backend,
                               dtype=self.dtype)

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture to X (NaN marks a missing value).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            An array, memory map, dataframe or dask array.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows.

        Returns
        -------
        self : GaussianMixtureImputer

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureImputer
        >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, np.nan], [4.0, 7.9]])
        >>> GaussianMixtureImputer().fit(X).mixture_.means_.shape
        (1, 2)
        """
        mixture = self._mixture().fit(X, sample_weight=sample_weight)
        self.mixture_ = mixture
        self.n_iter_ = mixture.n_iter_
        self.n_features_in_ = mixture.n_features_in_
        if hasattr(mixture, "feature_names_in_"):
            self.feature_names_in_ = mixture.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._draws = check_random_state(self.random_state)
        return self

    def transform(self, X):
        """X with its missing values filled.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the imputer was fitted on; an array,
            memory map or dataframe (a dask array is computed to memory).

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            float32 for float32 X (as scikit-learn's imputers keep it; the
            values computed in float64), else float64. Observed values
            unchanged. With ``sample_posterior`` every call
            draws anew from the imputer's random stream (seeded by
            ``random_state`` at ``fit``).

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureImputer
        >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, np.nan], [4.0, 7.9]])
        >>> filled = GaussianMixtureImputer().fit(X).transform(X)
        >>> bool(5.0 < filled[2, 1] < 7.0), bool(np.isnan(filled).any())
        (True, False)
        """
        self._check_fitted()
        given = X
        backend = backend_for(X, "cpu")
        X = self._check_X(X, reset=False, backend=backend)
        if not isinstance(X, np.ndarray):  # a dask array
            X = np.asarray(X.compute())
        if self._scan_missing(X, backend, fitting=False) is None:
            return self._wrap(np.array(X, dtype=np.result_type(X.dtype, np.float32)), given)
        from ..backends.cpu import impute_rows

        inputs = self.mixture_._kernel_inputs().incomplete()
        return self._wrap(impute_rows(X, inputs, self._draws if self.sample_posterior else None),
                          given)

    def set_output(self, *, transform=None):
        """The container :meth:`transform` returns, as scikit-learn's
        transformers take it (``Pipeline.set_output`` calls it).

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            "default": a NumPy array; "pandas" / "polars": a DataFrame with
            :meth:`get_feature_names_out` as its columns (and a pandas input's
            index); None leaves the setting as it is. Until it is set,
            scikit-learn's global ``transform_output`` applies, when
            scikit-learn is imported.

        Returns
        -------
        self : GaussianMixtureImputer

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureImputer
        >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, np.nan], [4.0, 7.9]])
        >>> imputer = GaussianMixtureImputer().set_output(transform="pandas")
        >>> imputer.fit_transform(X).columns.tolist()  # doctest: +SKIP
        ['x0', 'x1']
        """
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ValueError(f"Invalid value for 'transform': {transform!r}; expected one of "
                             "['default', 'pandas', 'polars'].")
        # scikit-learn's attribute, so that sklearn.base.clone carries it over
        self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap(self, filled, given):
        """``filled`` in the container :meth:`set_output` chose."""
        mode = getattr(self, "_sklearn_output_config", {}).get("transform")
        if mode is None:
            sklearn = sys.modules.get("sklearn")
            mode = (sklearn.get_config().get("transform_output", "default") if sklearn
                    else "default")
        if mode == "pandas":
            import pandas as pd

            index = given.index if isinstance(given, pd.DataFrame) else None
            return pd.DataFrame(filled, columns=list(self.get_feature_names_out()), index=index)
        if mode == "polars":
            import polars as pl

            return pl.DataFrame(filled, schema=list(self.get_feature_names_out()), orient="row")
        return filled

    def fit_transform(self, X, y=None, sample_weight=None):
        """:meth:`fit`, then :meth:`transform` of the same X.

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
        X_filled : ndarray of shape (n_samples, n_features)
            float32 for float32 X, else float64 (as :meth:`transform`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureImputer
        >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, np.nan], [4.0, 7.9]])
        >>> GaussianMixtureImputer().fit_transform(X).shape
        (4, 2)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def get_feature_names_out(self, input_features=None):
        """The output's feature names: the input's (imputation keeps every column).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Must match ``feature_names_in_`` when the imputer saw names.

        Returns
        -------
        ndarray of str, shape (n_features,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import GaussianMixtureImputer
        >>> X = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, np.nan], [4.0, 7.9]])
        >>> GaussianMixtureImputer().fit(X).get_feature_names_out().tolist()
        ['x0', 'x1']
        """
        self._check_fitted()
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            if input_features.shape != (self.n_features_in_,):
                raise ValueError(f"input_features should have length {self.n_features_in_}, "
                                 f"got {input_features.shape[0] if input_features.ndim else 0}.")
            if names is not None and not np.array_equal(input_features, names):
                raise ValueError("input_features is not equal to feature_names_in_.")
            return input_features
        if names is not None:
            return np.asarray(names, dtype=object)
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
