"""Mixture models: each estimator is thin; its family (the math) plugs into
the one driver in :mod:`fastem._em`."""

from .bayesian import BayesianGaussianMixture
from .gaussian import GaussianMixture
from .imputer import GaussianMixtureImputer
from .selection import GaussianMixtureIC

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureIC",
           "GaussianMixtureImputer"]
