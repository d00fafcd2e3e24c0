"""Each step of the fused pass alone, on one thread, against the per-core dgemm peak.

    python benchmarks/kernel_roofline.py                    # full d=16 k=16 and diag d=32 k=64
    python benchmarks/kernel_roofline.py --config full:32:16 --dtypes float64

One block of ``BLOCK_ROWS`` points stays in L1 and each step (log-densities,
responsibilities, statistics) runs on it ``--reps`` times in a jitted loop, so
the figure is the step's own speed, with no memory traffic and no threading:
what limits a pass when the data stream is not the limit. Flops are the work
each step does (the log-densities of a full model: ``d (d + 1)`` per point and
component, the triangular product and its square; the statistics: the same
for the lower triangle plus the first moments; diag: ``4 d`` each), reported
as GFLOP/s and as a fraction of the single-thread dgemm peak measured in the
same run. The full statistics are also split into their steps (the masses and
``sqrt(r) (x - mu)``, the first moments, the second-moment tiles) by timing the
kernel stopped after each. Prints the CPU model and its vector extension with
every figure.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit, set_num_threads

try:
    from .common import cpu_info
except ImportError:  # run as a script
    from common import cpu_info


def dgemm_peak_one_thread(size=2000, repeats=5):
    """Best single-thread float64 GEMM rate (GFLOP/s): threadpoolctl-free, via
    the BLAS on one thread set by the environment of a child process."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np, time\n"
            f"a=np.random.default_rng(0).random(({size},{size}));b=a.T.copy();a@b\n"
            "t=[]\n"
            f"for _ in range({repeats}):\n"
            "    s=time.perf_counter();a@b;t.append(time.perf_counter()-s)\n"
            f"print(2*{size}**3/min(t)/1e9)")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def _loops():
    """Jitted loops over one block, compiled with the kernels' own options
    (fast-math) and stack accumulators, as the parallel drivers compile them."""
    from fastem.config import BLOCK_ROWS as B
    from fastem.kernels.cpu._jit import OPTIONS
    from fastem.kernels.cpu import gaussian as g
    from fastem.kernels.cpu._stack import stack_panel

    jit = njit(cache=False, **OPTIONS)

    @jit
    def log_prob(reps, full, xt, means, factor, log_const, logp):
        t, t2, q = stack_panel(means), stack_panel(means), stack_panel(means)
        for _ in range(reps):
            if full:
                g.block_log_prob_full(xt, means, factor, log_const, t, t2, q, logp)
            else:
                g.block_log_prob_diag(xt, means, factor, log_const, q, logp)
        return logp[0, 0]

    @jit
    def responsibilities(reps, logp0, logp, wb, mx, s):
        total = 0.0
        for _ in range(reps):
            logp[:] = logp0
            total += g.block_responsibilities(logp, wb, mx, s)
        return total

    @jit
    def copy_only(reps, logp0, logp):
        for _ in range(reps):
            logp[:] = logp0
        return logp[0, 0]

    @jit
    def stats(reps, full, xt, means, resp, sd, sr, mass, first, second, steps=3, paired=False):
        for _ in range(reps):
            if full:
                g.block_stats_full(xt, means, resp, sd, sr, mass, first, second, steps)
            else:  # a paired call sums the block twice, as a pass sums two blocks
                g.block_stats_diag(xt, means, resp, mass, first, second, xt, resp, paired)
        return mass[0]

    return log_prob, responsibilities, copy_only, stats


def measure(covariance_type, d, k, dtype, reps, repeats=5):
    """Seconds per 1,000,000 points of each step, and its GFLOP/s."""
    from fastem._model import precision_cholesky_from_covariances
    from fastem.config import BLOCK_ROWS as B

    full = covariance_type in ("full", "tied")
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    xt = np.ascontiguousarray(rng.normal(size=(d, B)), dtype=dt)
    means = np.ascontiguousarray(rng.normal(size=(k, d)) * 0.3, dtype=dt)
    cov = np.repeat(np.eye(d)[None], k, axis=0) if full else np.ones((k, d))
    factor = precision_cholesky_from_covariances(cov, "full" if full else "diag")
    factor = np.ascontiguousarray(factor.reshape(k, -1), dtype=dt)
    log_const = np.zeros(k, dtype=dt)
    mx, s, sr, wb = (np.empty(B, dt) for _ in range(4))
    wb[:] = 1.0
    logp = np.empty((k, B), dt)
    sd = np.empty((d, B), dt)
    mass, first = np.zeros(k), np.zeros((k, d))
    second = np.zeros((k, d * d if full else d))
    log_prob, responsibilities, copy_only, stats = _loops()
    log_prob(1, full, xt, means, factor, log_const, logp)
    logp0 = logp.copy()
    responsibilities(1, logp0, logp, wb, mx, s)
    resp = logp.copy()
    copy_only(1, logp0, logp)
    stats(1, full, xt, means, resp, sd, sr, mass, first, second)

    def best(fn, *args, blocks=1):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(reps, *args)
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) / (reps * blocks * B) * 1e6  # seconds per 1M points

    def rate(flops_per_point, seconds):
        # A step timed as a difference of two timings can come out <= 0 in
        # noise (tiny shapes, few repetitions): no rate then.
        return flops_per_point / seconds / 1e3 if seconds > 0 else None

    per_point = d * (d + 1) if full else 4 * d
    out = {}
    s_lp = best(log_prob, full, xt, means, factor, log_const, logp)
    out["log-densities"] = (s_lp, rate(per_point * k, s_lp))
    s_copy = best(copy_only, logp0, logp)
    s_r = best(responsibilities, logp0, logp, wb, mx, s) - s_copy
    out["responsibilities"] = (s_r, None)
    paired = not full  # the passes hand two blocks to each diag statistics call
    s_st = best(stats, full, xt, means, resp, sd, sr, mass, first, second, 3, paired,
                blocks=2 if paired else 1)
    out["statistics"] = (s_st, rate((per_point + 2 * d) * k, s_st))
    if full:  # its steps: masses and sqrt(r) (x - mu); first moments; the tiles
        s_sd = best(stats, full, xt, means, resp, sd, sr, mass, first, second, 1)
        s_first = best(stats, full, xt, means, resp, sd, sr, mass, first, second, 2) - s_sd
        s_tiles = s_st - s_sd - s_first
        out["  centring"] = (s_sd, None)
        out["  first moments"] = (s_first, rate(2 * d * k, s_first))
        out["  second moments"] = (s_tiles, rate(per_point * k, s_tiles))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="type:d:k (default full:16:16, diag:32:64)")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--reps", type=int, default=20000)
    parser.add_argument("--peak-size", type=int, default=2000,
                        help="side of the square matrices whose product measures the peak "
                             "(default %(default)s; the tests pass a small one)")
    args = parser.parse_args(argv)
    set_num_threads(1)
    info = cpu_info()
    peak = dgemm_peak_one_thread(args.peak_size)
    print(f"CPU: {info['cpu']} ({info['cpu_simd']}); one thread; dgemm peak on one "
          f"thread in this run: {peak:.1f} GFLOP/s")
    for spec in args.config or ["full:16:16", "diag:32:64"]:
        ctype, d, k = spec.split(":")
        for dtype in args.dtypes.split(","):
            res = measure(ctype, int(d), int(k), dtype, args.reps)
            print(f"\n{ctype} d={d} k={k} {dtype}")
            print(f"  {'step':<18} {'s / 1M points':>14} {'GFLOP/s':>9} {'% of peak':>10}")
            for step, (sec, gf) in res.items():
                rate = f"{gf:9.1f} {100 * gf / peak:9.1f}%" if gf else f"{'':>9} {'':>10}"
                print(f"  {step:<18} {sec:14.4f} {rate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
