"""The project's GPU check: one command, on a machine with an NVIDIA GPU.

    python benchmarks/gpu_check.py OUTDIR                  # on the GPU machine (< 8 minutes)
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_check.py OUTDIR --tiny   # rehearsal on a CPU

It does, in order, within ``--budget-s`` seconds (default 420):

1. records the machine: GPU name and compute capability, CPU model (lscpu),
   numba / numba-cuda / torch versions;
2. runs the CUDA tests (``tests/cuda``, and the sm_90 PTX compilation of
   ``tests/test_cuda_backend.py``) on the card (``FASTEM_TEST_CUDA=1``), or
   ``tests/cuda`` under the simulator when ``NUMBA_ENABLE_CUDASIM=1`` is set;
3. runs a reduced benchmark grid, fastem ``backend='cuda'`` vs fastem on the
   CPU vs the plain PyTorch EM of ``gpu_compare.py``, for full and diag
   covariances in float32 and float64, n up to 10M, all from the same initial
   parameters: median seconds per EM iteration, GFLOP/s and fraction of the
   GEMM peak measured in the same run (flop model as ``gpu_compare.py``), and
   how far each final log-likelihood is from fastem-cpu's;
4. GaussianHMM (Baum-Welch) ``backend='cuda'`` against the CPU on
   ``HMM_GRID``, from the same start: seconds per iteration, the agreement
   of the log-likelihoods;
5. EM for incomplete data (20 % of the values NaN) ``backend='cuda'``
   against the CPU on ``MISSING_GRID``, float32 and float64, from the same
   start: seconds per iteration, the agreement of the lower bounds.

Writes ``OUTDIR/gpu_check.json`` (everything) and ``OUTDIR/summary.txt``
(what goes into an issue note), plus ``OUTDIR/tests.txt`` (pytest's output).
Configurations that no longer fit the budget are listed as skipped, never
silently dropped. Exit status 0 when the tests passed and every configuration
that ran agreed across implementations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import cpu_info  # noqa: E402

#: (n, d, k, covariance type) of the reduced grid; each runs in float32 and float64.
GRID = [
    (1_000_000, 16, 16, "full"),
    (1_000_000, 32, 64, "diag"),
    (10_000_000, 16, 16, "full"),
    (10_000_000, 32, 64, "diag"),
]
#: The rehearsal grid for the simulator (seconds, not minutes, on a CPU).
TINY_GRID = [(96, 2, 2, "full"), (96, 3, 2, "diag")]
DTYPES = ("float32", "float64")
#: GaussianHMM (n_sequences, steps, d, k, covariance type), float64: the
#: issue's 1,000 x 1,000 x 8 problem and one 10M-step sequence
#: (``hmm_compare.py`` makes the data and the start).
HMM_GRID = [(1000, 1000, 8, 8, "diag"), (1000, 1000, 8, 8, "full"), (1, 10_000_000, 8, 8, "diag")]
TINY_HMM_GRID = [(3, 12, 2, 2, "diag"), (2, 10, 2, 3, "full")]
#: (n, d, k, covariance type) with 20 % of the values missing; float32 and float64.
MISSING_GRID = [(1_000_000, 16, 16, "full"), (1_000_000, 16, 16, "diag")]
#: (the rehearsal runs the 'full' layout only: both layouts' kernels are
#: tested under the simulator in tests/cuda, and each configuration costs the
#: test suite seconds there)
TINY_MISSING_GRID = [(64, 3, 2, "full")]
#: Final log-likelihoods must agree to this (relative) across implementations;
#: float32 compute rounds more.
AGREEMENT = {"float64": 1e-9, "float32": 1e-4}


def simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def machine() -> dict:
    info = {"python": platform.python_version(), "simulator": simulated()}
    info.update(cpu_info())
    info["cpu_cores"] = os.cpu_count()
    import numba

    info["numba"] = numba.__version__
    try:
        from numba import cuda

        try:
            from importlib.metadata import version

            info["numba_cuda"] = version("numba-cuda")
        except Exception:
            info["numba_cuda"] = None
        if simulated():
            raise RuntimeError("numba's CUDA simulator")
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        info["gpu"] = name
        info["compute_capability"] = list(getattr(dev, "compute_capability", ()))
    except Exception as exc:  # no GPU and no simulator
        info["gpu"] = f"unavailable ({exc})"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        info["torch"] = None
    return info


def run_tests(out: Path, k_expr: str | None, timeout: float) -> dict:
    """The CUDA tests on the card (or the simulator); output to tests.txt."""
    env = dict(os.environ)
    if not simulated():
        env["FASTEM_TEST_CUDA"] = "1"
    # -n 0: one process (not pyproject's -n auto), so that the kernels compile
    # once, not once per worker, and the workers do not share one GPU
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
           str(ROOT / "tests" / "cuda")]
    if not simulated():  # PTX for sm_90 needs the real compiler, not the simulator
        cmd.append(str(ROOT / "tests" / "test_cuda_backend.py") + "::test_kernels_compile_to_ptx_for_sm90")
    if k_expr:
        cmd += ["-k", k_expr]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
        text, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        text, code = f"{exc.stdout or ''}\nTIMED OUT after {timeout:.0f}s", -1
    (out / "tests.txt").write_text(text)
    counts = {key: int(v) for v, key in re.findall(r"(\d+) (passed|failed|skipped|error)", text)}
    return {"returncode": code, "seconds": time.perf_counter() - t0, **counts,
            "ok": code == 0 and counts.get("passed", 0) > 0}


def gemm_peaks(dtypes) -> dict:
    """GEMM GFLOP/s per dtype on the GPU (torch; TF32 off), or {} without one."""
    try:
        import torch
    except ImportError:
        return {}
    if simulated() or not torch.cuda.is_available():
        return {}
    from gpu_compare import gemm_peak

    return {dt: gemm_peak(torch, "cuda", getattr(torch, dt)) for dt in dtypes}


def implementations() -> list:
    impls = ["fastem-cuda", "fastem-cpu"]
    try:
        import torch

        if torch.cuda.is_available() and not simulated():
            impls.append("torch")
    except ImportError:
        pass
    return impls


def run_grid(grid, iters, budget_end, peaks) -> list:
    from gpu_compare import FLOP_MODEL, run_config

    rows = []
    impls = implementations()
    for n, d, k, ctype in grid:
        for dt in DTYPES:
            spec = dict(n=n, d=d, k=k, covariance_type=ctype, dtype=dt)
            if time.perf_counter() > budget_end:
                rows.append({**spec, "skipped": "time budget spent"})
                continue
            t0 = time.perf_counter()
            result = run_config(n, d, k, ctype, dt, iters, impls, "cuda")
            flops = FLOP_MODEL[ctype](n, d, k)
            ref_ll = result["fastem-cpu"][1]
            per_impl = {}
            for impl, (sec, ll) in result.items():
                rate = flops / sec / 1e9
                per_impl[impl] = {
                    "seconds_per_iter": sec, "gflops": rate,
                    "fraction_of_peak": rate / peaks[dt] if dt in peaks else None,
                    "final_log_likelihood": ll,
                    "relative_difference_to_cpu": abs(ll - ref_ll) / max(1.0, abs(ref_ll)),
                }
            agree = all(r["relative_difference_to_cpu"] <= AGREEMENT[dt] for r in per_impl.values())
            rows.append({**spec, "results": per_impl, "agree": agree,
                         "wall_seconds": time.perf_counter() - t0})
    return rows


def run_hmm_grid(grid, iters, budget_end) -> list:
    """GaussianHMM per-iteration seconds on the GPU and the CPU, same start."""
    from hmm_compare import make_sequences, start

    from fastem import GaussianHMM

    rows = []
    for n_seq, steps, d, k, ctype in grid:
        spec = dict(sequences=n_seq, steps=steps, d=d, k=k, covariance_type=ctype)
        if time.perf_counter() > budget_end:
            rows.append({**spec, "skipped": "time budget spent"})
            continue
        X, lengths = make_sequences(n_seq, steps, d, k)
        params = start(k, d, ctype, X)
        results = {}
        for backend in ("cuda", "cpu"):
            def model(n_iter):
                m = GaussianHMM(k, covariance_type=ctype, init_params="", n_iter=n_iter,
                                tol=-1e300, backend=backend)
                for name, value in params.items():
                    setattr(m, name, value)
                return m
            n0 = min(2000, len(X))
            model(1).fit(X[:n0], [n0])  # compiles outside the timing
            m = model(iters)
            t0 = time.perf_counter()
            m.fit(X, lengths)
            results[backend] = {"seconds_per_iter": (time.perf_counter() - t0) / iters,
                                "final_log_likelihood": m.monitor_.history[-1]}
        ref = results["cpu"]["final_log_likelihood"]
        diff = abs(results["cuda"]["final_log_likelihood"] - ref) / max(1.0, abs(ref))
        rows.append({**spec, "results": results, "relative_difference": diff,
                     "agree": diff <= AGREEMENT["float64"]})
    return rows


def run_missing_grid(grid, iters, budget_end) -> list:
    """GaussianMixture on incomplete data: per-iteration seconds on the GPU
    and the CPU from the same start, float32 and float64."""
    import warnings

    from fastem import GaussianMixture
    from fastem.problems import make_mixture, remove_at_random

    rows = []
    for n, d, k, ctype in grid:
        X, labels, means, weights = make_mixture(n, d, k, seed=0)
        holes = remove_at_random(X, 0.2, seed=1)
        cov = np.stack([np.cov(X[labels == j].T) + 1e-3 * np.eye(d) for j in range(k)])
        prec = np.linalg.inv(cov) if ctype == "full" else 1.0 / np.stack(
            [np.diag(c) for c in cov])
        for dt in DTYPES:
            spec = dict(n=n, d=d, k=k, covariance_type=ctype, dtype=dt, missing=0.2)
            if time.perf_counter() > budget_end:
                rows.append({**spec, "skipped": "time budget spent"})
                continue
            data = holes.astype(dt)
            results = {}
            for backend in ("cuda", "cpu"):
                def model(n_iter):
                    return GaussianMixture(k, covariance_type=ctype, max_iter=n_iter, tol=0.0,
                                           weights_init=weights, means_init=means,
                                           precisions_init=prec, backend=backend)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model(1).fit(data[:2000])  # compiles outside the timing
                    m = model(iters).fit(data)
                results[backend] = {"seconds_per_iter": float(np.median(m.iteration_seconds_)),
                                    "final_log_likelihood": float(m.lower_bound_)}
            ref = results["cpu"]["final_log_likelihood"]
            diff = abs(results["cuda"]["final_log_likelihood"] - ref) / max(1.0, abs(ref))
            rows.append({**spec, "results": results, "relative_difference": diff,
                         "agree": diff <= AGREEMENT[dt]})
    return rows


def _cuda_against_cpu(spec, row) -> str:
    """A summary line of a row with ``cuda`` and ``cpu`` results (or skipped)."""
    if "skipped" in row:
        return f"{spec}: skipped: {row['skipped']}"
    cuda, cpu = row["results"]["cuda"], row["results"]["cpu"]
    return (f"{spec}: cuda {cuda['seconds_per_iter']:.4f} s/iter, cpu "
            f"{cpu['seconds_per_iter']:.4f} s/iter "
            f"({cpu['seconds_per_iter'] / cuda['seconds_per_iter']:.1f}x); rel. LL diff "
            f"{row['relative_difference']:.1e}, agree: {row['agree']}")


def summary_text(report) -> str:
    m = report["machine"]
    lines = [f"GPU check {time.strftime('%Y-%m-%d %H:%M', time.gmtime(report['started']))} UTC",
             f"GPU: {m.get('gpu')} (cc {m.get('compute_capability')}); simulator: {m['simulator']}",
             f"CPU: {m.get('cpu')} ({m.get('cpu_simd')}), {m.get('cpu_cores')} cores; "
             f"numba {m.get('numba')}, numba-cuda {m.get('numba_cuda')}, torch {m.get('torch')}"]
    t = report["tests"]
    lines.append(f"CUDA tests: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, "
                 f"{t.get('skipped', 0)} skipped in {t['seconds']:.0f}s (exit {t['returncode']})")
    if report["peaks_gflops"]:
        lines.append("GEMM peak (same run): " + ", ".join(
            f"{dt} {p / 1e3:.1f} TFLOP/s" for dt, p in report["peaks_gflops"].items()))
    lines.append(f"{'configuration':<32}{'impl':<13}{'s/iter':>10}{'GFLOP/s':>10}"
                 f"{'% peak':>8}{'rel. LL diff':>14}")
    for row in report["grid"]:
        spec = f"{row['covariance_type']} n={row['n']:,} d={row['d']} k={row['k']} {row['dtype']}"
        if "skipped" in row:
            lines.append(f"{spec:<32}skipped: {row['skipped']}")
            continue
        for impl, r in row["results"].items():
            frac = "" if r["fraction_of_peak"] is None else f"{100 * r['fraction_of_peak']:.1f}%"
            lines.append(f"{spec:<32}{impl:<13}{r['seconds_per_iter']:>10.4f}{r['gflops']:>10.1f}"
                         f"{frac:>8}{r['relative_difference_to_cpu']:>14.1e}")
        cuda, cpu = row["results"]["fastem-cuda"], row["results"]["fastem-cpu"]
        lines.append(f"{'':<32}cuda is {cpu['seconds_per_iter'] / cuda['seconds_per_iter']:.1f}x "
                     f"fastem-cpu; agree: {row['agree']}")
    for row in report.get("hmm", []):
        lines.append(_cuda_against_cpu(
            f"GaussianHMM {row['covariance_type']} {row['sequences']:,} x {row['steps']:,} "
            f"d={row['d']} k={row['k']}", row))
    for row in report.get("missing", []):
        lines.append(_cuda_against_cpu(
            f"incomplete data {row['covariance_type']} n={row['n']:,} d={row['d']} "
            f"k={row['k']} {row['dtype']}", row))
    lines.append(f"total {report['seconds']:.0f}s; ok: {report['ok']}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--tiny", action="store_true",
                        help="the simulator rehearsal grid (and 1 iteration)")
    parser.add_argument("--iters", type=int, default=None, help="EM iterations timed (default 3)")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--tests-k", default=None, help="pytest -k filter for the CUDA tests")
    args = parser.parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = time.perf_counter()
    budget_end = t0 + args.budget_s
    report = {"started": started, "machine": machine()}
    if simulated():  # as the CUDA tests run it (fastem/_cudasim.py says why)
        from fastem._cudasim import interleave_threads

        interleave_threads()
    # The tests get at most half of the budget; the grid gets what is left.
    report["tests"] = run_tests(out, args.tests_k, timeout=max(30.0, 0.5 * args.budget_s))
    report["peaks_gflops"] = gemm_peaks(DTYPES)
    grid = TINY_GRID if args.tiny else GRID
    iters = args.iters or (1 if args.tiny else 3)
    report["grid"] = run_grid(grid, iters, budget_end, report["peaks_gflops"])
    report["hmm"] = run_hmm_grid(TINY_HMM_GRID if args.tiny else HMM_GRID, iters, budget_end)
    report["missing"] = run_missing_grid(TINY_MISSING_GRID if args.tiny else MISSING_GRID,
                                         iters, budget_end)
    report["seconds"] = time.perf_counter() - t0
    report["ok"] = bool(report["tests"]["ok"] and all(
        r.get("agree", True) for r in report["grid"] + report["hmm"] + report["missing"]))
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    text = summary_text(report)
    (out / "summary.txt").write_text(text)
    print(text, end="")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
