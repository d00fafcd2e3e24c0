"""Fit a float32 .npy file larger than RAM through a read-only memory map.

    python benchmarks/out_of_core.py --dir /big/disk              # 1.25 x RAM
    python benchmarks/out_of_core.py --dir /tmp --gigabytes 4     # quicker

Writes the file chunk by chunk (never holding it in memory), then fits it from
``np.load(path, mmap_mode='r')`` with ``init_params='random_from_data'`` (the
default k-means initialisation makes extra passes over the file) and reports
seconds and throughput per EM iteration, and peak RSS of the process (which
counts file pages mapped in, so it is compared with the file size and RAM).
"""

import argparse
import os
import time
import warnings

import numpy as np

try:
    from .common import PeakRSS, rss_bytes
except ImportError:  # run as a script
    from common import PeakRSS, rss_bytes


def ram_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def write_file(path, n, d, k, seed=0):
    from fastem.problems import make_mixture

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = 1 << 22
    for start in range(0, n, step):
        stop = min(n, start + step)
        out[start:stop] = make_mixture(stop - start, d, k, seed + start)[0]
    out.flush()
    del out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--gigabytes", type=float, default=None,
                        help="file size (default: 1.25 x this machine's RAM)")
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--covariance-type", default="diag")
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    args = parser.parse_args(argv)

    from fastem import GaussianMixture

    size = args.gigabytes * 2**30 if args.gigabytes else 1.25 * ram_bytes()
    d = args.n_features
    n = int(size // (4 * d))
    path = os.path.join(args.dir, f"fastem_ooc_{n}x{d}.npy")
    print(f"RAM {ram_bytes() / 2**30:.1f} GiB; file {n * d * 4 / 2**30:.1f} GiB "
          f"({n:,} x {d} float32) at {path}")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        write_file(path, n, d, args.n_components)
        print(f"wrote the file in {time.perf_counter() - t0:.0f}s")
    try:
        X = np.load(path, mmap_mode="r")
        gm = GaussianMixture(args.n_components, covariance_type=args.covariance_type,
                             init_params="random_from_data", max_iter=args.iters, tol=0,
                             random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GaussianMixture(args.n_components, covariance_type=args.covariance_type,
                            max_iter=1).fit(X[:10_000])  # compile outside the timing
        anon0 = rss_bytes("anon")
        t0 = time.perf_counter()
        with warnings.catch_warnings(), PeakRSS("total") as total_mem, PeakRSS("anon") as anon_mem:
            warnings.simplefilter("ignore")
            gm.fit(X)
        total = time.perf_counter() - t0
        per_iter = np.median(gm.iteration_seconds_)
        print(f"fit: {total:.1f}s total, median {per_iter:.1f}s per EM iteration = "
              f"{n / per_iter / 1e6:.1f} M rows/s = {n * d * 4 / per_iter / 2**30:.2f} GiB/s")
        print(f"peak RSS during the fit {total_mem.peak / 2**30:.2f} GiB, of which file-backed "
              f"pages of the map are reclaimable; anonymous (non-file) memory peaked "
              f"{(anon_mem.peak - anon0) / 2**20:.0f} MiB above its level before the fit "
              f"(file {n * d * 4 / 2**30:.1f} GiB, RAM {ram_bytes() / 2**30:.1f} GiB); "
              f"final log-likelihood {gm.lower_bound_:.4f}")
    finally:
        if not args.keep and os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    main()
