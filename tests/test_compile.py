"""Compilation: the threads that run the drivers, the compile clock, what a
fit reports of its compilation, and ``fastem warmup``."""

import json
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from numba import njit

from fastem._compile_clock import compile_seconds
from fastem.kernels.cpu._jit import driver, from_python, helper
from fastem.kernels.cpu._parts import next_part, run_parts


@driver
def _claim_parts(n_parts, runs, counter):
    """Marks each part it is handed; a part handed out twice shows as 2."""
    while True:
        p = next_part(counter)
        if p >= n_parts:
            break
        runs[p] += 1


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_parts", [0, 1, 2, 3, 257])
def test_run_parts_runs_every_part_once(threads, n_parts):
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(threads)
        for _ in range(20):  # races, if any, show over repeats
            runs = np.zeros(n_parts, dtype=np.int64)
            run_parts(_claim_parts, n_parts, n_parts, runs)
            assert np.array_equal(runs, np.ones(n_parts, dtype=np.int64))
    finally:
        numba.set_num_threads(before)


def test_run_parts_from_several_python_threads_at_once():
    """Launches from several Python threads (a threaded scheduler) each get
    their own counter: every launch runs each of its parts once."""
    results = []

    def launch():
        runs = np.zeros(300, dtype=np.int64)
        run_parts(_claim_parts, 300, 300, runs)
        results.append(runs)

    threads = [threading.Thread(target=launch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for runs in results:
        assert np.array_equal(runs, np.ones(300, dtype=np.int64))


def test_run_parts_raises_what_the_driver_raises():
    with pytest.raises(Exception):  # a typing error: an argument the driver cannot take
        run_parts(_claim_parts, 4, 4, "not an array")


@helper
def _twice(x, out):
    for i in range(x.shape[0]):
        out[i] = 2.0 * x[i]


def test_a_helper_is_compiled_code_only_and_from_python_calls_it():
    """A helper has no Python entry point (no wrapper is compiled for it):
    calling it from Python is a clear TypeError, not a jump to nothing;
    ``from_python`` gives tests one."""
    x, out = np.arange(3.0), np.zeros(3)
    with pytest.raises(TypeError, match="_twice is a kernel helper"):
        _twice(x, out)
    from_python(_twice)(x, out)
    assert out.tolist() == [0.0, 2.0, 4.0]


def test_compile_clock_counts_compiling_not_calling():
    @njit
    def fresh(x):
        return x + 1

    before = compile_seconds()
    fresh(1)
    compiled = compile_seconds()
    assert compiled > before
    fresh(2)
    assert compile_seconds() == compiled


_FIT = r"""
import json, sys, warnings
import numpy as np
from fastem import GaussianMixture
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = np.r_[rng.normal(size=(500, 3)), rng.normal(size=(500, 3)) + 5].astype(sys.argv[1])
out = {}
for cov in sys.argv[2].split(","):
    gm = GaussianMixture(2, covariance_type=cov, random_state=0, verbose=int(sys.argv[3]))
    gm.fit(X)
    gm.predict(X); gm.score_samples(X)
    out[cov] = [gm.compile_seconds_, gm.init_seconds_, sum(gm.iteration_seconds_)]
print(json.dumps(out))
"""


def _fit_in_process(cache, dtype="float64", covs="full", verbose=0):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", _FIT, dtype, covs, str(verbose)], env=env,
                         capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def test_first_fit_reports_compiling_apart_and_a_second_process_loads_the_cache(tmp_path):
    first, printed = _fit_in_process(tmp_path, verbose=2)
    compiled, init, iterations = first["full"]
    assert compiled > 0
    assert any(line.startswith("  compiling kernels for this CPU, first use only: ")
               for line in printed)
    # The init and iteration times are the work's: far below the compile time here.
    assert init + iterations < compiled
    second, printed = _fit_in_process(tmp_path, verbose=2)
    assert second["full"][0] == 0.0  # everything loaded from the cache
    assert not any("compiling kernels" in line for line in printed)


#: After ``fastem warmup``, in its process: each helper's signatures per
#: compute dtype, where there is more than one (a helper is compiled once per
#: distinct tuple of argument types, and a read-only array, a literal or an
#: omitted default is a type of its own: docs/contributing/compile_time.md).
_HELPER_SIGNATURES = r"""
import importlib, json, pkgutil
from fastem.cli import main
main(["warmup", "--dtypes", "float64", "--quiet"])
import fastem.kernels.cpu as kernels
from fastem.kernels.cpu._jit import _HelperDispatcher

def compute_dtype(sig):
    for t in sig:
        if getattr(t, "dtype", None) is not None:
            return str(t.dtype)
    return str(sig[0])  # the explicit vectors: float64x8, float32x16

repeated = {}
for info in pkgutil.iter_modules(kernels.__path__):
    module = importlib.import_module("fastem.kernels.cpu." + info.name)
    for name, obj in vars(module).items():
        if isinstance(obj, _HelperDispatcher) and obj.__module__ == module.__name__:
            per_dtype = {}
            for sig in obj.signatures:
                per_dtype.setdefault(compute_dtype(sig), []).append(str(sig))
            for dtype, sigs in per_dtype.items():
                if len(sigs) > 1:
                    repeated[name + " " + dtype] = sigs
print(json.dumps(repeated))
"""

#: The helpers compiled twice for one dtype, each for a reason that costs
#: less than its remedy (docs/contributing/compile_time.md).
_REPEATED_ON_PURPOSE = {
    # a literal layout flag: one specialisation per layout, its other branch pruned
    "_part_hidden_terms float64",
    # the 'full' incomplete-data pass's row helpers, in vectors of 8 components
    # and of 16 (two drivers, each compiled on first use: kernels/cpu/missing.py)
    # (their first array holds indices, so they count as int64 here)
    "_block_rows int64", "_condition_row int64", "_condition_lanes int64",
    "_add_conditional_covariance int64", "_conditional_covariance_lanes int64",
}


def test_warmup_compiles_what_fits_use(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _HELPER_SIGNATURES], env=env,
                         capture_output=True, text=True, check=True)
    assert "kernels ready for this CPU" in out.stdout
    # a helper compiled once more for a read-only array, a literal or an omitted
    # argument costs every first fit its compile again; the list names the known ones
    repeated = json.loads(out.stdout.splitlines()[-1])
    assert set(repeated) == _REPEATED_ON_PURPOSE, repeated
    after, _ = _fit_in_process(tmp_path, "float64", "full,diag,spherical,tied")
    assert all(v[0] == 0.0 for v in after.values()), after
    hmm = ("import numpy as np; from fastem import GaussianHMM; "
           "from fastem._compile_clock import compile_seconds; "
           "X = np.random.default_rng(1).normal(size=(90, 2)); "
           "[GaussianHMM(2, covariance_type=c, implementation=i, random_state=0).fit(X, [45, 45])"
           ".decode(X) for c in ('diag', 'full') for i in ('log', 'scaling')]; "
           # a transition below SMALL_TRANSITION: the exact recursion's drivers
           "m = GaussianHMM(2, init_params='', n_iter=1); m.startprob_ = np.array([0.5, 0.5]); "
           "m.transmat_ = np.array([[1.0, 1e-30], [0.5, 0.5]]); m.means_ = np.zeros((2, 2)); "
           "m.covars_ = np.ones((2, 2)); m.fit(X, [45, 45]).score_samples(X, [45, 45]); "
           "print(compile_seconds())")
    out = subprocess.run([sys.executable, "-c", hmm], env=env, capture_output=True, text=True,
                         check=True)
    assert float(out.stdout.split()[-1]) == 0.0, out.stdout
    missing = ("import numpy as np; from fastem import GaussianMixture, GaussianMixtureImputer; "
               "from fastem._compile_clock import compile_seconds; "
               "X = np.random.default_rng(2).normal(size=(200, 3)); X[::5, 0] = np.nan; "
               "[GaussianMixture(2, covariance_type=c, random_state=0).fit(X).predict(X) "
               "for c in ('full', 'diag', 'tied', 'spherical')]; "
               "GaussianMixture(9, random_state=0).fit(X).predict(X); "
               "GaussianMixtureImputer(2, random_state=0).fit_transform(X); "
               "print(compile_seconds())")
    out = subprocess.run([sys.executable, "-c", missing], env=env, capture_output=True,
                         text=True, check=True)
    assert float(out.stdout.split()[-1]) == 0.0, out.stdout


@pytest.mark.parametrize("dtypes, wanted", [
    (("float64",), {("float64", "float64")}),
    # float32 rows compute in float32, and in float64 when asked or when the
    # model's scale is beyond float32's reach
    (("float32",), {("float32", "float32"), ("float32", "float64")}),
])
def test_warmup_fits_hidden_markov_models_in_the_dtypes_asked(monkeypatch, dtypes, wanted):
    """``GaussianHMM``'s kernels are warmed for each dtype asked, in every
    compute dtype its rows reach, and for no other (once, float32 rows were
    warmed only with float64's, and float32 HMM kernels compiled for a
    float64-only warm-up)."""
    from fastem import GaussianHMM
    from fastem.warmup import _jobs

    seen = set()

    def fit(self, X, lengths=None):
        seen.add((str(X.dtype), str(np.dtype(self.dtype))))
        return self

    monkeypatch.setattr(GaussianHMM, "fit", fit)
    monkeypatch.setattr(GaussianHMM, "decode", lambda self, X, lengths=None: None)
    monkeypatch.setattr(GaussianHMM, "score_samples", lambda self, X, lengths=None: None)
    for label, job in _jobs(dtypes):
        if label.startswith("hidden Markov models"):
            job()
    assert seen == wanted


def test_warmup_refuses_unknown_dtypes():
    import fastem

    with pytest.raises(ValueError, match="dtypes"):
        fastem.warmup(dtypes=("float16",), progress=False)
    with pytest.raises(ValueError, match="dtypes"):
        fastem.warmup(dtypes=(), progress=False)
    with pytest.raises(ValueError, match=r"\['float16'\]"):  # one string is one dtype
        fastem.warmup(dtypes="float16", progress=False)
    out = subprocess.run([sys.executable, "-m", "fastem.cli", "warmup", "--dtypes", "int8"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "dtypes" in out.stderr
