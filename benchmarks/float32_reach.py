"""float32 on ill-conditioned data: speed and accuracy against float64, same start.

    python benchmarks/float32_reach.py                    # 1,000,000 x 16, k=16, full
    python benchmarks/float32_reach.py --n 200000 --iters 5

The data: a mixture of ``k`` components with means ``N(0, scale^2)`` and
covariances ``A A^T``, ``A`` a standard Gaussian ``d x d`` matrix times 1/4
(smallest eigenvalues around 1e-5..1e-4 against largest around 4: strongly
correlated features). Three fits from the same initial parameters, each
``--iters`` EM iterations (``tol=0``): float64 data; float32 data with the
default compute dtype (float32 where ``fastem._precision`` lets it); and
float32 data with the amplification rule switched off (every pass in
float32), to measure what that rule protects. For each: median seconds per
iteration, the passes that ran in float32, and the distance of the final
model from the float64 one (lower bound relative, means relative to the
data's spread, covariances relative to each component's largest eigenvalue
and in its smallest eigen-direction). Last, the per-row accuracy: the float64
model's ``score_samples`` of the float32 rows computed in float32 (rule off)
against the same computed in float64 (largest absolute difference of a row's
log-density, and the 99th percentile).
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


def _fit(X, init, iters, dtype=None):
    from fastem import GaussianMixture

    gm = GaussianMixture(len(init["weights_init"]), covariance_type="full", max_iter=iters,
                         tol=0.0, dtype=dtype, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return gm


def _timed(X, init, iters, runs):
    """Median seconds per iteration over ``runs`` fits (an untimed first fit compiles)."""
    _fit(X, init, 1)
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        gm = _fit(X, init, iters)
        seconds.append((time.perf_counter() - t0) / iters)
    return gm, float(np.median(seconds))


def distance(gm, ref, spread):
    """How far ``gm`` is from the float64 fit ``ref``."""
    bound = abs(gm.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_)
    means = np.abs(gm.means_ - ref.means_).max() / spread
    cov_rel, smallest = 0.0, 0.0
    for c, r in zip(gm.covariances_, ref.covariances_):
        eig, vec = np.linalg.eigh(r)
        cov_rel = max(cov_rel, np.abs(c - r).max() / eig[-1])
        v = vec[:, 0]
        smallest = max(smallest, abs(v @ c @ v - eig[0]) / eig[0])
    return dict(bound=bound, means=means, covariances=cov_rel, smallest_direction=smallest)


def main(argv=None):
    from fastem import config
    from fastem.backends.cpu import CPUBackend
    from fastem.problems import PROBLEMS, make_ill_conditioned

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    problem = PROBLEMS["ill-conditioned-full-d16-k16"]
    p.add_argument("--n", type=int, default=problem.n_samples)
    p.add_argument("--d", type=int, default=problem.n_features)
    p.add_argument("--k", type=int, default=problem.n_components)
    p.add_argument("--scale", type=float, default=1.0, help="spread of the means")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    X, weights, means, cov = make_ill_conditioned(args.n, args.d, args.k, args.scale)
    init = dict(weights_init=weights, means_init=means + 0.1,
                precisions_init=np.linalg.inv(cov + 0.05 * np.eye(args.d)))
    info = cpu_info()
    eig = np.linalg.eigvalsh(cov)
    print(f"{args.n:,} x {args.d}, k={args.k}, full; eigenvalues {eig.min():.1e}..{eig.max():.1f}; "
          f"{args.iters} iterations, median of {args.runs} runs; {info['cpu']}, {info['cpu_simd']}")
    X32 = X.astype(np.float32)
    ref, t64 = _timed(X, init, args.iters, args.runs)
    spread = float(X.std(axis=0).max())
    rows = [("float64 data", ref, t64)]
    gm, t = _timed(X32, init, args.iters, args.runs)
    rows.append(("float32 data (default rule)", gm, t))
    saved = config.FLOAT32_MAX_AMPLIFICATION
    config.FLOAT32_MAX_AMPLIFICATION = np.inf
    try:
        gm, t = _timed(X32, init, args.iters, args.runs)
        ref.set_params(dtype=None)
        per_row32 = ref.score_samples(X32)
    finally:
        config.FLOAT32_MAX_AMPLIFICATION = saved
    rows.append(("float32 data, every pass float32", gm, t))
    ref.set_params(dtype=np.float64)
    per_row_diff = np.abs(per_row32 - ref.score_samples(X32))
    print("| run | s/iter | vs float64 | passes in float32 | bound | means | covariances | "
          "smallest direction |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, gm, t in rows:
        stats = CPUBackend().accumulate(X32 if "float32" in label else X, _params(gm))
        f32 = "yes" if stats.round_off > 0 else "no"
        if "every pass" in label:
            f32 = "yes (forced)"
        dist = distance(gm, ref, spread)
        print(f"| {label} | {t:.4f} | {t64 / t:.2f}x | {f32} | {dist['bound']:.1e} | "
              f"{dist['means']:.1e} | {dist['covariances']:.1e} | "
              f"{dist['smallest_direction']:.1e} |")
    print(f"Per row, the float64 model's log-density of the float32 rows computed in float32 "
          f"(rule off) against float64: largest difference {per_row_diff.max():.1e}, 99th "
          f"percentile {np.percentile(per_row_diff, 99):.1e} (nats).")


def _params(gm):
    from fastem._model import Params

    return Params(gm.weights_, gm.means_, gm.precisions_cholesky_, "full").kernel_inputs()


if __name__ == "__main__":
    main()
