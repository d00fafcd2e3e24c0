"""Cost of the default initialisation against EM iterations and scikit-learn.

    python benchmarks/init_cost.py                       # 1,000,000 x 16, k = 16
    python benchmarks/init_cost.py --n-samples 200000

Times, in one run (medians of ``--repeats``): fastem's default 'kmeans'
initialisation (``fit`` with ``max_iter=0``, input checks included), one fastem
EM iteration (full covariance), and scikit-learn's ``KMeans(n_init=1)``, which is
what scikit-learn's GaussianMixture runs to initialise.
"""

import argparse
import time
import warnings

import numpy as np


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from fastem import GaussianMixture
    from fastem.problems import make_mixture

    k = args.n_components
    X = make_mixture(args.n_samples, args.n_features, k, 0)[0]
    warnings.simplefilter("ignore")
    GaussianMixture(k, max_iter=1, random_state=0).fit(X[:50_000])  # compile
    init = median_time(lambda: GaussianMixture(k, max_iter=0, random_state=0).fit(X), args.repeats)
    gm = GaussianMixture(k, max_iter=0, random_state=0).fit(X)
    given = dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)
    one = GaussianMixture(k, max_iter=args.repeats, tol=0, **given).fit(X)
    em = float(np.median(one.iteration_seconds_))
    print(f"{args.n_samples:,} x {args.n_features}, k={k}")
    print(f"  fastem default init : {init:.3f}s = {init / em:.2f} EM iterations")
    print(f"  fastem EM iteration : {em:.3f}s (full covariance)")
    try:
        from sklearn.cluster import KMeans
        sk = median_time(lambda: KMeans(k, n_init=1, random_state=0).fit(X), args.repeats)
        print(f"  sklearn KMeans(n_init=1) : {sk:.3f}s  (fastem init is {sk / init:.1f}x faster)")
    except ImportError:
        print("  scikit-learn not installed")


if __name__ == "__main__":
    main()
