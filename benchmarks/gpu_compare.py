"""GPU EM speed: fastem ``backend='cuda'``, fastem CPU and a plain PyTorch EM.

    python benchmarks/gpu_compare.py                        # n = 10M, the full grid
    python benchmarks/gpu_compare.py --n-samples 1000000 --iters 3
    python benchmarks/gpu_compare.py --device cpu --n-samples 20000 --impls fastem-cpu,torch

Grid: d in {16, 64}, k in {16, 64}, covariance in {full, diag}, dtype in
{float32, float64}. Every implementation starts from the same parameters and
runs ``--iters`` EM iterations; reported are the median seconds per iteration
and the fraction of the device's peak, measured in the same run with a GEMM of
the same dtype (TF32 disabled, so the float32 peak is the CUDA-core one),
under the flop model ``full: 2 n k d^2``, ``diag: 8 n k d``.

The PyTorch EM is the straightforward formulation (one GEMM per component
for full covariances, the expanded-square GEMM form for diagonal ones, an
n x k responsibility matrix processed in row chunks); it is the reference a
user would write, not a tuned kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np

FLOP_MODEL = {"full": lambda n, d, k: 2.0 * n * k * d * d, "diag": lambda n, d, k: 8.0 * n * k * d}


# ----------------------------------------------------------------------------
# The PyTorch reference EM
# ----------------------------------------------------------------------------

class TorchEM:
    """Textbook EM in PyTorch for 'full' and 'diag' covariances.

    Parameters are held in the data's dtype on ``device``; rows are processed
    in chunks of ``chunk`` so the n x k responsibilities of a chunk fit memory.
    """

    def __init__(self, X, weights, means, covariances, covariance_type, reg_covar=1e-6,
                 chunk=1 << 20):
        import torch

        self.torch = torch
        self.X = X
        self.dtype, self.device = X.dtype, X.device
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)  # noqa: E731
        self.weights, self.means, self.cov = as_t(weights), as_t(means), as_t(covariances)
        self.covariance_type = covariance_type
        self.reg = reg_covar
        self.chunk = chunk

    def _log_prob(self, Xc):
        torch = self.torch
        k, d = self.means.shape
        if self.covariance_type == "full":
            chol = torch.linalg.cholesky(self.cov)                      # (k, d, d) lower
            eye = torch.eye(d, dtype=self.dtype, device=self.device).expand(k, d, d)
            prec_chol = torch.linalg.solve_triangular(chol, eye, upper=False).transpose(1, 2)
            logdet = torch.log(torch.diagonal(prec_chol, dim1=1, dim2=2)).sum(1)
            out = torch.empty(Xc.shape[0], k, dtype=self.dtype, device=self.device)
            for j in range(k):
                y = (Xc - self.means[j]) @ prec_chol[j]
                out[:, j] = -0.5 * (y * y).sum(1)
        else:
            prec = 1.0 / self.cov                                          # (k, d)
            logdet = 0.5 * torch.log(prec).sum(1)
            out = -0.5 * ((Xc * Xc) @ prec.T - 2.0 * Xc @ (self.means * prec).T
                          + (self.means ** 2 * prec).sum(1))
        return out + (torch.log(self.weights) - 0.5 * d * math.log(2 * math.pi) + logdet)

    def step(self):
        """One EM iteration; returns the mean log-likelihood before the update."""
        torch = self.torch
        n, d = self.X.shape
        k = self.means.shape[0]
        nk = torch.zeros(k, dtype=self.dtype, device=self.device)
        sx = torch.zeros(k, d, dtype=self.dtype, device=self.device)
        sxx = torch.zeros((k, d, d) if self.covariance_type == "full" else (k, d),
                          dtype=self.dtype, device=self.device)
        ll = 0.0
        for s in range(0, n, self.chunk):
            Xc = self.X[s:s + self.chunk]
            lp = self._log_prob(Xc)
            lse = torch.logsumexp(lp, dim=1)
            ll += float(lse.sum())
            r = torch.exp(lp - lse[:, None])
            nk += r.sum(0)
            sx += r.T @ Xc
            if self.covariance_type == "full":
                for j in range(k):
                    sxx[j] += (r[:, j:j + 1] * Xc).T @ Xc
            else:
                sxx += r.T @ (Xc * Xc)
        nk = nk + 10 * torch.finfo(self.dtype).eps
        self.means = sx / nk[:, None]
        if self.covariance_type == "full":
            cov = sxx / nk[:, None, None] - self.means[:, :, None] * self.means[:, None, :]
            self.cov = cov + self.reg * torch.eye(d, dtype=self.dtype, device=self.device)
        else:
            self.cov = sxx / nk[:, None] - self.means ** 2 + self.reg
        self.weights = nk / nk.sum()
        return ll / n


def gemm_peak(torch, device, dtype, size=4096, repeats=5):
    """Measured GEMM rate (GFLOP/s) of ``device`` in ``dtype`` (TF32 off)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.rand(size, size, dtype=dtype, device=device)
    b = torch.rand(size, size, dtype=dtype, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        _sync(torch, device)
        t0 = time.perf_counter()
        a @ b
        _sync(torch, device)
        times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / np.median(times) / 1e9


def _sync(torch, device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------
# One configuration
# ----------------------------------------------------------------------------

def run_config(n, d, k, ctype, dtype, iters, impls, device, seed=0):
    from fastem import GaussianMixture
    from fastem.problems import make_mixture

    X = make_mixture(n, d, k, seed, np.dtype(dtype))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init = GaussianMixture(k, covariance_type=ctype, max_iter=0, random_state=seed).fit(
            X[: min(n, 200_000)])
    given = dict(weights_init=init.weights_, means_init=init.means_,
                 precisions_init=init.precisions_, covariance_type=ctype, tol=0.0)
    rows = {}
    for impl in impls:
        if impl.startswith("fastem"):
            backend = impl.split("-")[1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                GaussianMixture(k, max_iter=1, backend=backend, **given).fit(X[:5000])  # compile
                gm = GaussianMixture(k, max_iter=iters, backend=backend, **given).fit(X)
            rows[impl] = (float(np.median(gm.iteration_seconds_)), float(gm.lower_bounds_[-1]))
        elif impl == "torch":
            import torch

            Xt = torch.as_tensor(X, device=device)
            em = TorchEM(Xt, init.weights_, init.means_, init.covariances_, ctype)
            em.step()  # warm-up (allocator, cuBLAS handles); restart from the init
            em = TorchEM(Xt, init.weights_, init.means_, init.covariances_, ctype)
            times, ll = [], np.nan
            for _ in range(iters):
                _sync(torch, device)
                t0 = time.perf_counter()
                ll = em.step()
                _sync(torch, device)
                times.append(time.perf_counter() - t0)
            rows[impl] = (float(np.median(times)), float(ll))
            del Xt, em
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=10_000_000)
    parser.add_argument("--features", default="16,64")
    parser.add_argument("--components", default="16,64")
    parser.add_argument("--covariance-types", default="full,diag")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--impls", default="fastem-cuda,fastem-cpu,torch")
    parser.add_argument("--device", default="cuda", help="torch device ('cuda' or 'cpu')")
    parser.add_argument("--json")
    parser.add_argument("--peak-size", type=int, default=4096,
                        help="side of the square matrices whose product measures the peak "
                             "(default %(default)s; the tests pass a small one)")
    args = parser.parse_args(argv)

    import torch

    impls = args.impls.split(",")
    results = {}
    peaks = {dt: gemm_peak(torch, args.device, getattr(torch, dt), args.peak_size)
             for dt in args.dtypes.split(",")}
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device {name}; measured GEMM peak: "
          + ", ".join(f"{dt} {p / 1e3:.1f} TFLOP/s" for dt, p in peaks.items()))
    print(f"{'config':<28}{'impl':<13}{'s/iter':>10}{'GFLOP/s':>10}{'% peak':>8}{'final LL':>14}")
    for d in map(int, args.features.split(",")):
        for k in map(int, args.components.split(",")):
            for ctype in args.covariance_types.split(","):
                for dt in args.dtypes.split(","):
                    spec = f"{ctype} d={d} k={k} {dt}"
                    rows = run_config(args.n_samples, d, k, ctype, dt, args.iters, impls,
                                      args.device)
                    flops = FLOP_MODEL[ctype](args.n_samples, d, k)
                    results[spec] = {}
                    for impl, (sec, ll) in rows.items():
                        rate = flops / sec / 1e9
                        results[spec][impl] = dict(seconds_per_iter=sec, gflops=rate,
                                                   fraction_of_peak=rate / peaks[dt],
                                                   final_log_likelihood=ll)
                        print(f"{spec:<28}{impl:<13}{sec:>10.4f}{rate:>10.1f}"
                              f"{100 * rate / peaks[dt]:>7.1f}%{ll:>14.6f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peaks_gflops": peaks, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    main()
