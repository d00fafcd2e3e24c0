"""A sweep over k in shared passes (GaussianMixtureIC) against separate fits.

    python benchmarks/sweep.py                        # 1,000,000 x 8, k = 1..6, full
    python benchmarks/sweep.py --n-samples 100000 --holders ram,memmap

For each holder of X (in RAM, a memory map, a Dask array on a distributed
LocalCluster) it times ``GaussianMixtureIC(n_components=1..6)`` and the six
``GaussianMixture(k).fit`` it replaces (each followed by ``bic``, which the
sweep also computes), same parameters and ``random_state``, and counts the
passes over X of the EM iterations: the sweep's ``n_passes_`` against the
separate fits' summed ``n_iter_`` (+1 scoring pass each), and those of the
initialisations (``n_init_passes_`` against the separate fits' passes over
all rows).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

import numpy as np


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _count_init_passes(fn, n_rows):
    """Passes over all ``n_rows`` rows (any backend's ``map_chunks`` calls on
    X, not on the k-means sample) during ``fn()``."""
    from fastem.backends.cpu import CPUBackend
    from fastem.backends.dask import DaskBackend

    count = 0
    originals = {cls: cls.map_chunks for cls in (CPUBackend, DaskBackend)}

    def counting(original):
        def wrapper(self, X, *args, **kwargs):
            nonlocal count
            count += X.shape[0] == n_rows
            return original(self, X, *args, **kwargs)
        return wrapper

    try:
        for cls, original in originals.items():
            cls.map_chunks = counting(original)
        fn()
    finally:
        for cls, original in originals.items():
            cls.map_chunks = original
    return count


def run(X, ks, covariance_type, seed):
    from fastem import GaussianMixture, GaussianMixtureIC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep_s, ic = _time(lambda: GaussianMixtureIC(n_components=ks, covariance_type=covariance_type,
                                                      random_state=seed).fit(X))

        def separate():
            fits = [GaussianMixture(k, covariance_type=covariance_type, random_state=seed).fit(X)
                    for k in ks]
            return fits, [gm.bic(X) for gm in fits]

        separate_s, (fits, bics) = _time(separate)
        # the separate fits' initialisation passes over all of X, counted
        # outside the timing (backend.map_chunks calls, as n_init_passes_)
        init_passes = _count_init_passes(
            lambda: [GaussianMixture(k, covariance_type=covariance_type, random_state=seed,
                                     max_iter=0).fit(X) for k in ks], X.shape[0])
    # Each candidate is the model fitted alone; the sweep scores it with the
    # fused pass and ``bic`` with the log-density kernel, two evaluations that
    # float32 compute rounds ~1e-9 apart (float64: ~1e-14)
    rtol = 1e-8 if X.dtype == np.float32 else 1e-9
    same = bool(np.allclose(ic.results_["bic"], bics, rtol=rtol))
    return {"sweep_seconds": sweep_s, "separate_seconds": separate_s,
            "ratio": sweep_s / separate_s, "sweep_passes": ic.n_passes_,
            "separate_passes": int(sum(gm.n_iter_ + 1 for gm in fits)),
            "sweep_init_passes": ic.n_init_passes_, "separate_init_passes": init_passes,
            "bic_agree": same, "bic_rtol": rtol, "best_k": ic.n_components_}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=8)
    parser.add_argument("--max-k", type=int, default=6)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--holders", default="ram,memmap,dask")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    from fastem.problems import make_mixture

    X = make_mixture(args.n_samples, args.n_features, 4, args.seed, np.dtype(np.float32))[0]
    ks = list(range(1, args.max_k + 1))
    from fastem import GaussianMixture, GaussianMixtureIC

    with warnings.catch_warnings():  # compile every kernel both sides use, before timing
        warnings.simplefilter("ignore")
        GaussianMixtureIC(n_components=[1, 2], covariance_type=args.covariance_type,
                          max_iter=2).fit(X[:5000])
        GaussianMixture(2, covariance_type=args.covariance_type, max_iter=2).fit(X[:5000]).bic(X[:5000])
    results = {}
    print(f"{args.n_samples:,} x {args.n_features} float32, k = 1..{args.max_k}, "
          f"{args.covariance_type}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for holder in args.holders.split(","):
            if holder == "ram":
                results[holder] = run(X, ks, args.covariance_type, args.seed)
            elif holder == "memmap":
                path = os.path.join(tmp, "X.npy")
                np.save(path, X)
                results[holder] = run(np.load(path, mmap_mode="r"), ks, args.covariance_type,
                                      args.seed)
            elif holder == "dask":
                import dask.array as da
                import distributed

                with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                              dashboard_address=None, silence_logs=40) as cluster, \
                        distributed.Client(cluster):
                    dX = da.from_array(X, chunks=(max(1, args.n_samples // 8), args.n_features))
                    results[holder] = run(dX, ks, args.covariance_type, args.seed)
            r = results[holder]
            print(f"  {holder:<7} sweep {r['sweep_seconds']:7.2f}s  separate {r['separate_seconds']:7.2f}s"
                  f"  ratio {r['ratio']:.2f}  passes {r['sweep_passes']} vs {r['separate_passes']}"
                  f"  init passes {r['sweep_init_passes']} vs {r['separate_init_passes']}"
                  f"  BIC agree to {r['bic_rtol']:g}: {r['bic_agree']}  best k={r['best_k']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
