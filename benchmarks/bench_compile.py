"""asv: the compile time a new user pays, tracked like a speed.

``track_*`` run, in a subprocess whose ``NUMBA_CACHE_DIR`` is empty, the
default ``GaussianMixture`` fit + ``predict`` + ``score_samples``, or every
estimator × covariance type × dtype + ``GaussianMixtureIC`` + ``PPCA`` in one
process, and return the CPU seconds of that work (import excluded): a
regression in compile time shows up here as a speed regression does
elsewhere. Run as a script, it prints both as medians::

    python benchmarks/bench_compile.py --runs 3
"""

import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, time
import numpy as np
from fastem import GaussianMixture
rng = np.random.default_rng(0)
X = np.r_[rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8)) + 5].astype(sys.argv[1])
cpu = time.process_time()
gm = GaussianMixture(4, covariance_type=sys.argv[2], random_state=0).fit(X)
gm.predict(X); gm.score_samples(X)
print(json.dumps({"cpu": time.process_time() - cpu}))
"""


#: Every estimator x covariance type x dtype (5 iterations, predict,
#: score_samples), GaussianMixtureIC and PPCA, in one process.
_ALL_CHILD = r"""
import json, time, warnings
import numpy as np
from fastem import BayesianGaussianMixture, GaussianMixture, GaussianMixtureIC, PPCA
warnings.simplefilter("ignore")  # 5 iterations do not converge, by design
rng = np.random.default_rng(0)
X = np.r_[rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8)) + 5]
cpu = time.process_time()
for dtype in ("float64", "float32"):
    Xd = X.astype(dtype)
    for cov in ("full", "diag", "tied", "spherical"):
        for est in (GaussianMixture, BayesianGaussianMixture):
            m = est(n_components=4, covariance_type=cov, random_state=0, max_iter=5).fit(Xd)
            m.predict(Xd); m.score_samples(Xd)
    GaussianMixtureIC(n_components=range(1, 5), random_state=0, max_iter=5).fit(Xd)
PPCA(n_components=2).fit(X)
print(json.dumps({"cpu": time.process_time() - cpu}))
"""


def _cold_cpu_seconds(child, *args):
    """CPU seconds ``child`` reports, run with an empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", child, *args], env=env, check=True,
                             capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["cpu"]


def cold_fit_cpu_seconds(dtype="float64", covariance_type="full"):
    """CPU seconds of the first default fit + predict + score_samples, empty cache."""
    return _cold_cpu_seconds(_CHILD, dtype, covariance_type)


def cold_all_configurations_cpu_seconds():
    """CPU seconds of every configuration's first fit in one process, empty cache."""
    return _cold_cpu_seconds(_ALL_CHILD)


class ColdCompile:
    params = (["float64", "float32"], ["full", "diag"])
    param_names = ["dtype", "covariance_type"]
    timeout = 300
    unit = "seconds"

    def track_first_fit_cpu_seconds(self, dtype, covariance_type):
        return cold_fit_cpu_seconds(dtype, covariance_type)


class ColdCompileEverything:
    timeout = 600
    unit = "seconds"

    def track_all_configurations_cpu_seconds(self):
        return cold_all_configurations_cpu_seconds()


if __name__ == "__main__":
    import argparse
    import statistics

    try:
        from .common import cpu_info
    except ImportError:  # run as a script
        from common import cpu_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    info = cpu_info()
    print(f"CPU: {info['cpu']} ({info['cpu_simd']}); CPU seconds with an empty cache, "
          f"median of {runs}")
    for label, measure in (("default fit + predict + score_samples",
                            lambda: cold_fit_cpu_seconds()),
                           ("every configuration in one process",
                            cold_all_configurations_cpu_seconds)):
        times = [measure() for _ in range(runs)]
        print(f"{label}: {statistics.median(times):.2f} s "
              f"({min(times):.2f}-{max(times):.2f})")
