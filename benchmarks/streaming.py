"""Mini-batch fits against the batch fit: time and held-out log-likelihood.

    python benchmarks/streaming.py                                  # 4,000,000 x 8 float32, k=8
    python benchmarks/streaming.py --rows 1000000 --curve curve.png # and the curve
    python benchmarks/streaming.py --rows 100000000 --features 16 --memmap DIR --runs 1

The data: a mixture of ``k`` well-separated Gaussians (means drawn with
``--spread`` times the unit covariances' scale), float32, with 10 % held out.
It prints, in one run and on one CPU, the batch fit (``GaussianMixture``,
default ``tol``) and ``GaussianMixture(batch_size=B, max_iter=P, tol=0)``
(``P`` = 1 .. ``--passes`` passes of stepwise EM): seconds (the median of ``--runs``, each fit
after one untimed warm-up fit, so compilation is not counted) and held-out
mean log-likelihood. ``--memmap DIR`` writes the rows to ``DIR/streaming.npy``
and fits the memory map (the held-out rows are read into memory). ``--curve`` also draws the held-out log-likelihood
against rows read for batch EM, stepwise EM and stochastic VI
(``BayesianGaussianMixture.partial_fit``), evaluated every few batches.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

try:
    from .common import cpu_info
except ImportError:  # run as a script
    from common import cpu_info


def well_separated(n, d, k, spread, seed=0, part=0):
    """Rows of a k-component mixture whose means lie ``spread`` apart on
    average, in float32. The means come from ``seed``; ``part`` numbers a
    piece of a larger data set (its rows come from their own stream, the
    means are the same)."""
    means = np.random.default_rng(seed).normal(scale=spread, size=(k, d))
    rng = np.random.default_rng((seed, part))
    labels = rng.integers(0, k, size=n)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 1 << 20):
        rows = labels[start:start + (1 << 20)]
        X[start:start + rows.size] = means[rows] + rng.standard_normal((rows.size, d))
    return X


def timed(make, X, runs):
    make().fit(X[: max(2_000, len(X) // 100)])  # compile (a different size, same kernels)
    seconds, model = [], None
    for _ in range(runs):
        model = make()
        t0 = time.perf_counter()
        model.fit(X)
        seconds.append(time.perf_counter() - t0)
    return float(np.median(seconds)), model


def curve(train, test, k, batch_size, passes):
    """``{name: (rows read, held-out mean log-likelihood)}``."""
    from fastem import BayesianGaussianMixture, GaussianMixture

    n, out = len(train), {}
    em = GaussianMixture(k, random_state=0, max_iter=1, warm_start=True)
    points = []
    for i in range(1, 4 * passes + 1):  # one batch-EM iteration per call
        em.fit(train)
        points.append((i * n, em.score(test)))
    out["batch EM"] = points
    every = max(1, (n // batch_size) // 10)
    for name, model in [("stepwise EM", GaussianMixture(k, random_state=0)),
                        ("stochastic VI", BayesianGaussianMixture(n_components=k,
                                                                  random_state=0))]:
        points, rows = [], 0
        for _ in range(passes):
            for j, a in enumerate(range(0, n, batch_size)):
                model.partial_fit(train[a:a + batch_size])
                rows += min(batch_size, n - a)
                if j % every == 0:
                    points.append((rows, model.score(test)))
        out[name] = points
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=4_000_000)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--spread", type=float, default=4.0)
    p.add_argument("--batch-size", type=int, default=100_000)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--memmap", help="write the rows to this folder and fit the memory map")
    p.add_argument("--curve", help="draw held-out log-likelihood against rows read to this image")
    args = p.parse_args(argv)
    from fastem import GaussianMixture

    warnings.simplefilter("ignore")  # the mini-batch fits stop at --passes by design
    n_all = args.rows + args.rows // 9
    if args.memmap:
        X = np.lib.format.open_memmap(os.path.join(args.memmap, "streaming.npy"), mode="w+",
                                      dtype=np.float32, shape=(n_all, args.features))
        step = 1 << 23
        for a in range(0, n_all, step):  # the same rows as in memory, written in pieces
            X[a:a + step] = well_separated(min(step, n_all - a), args.features, args.components,
                                           args.spread, part=a // step)
        X.flush()
        X = np.load(os.path.join(args.memmap, "streaming.npy"), mmap_mode="r")
        train, test = X[:args.rows], np.array(X[args.rows:])
    else:
        X = well_separated(n_all, args.features, args.components, args.spread)
        train, test = X[:args.rows], X[args.rows:]
    info = cpu_info()
    print(f"{args.rows:,} x {args.features} float32{' (memory map)' if args.memmap else ''}, "
          f"k={args.components}, held out {len(test):,}; {info['cpu']}, {info['cpu_simd']}")
    batch_s, batch = timed(lambda: GaussianMixture(args.components, random_state=0), train,
                           args.runs)
    ref = batch.score(test)
    print("| fit | seconds (median) | held-out log-likelihood | vs batch |")
    print("| --- | --- | --- | --- |")
    print(f"| batch EM to convergence ({batch.n_iter_} iterations, tol=1e-3) | {batch_s:.3f} | "
          f"{ref:.5f} | |")
    for passes in range(1, args.passes + 1):
        mini_s, mini = timed(lambda: GaussianMixture(args.components, random_state=0, tol=0,
                                                     batch_size=args.batch_size,
                                                     max_iter=passes), train, args.runs)
        print(f"| batch_size={args.batch_size:,}, {passes} pass{'es' if passes > 1 else ''} | "
              f"{mini_s:.3f} | {mini.score(test):.5f} | {mini.score(test) - ref:+.5f} nats, "
              f"{mini_s / batch_s:.2f} of the time |")
    if args.curve:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
        for name, points in curve(train, test, args.components, args.batch_size,
                                  args.passes).items():
            rows, score = zip(*points)
            ax.plot(rows, score, marker="o", markersize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("rows read")
        ax.set_ylabel("held-out mean log-likelihood")
        ax.legend()
        fig.savefig(args.curve, dpi=120)
        print(f"curve written to {args.curve}")


if __name__ == "__main__":
    main()
