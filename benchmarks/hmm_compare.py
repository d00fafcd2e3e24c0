"""GaussianHMM against hmmlearn: seconds per EM iteration and peak memory, same start, same run.

    python benchmarks/hmm_compare.py                                # 1,000 x 1,000 x 8, k=8
    python benchmarks/hmm_compare.py --sequences 100 --steps 200    # quicker
    python benchmarks/hmm_compare.py --sequences 1 --steps 10000000 --implementations log

Both libraries start from the same parameters (``init_params=""``) and run
``--iters`` iterations (``tol`` -1e300, so neither stops early), each in a
child process of its own that makes the same data (so its peak memory is its
own); the library runs take turns, ``--runs`` times, and each figure is the
median time per iteration. fastem's kernels are compiled by an untimed fit
on a small slice first. Peak memory is the child's resident memory above
what it held before its first timed fit (data included in neither). The
final log-likelihoods of the two are printed as well (they agree to
round-off).

This module is also the one place of the benchmark problem: the asv suite
(``bench_hmm.py``) and ``compare.py --hmm`` use :func:`make_sequences` and
:func:`start`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from numba import njit

try:
    from .common import PeakRSS, cpu_info, rss_bytes
except ImportError:  # run as a script
    from common import PeakRSS, cpu_info, rss_bytes


@njit(cache=False)
def _chain(trans_cum, first, uniforms):
    """States of a Markov chain: ``first`` then each next state drawn by
    inverting the cumulative transition row with one uniform per step."""
    n = uniforms.shape[0]
    states = np.empty(n, dtype=np.int64)
    s = first
    for t in range(n):
        states[t] = s
        row = trans_cum[s]
        nxt = 0
        while nxt < row.shape[0] - 1 and row[nxt] <= uniforms[t]:
            nxt += 1
        s = nxt
    return states


def make_sequences(n_seq, steps, d, k, seed=0):
    """``(X (n_seq * steps, d), lengths)``: sequences of a k-state chain with
    sticky transitions (0.8 on the diagonal) and unit-variance Gaussian
    emissions around means 3 standard deviations apart."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    trans = rng.dirichlet(np.ones(k), size=k) * 0.2 + np.eye(k) * 0.8
    firsts = rng.integers(0, k, size=n_seq)
    states = np.concatenate([_chain(trans.cumsum(axis=1), int(f), rng.random(steps))
                             for f in firsts])
    X = means[states] + rng.normal(size=(n_seq * steps, d))
    return X, np.full(n_seq, steps)


def start(k, d, covariance_type, X, seed=1):
    """The shared initial parameters: means at random rows, every covariance
    the data's (diagonal) variance, uniform start and transitions."""
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), k, replace=False)]
    var = X.var(axis=0)
    covars = {"diag": np.tile(var, (k, 1)), "full": np.tile(np.diag(var), (k, 1, 1))}[
        covariance_type]
    return dict(startprob_=np.full(k, 1 / k), transmat_=np.full((k, k), 1 / k),
                means_=means, covars_=covars)


def _model(cls, params, covariance_type, k, iters, implementation):
    model = cls(n_components=k, covariance_type=covariance_type, init_params="", n_iter=iters,
                tol=-1e300, implementation=implementation)
    for name, value in params.items():
        setattr(model, name, value)
    return model


def _classes(lib):
    if lib == "fastem":
        from fastem import GaussianHMM
    else:
        import logging

        from hmmlearn.hmm import GaussianHMM
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    return GaussianHMM


def worker(args):
    """One library's fits in this process: prints JSON ``{seconds, peak, log_prob}``."""
    warnings.simplefilter("ignore")
    cls = _classes(args.worker)
    X, lengths = make_sequences(args.sequences, args.steps, args.features, args.states)
    params = start(args.states, args.features, args.covariance, X)
    if args.worker == "fastem":  # compile outside the timing
        n0 = min(2000, len(X))
        _model(cls, params, args.covariance, args.states, 1, args.implementation).fit(
            X[:n0], [n0])
    seconds, peak = [], 0
    for r in range(args.repeat):
        model = _model(cls, params, args.covariance, args.states, args.iters, args.implementation)
        before = rss_bytes()
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            model.fit(X, lengths)
            seconds.append((time.perf_counter() - t0) / args.iters)
        peak = max(peak, mem.peak - before)
    print(json.dumps({"seconds": seconds, "peak": peak,
                      "log_prob": float(model.monitor_.history[-1])}))


def _run_worker(lib, args, covariance, implementation):
    cmd = [sys.executable, __file__, "--worker", lib, "--covariance", covariance,
           "--implementation", implementation, "--repeat", "1"]
    for name in ("sequences", "steps", "features", "states", "iters"):
        cmd += [f"--{name}", str(getattr(args, name))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=1000)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--states", type=int, default=8)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--types", default="diag,full")
    p.add_argument("--implementations", default="log,scaling")
    p.add_argument("--libs", default="fastem,hmmlearn")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--covariance", help=argparse.SUPPRESS)
    p.add_argument("--implementation", help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    libs = args.libs.split(",")
    info = cpu_info()
    print(f"{args.sequences:,} sequences x {args.steps:,} steps x {args.features} features, "
          f"k={args.states}, {args.iters} iterations, median of {args.runs} runs; "
          f"{info['cpu']}, {info['cpu_simd']}")
    print("| covariance | implementation | " + " | ".join(
        f"{lib} s/iter | {lib} peak MB" for lib in libs) + " | speed-up | log-likelihoods |")
    print("|" + " --- |" * (2 + 2 * len(libs) + 2))
    for ctype in args.types.split(","):
        for impl in args.implementations.split(","):
            results = {lib: [] for lib in libs}
            for _ in range(args.runs):  # in turns
                for lib in libs:
                    results[lib].append(_run_worker(lib, args, ctype, impl))
            cells, med = [], {}
            for lib in libs:
                med[lib] = float(np.median([r["seconds"][0] for r in results[lib]]))
                peak = max(r["peak"] for r in results[lib]) / 2**20
                cells.append(f"{med[lib]:.3f} | {peak:,.0f}")
            ratio = (f"{med['hmmlearn'] / med['fastem']:.1f}x"
                     if {"fastem", "hmmlearn"} <= set(libs) else "-")
            lps = " / ".join(f"{results[lib][-1]['log_prob']:.6f}" for lib in libs)
            print(f"| {ctype} | {impl} | " + " | ".join(cells) + f" | {ratio} | {lps} |")


if __name__ == "__main__":
    main()
