"""scikit-learn's estimator protocol, in one base class, without importing scikit-learn.

Parameters come from ``__init__``'s signature (``get_params`` / ``set_params``,
``clone``), ``repr`` shows the changed ones, tags declare a density estimator,
and input validation records and checks ``n_features_in_`` and
``feature_names_in_`` as scikit-learn does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from . import _validation as val
from . import exceptions


@dataclass
class PreparedFit:
    """X as a fit's passes read it, and what the fit learned of it on the way
    (:meth:`EstimatorBase._prepare_fit`).

    Attributes
    ----------
    data : what ``backend.prepare`` returned
    backend : the backend that holds ``data`` and runs its passes
    X : X validated (an array, memory map, dask array or GPU array)
    sample_weight : ndarray of shape (n_samples,) float64, or None
        Validated; zero for the rows with nothing observed. For sequences
        (``bounds``), one weight per sequence, shape (n_sequences,).
    missing : ``fastem._missing.MissingValues`` or None
        What the scan for missing values found (None: no NaN); its
        ``empty_rows`` is the mask of the rows with nothing observed.
    bounds : ndarray of shape (n_sequences + 1,) int64, or None
        For a model of sequences (``GaussianHMM``), their row boundaries:
        sequence ``s`` is rows ``bounds[s]:bounds[s + 1]``. None: the rows
        are independent draws (the mixtures, PPCA).
    """

    data: object
    backend: object
    X: object
    sample_weight: object
    missing: object
    bounds: object = None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]


class EstimatorBase:
    """Parameters, repr, tags, input validation and fitted checks."""

    #: The attribute whose presence means "fitted".
    _fitted_attribute = "n_features_in_"

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Constructor parameters, as scikit-learn's ``clone`` and grid searches use them.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility; fastem's estimators hold
            no sub-estimators, so it changes nothing.

        Returns
        -------
        params : dict
            Parameter name to value, for every constructor parameter.

        Examples
        --------
        >>> from fastem import GaussianMixture
        >>> GaussianMixture(3, covariance_type="diag").get_params()["covariance_type"]
        'diag'
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters.

        Parameters
        ----------
        **params : dict
            Parameter name to new value; an unknown name is a ValueError.

        Returns
        -------
        self : estimator
            The estimator, with the new parameters (a fitted model keeps its
            fitted attributes until the next ``fit``).

        Examples
        --------
        >>> from fastem import GaussianMixture
        >>> GaussianMixture().set_params(n_components=4, tol=1e-4)
        GaussianMixture(n_components=4, tol=0.0001)
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid: {valid}.")
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
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags
        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None,
                    input_tags=InputTags(allow_nan=self._fits_missing))

    # ------------------------------------------------------------------
    # Input validation and fitted checks
    # ------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, self._fitted_attribute):
            raise exceptions.NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _refuse_non_finite(self, **fitted):
        """The fitted attributes ``fitted`` (name: array) are finite: set by
        hand to NaN, a mean scored NaN and predicted its component silently."""
        bad = [name for name, value in fitted.items()
               if not np.all(np.isfinite(np.asarray(value, dtype=np.float64)))]
        if bad:
            raise ValueError(f"{type(self).__name__}'s {', '.join(bad)} contain NaN or infinity: "
                             "refit the model, or set finite values.")

    def _check_X(self, X, reset, backend):
        """X validated by the backend that will hold it (a float32/float64
        ndarray or memory map, a GPU array, or a dask array).

        ``reset`` (fit): remember X's feature names for :meth:`_set_feature_names`.
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
        if self._allows_missing(backend):
            return backend.check_input(X, n_features=n_features, estimator=name, allow_nan=True)
        try:
            return backend.check_input(X, n_features=n_features, estimator=name)
        except ValueError as exc:
            if self._fits_missing and "NaN" in str(exc):
                raise ValueError(f"{exc} backend={backend.name!r} does not fit missing values "
                                 "(NaN) yet; backend='cpu' does.") from None
            raise

    #: The estimator fits rows with missing values (NaN) on backends that can.
    _fits_missing = False

    def _prepare_fit(self, X, sample_weight, reset=True, min_rows=0, note="", stacklevel=2):
        """The one preparation of every mixture and PPCA fit (``fit``,
        ``partial_fit``, ``fit`` with ``batch_size``, a model selection sweep): the backend for
        X, X and ``sample_weight`` validated, the scan for missing values,
        the check for at least ``min_rows`` rows (the largest number of
        components, ``note`` added to its message), the weights of rows with
        nothing observed set to zero (warned about at the user's line,
        ``stacklevel`` frames above the caller), then X placed for the passes.

        Returns
        -------
        PreparedFit
        """
        from . import _missing
        from .backends import backend_for

        backend = backend_for(X, self.backend, self._compute_dtype())
        X = self._check_X(X, reset=reset, backend=backend)
        n_samples = X.shape[0]
        sw = val.check_sample_weight(sample_weight, n_samples)  # (a dask array is computed)
        # a batch of partial_fit may miss a whole column: the model knows it
        missing = self._scan_missing(X, backend, fitting=reset)
        # rows with nothing observed are left out of the fit, so they do not count
        n_empty = 0 if missing is None or missing.empty_rows is None else \
            int(missing.empty_rows.sum())
        if n_samples - n_empty < min_rows:
            counted = (f"{n_samples}" if not n_empty else f"{n_samples - n_empty} rows with an "
                       f"observed value ({n_empty} of X's {n_samples} have none)")
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{min_rows}, n_samples = {counted}{note}.")
        sw = _missing.fit_weights(missing, sw, n_samples, stacklevel=stacklevel + 1)
        return PreparedFit(backend.prepare(X), backend, X, sw, missing)

    def _compute_dtype(self):
        """The dtype the passes compute in (the ``dtype`` parameter's)."""
        from ._precision import check_dtype

        return check_dtype(self.dtype)

    def _allows_missing(self, backend) -> bool:
        return self._fits_missing and getattr(backend, "fits_missing", False)

    def _scan_missing(self, X, backend, fitting=True):
        """After :meth:`_check_X`: None when X has no NaN, else what
        ``fastem._missing.scan`` found (which also refuses infinity, and
        when ``fitting`` a column with nothing observed)."""
        if not self._allows_missing(backend):
            return None
        from ._missing import scan

        return scan(X, fitting)

    def _set_feature_names(self, n_features):
        """At the end of a fit: ``n_features_in_`` and (for dataframes) ``feature_names_in_``."""
        self.n_features_in_ = n_features
        names = self.__dict__.pop("_fit_feature_names", None)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_


class SaveLoad:
    """``save`` and ``load`` of a model file (``fastem.model_file``), for the
    estimators that have one."""

    def save(self, path):
        """Save the fitted model to a file that loads without pickle.

        The file is a ``.npz`` archive of the fitted arrays and a JSON
        document of the parameters (the format is in the user guide's "Model
        files" page). It is written to a temporary file that is renamed at
        the end, so a failed write leaves nothing behind.

        Parameters
        ----------
        path : str or path-like
            Where to write (conventionally ending in ``.npz``).

        Raises
        ------
        ValueError
            When the model's parameters no longer describe its fitted arrays
            (``set_params`` after ``fit``): such a file would not load.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> from fastem import GaussianMixture, load
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> gm.save(path)
        >>> bool(np.all(load(path).means_ == gm.means_))
        True
        """
        from .model_file import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`, as an instance of this class.

        Parameters
        ----------
        path : str or path-like
            A file written by ``save``. It is untrusted input: only the
            members the format names are read, and every field is validated.

        Returns
        -------
        model : estimator
            The fitted model, ready to predict or to continue fitting
            (``warm_start``).

        Raises
        ------
        ValueError
            For a damaged or altered file (the message names the field), or
            one that holds another class of model.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> from fastem import PPCA
        >>> X = np.random.default_rng(0).normal(size=(200, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "ppca.npz")
        >>> PPCA(1).fit(X).save(path)
        >>> PPCA.load(path).components_.shape
        (1, 3)
        """
        from .model_file import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}.")
        return model
