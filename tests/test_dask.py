"""Dask input: EM passes as tasks on a distributed LocalCluster of processes."""

import warnings

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


X, _ = make_blobs(n=5000, d=3, k=3, seed=21)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_dask_fit_equals_in_memory(client, covariance_type):
    dX = da.from_array(X, chunks=(700, 3))
    sw = np.random.default_rng(0).uniform(0.5, 1.5, size=len(X))
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, max_iter=8, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.get_task_stream(client) as stream:
            ours = GaussianMixture(**kw).fit(dX, sample_weight=sw)
        ref = GaussianMixture(**kw).fit(X, sample_weight=sw)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-9)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-12)
    # The passes ran as tasks on the cluster's worker processes: 8 iterations x 8 chunks.
    stats_tasks = [t for t in stream.data if "_chunk_stats" in str(t["key"])]
    assert len(stats_tasks) == 8 * len(dX.chunks[0])
    assert len({t["worker"] for t in stats_tasks}) == 2


def test_dask_predictions_are_lazy(client):
    dX = da.from_array(X, chunks=(1000, 3))
    gm = GaussianMixture(3, random_state=0).fit(X)
    labels = gm.predict(dX)
    proba = gm.predict_proba(dX)
    logp = gm.score_samples(dX)
    assert isinstance(labels, da.Array) and isinstance(proba, da.Array) and isinstance(logp, da.Array)
    np.testing.assert_array_equal(labels.compute(), gm.predict(X))
    np.testing.assert_allclose(proba.compute(), gm.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(logp.compute(), gm.score_samples(X), rtol=1e-12)
    assert gm.score(dX) == pytest.approx(gm.score(X), rel=1e-12)
    lazy = GaussianMixture(3, random_state=0).fit_predict(dX)
    assert isinstance(lazy, da.Array)


def test_dask_bad_input(client):
    bad = X.copy()
    bad[10, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        GaussianMixture(2).fit(da.from_array(bad, chunks=(1000, 3)))
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="2 features"):
        gm.predict(da.from_array(X[:, :2], chunks=(1000, 2)))


def test_dask_threaded_scheduler_without_client():
    """Dask's default threaded scheduler calls the kernels from several threads."""
    import dask

    dX = da.from_array(X, chunks=(500, 3))
    kw = dict(n_components=3, random_state=0, max_iter=5, tol=0)
    with dask.config.set(scheduler="threads", num_workers=4), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(**kw).fit(dX)
        ref = GaussianMixture(**kw).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
