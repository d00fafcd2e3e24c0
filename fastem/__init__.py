"""fastem: latent-variable models on fused, parallel kernels.

GaussianMixture (EM), BayesianGaussianMixture (mean-field VI), GaussianMixtureIC
(a sweep over k in shared passes), PPCA (exact) and VAE (PyTorch extra), behind
scikit-learn's interfaces, on NumPy arrays, memory maps, Dask arrays and GPUs.

>>> from fastem import GaussianMixture
>>> gm = GaussianMixture(n_components=3).fit(X)   # doctest: +SKIP
"""

from . import exceptions
from .model_file import load_model as load
from .latent import PPCA, VAE
from .mixture import (BayesianGaussianMixture, GaussianMixture, GaussianMixtureIC,
                      GaussianMixtureImputer)
from .hmm import GaussianHMM
from .warmup import warmup

__version__ = "0.1.0"

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureIC",
           "GaussianMixtureImputer", "PPCA", "VAE",
           "GaussianHMM", "ConvergenceWarning", "NotFittedError", "load", "warmup",
           "__version__"]


def __getattr__(name):
    # NotFittedError and ConvergenceWarning are built on first use (see fastem.exceptions).
    if name in exceptions.__all__:
        return getattr(exceptions, name)
    raise AttributeError(f"module 'fastem' has no attribute {name!r}")
