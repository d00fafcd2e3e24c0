"""The ``fastem`` command line.

``fastem demo`` generates a known Gaussian mixture, fits it and reports the
per-iteration log-likelihood, the time per iteration and the fitted model.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def make_mixture(n_samples, n_features, n_components, seed=0, dtype=np.float64):
    """Sample a random, moderately separated Gaussian mixture.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
    means : ndarray of shape (n_components, n_features)
    weights : ndarray of shape (n_components,)
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = rng.normal(scale=1.0, size=(n_components, n_features))
    # Random correlated covariances with eigenvalues in [0.25, 1].
    q = np.linalg.qr(rng.normal(size=(n_components, n_features, n_features)))[0]
    eig = rng.uniform(0.25, 1.0, size=(n_components, n_features))
    chol = q * np.sqrt(eig)[:, None, :]
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = np.empty((n_samples, n_features), dtype=dtype)
    step = 1 << 18
    for start in range(0, n_samples, step):
        lab = labels[start:start + step]
        z = rng.standard_normal(size=(lab.size, n_features))
        X[start:start + step] = means[lab] + np.einsum("nij,nj->ni", chol[lab], z)
    return X, labels, means, weights


def _demo(args):
    from . import GaussianMixture

    print(f"fastem demo: {args.n_samples:,} points, {args.n_features} features, "
          f"{args.n_components} components, covariance_type={args.covariance_type!r}, "
          f"{args.dtype}")
    t0 = time.perf_counter()
    X, labels, true_means, true_weights = make_mixture(
        args.n_samples, args.n_features, args.n_components, args.seed, np.dtype(args.dtype))
    print(f"generated data in {time.perf_counter() - t0:.2f}s")
    gm = GaussianMixture(args.n_components, covariance_type=args.covariance_type,
                         max_iter=args.max_iter, tol=args.tol, random_state=args.seed,
                         verbose=2, verbose_interval=1, backend=args.backend)
    t0 = time.perf_counter()
    gm.fit(X)
    total = time.perf_counter() - t0
    per_iter = np.array(gm.iteration_seconds_)
    print()
    print("summary")
    print(f"  converged: {gm.converged_} after {gm.n_iter_} iterations "
          f"(tol={args.tol}); re-seeded components: {gm.n_reseeds_}")
    print(f"  final mean log-likelihood: {gm.lower_bound_:.6f}")
    print(f"  time: {total:.2f}s total, initialisation {gm.init_seconds_:.2f}s, "
          f"median {np.median(per_iter):.3f}s per EM iteration")
    order = np.argsort(-gm.weights_)
    # Match each fitted component to the nearest true mean.
    dist = np.linalg.norm(gm.means_[:, None, :] - true_means[None], axis=2)
    nearest = dist.argmin(axis=1)
    print(f"  components recovered: {len(set(nearest))} of {args.n_components} true means "
          f"matched; max distance {dist.min(axis=1).max():.3f}")
    print("  weight   (true)   |mean - true mean|")
    for j in order:
        print(f"  {gm.weights_[j]:.4f}   ({true_weights[nearest[j]]:.4f})   {dist[j, nearest[j]]:.4f}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="fastem", description="Fast Gaussian mixture models.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit a generated mixture and report timings")
    demo.add_argument("--n-samples", type=int, default=1_000_000)
    demo.add_argument("--n-features", type=int, default=16)
    demo.add_argument("--n-components", type=int, default=16)
    demo.add_argument("--covariance-type", default="full",
                      choices=["full", "tied", "diag", "spherical"])
    demo.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    demo.add_argument("--max-iter", type=int, default=100)
    demo.add_argument("--tol", type=float, default=1e-3)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--backend", default="cpu")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastem: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
