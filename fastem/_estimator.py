"""scikit-learn's estimator protocol, in one base class, without importing scikit-learn.

Parameters come from ``__init__``'s signature (``get_params`` / ``set_params``,
``clone``), ``repr`` shows the changed ones, tags declare a density estimator,
and input validation records and checks ``n_features_in_`` and
``feature_names_in_`` as scikit-learn does.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import _validation as val
from . import exceptions


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
        """Constructor parameters as a dict (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
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
        from sklearn.utils import Tags, TargetTags
        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)

    # ------------------------------------------------------------------
    # Input validation and fitted checks
    # ------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, self._fitted_attribute):
            raise exceptions.NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

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
        return backend.check_input(X, n_features=n_features, estimator=name)

    def _set_feature_names(self, n_features):
        """At the end of a fit: ``n_features_in_`` and (for dataframes) ``feature_names_in_``."""
        self.n_features_in_ = n_features
        names = self.__dict__.pop("_fit_feature_names", None)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
