"""A new user's first fit: scikit-learn, fastem from an empty kernel cache, fastem cached.

Each fit runs in its own fresh process, as a new user's would::

    python benchmarks/first_call.py                      # 100,000 and 1,000,000 rows x 16
    python benchmarks/first_call.py --rows 100000 --runs 3

Per data size it prints the wall time and CPU time of
``GaussianMixture(8, random_state=0).fit(X)`` (the import and the data
loading are not timed) for scikit-learn, for fastem with an empty Numba
cache (``NUMBA_CACHE_DIR`` a new folder: what a fresh environment, a new
Dask worker or an upgrade sees) and for fastem once that cache is filled, and
the CPU it ran on. With ``--runs N`` each cell is the median of N processes
(each cold run gets its own empty cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    from .common import cpu_info
except ImportError:  # run as a script
    from common import cpu_info

#: The child: fits X from a .npy file and prints wall and CPU seconds of the fit.
_CHILD = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
lib, path = sys.argv[1], sys.argv[2]
if lib == "sklearn":
    from sklearn.mixture import GaussianMixture
else:
    from fastem import GaussianMixture
X = np.load(path)
wall, cpu = time.perf_counter(), time.process_time()
gm = GaussianMixture(8, random_state=0).fit(X)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
extra = {"compile_seconds": getattr(gm, "compile_seconds_", 0.0)}
print(json.dumps({"wall": wall, "cpu": cpu, "n_iter": int(gm.n_iter_), **extra}))
"""


def run_child(lib, path, cache_dir=None):
    """One fit in a fresh process; returns its JSON record."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", _CHILD, lib, path], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n_rows, n_features, runs, workdir):
    """``{cell: [records]}`` for one data size."""
    from fastem.problems import make_mixture

    X = make_mixture(n_rows, n_features, 8, seed=0)[0]
    path = os.path.join(workdir, f"X_{n_rows}.npy")
    np.save(path, X)
    cells = {"scikit-learn": [], "fastem, first call": [], "fastem, cached": []}
    for r in range(runs):
        cells["scikit-learn"].append(run_child("sklearn", path))
        cache = tempfile.mkdtemp(prefix="numba-cache-", dir=workdir)
        cells["fastem, first call"].append(run_child("fastem", path, cache))
        cells["fastem, cached"].append(run_child("fastem", path, cache))
    return cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", help="also write the records here")
    args = parser.parse_args(argv)
    info = cpu_info()
    print(f"CPU: {info['cpu']} ({info['cpu_simd']}), {os.cpu_count()} logical CPUs")
    print("a new user's first GaussianMixture(8, random_state=0).fit(X), "
          "each in a fresh process; wall s (CPU s), median of "
          f"{args.runs} run(s)")
    table = {}
    with tempfile.TemporaryDirectory() as workdir:
        for n in args.rows:
            table[n] = measure(n, args.features, args.runs, workdir)
    head = ["X", "scikit-learn", "fastem, first call", "fastem, cached", "of which compiling"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, cells in table.items():
        row = [f"{n:,} x {args.features}"]
        for name in head[1:4]:
            wall = np.median([r["wall"] for r in cells[name]])
            cpu = np.median([r["cpu"] for r in cells[name]])
            row.append(f"{wall:.2f} s ({cpu:.2f})")
        row.append(f"{np.median([r['compile_seconds'] for r in cells['fastem, first call']]):.2f} s")
        print("| " + " | ".join(row) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": info, "rows": {str(n): c for n, c in table.items()}}, f, indent=1)
    return table


if __name__ == "__main__":
    main()
