"""Imputation error of GaussianMixtureImputer beside scikit-learn's imputers.

    python benchmarks/imputation.py                 # every data set, 10/20/30 % missing
    python benchmarks/imputation.py --seeds 1 --fractions 0.2

scikit-learn's bundled data sets (no download), each standardised with the
complete data's mean and standard deviation; a fraction of the values is
removed completely at random (rows left with nothing observed get one value
back, so every method sees the same holes); every imputer fills them; the
error is the root mean square over the removed values, in standard
deviations (1.0 is about what the column mean gives). Medians over
``--seeds`` draws of the holes. The imputers: fastem's
``GaussianMixtureImputer`` with one component (the conditional expectation
under one Gaussian: a regression of the missing on the observed values) and
with three; scikit-learn's ``IterativeImputer`` (chained BayesianRidge
regressions), ``KNNImputer`` (5 neighbours) and ``SimpleImputer`` (the mean).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def datasets():
    """``{name: X}`` of scikit-learn's bundled numeric data sets (no constant column)."""
    from sklearn import datasets as ds

    out = {}
    for name, load in (("iris", ds.load_iris), ("wine", ds.load_wine),
                       ("diabetes", ds.load_diabetes), ("breast_cancer", ds.load_breast_cancer)):
        X = np.asarray(load().data, dtype=np.float64)
        out[name] = (X - X.mean(axis=0)) / X.std(axis=0)
    return out


def imputers(seed):
    """``{name: unfitted imputer}``, the same seed for every randomised one."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    from fastem import GaussianMixtureImputer

    return {
        "fastem GMM k=1": GaussianMixtureImputer(1, random_state=seed),
        "fastem GMM k=3": GaussianMixtureImputer(3, random_state=seed, reg_covar=1e-3),
        "IterativeImputer": IterativeImputer(random_state=seed, max_iter=20),
        "KNNImputer": KNNImputer(n_neighbors=5),
        "SimpleImputer": SimpleImputer(strategy="mean"),
    }


def remove(X, fraction, rng):
    """A copy of X with ``fraction`` of its values removed at random (NaN); a
    row left empty gets one of its values back."""
    holes = rng.random(X.shape) < fraction
    empty = holes.all(axis=1)
    holes[np.flatnonzero(empty), rng.integers(0, X.shape[1], empty.sum())] = False
    Xm = X.copy()
    Xm[holes] = np.nan
    return Xm, holes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", default="0.1,0.2,0.3")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", default="iris,wine,diabetes,breast_cancer",
                        help="data sets, comma-separated")
    args = parser.parse_args(argv)
    chosen = args.data.split(",")
    fractions = [float(f) for f in args.fractions.split(",")]
    names = list(imputers(0))
    print("| data (n x d) | missing | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    seconds = {name: 0.0 for name in names}
    for data_name, X in datasets().items():
        if data_name not in chosen:
            continue
        for fraction in fractions:
            errors = {name: [] for name in names}
            for seed in range(args.seeds):
                Xm, holes = remove(X, fraction, np.random.default_rng(seed))
                for name, imputer in imputers(seed).items():
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # convergence warnings of either library
                        filled = imputer.fit_transform(Xm)
                    seconds[name] += time.perf_counter() - t0
                    errors[name].append(np.sqrt(np.mean((filled[holes] - X[holes]) ** 2)))
            medians = {name: float(np.median(e)) for name, e in errors.items()}
            best = min(medians.values())
            cells = [f"**{m:.3f}**" if m == best else f"{m:.3f}" for m in medians.values()]
            print(f"| {data_name} ({X.shape[0]} x {X.shape[1]}) | {fraction:.0%} | "
                  + " | ".join(cells) + " |")
    print("\ntotal seconds (fit + transform, all runs): "
          + ", ".join(f"{name} {s:.1f}" for name, s in seconds.items()))


if __name__ == "__main__":
    main()
