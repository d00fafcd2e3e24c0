"""Shared helpers of the benchmarks: problems made once, memory sampling."""

import os
import threading
import warnings

import numpy as np


def cpu_info() -> dict:
    """``{'cpu': lscpu's model name, 'cpu_simd': 'AVX-512' | 'AVX2' | 'other'}``:
    what every speed figure is printed beside."""
    import platform
    import re
    import subprocess

    info = {"cpu": platform.processor() or "unknown", "cpu_simd": "other"}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return info
    model = re.search(r"Model name:\s*(.+)", lscpu)
    flags = re.search(r"Flags:\s*(.+)", lscpu)
    if model:
        info["cpu"] = model.group(1).strip()
        # "AMD EPYC" alone names no generation: family 25 is Zen 3 (model 1)
        # or Zen 4 (model 17), family 26 Zen 5
        family = re.search(r"CPU family:\s*(\d+)", lscpu)
        number = re.search(r"^Model:\s*(\d+)", lscpu, re.M)
        if family and number:
            info["cpu"] += f" (family {family.group(1)} model {number.group(1)})"
    if flags:
        info["cpu_simd"] = ("AVX-512" if "avx512f" in flags.group(1).split()
                            else "AVX2" if "avx2" in flags.group(1).split() else "other")
    return info


def gpu_available():
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def make_problem(n_samples, n_features, n_components, covariance_type, dtype, seed=0):
    """Data (n, d) of ``dtype`` and shared initial parameters (a dict of init kwargs)."""
    from fastem import GaussianMixture
    from fastem.problems import make_mixture

    X = make_mixture(n_samples, n_features, n_components, seed, np.dtype(dtype))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0,
                             random_state=seed).fit(X)
    init = dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)
    return X, init, gm


def rss_bytes(kind="total"):
    """Resident memory of this process: 'total', or 'anon' (not file-backed
    pages: what a memory-mapped input does not account for)."""
    if kind == "total":
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Samples resident memory every millisecond in a thread while active;
    ``peak`` is the highest value seen (``kind`` as in :func:`rss_bytes`)."""

    def __init__(self, kind="total"):
        self.kind = kind

    def __enter__(self):
        self.peak = rss_bytes(self.kind)
        self._stop = threading.Event()

        def poll():
            while not self._stop.wait(0.001):
                self.peak = max(self.peak, rss_bytes(self.kind))

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.kind))
