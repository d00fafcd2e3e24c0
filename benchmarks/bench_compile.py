"""asv: the compile time a new user pays, tracked like a speed.

``track_*`` run the default ``GaussianMixture`` fit + ``predict`` +
``score_samples`` in a subprocess whose ``NUMBA_CACHE_DIR`` is empty, and
return the CPU seconds of that work (import excluded): a regression in
compile time shows up here as a speed regression does elsewhere.
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


def cold_fit_cpu_seconds(dtype="float64", covariance_type="full"):
    """CPU seconds of the first default fit + predict + score_samples, empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _CHILD, dtype, covariance_type], env=env,
                             check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["cpu"]


class ColdCompile:
    params = (["float64", "float32"], ["full", "diag"])
    param_names = ["dtype", "covariance_type"]
    timeout = 300
    unit = "seconds"

    def track_first_fit_cpu_seconds(self, dtype, covariance_type):
        return cold_fit_cpu_seconds(dtype, covariance_type)
