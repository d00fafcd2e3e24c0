"""asv benchmarks of fastem's EM: per-iteration time, whole fit, initialisation,
peak memory and the tracked final log-likelihood.

Data and initial parameters are made once per parameter set in ``setup``; the
kernels are compiled there (a first pass) so no timing includes compilation;
``tol=0`` makes every fit run exactly ``max_iter`` iterations. The 'cuda'
parameters are skipped (NotImplementedError in setup) without a GPU.
float32 data computes in float32 (the estimators' default ``dtype=None``), so
the float32 rows time the float32 kernels against the float64 rows.
"""

import warnings

from fastem import BayesianGaussianMixture, GaussianMixture
from fastem._model import Params, m_step
from fastem.backends import get_backend
from fastem.problems import PROBLEMS

from .common import gpu_available, make_problem

#: The headline problem of ``fastem.problems``, at 200,000 rows (asv runs
#: every parameter set several times).
_HEADLINE = PROBLEMS["mixture-full-d16-k16"]
N_SAMPLES = [200_000]
N_FEATURES = [_HEADLINE.n_features]
N_COMPONENTS = [_HEADLINE.n_components]
COVARIANCE_TYPES = ["full", "diag"]
DTYPES = ["float32", "float64"]
BACKENDS = ["cpu", "cuda"]
PARAM_NAMES = ["n_samples", "n_features", "n_components", "covariance_type", "dtype", "backend"]
PARAMS = [N_SAMPLES, N_FEATURES, N_COMPONENTS, COVARIANCE_TYPES, DTYPES, BACKENDS]
FIT_ITERATIONS = 5


class _Base:
    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 600

    def setup(self, n_samples, n_features, n_components, covariance_type, dtype, backend):
        if backend == "cuda" and not gpu_available():
            raise NotImplementedError("no GPU")
        self.X, self.init, init_gm = make_problem(n_samples, n_features, n_components,
                                                  covariance_type, dtype)
        self.kw = dict(n_components=n_components, covariance_type=covariance_type,
                       backend=backend, tol=0.0)
        self.backend = get_backend(backend)
        self.data = self.backend.prepare(self.X)
        self.inputs0 = Params(init_gm.weights_, init_gm.means_, init_gm.precisions_cholesky_,
                              covariance_type).kernel_inputs()
        self.backend.accumulate(self.data, self.inputs0)  # compile before timing

    def _fit(self, max_iter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GaussianMixture(max_iter=max_iter, **self.init, **self.kw).fit(self.X)


class EMIteration(_Base):
    """One EM iteration: the fused pass plus the M-step."""

    def time_em_iteration(self, *args):
        stats = self.backend.accumulate(self.data, self.inputs0)
        m_step(stats, self.inputs0.covariance_type, 1e-6)


class Fit(_Base):
    """A whole fit of FIT_ITERATIONS iterations from given initial parameters."""

    def time_fit(self, *args):
        self._fit(FIT_ITERATIONS)

    def peakmem_fit(self, *args):
        self._fit(FIT_ITERATIONS)

    def track_final_log_likelihood(self, *args):
        return float(self._fit(20).lower_bound_)

    track_final_log_likelihood.unit = "mean log-likelihood"


class Initialisation(_Base):
    """The default (k-means) initialisation alone, as fit(max_iter=0)."""

    params = [N_SAMPLES, N_FEATURES, N_COMPONENTS, ["full"], DTYPES, ["cpu"]]

    def time_kmeans_init(self, n_samples, n_features, n_components, *args):
        GaussianMixture(n_components, max_iter=0, random_state=0).fit(self.X)


class VariationalIteration(_Base):
    """One iteration of BayesianGaussianMixture: the same fused pass with the
    variational inputs, its M-step and its bound (the per-iteration work that
    ``compare.py --libs fastem-vb,sklearn-vb`` sets against scikit-learn)."""

    params = [N_SAMPLES, N_FEATURES, N_COMPONENTS, COVARIANCE_TYPES, DTYPES, BACKENDS]

    def setup(self, n_samples, n_features, n_components, covariance_type, dtype, backend):
        super().setup(n_samples, n_features, n_components, covariance_type, dtype, backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = BayesianGaussianMixture(n_components=n_components,
                                            covariance_type=covariance_type, max_iter=0,
                                            random_state=0, backend=backend).fit(self.X)
        self.family = start._fitted_family()
        self.posterior = start._fitted_params()
        self.time_variational_iteration()  # compile before timing

    def time_variational_iteration(self, *args):
        stats = self.backend.accumulate(self.data, self.family.kernel_inputs(self.posterior))
        posterior, _ = self.family.m_step(stats, None)
        self.family.lower_bound(stats, self.posterior, posterior)
