"""``fastem.warmup()``: compile every CPU kernel for this CPU ahead of time.

Kernels compile on their first use and are then loaded from Numba's on-disk
cache (next to the installed package, or under ``NUMBA_CACHE_DIR``). A
container image, a CI job or every worker of a cluster starts with an empty
cache; warming it once there spares each first fit its compilation.

The warm-up fits tiny problems through the public estimators, so it compiles
exactly the kernels that fits reach: each covariance layout, in each compute
dtype (float64 rows; float32 rows computed in float32, and in float64 as
``dtype=np.float64`` or the float32 fallback runs them), with and without
sample weights, the shared pass of ``GaussianMixtureIC``, the
initialisations' passes, the passes over incomplete data (NaN) and
``GaussianHMM``'s recursions.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._compile_clock import compile_seconds
from ._progress import bar

#: ``(rows dtype, compute dtype)`` pairs of ``warmup(dtypes=...)``: float32
#: rows may compute in either.
_ROW_AND_COMPUTE = {"float64": [("float64", "float64")],
                    "float32": [("float32", "float32"), ("float32", "float64")]}


def _jobs(dtypes):
    """``[(label, callable)]``: one tiny fit per kernel configuration."""
    from . import BayesianGaussianMixture, GaussianMixture, GaussianMixtureIC

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) + 4.0]
    w = rng.uniform(0.5, 1.5, size=X.shape[0])
    jobs = []
    for name in dtypes:
        for rows, compute in _ROW_AND_COMPUTE[name]:
            Xd = X.astype(rows)
            label = rows if rows == compute else f"{rows} rows in {compute}"
            for cov in ("full", "diag", "spherical", "tied"):
                def job(cov=cov, Xd=Xd, compute=compute):
                    g = GaussianMixture(2, covariance_type=cov, max_iter=2, random_state=0,
                                        dtype=np.dtype(compute)).fit(Xd, sample_weight=w)
                    g.score_samples(Xd)
                    BayesianGaussianMixture(n_components=2, covariance_type=cov, max_iter=2, random_state=0,
                                            dtype=np.dtype(compute)).fit(Xd)
                jobs.append((f"{cov} {label}", job))

            def select(Xd=Xd, compute=compute):
                GaussianMixtureIC(min_components=1, max_components=2, covariance_type="all",
                                  max_iter=2, random_state=0, dtype=np.dtype(compute)).fit(Xd)
                GaussianMixture(2, max_iter=2, random_state=0, init_params="k-means++",
                                dtype=np.dtype(compute)).fit(Xd)
            jobs.append((f"model selection {label}", select))
            # GaussianHMM: emissions and statistics in the compute dtype, as the mixtures'
            jobs.append((f"hidden Markov models, {label}",
                         lambda rows=rows, compute=compute: _hmm_job(rows, compute)))
    for name in dtypes:  # float32 rows compute their passes in float32
        jobs.append((f"missing values, {name} rows",
                     lambda Xd=X.astype(name): _missing_job(Xd)))
    return jobs


def _missing_job(X):
    from . import GaussianMixture, GaussianMixtureImputer

    holes = X.copy()
    holes[::7, 1] = np.nan
    for cov in ("full", "diag"):
        GaussianMixture(2, covariance_type=cov, max_iter=2, random_state=0).fit(
            holes).score_samples(holes)
        for sample in (False, True):
            GaussianMixtureImputer(2, covariance_type=cov, max_iter=2, random_state=0,
                                   sample_posterior=sample).fit(holes).transform(holes)
    # past 8 components the 'full' pass works in vectors of 16: a driver of its own
    GaussianMixture(9, covariance_type="full", max_iter=2, random_state=0).fit(
        holes).score_samples(holes)


def _hmm_job(rows, compute):
    """``GaussianHMM``'s kernels for rows of dtype ``rows`` computing in
    ``compute`` (the recursions are float64 for every input)."""
    from . import GaussianHMM

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 4.0].astype(rows)
    for cov in ("diag", "full"):  # both implementations run the same kernels
        model = GaussianHMM(2, covariance_type=cov, n_iter=2, random_state=0,
                            dtype=np.dtype(compute)).fit(X, [60, 60])
        model.decode(X, [60, 60])
        model.score_samples(X, [60, 60])
        # a transition below SMALL_TRANSITION sends every sequence to the
        # exact recursion, whose drivers compile only when data need them
        model.set_params(init_params="", n_iter=1)
        model.transmat_ = np.array([[1.0, 1e-30], [0.5, 0.5]])
        model.fit(X, [60, 60]).score_samples(X, [60, 60])


def warmup(dtypes=("float64", "float32"), progress=True, client=None):
    """Compile the CPU kernels of every model for this CPU into Numba's cache.

    Parameters
    ----------
    dtypes : {"float64", "float32"} or a sequence of them, default both
        Row dtypes to compile for (float32 rows compile both compute dtypes).
    progress : bool, default True
        Draw a progress bar on stderr.
    client : dask.distributed.Client, optional
        Warm every worker of this cluster instead (``client.run``): each
        worker compiles into its own cache, all at once.

    Returns
    -------
    float or dict
        Seconds spent compiling (0 when everything was cached already); with
        ``client``, a dict of them per worker address.

    Examples
    --------
    >>> import fastem
    >>> seconds = fastem.warmup(progress=False)   # doctest: +SKIP
    """
    dtypes = (dtypes,) if isinstance(dtypes, str) else tuple(dtypes)
    bad = [d for d in dtypes if d not in _ROW_AND_COMPUTE]
    if bad or not dtypes:
        raise ValueError(f"dtypes must be a non-empty sequence of 'float64' and 'float32', "
                         f"got {list(dtypes)!r}")
    if client is not None:
        return client.run(warmup, dtypes=dtypes, progress=False)
    jobs = _jobs(dtypes)
    before = compile_seconds()
    with bar(len(jobs), "compiling kernels for this CPU", "config", disable=not progress) as shown:
        for label, job in jobs:
            shown.set_postfix_str(label, refresh=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tiny fits stop at max_iter=2 by design
                job()
            shown.update()
    return compile_seconds() - before
