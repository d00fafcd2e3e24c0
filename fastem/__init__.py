"""fastem: Gaussian mixture models fitted by fused, parallel EM kernels.

>>> from fastem import GaussianMixture
>>> gm = GaussianMixture(n_components=3).fit(X)   # doctest: +SKIP
"""

from .io import load_model as load
from .mixture import ConvergenceWarning, GaussianMixture, NotFittedError

__version__ = "0.1.0"

__all__ = ["GaussianMixture", "ConvergenceWarning", "NotFittedError", "load", "__version__"]
