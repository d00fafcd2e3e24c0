"""An EM iteration on incomplete data against one on the complete data, same run.

    python benchmarks/missing_speed.py                     # 1,000,000 x 16, k=16, 20 % missing
    python benchmarks/missing_speed.py --n 200000 --iters 3 --types diag
    python benchmarks/missing_speed.py --types diag,spherical --dtype float32
    python benchmarks/missing_speed.py --rounds 5     # more alternating rounds, steadier ratios

For each covariance type: the benchmark mixture (``fastem.problems.make_mixture``),
once complete and once with ``--fraction`` of its values removed completely
at random; both fitted from the same initial parameters (the true means and
weights, each component's sample covariance) for
``--iters`` iterations (``tol=0``), in ``--dtype`` (float64; float32 rows
compute their 'diag' and 'spherical' passes in float32); the two fits
alternate for ``--rounds`` rounds, so that a slow spell of a shared machine
weighs on both. Prints the median seconds per iteration of each, their
ratio (the issue's targets: at most 3x for 'full', 1.5x for 'diag') and the
peak memory each fit added (tracemalloc: NumPy's
allocations, which is where a copy of X would show).
"""

from __future__ import annotations

import argparse
import tracemalloc
import warnings

import numpy as np


def _fit(X, k, covariance_type, params, iters):
    from fastem import GaussianMixture

    weights, means, precisions = params
    gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=iters, tol=0.0,
                         weights_init=weights, means_init=means, precisions_init=precisions)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = gm.iteration_seconds_[1:] or gm.iteration_seconds_  # the first may compile
    return list(seconds), peak


def main(argv=None):
    from fastem.problems import PROBLEMS, make_mixture, remove_at_random

    problem = PROBLEMS["mixture-missing20-full-d16-k16"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=problem.n_samples)
    parser.add_argument("--d", type=int, default=problem.n_features)
    parser.add_argument("--k", type=int, default=problem.n_components)
    parser.add_argument("--fraction", type=float, default=problem.missing)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--types", default="full,diag")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    X, labels, means, weights = make_mixture(args.n, args.d, args.k, seed=0)
    cov = np.stack([np.cov(X[labels == j].T) for j in range(args.k)])
    holes = remove_at_random(X, args.fraction, seed=1).astype(args.dtype)
    X = X.astype(args.dtype)
    print(f"{args.n:,} x {args.d}, k={args.k}, {np.isnan(holes).mean():.1%} missing, "
          f"{args.iters} iterations, {args.dtype}")
    print(f"{'type':<10}{'complete s/iter':>17}{'incomplete s/iter':>19}{'ratio':>8}"
          f"{'MB added (complete / incomplete)':>34}")
    for ctype in args.types.split(","):
        if ctype == "diag":
            precisions = 1.0 / np.stack([np.diag(c) for c in cov])
        elif ctype == "spherical":
            precisions = 1.0 / np.array([np.trace(c) / args.d for c in cov])
        elif ctype == "tied":
            precisions = np.linalg.inv(cov.mean(axis=0))
        else:
            precisions = np.linalg.inv(cov)
        params = (weights, means, precisions)
        _fit(holes[:2000], args.k, ctype, params, 2)  # compile both paths first
        _fit(X[:2000], args.k, ctype, params, 2)
        full_t, miss_t = [], []
        for _ in range(args.rounds):
            seconds, full_mem = _fit(X, args.k, ctype, params, args.iters)
            full_t += seconds
            seconds, miss_mem = _fit(holes, args.k, ctype, params, args.iters)
            miss_t += seconds
        full_s, miss_s = float(np.median(full_t)), float(np.median(miss_t))
        print(f"{ctype:<10}{full_s:>17.4f}{miss_s:>19.4f}{miss_s / full_s:>7.2f}x"
              f"{full_mem / 1e6:>20.1f} / {miss_mem / 1e6:.1f}")


if __name__ == "__main__":
    main()
