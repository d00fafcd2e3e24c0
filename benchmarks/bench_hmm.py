"""asv benchmarks of GaussianHMM: one Baum-Welch iteration (E-step over every
sequence plus the M-step) and its peak memory, on ``hmm_compare.py``'s problem
(its :func:`make_sequences` and :func:`start`: one place for the problem).

Kernels are compiled in ``setup`` by a first iteration; ``tol`` -1e300 makes
a fit run exactly ``n_iter`` iterations. The 'cuda' parameters are skipped
(NotImplementedError in setup) without a GPU.
"""

import warnings

from fastem import GaussianHMM

from .common import gpu_available
from .hmm_compare import make_sequences, start

SEQUENCES = [200]
STEPS = [1000]
COVARIANCE_TYPES = ["diag", "full"]
DTYPES = ["float64", "float32"]
BACKENDS = ["cpu", "cuda"]


class BaumWelchIteration:
    params = [SEQUENCES, STEPS, COVARIANCE_TYPES, DTYPES, BACKENDS]
    param_names = ["n_sequences", "n_steps", "covariance_type", "dtype", "backend"]
    timeout = 600

    def setup(self, n_sequences, n_steps, covariance_type, dtype, backend):
        if backend == "cuda" and not gpu_available():
            raise NotImplementedError("no GPU")
        self.backend = backend
        X, self.lengths = make_sequences(n_sequences, n_steps, 8, 8)
        self.params0 = start(8, 8, covariance_type, X)
        self.X = X.astype(dtype)
        self.covariance_type = covariance_type
        self._fit()  # compile before timing

    def _fit(self):
        model = GaussianHMM(8, covariance_type=self.covariance_type, init_params="", n_iter=1,
                            tol=-1e300, backend=self.backend)
        for name, value in self.params0.items():
            setattr(model, name, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(self.X, self.lengths)

    def time_iteration(self, *args):
        self._fit()

    def peakmem_iteration(self, *args):
        self._fit()
