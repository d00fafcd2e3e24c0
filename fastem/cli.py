"""The ``fastem`` command line.

``fastem demo`` generates a known Gaussian mixture, fits it and reports the
per-iteration log-likelihood, the time per iteration and the fitted model.
``fastem fit DATA --n-components K --out MODEL`` fits a file, ``fastem predict
MODEL DATA --out LABELS`` applies a model, ``fastem info MODEL`` describes one.
Errors print one line on stderr and exit with status 2, leaving no output file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from .problems import make_mixture


def _demo(args):
    from . import GaussianMixture

    for name in ("n_samples", "n_features", "n_components", "max_iter"):
        if getattr(args, name) < (0 if name == "max_iter" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be at least "
                             f"{0 if name == 'max_iter' else 1}, got {getattr(args, name)}")
    if args.n_samples < args.n_components:
        raise ValueError(f"--n-samples ({args.n_samples}) must be at least --n-components "
                         f"({args.n_components})")

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
    if gm.compile_seconds_ > 0:
        print(f"  of the total, compiling kernels for this CPU (first use only, then cached): "
              f"{gm.compile_seconds_:.2f}s")
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


#: ``fastem fit --model``: the estimator each name fits.
MODELS = {"gaussian": "GaussianMixture", "bayesian": "BayesianGaussianMixture"}


def _check_outputs(inputs, outputs):
    """Refuse, before any work, an output that is one of the command's inputs
    (the data or model it reads would be replaced by what it writes) or that
    two options name (one file would silently win).

    Parameters
    ----------
    inputs : list of str, the files the command reads
    outputs : list of ``(option, path or None)``, the files it writes
    """
    seen = {os.path.realpath(p): "the input" for p in inputs}
    for option, path in outputs:
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise ValueError(f"{option} {path} is also {seen[real]}: writing it would replace "
                             "that file; choose another output path.")
        seen[real] = f"the path of another output ({option})"


def _fit(args):
    import fastem
    from .io import read_data, write_together
    from ._progress import FitProgress
    from .model_file import model_writer

    _check_outputs([args.data], [("--out", args.out), ("--plot", args.plot)])
    X = read_data(args.data, header=args.header)
    cls = getattr(fastem, MODELS[args.model])
    gm = cls(n_components=args.n_components, covariance_type=args.covariance_type,
             max_iter=args.max_iter, tol=args.tol, n_init=args.n_init,
             init_params=args.init_params, random_state=args.random_state,
             reg_covar=args.reg_covar, backend=args.backend, batch_size=args.batch_size)
    if args.model == "bayesian":
        gm.set_params(weight_concentration_prior_type=args.weight_prior)
    bar = None if args.quiet else FitProgress(MODELS[args.model],
                                              unit="row" if args.batch_size else "iter")
    gm.progress_callback = bar
    t0 = time.perf_counter()
    try:
        gm.fit(X)
    finally:
        if bar is not None:
            bar.close()
    gm.progress_callback = None
    outputs = {args.out: model_writer(gm, args.out)}
    if args.plot:
        from .plot import plot_lower_bound

        outputs[args.plot] = _plot_writer(lambda ax: plot_lower_bound(gm, ax=ax))
    write_together(outputs)  # the model and the plot, or neither
    print(f"fitted {args.n_components} components on {X.shape[0]:,} x {X.shape[1]} in "
          f"{time.perf_counter() - t0:.2f}s: converged={gm.converged_}, n_iter={gm.n_iter_}, "
          f"log-likelihood {gm.lower_bound_:.6f}; model written to {args.out}")
    return 0


def _parse_components(text):
    """'1:20' (both ends included), '3' or '2,4,8' -> list of ints."""
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            return list(range(lo, hi + 1))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--n-components {text!r}: give MIN:MAX, K or K1,K2,...") from None


def _select(args):
    from . import GaussianMixtureIC
    from .io import read_data, write_together
    from .model_file import model_writer

    _check_outputs([args.data], [("--out", args.out), ("--plot", args.plot)])
    X = read_data(args.data, header=args.header)
    types = args.covariance_type if args.covariance_type == "all" else args.covariance_type.split(",")
    ic = GaussianMixtureIC(n_components=_parse_components(args.n_components),
                           covariance_type=types, criterion=args.criterion, n_init=args.n_init,
                           max_iter=args.max_iter, tol=args.tol, reg_covar=args.reg_covar,
                           init_params=args.init_params, random_state=args.random_state,
                           backend=args.backend)
    t0 = time.perf_counter()
    ic.fit(X)
    r = ic.results_
    print(f"{'k':>4} {'covariance':<10} {'bic':>16} {'aic':>16} {'n_iter':>7} {'converged':>9}")
    for i in range(len(r["n_components"])):
        mark = "  <- best" if (r["n_components"][i] == ic.n_components_
                               and r["covariance_type"][i] == ic.covariance_type_) else ""
        print(f"{r['n_components'][i]:>4} {r['covariance_type'][i]:<10} {r['bic'][i]:>16.3f} "
              f"{r['aic'][i]:>16.3f} {r['n_iter'][i]:>7} {str(r['converged'][i]):>9}{mark}")
    print(f"best by {args.criterion}: n_components={ic.n_components_}, "
          f"covariance_type={ic.covariance_type_!r} ({len(r['bic'])} candidates in "
          f"{ic.n_passes_} passes, {time.perf_counter() - t0:.2f}s)")
    outputs = {}
    if args.plot:
        from .plot import plot_criterion

        outputs[args.plot] = _plot_writer(lambda ax: plot_criterion(r, args.criterion, ax=ax))
    if args.out:
        outputs[args.out] = model_writer(ic.best_estimator_, args.out)
    write_together(outputs)  # the plot and the model, or neither
    if args.out:
        print(f"best model written to {args.out}")
    return 0


def _plot_writer(draw):
    """``write(path)`` that draws with ``draw(ax)`` on a new Agg figure and saves
    it (PNG, PDF, SVG by the path's suffix), for :func:`fastem.io.write_together`."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'fastem[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def write(path):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        try:
            draw(ax)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)

    return write


def _predict(args):
    from .io import read_data, write_array
    from .model_file import load_model

    _check_outputs([args.model, args.data], [("--out", args.out)])
    gm = load_model(args.model)
    if not hasattr(gm, "predict_proba"):
        raise ValueError(f"{args.model} holds a {type(gm).__name__}, which has no component "
                         "labels to predict; 'fastem predict' takes mixture models.")
    X = read_data(args.data, header=args.header)
    if X.ndim != 2 or X.shape[1] != gm.n_features_in_:
        cols = X.shape[1] if X.ndim == 2 else "?"
        raise ValueError(f"{args.data} has {cols} columns, but the model {args.model} was "
                         f"fitted on {gm.n_features_in_} features.")
    out = gm.predict_proba(X) if args.proba else gm.predict(X)
    write_array(args.out, out)
    print(f"wrote {'probabilities' if args.proba else 'labels'} of {X.shape[0]:,} rows to {args.out}")
    return 0


def _impute(args):
    from .io import read_data, write_array
    from .mixture import GaussianMixtureImputer
    from .model_file import model_writer
    from .io import write_together

    if Path(args.out).suffix.lower() not in (".npy", ".csv"):
        raise ValueError(f"{args.out}: output must end in .npy or .csv")
    _check_outputs([args.data], [("--out", args.out), ("--model-out", args.model_out)])
    X = read_data(args.data, header=args.header)
    imputer = GaussianMixtureImputer(
        args.n_components, covariance_type=args.covariance_type,
        sample_posterior=args.sample_posterior, max_iter=args.max_iter, tol=args.tol,
        n_init=args.n_init, init_params=args.init_params, random_state=args.random_state,
        reg_covar=args.reg_covar)
    t0 = time.perf_counter()
    filled = imputer.fit_transform(X)
    n_missing = int(np.isnan(np.asarray(X, dtype=np.float64)).sum())
    columns = getattr(X, "columns", None)
    outputs = {args.out: lambda path: write_array(path, filled, columns)}
    if args.model_out:
        outputs[args.model_out] = model_writer(imputer.mixture_, args.model_out)
    write_together(outputs)
    gm = imputer.mixture_
    print(f"filled {n_missing:,} missing values in {X.shape[0]:,} x {X.shape[1]} in "
          f"{time.perf_counter() - t0:.2f}s ({args.n_components} components, "
          f"converged={gm.converged_}, n_iter={gm.n_iter_}); written to {args.out}")
    return 0


def _info(args):
    from .model_file import load_model

    gm = load_model(args.model)
    print(f"model: {printable(args.model)} ({type(gm).__name__})")
    params = gm.get_params()
    if "covariance_type" in params:
        shape = f"{gm.n_components} components, covariance_type={gm.covariance_type!r}"
    elif "n_latent" in params:
        shape = (f"{gm.n_latent} latent dimensions, hidden_layers={tuple(gm.hidden_layers)}, "
                 f"likelihood={gm.likelihood!r}")
    else:
        shape = f"{gm.n_components} latent dimensions"
    print(f"  {shape}, {gm.n_features_in_} features")
    if hasattr(gm, "feature_names_in_"):
        print("  feature names: " + ", ".join(printable(v) for v in gm.feature_names_in_))
    if hasattr(gm, "lower_bound_"):
        print(f"  converged={gm.converged_}, n_iter={gm.n_iter_}, "
              f"lower bound {gm.lower_bound_:.6f}")
    if hasattr(gm, "log_likelihood_"):
        print(f"  log-likelihood {gm.log_likelihood_:.6f}, noise variance {gm.noise_variance_:.6g}")
    if hasattr(gm, "elbo_history_"):
        print(f"  epochs={gm.n_iter_}, final ELBO per row {gm.elbo_history_[-1]:.6f}")
    if hasattr(gm, "weights_"):
        print("  weights: " + ", ".join(f"{w:.4f}" for w in gm.weights_))
    return 0


def _add_header_option(parser):
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                        help="CSV: the first line names the columns (--header) or is data "
                             "(--no-header); by default it is a header when any of its "
                             "cells is not a number")


def _add_fit_options(parser, random_state):
    """The fitting options that ``fit`` and ``select`` share (GaussianMixture's parameters)."""
    _add_header_option(parser)
    parser.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--reg-covar", type=float, default=1e-6)
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--init-params", default="kmeans",
                        choices=["kmeans", "k-means++", "random", "random_from_data"])
    parser.add_argument("--random-state", type=int, default=random_state)


def _warmup(args):
    from .warmup import warmup

    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    if args.scheduler:
        from dask.distributed import Client

        with Client(args.scheduler) as client:
            per_worker = warmup(dtypes, progress=False, client=client)
        for worker, seconds in sorted(per_worker.items()):
            print(f"{worker}: compiled for {seconds:.1f}s")
        return 0
    seconds = warmup(dtypes, progress=not args.quiet)
    print(f"kernels ready for this CPU ({seconds:.1f}s compiling; 0 means all were cached)")
    return 0


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastem", description="Latent-variable models fitted by EM and variational "
        "inference, fast: Gaussian mixtures, model selection over k, PPCA.")
    parser.add_argument("--version", action="version", version=f"fastem {__version__}")
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

    fit = sub.add_parser("fit", help="fit a model to a .npy/.csv/.parquet file")
    fit.add_argument("data")
    fit.add_argument("--n-components", type=int, required=True,
                     help="components (for --model bayesian: an upper bound)")
    fit.add_argument("--model", default="gaussian", choices=sorted(MODELS),
                     help="gaussian: maximum likelihood (EM); bayesian: variational "
                          "(BayesianGaussianMixture)")
    fit.add_argument("--weight-prior", default="dirichlet_process",
                     choices=["dirichlet_process", "dirichlet_distribution"],
                     help="weight_concentration_prior_type of --model bayesian")
    fit.add_argument("--covariance-type", default="full",
                     choices=["full", "tied", "diag", "spherical"])
    _add_fit_options(fit, random_state=None)
    fit.add_argument("--batch-size", type=int, default=None,
                     help="fit by passes of stepwise EM (stochastic VI for --model bayesian) "
                          "over blocks of this many rows; --max-iter counts passes")
    fit.add_argument("--out", required=True, help="model file to write (.npz)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--plot", help="also draw the bound per iteration to this image (matplotlib)")
    fit.set_defaults(func=_fit)

    select = sub.add_parser("select", help="choose the number of components by BIC/AIC "
                                           "(all candidates in shared passes)")
    select.add_argument("data")
    select.add_argument("--n-components", default="1:10", help="MIN:MAX, K or K1,K2,...")
    select.add_argument("--covariance-type", default="full",
                        help="one type, a comma-separated list, or 'all'")
    select.add_argument("--criterion", default="bic", choices=["bic", "aic"])
    _add_fit_options(select, random_state=0)
    select.add_argument("--plot", help="draw the criterion against k to this image")
    select.add_argument("--out", help="write the best model here (.npz)")
    select.set_defaults(func=_select)

    predict = sub.add_parser("predict", help="label the rows of a data file with a model")
    predict.add_argument("model")
    predict.add_argument("data")
    predict.add_argument("--out", required=True, help="labels file to write (.npy or .csv)")
    predict.add_argument("--proba", action="store_true",
                         help="write component probabilities instead of labels")
    _add_header_option(predict)
    predict.set_defaults(func=_predict)

    warm = sub.add_parser("warmup", help="compile every CPU kernel for this CPU into the cache "
                                         "(for container images, CI and clusters)")
    warm.add_argument("--dtypes", default="float64,float32",
                      help="row dtypes to compile for, comma-separated (default both)")
    warm.add_argument("--scheduler", help="warm every worker of the Dask cluster at this address")
    warm.add_argument("--quiet", action="store_true", help="no progress bar")
    warm.set_defaults(func=_warmup)

    impute = sub.add_parser("impute", help="fill the missing values (empty cells, NA, NaN) "
                                           "of a data file from a Gaussian mixture")
    impute.add_argument("data")
    impute.add_argument("--out", required=True, help="filled data to write (.npy or .csv)")
    impute.add_argument("--n-components", type=int, default=1)
    impute.add_argument("--covariance-type", default="full",
                        choices=["full", "tied", "diag", "spherical"])
    impute.add_argument("--sample-posterior", action="store_true",
                        help="draw each value from its conditional distribution instead of "
                             "taking its expectation")
    impute.add_argument("--model-out", help="also write the fitted mixture here (.npz)")
    _add_fit_options(impute, random_state=0)
    impute.set_defaults(func=_impute)

    info = sub.add_parser("info", help="describe a model file")
    info.add_argument("model")
    info.set_defaults(func=_info)
    return parser


def printable(text):
    """``text`` with every non-printable character (terminal escapes, newlines,
    controls) written as its Python escape, so a name from a file cannot
    drive the terminal or forge lines of output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastem: error: {printable(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
