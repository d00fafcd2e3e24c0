"""GaussianHMM against hmmlearn: seconds per EM iteration, same start, same run.

    python benchmarks/hmm_compare.py                                # 1,000 x 1,000 x 8, k=8
    python benchmarks/hmm_compare.py --sequences 100 --steps 200    # quicker

Both libraries start from the same parameters (``init_params=""``) and run
``--iters`` iterations (``tol`` -1e300, so neither stops early); each
figure is the median over ``--runs`` fits, taken in turns, of the time per
iteration, after one untimed fit that compiles fastem's kernels. The final
log-likelihoods of the two are printed as well (they agree to round-off).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

try:
    from .common import cpu_info
except ImportError:  # run as a script
    from common import cpu_info


def make_sequences(n_seq, steps, d, k, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    trans = rng.dirichlet(np.ones(k), size=k) * 0.2 + np.eye(k) * 0.8
    state = rng.integers(0, k, size=n_seq)
    X = np.empty((n_seq, steps, d))
    for t in range(steps):
        X[:, t] = means[state] + rng.normal(size=(n_seq, d))
        u = rng.random(n_seq)[:, None]
        state = (trans[state].cumsum(axis=1) > u).argmax(axis=1)
    return X.reshape(n_seq * steps, d), np.full(n_seq, steps)


def start(k, d, covariance_type, X, seed=1):
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), k, replace=False)]
    var = X.var(axis=0)
    covars = {"diag": np.tile(var, (k, 1)), "full": np.tile(np.diag(var), (k, 1, 1))}[
        covariance_type]
    return dict(startprob_=np.full(k, 1 / k), transmat_=np.full((k, k), 1 / k),
                means_=means, covars_=covars)


def fit_seconds(cls, params, covariance_type, k, iters, X, lengths, implementation="log"):
    model = cls(n_components=k, covariance_type=covariance_type, init_params="", n_iter=iters,
                tol=-1e300, implementation=implementation)
    for name, value in params.items():
        setattr(model, name, value)
    t0 = time.perf_counter()
    model.fit(X, lengths)
    return (time.perf_counter() - t0) / iters, model


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
    args = p.parse_args(argv)
    from hmmlearn.hmm import GaussianHMM as Reference

    from fastem import GaussianHMM

    warnings.simplefilter("ignore")
    import logging
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    X, lengths = make_sequences(args.sequences, args.steps, args.features, args.states)
    info = cpu_info()
    print(f"{args.sequences:,} sequences x {args.steps:,} steps x {args.features} features, "
          f"k={args.states}; {info['cpu']}, {info['cpu_simd']}")
    print("| covariance | implementation | fastem s/iter | hmmlearn s/iter | speed-up "
          "| log-likelihoods (fastem / hmmlearn) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for ctype in args.types.split(","):
        params = start(args.states, args.features, ctype, X)
        for impl in args.implementations.split(","):
            fit_seconds(GaussianHMM, params, ctype, args.states, 1, X[:2000], [2000], impl)
            ours, ref = [], []
            for _ in range(args.runs):  # in turns
                s, a = fit_seconds(GaussianHMM, params, ctype, args.states, args.iters, X,
                                   lengths, impl)
                ours.append(s)
                s, b = fit_seconds(Reference, params, ctype, args.states, args.iters, X,
                                   lengths, impl)
                ref.append(s)
            mo, mr = float(np.median(ours)), float(np.median(ref))
            print(f"| {ctype} | {impl} | {mo:.3f} | {mr:.3f} | {mr / mo:.1f}x | "
                  f"{a.monitor_.history[-1]:.6f} / {b.monitor_.history[-1]:.6f} |")


if __name__ == "__main__":
    main()
