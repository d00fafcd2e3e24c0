"""Side-by-side EM speed: fastem against scikit-learn, pomegranate and mlpack (when installed).

One command, one run: every library fits the same data from the same initial
parameters (mlpack: from its own k-means start, see its worker), each in its
own child process (so peak memory is its own), and the machine's dgemm peak is
measured in the same run::

    python benchmarks/compare.py                       # the three standard configurations
    python benchmarks/compare.py --n-samples 200000    # smaller, quicker
    python benchmarks/compare.py --config full:1000000:16:16 --iters 5 --runs 3
    python benchmarks/compare.py --config full:1000000:16:16 --libs fastem-vb,sklearn-vb
    python benchmarks/compare.py --config diag:1000000:32:64:float32   # one dtype only
    python benchmarks/compare.py --hmm -- --sequences 100             # GaussianHMM vs hmmlearn

Every configuration runs for each of ``--dtypes`` (default float64 and
float32: the data cast to it, the same initial parameters), and the run ends
with float32 against float64 per library: the speed ratio (of the pooled
medians, and round by round: with ``--runs N`` the dtypes and libraries take
turns within each round) and how far the float32 fit's log-likelihood is from
the float64 one.

Reported per configuration and library: median seconds per EM iteration (one
E-step plus one M-step; with ``--runs N``, pooled over N worker runs taken in
turns), the speed-up over scikit-learn, peak resident memory of an iteration
above the memory before it, and the fraction of the measured dgemm peak under
the flop model ``full/tied: 2 n k d^2``, ``diag/spherical: 8 n k d``. Memory is
sampled every millisecond by a thread, in one iteration before the timed ones
(before, so that the allocator has not kept memory from earlier iterations):
the sampler's reads of ``/proc`` slowed fastem's iterations by about 3 %
(full 1M x 16, k=16: 0.145 against 0.141 s), so no timed iteration runs with it.

scikit-learn is timed by calling its ``_e_step``/``_m_step`` on an estimator
initialised with the shared parameters: exactly one iteration of its fit loop,
without its initialisation or final E-step.

The dgemm peak is the best of several 3000 x 3000 products: what the machine
can attain. The library timings are medians; on a shared machine use
``--runs 3`` or more, so that one slow spell does not decide the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    from .common import PeakRSS, cpu_info, rss_bytes as _rss_bytes
except ImportError:  # run as a script
    from common import PeakRSS, cpu_info, rss_bytes as _rss_bytes

#: The registry's problems this script reports by default (``fastem.problems``;
#: imported in ``main`` only, so that a library's worker process never loads fastem).
DEFAULT_PROBLEMS = ["mixture-full-d16-k16", "mixture-full-d2-k8", "mixture-diag-d32-k64"]
DTYPES = ("float64", "float32")
#: Speed-up over scikit-learn that issue #5 asks for; each run prints what it needs.
TARGET_SPEEDUP = 20


def flops_per_iteration(covariance_type, n, d, k):
    """The flop model of one EM iteration."""
    if covariance_type in ("full", "tied"):
        return 2.0 * n * k * d * d
    return 8.0 * n * k * d


def dgemm_peak(size=3000, repeats=7):
    """Measured float64 GEMM rate of this machine (GFLOP/s, best of runs).

    The best run, not the median: the peak is what the machine can attain, and
    on a shared machine other tenants can only slow a run down (one median
    read 55 GFLOP/s on a machine whose best is 100).
    """
    a = np.random.default_rng(0).random((size, size))
    b = np.random.default_rng(1).random((size, size))
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / min(times) / 1e9


# ----------------------------------------------------------------------------
# Workers: run in a child process, print one JSON line
# ----------------------------------------------------------------------------

def _time_iterations(make_step, iters):
    """Time EM iterations: ``make_step()`` returns a ``step()`` that runs one
    iteration from the shared initial parameters onwards and returns the mean
    log-likelihood. One step runs under the memory sampler, then a fresh
    sequence of ``iters`` steps is timed (so every library's final
    log-likelihood is that of ``iters`` iterations). Returns the per-call
    seconds, the sampled peak memory above the start, and the last
    log-likelihood."""
    step = make_step()
    base = _rss_bytes()
    with PeakRSS() as mem:
        step()
    step = make_step()
    times = []
    lb = np.nan
    for _ in range(iters):
        t0 = time.perf_counter()
        lb = step()
        times.append(time.perf_counter() - t0)
    return times, mem.peak - base, lb


def _worker_fastem(X, init, covariance_type, iters):
    from fastem import GaussianMixture

    k = init["means"].shape[0]
    kw = dict(covariance_type=covariance_type, weights_init=init["weights"],
              means_init=init["means"], precisions_init=init["precisions"], tol=0.0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(k, max_iter=1, **kw).fit(X[:2000])  # compile before timing
        base = _rss_bytes()
        with PeakRSS() as mem:  # memory of a one-iteration fit, untimed
            GaussianMixture(k, max_iter=1, **kw).fit(X)
        gm = GaussianMixture(k, max_iter=iters, **kw).fit(X)
    return gm.iteration_seconds_, mem.peak - base, float(gm.lower_bounds_[-1])


def _worker_sklearn(X, init, covariance_type, iters):
    from sklearn.mixture import GaussianMixture

    k = init["means"].shape[0]
    import warnings

    from fastem._model import precision_cholesky_from_precisions

    # scikit-learn cannot fit with max_iter=0 and precisions_init (it looks for
    # covariances_), so run one iteration on a slice to set up the estimator,
    # then put the shared parameters in place.
    gm = GaussianMixture(k, covariance_type=covariance_type, weights_init=init["weights"],
                         means_init=init["means"], precisions_init=init["precisions"], max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X[: max(2000, 2 * k)])

    def make_step():
        gm.weights_ = init["weights"].copy()
        gm.means_ = init["means"].copy()
        gm.precisions_cholesky_ = precision_cholesky_from_precisions(init["precisions"],
                                                                     covariance_type)

        def step():
            log_prob_norm, log_resp = gm._e_step(X)
            gm._m_step(X, log_resp)
            return float(log_prob_norm)

        return step

    return _time_iterations(make_step, iters)


def _worker_pomegranate(X, init, covariance_type, iters):
    """pomegranate >= 1.0 (PyTorch): one ``summarize`` + ``from_summaries`` per
    iteration, from the shared parameters. pomegranate has no ``reg_covar``
    (it uses ``min_cov``), so its log-likelihood drifts slightly from the others."""
    import torch
    from pomegranate.distributions import Normal
    from pomegranate.gmm import GeneralMixtureModel

    if covariance_type not in ("full", "diag"):
        raise ValueError("pomegranate worker: only 'full' and 'diag'")
    prec = init["precisions"]
    covs = np.linalg.inv(prec) if covariance_type == "full" else 1.0 / prec
    Xt = torch.as_tensor(X)

    def make_step():
        dists = [Normal(means=torch.as_tensor(m), covs=torch.as_tensor(c),
                        covariance_type=covariance_type) for m, c in zip(init["means"], covs)]
        model = GeneralMixtureModel(dists, priors=torch.as_tensor(init["weights"]), max_iter=1,
                                    tol=0.0)

        def step():
            logp = model.summarize(Xt)
            model.from_summaries()
            return float(logp) / X.shape[0]

        return step

    return _time_iterations(make_step, iters)


def _worker_mlpack(X, init, covariance_type, iters):
    """mlpack's ``gmm_train`` (Python bindings). It cannot start from given
    parameters, so it starts from its own k-means model (same seed every call),
    and an iteration costs ``(T(1 + iters) - T(1)) / iters``: the difference
    cancels the k-means start and the data conversion each call pays. No
    log-likelihood is reported (nan), as the starting point differs."""
    import mlpack

    if covariance_type not in ("full", "diag"):
        raise ValueError("mlpack worker: only 'full' and 'diag'")
    k = init["means"].shape[0]

    def run(max_iterations):
        t0 = time.perf_counter()
        mlpack.gmm_train(input_=X, gaussians=k, max_iterations=max_iterations, tolerance=0.0,
                         diagonal_covariance=covariance_type == "diag",
                         kmeans_max_iterations=10, seed=0)
        return time.perf_counter() - t0

    base = _rss_bytes()
    with PeakRSS() as mem:  # warm-up, untimed
        run(1)
    per_iter = [(run(1 + iters) - run(1)) / iters for _ in range(3)]
    return per_iter, mem.peak - base, float("nan")


def _worker_fastem_vb(X, start_path, covariance_type, iters):
    """fastem's BayesianGaussianMixture: ``iters`` variational iterations from the
    shared posterior (a warm start from the saved start model)."""
    import warnings

    import fastem

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = fastem.load(start_path).set_params(max_iter=1, warm_start=True)
        warm.fit(X[:2000])  # compile before timing
        base = _rss_bytes()
        with PeakRSS() as mem:  # memory of a one-iteration fit, untimed
            fastem.load(start_path).set_params(max_iter=1, warm_start=True).fit(X)
        gm = fastem.load(start_path).set_params(max_iter=iters, warm_start=True, tol=0.0).fit(X)
    return gm.iteration_seconds_, mem.peak - base, float(gm.lower_bounds_[-1])


def _worker_sklearn_vb(X, start_path, covariance_type, iters):
    """scikit-learn's BayesianGaussianMixture: its ``_e_step`` + ``_m_step`` from
    the same posterior, with the priors of the full data (``_check_parameters``)."""
    import warnings

    from sklearn.mixture import BayesianGaussianMixture

    import fastem

    start = fastem.load(start_path)
    gm = BayesianGaussianMixture(n_components=start.n_components, covariance_type=covariance_type,
                                 weight_concentration_prior_type=start.weight_concentration_prior_type,
                                 max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X[: max(2000, 2 * start.n_components)])
    gm._check_parameters(X)  # the priors of the whole data, as fastem's fit has them

    def make_step():
        wc = start.weight_concentration_
        gm._set_parameters((tuple(np.copy(a) for a in wc) if isinstance(wc, tuple) else wc.copy(),
                            start.mean_precision_.copy(), start.means_.copy(),
                            np.copy(start.degrees_of_freedom_), start.covariances_.copy(),
                            start.precisions_cholesky_.copy()))

        def step():
            log_prob_norm, log_resp = gm._e_step(X)
            gm._m_step(X, log_resp)
            return float(np.ravel(gm._compute_lower_bound(log_resp, log_prob_norm))[0])

        return step

    return _time_iterations(make_step, iters)


WORKERS = {"fastem": _worker_fastem, "sklearn": _worker_sklearn,
           "pomegranate": _worker_pomegranate, "mlpack": _worker_mlpack,
           "fastem-vb": _worker_fastem_vb, "sklearn-vb": _worker_sklearn_vb}
#: Workers of the variational model (BayesianGaussianMixture) start from a
#: saved fastem model instead of the shared GMM parameters; their speed-up is
#: over scikit-learn's BayesianGaussianMixture.
VB_WORKERS = ("fastem-vb", "sklearn-vb")


def _available(lib):
    """A known library (each worker's name starts with its module's) that imports."""
    if lib not in WORKERS:
        return False
    try:
        __import__(lib.split("-")[0])
        return True
    except ImportError:
        return False


def worker_main(lib, data_path, init_path, covariance_type, iters):
    X = np.load(data_path, mmap_mode=None)
    if lib in VB_WORKERS:
        init = init_path.replace("init.npz", "vb_start.npz")
    else:
        with np.load(init_path) as z:
            init = {key: z[key] for key in z.files}
    times, extra, lb = WORKERS[lib](X, init, covariance_type, iters)
    print(json.dumps({"times": times, "peak_above_data": max(0, extra), "lower_bound": lb}))


# ----------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------

def _shared_init(X, covariance_type, k, seed):
    """Initial parameters every library starts from (fastem's k-means init)."""
    from fastem import GaussianMixture

    gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=seed).fit(X)
    return dict(weights=gm.weights_, means=gm.means_, precisions=gm.precisions_)


def _shared_vb_start(X, covariance_type, k, seed, path):
    """The posterior both variational workers start from: fastem's
    initialisation (max_iter=0), saved as a model file."""
    from fastem import BayesianGaussianMixture

    BayesianGaussianMixture(n_components=k, covariance_type=covariance_type, max_iter=0,
                            random_state=seed).fit(X).save(path)


def group_configs(configs, dtypes):
    """``(type:n:d:k, [dtype, ...])`` per ``type:n:d:k[:dtype]`` spec: the
    dtype it names, else every one of ``dtypes``."""
    out = []
    for spec in configs:
        parts = spec.split(":")
        out.append((":".join(parts[:4]), [parts[4]] if len(parts) == 5 else list(dtypes)))
    return out


def run_config(base, dtypes, iters, libs, workdir, seed, peak, runs=1):
    """Every library on ``base`` (``type:n:d:k``) for each dtype; returns
    ``{f"{base}:{dtype}": (results, target)}``.

    All dtypes and libraries take turns within each round, so that a slow
    spell of the machine hits all of them rather than one: the float32 against
    float64 ratio of a library compares timings taken minutes, not a whole
    configuration, apart. Each round's median is kept (``round_medians``)
    beside the pooled median.
    """
    from fastem.problems import make_mixture

    covariance_type, n, d, k = base.split(":")
    n, d, k = int(n), int(d), int(k)
    X = make_mixture(n, d, k, seed)[0]
    # The same start for every dtype: the float64 data's initialisation.
    init = _shared_init(X, covariance_type, k, seed)
    paths = {}
    for dtype in dtypes:  # one folder per dtype: its data, the start, its VB start
        folder = os.path.join(workdir, dtype)
        os.makedirs(folder, exist_ok=True)
        paths[dtype] = (os.path.join(folder, "X.npy"), os.path.join(folder, "init.npz"))
        np.savez(paths[dtype][1], **init)
        Xd = X.astype(dtype)
        np.save(paths[dtype][0], Xd)
        if any(lib in VB_WORKERS for lib in libs):
            _shared_vb_start(Xd, covariance_type, k, seed, os.path.join(folder, "vb_start.npz"))
        del Xd
    del X
    flops = flops_per_iteration(covariance_type, n, d, k)
    rows = {dtype: {} for dtype in dtypes}
    for _ in range(runs):
        for dtype in dtypes:
            for lib in libs:
                cmd = [sys.executable, __file__, "--worker", lib, *paths[dtype], covariance_type,
                       str(iters)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"  {lib} ({dtype}): failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["round_medians"] = [float(np.median(r["times"]))]
                old = rows[dtype].get(lib)
                if old is not None:  # pool the iteration times; keep the largest peak memory
                    r["times"] = old["times"] + r["times"]
                    r["round_medians"] = old["round_medians"] + r["round_medians"]
                    r["peak_above_data"] = max(r["peak_above_data"], old["peak_above_data"])
                rows[dtype][lib] = r
    return {f"{base}:{dtype}": _report(f"{base}:{dtype}", rows[dtype], flops, peak, runs, iters)
            for dtype in dtypes}


def _report(spec, rows, flops, peak, runs, iters):
    """Print one configuration's table; returns its results and the 20x target."""
    covariance_type, n, d, k, dtype = spec.split(":")
    print(f"\n{covariance_type} n={int(n):,} d={d} k={k} {dtype}  ({runs} x {iters} iterations, "
          f"flop model {flops / 1e9:.2f} GFLOP/iteration)")
    print(f"  {'library':<13}{'s/iter':>10}{'speed-up':>10}{'peak MB':>10}"
          f"{'GFLOP/s':>10}{'% dgemm':>9}{'final LL':>14}")
    def reference(lib):
        name = "sklearn-vb" if lib in VB_WORKERS else "sklearn"
        return np.median(rows[name]["times"]) if name in rows else np.nan

    ref = reference("sklearn")
    results = {}
    for lib, r in rows.items():
        med = float(np.median(r["times"]))
        ref = reference(lib)
        rate = flops / med / 1e9
        results[lib] = dict(seconds_per_iter=med, speedup=ref / med, gflops=rate,
                            fraction_of_peak=rate / peak, peak_mb=r["peak_above_data"] / 2**20,
                            lower_bound=r["lower_bound"], round_medians=r["round_medians"])
        print(f"  {lib:<13}{med:>10.4f}{ref / med:>10.1f}{r['peak_above_data'] / 2**20:>10.1f}"
              f"{rate:>10.1f}{100 * rate / peak:>8.1f}%{r['lower_bound']:>14.6f}")
    target = None
    ref = reference("sklearn")
    if np.isfinite(ref):
        # What the 20x target asks of the hardware under the same flop model:
        # above 100 % of the dgemm peak it is out of reach for this run.
        need = flops / (ref / TARGET_SPEEDUP) / 1e9
        target = dict(speedup=TARGET_SPEEDUP, seconds_per_iter=ref / TARGET_SPEEDUP,
                      gflops=need, fraction_of_peak=need / peak)
        print(f"  {TARGET_SPEEDUP}x scikit-learn needs {ref / TARGET_SPEEDUP:.4f} s/iter, "
              f"{need:.1f} GFLOP/s: {100 * need / peak:.0f}% of the dgemm peak")
    return results, target


def print_dtype_comparison(all_results):
    """float32 against float64, per configuration and library, from one run."""
    lines = []
    for spec, res in all_results.items():
        if not spec.endswith(":float32") or spec[:-8] + ":float64" not in all_results:
            continue
        res64 = all_results[spec[:-8] + ":float64"]
        for lib, r32 in res.items():
            if lib not in res64:
                continue
            r64 = res64[lib]
            ratio = r64["seconds_per_iter"] / r32["seconds_per_iter"]
            # The rounds took float64 and float32 in turns: each round's ratio
            # compares timings minutes apart, so their spread shows the noise.
            rounds = [a / b for a, b in zip(r64["round_medians"], r32["round_medians"])]
            diff = abs(r32["lower_bound"] - r64["lower_bound"]) / max(1e-300, abs(r64["lower_bound"]))
            r32["float32_speedup"], r32["float32_relative_ll_difference"] = ratio, diff
            r32["float32_speedup_rounds"] = rounds
            spread = " ".join(f"{x:.2f}" for x in rounds)
            lines.append(f"  {spec[:-8]:<22}{lib:<13}{ratio:>8.2f}x{diff:>14.1e}   {spread}")
    if lines:
        print("\nfloat32 against float64 (same run, same start; rounds in turns)")
        print(f"  {'configuration':<22}{'library':<13}{'speed-up':>9}{'rel. LL diff':>14}"
              f"   per round")
        print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append",
                        help="covariance_type:n_samples:n_features:n_components (repeatable)")
    parser.add_argument("--n-samples", type=int, help="override n_samples of every config")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations timed per library")
    parser.add_argument("--runs", type=int, default=1,
                        help="worker runs per library, taken in turns; the median pools all runs")
    parser.add_argument("--libs", default="fastem,sklearn,pomegranate,mlpack",
                        help="libraries to run; those not installed are skipped; fastem-vb "
                             "and sklearn-vb time BayesianGaussianMixture")
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help="data dtypes each configuration runs with (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-size", type=int, default=3000,
                        help="side of the square matrices whose product measures the peak "
                             "(default %(default)s; the tests pass a small one)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--hmm", action="store_true",
                        help="GaussianHMM against hmmlearn instead (hmm_compare.py's table; "
                             "its options after --)")
    args, rest = parser.parse_known_args(argv)
    if args.hmm:
        try:
            from .hmm_compare import main as hmm_main
        except ImportError:  # run as a script
            from hmm_compare import main as hmm_main
        return hmm_main([a for a in rest if a != "--"])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.worker:
        lib, data_path, init_path, ctype, iters = args.worker
        worker_main(lib, data_path, init_path, ctype, int(iters))
        return 0
    if not args.config:
        from fastem.problems import PROBLEMS
    configs = args.config or [PROBLEMS[name].spec for name in DEFAULT_PROBLEMS]
    if args.n_samples:
        configs = [":".join([c.split(":")[0], str(args.n_samples)] + c.split(":")[2:]) for c in configs]
    groups = group_configs(configs, args.dtypes.split(","))
    libs = [lib for lib in args.libs.split(",") if _available(lib)]
    peak = dgemm_peak(args.peak_size)
    cpu = cpu_info()
    print(f"CPU: {cpu['cpu']} ({cpu['cpu_simd']}), {os.cpu_count()} CPUs; dgemm peak in this "
          f"run: {peak:.1f} GFLOP/s; libraries: {', '.join(libs)}")
    all_results = {"dgemm_gflops": peak, "machine": cpu}
    with tempfile.TemporaryDirectory() as workdir:
        for base, dtypes in groups:
            for spec, (results, target) in run_config(base, dtypes, args.iters, libs, workdir,
                                                      args.seed, peak, args.runs).items():
                all_results[spec] = results
                if target is not None:  # kept apart from the per-library results
                    all_results.setdefault("targets", {})[spec] = target
    print_dtype_comparison({k: v for k, v in all_results.items() if ":" in k})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
