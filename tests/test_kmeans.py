"""k-means / k-means++ initialisation: kernels, quality and degenerate input."""

import warnings

import numba
import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture
from fastem import kmeans as km
from fastem._covariance import Layout


def _lloyd_reference(X, centres, w, n_iter):
    """Plain NumPy Lloyd with an explicit distance matrix (small inputs only)."""
    X = np.asarray(X, dtype=np.float64)
    for _ in range(n_iter):
        dist = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2)
        labels = dist.argmin(axis=1)
        new = centres.copy()
        for j in range(len(centres)):
            m = labels == j
            if w[m].sum() > 0:
                new[j] = (w[m, None] * X[m]).sum(axis=0) / w[m].sum()
        centres = new
    dist = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2)
    return centres, dist.argmin(axis=1), float((w * dist.min(axis=1)).sum())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_matches_reference(dtype, weighted):
    X, _ = make_blobs(n=1000, d=3, k=4, seed=1, dtype=dtype)
    w = np.random.default_rng(1).uniform(0.5, 2, size=len(X)) if weighted else None
    start = np.asarray(X[:4], dtype=np.float64)
    centres, labels, n_iter, inertia = km.lloyd(X, start, w, max_iter=5, tol=-1.0,
                                                return_labels=True)
    ref_c, ref_l, ref_i = _lloyd_reference(X, start, np.ones(len(X)) if w is None else w, 5)
    assert n_iter == 5
    np.testing.assert_allclose(centres, ref_c, rtol=1e-10)
    np.testing.assert_array_equal(labels, ref_l)
    assert inertia == pytest.approx(ref_i, rel=1e-10)


def test_kmeans_plusplus_picks_distinct_spread_seeds():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 5, size=2000)
    X = np.array([[0, 0], [50, 0], [0, 50], [50, 50], [25, 100]])[truth] + rng.normal(size=(2000, 2))
    idx = km.kmeans_plusplus(X, 5, None, np.random.RandomState(0))
    assert len(set(idx)) == 5
    assert len(set(truth[idx])) == 5  # one seed per well-separated blob


def test_kmeans_init_reproducible_and_thread_independent():
    X, _ = make_blobs(n=50_000, d=4, k=6, seed=3)  # above config.KMEANS_SAMPLE_ROWS: sample + full passes
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c1 = km.kmeans_init(X, 6, None, np.random.RandomState(5))
        s1 = km.nearest_stats(X, None, c1, "full")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        c2 = km.kmeans_init(X, 6, None, np.random.RandomState(5))
        s2 = km.nearest_stats(X, None, c2, "full")
    finally:
        numba.set_num_threads(before)
    assert c1.tobytes() == c2.tobytes()
    assert s1.second.tobytes() == s2.second.tobytes()


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_nearest_stats_match_reference(covariance_type):
    X, _ = make_blobs(n=3000, d=3, k=4, seed=13, dtype=np.float32)
    w = np.random.default_rng(2).uniform(0, 2, size=len(X))
    centres = np.asarray(X[:4], dtype=np.float64) + 0.1
    stats = km.nearest_stats(X, w, centres, covariance_type)
    Xf = X.astype(np.float64)
    labels = ((Xf[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    for j in range(4):
        m = labels == j
        diff = Xf[m] - centres[j]
        assert stats.mass[j] == pytest.approx(w[m].sum(), rel=1e-12)
        np.testing.assert_allclose(stats.first[j], w[m] @ diff, rtol=1e-10, atol=1e-10)
        second = (w[m, None] * diff).T @ diff
        want = second if covariance_type == "full" else np.diag(second)
        np.testing.assert_allclose(stats.second[j], want, rtol=1e-10, atol=1e-10)


def _median_lower_bound(cls, X, k, covariance_type, seeds, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.median([cls(k, covariance_type=covariance_type, random_state=s, **kw)
                          .fit(X).lower_bound_ for s in seeds])


@pytest.mark.slow
@pytest.mark.parametrize("dataset, k", [("iris", 3), ("wine", 3), ("breast_cancer", 2),
                                        ("digits", 10)])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_default_init_quality_on_real_data(dataset, k, covariance_type):
    """Median final log-likelihood over seeds, fastem vs scikit-learn defaults.

    EM's local optima make the median over a handful of seeds noisy; fastem
    must not be worse by more than the seed-to-seed spread of scikit-learn's
    own runs divided by sqrt(#seeds) (a standard error), and on these data it
    is usually equal or better.
    """
    sklearn = pytest.importorskip("sklearn")
    from sklearn import datasets
    from sklearn.mixture import GaussianMixture as SkGM

    X = getattr(datasets, f"load_{dataset}")().data
    seeds = range(9)
    kw = dict(reg_covar=1e-3)  # digits has constant pixels
    ours = _median_lower_bound(GaussianMixture, X, k, covariance_type, seeds, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = [SkGM(k, covariance_type=covariance_type, random_state=s, **kw).fit(X).lower_bound_
                  for s in seeds]
    stderr = np.subtract(*np.percentile(theirs, [75, 25])) / np.sqrt(len(theirs))
    assert ours >= np.median(theirs) - stderr - 1e-9 * abs(np.median(theirs))


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_default_init_quality_on_synthetic_mixtures(covariance_type):
    SkGM = pytest.importorskip("sklearn.mixture").GaussianMixture
    for seed in range(3):
        X, _ = make_blobs(n=3000, d=4, k=8, seed=seed, spread=3.0)
        ours = _median_lower_bound(GaussianMixture, X, 8, covariance_type, range(5))
        theirs = _median_lower_bound(SkGM, X, 8, covariance_type, range(5))
        assert ours >= theirs - 1e-3  # EM's own tol is 1e-3 per sample


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_degenerate_inputs_for_kmeans(init_params):
    cases = [
        np.repeat([[0.0, 1.0], [5.0, 5.0]], 50, axis=0),   # 2 distinct points, k=4
        np.full((30, 3), -4.0),                           # one distinct point
        np.repeat(np.random.default_rng(0).normal(size=(10, 2)), 7, axis=0),
    ]
    for X in cases:
        centres = km.kmeans_init(X, 4, None, np.random.RandomState(0))
        assert np.all(np.isfinite(centres)) and centres.shape == (4, X.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(4, init_params=init_params, random_state=0).fit(X)
        assert np.all(np.isfinite(gm.covariances_)) and np.all(np.isfinite(gm.means_))


def test_empty_cluster_relocated_in_lloyd():
    X = np.r_[np.zeros((50, 2)), np.full((50, 2), 10.0), [[100.0, 100.0]]]
    start = np.array([[0.0, 0.0], [10.0, 10.0], [-1000.0, -1000.0]])  # third starts empty
    centres, labels, _, _ = km.lloyd(X, start, None, max_iter=10, tol=0.0, return_labels=True)
    assert np.any(np.all(centres == [100.0, 100.0], axis=1))
    assert len(np.unique(labels)) == 3


def test_row_sampling_memory_and_stream(monkeypatch):
    from fastem import _sampling, config

    rs = np.random.RandomState(3)
    small = _sampling.sample_rows(1000, 10, np.random.RandomState(3))
    np.testing.assert_array_equal(small, rs.choice(1000, size=10, replace=False))  # sklearn's stream
    monkeypatch.setattr(config, "PERMUTATION_MAX_ROWS", 100)
    big = _sampling.sample_rows(10**12, 50, np.random.RandomState(0))  # no 8 TB permutation
    assert len(set(big.tolist())) == 50 and big.min() >= 0 and big.max() < 10**12


@pytest.mark.parametrize("weighted", [False, True])
def test_shared_assignment_pass_equals_passes_of_their_own(weighted):
    """Several models' assignments in one pass (concatenated centres, one
    segment each, their own second moments) give each model exactly what a
    pass of its own gives: the same labels, hence the same sums, to the bit."""
    X, _ = make_blobs(n=5000, d=4, k=5, seed=21)
    w = np.random.default_rng(3).uniform(0, 2, size=len(X)) if weighted else None
    rng = np.random.default_rng(4)
    requests = [km.AssignPass(X[rng.choice(len(X), k, replace=False)].astype(np.float64) + 0.01, m)
                for k, m in [(1, Layout.FULL), (3, Layout.NONE),
                             (5, Layout.DIAG), (2, Layout.FULL)]]
    backend = km.CPUBackend()
    together = km.assign_many(backend, X, requests, w)
    for request, got in zip(requests, together):
        alone = request.run(backend, X, w)
        for name in ("counts", "sums", "second"):
            assert getattr(got, name).shape == getattr(alone, name).shape
            assert getattr(got, name).tobytes() == getattr(alone, name).tobytes()
        assert (got.inertia, got.far_index, got.far_dist) == (alone.inertia, alone.far_index,
                                                              alone.far_dist)
    # and against the plain NumPy assignment
    Xf = X.astype(np.float64)
    ww = np.ones(len(X)) if w is None else w
    for request, got in zip(requests, together):
        c = request.centres
        dist = ((Xf[:, None, :] - c[None]) ** 2).sum(axis=2)
        labels = dist.argmin(axis=1)
        np.testing.assert_allclose(got.counts, np.bincount(labels, ww, minlength=len(c)),
                                   rtol=1e-12)
        assert got.inertia == pytest.approx(float((ww * dist.min(axis=1)).sum()), rel=1e-12)


def test_steps_together_use_a_shared_stream_as_in_turn():
    """k-means initialisations drawing from one RandomState give, run together
    (sharing their passes), the centres they give one after the other."""
    from fastem import config
    from fastem._steps import run_alone, run_together

    X, _ = make_blobs(n=6000, d=3, k=4, seed=8)
    backend = km.CPUBackend()
    old = config.KMEANS_SAMPLE_ROWS
    config.KMEANS_SAMPLE_ROWS = 500
    try:
        rng = np.random.RandomState(3)
        in_turn = [run_alone(km.kmeans_init_steps(X, k, None, rng, backend=backend), backend, X,
                             None) for k in (2, 4, 3)]
        rng = np.random.RandomState(3)
        together = run_together([km.kmeans_init_steps(X, k, None, rng, backend=backend)
                                 for k in (2, 4, 3)], backend, X, None)
    finally:
        config.KMEANS_SAMPLE_ROWS = old
    for a, b in zip(in_turn, together):
        assert a.tobytes() == b.tobytes()
