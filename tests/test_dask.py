"""Dask input: EM passes as tasks on a distributed LocalCluster of processes."""

import warnings
from collections import Counter

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


X, _ = make_blobs(n=5000, d=3, k=3, seed=21)


class RecordChunkPasses(distributed.WorkerPlugin):
    """Wraps the per-chunk EM pass on each worker and records the chunks it ran.

    The wrapper replaces ``fastem.backends.dask._chunk_stats`` in the worker's
    module; tasks name that function by reference, so every EM pass that runs
    on the worker goes through it, whatever the scheduler's bookkeeping (task
    streams, fused task keys) records.
    """

    name = "record-chunk-passes"

    def setup(self, worker):
        import fastem.backends.dask as module

        self.calls = []
        original = getattr(module._chunk_stats, "__wrapped__", module._chunk_stats)

        def recorded(block, weights, params, dtype=None):
            self.calls.append((float(block[0, 0]), int(block.shape[0])))
            return original(block, weights, params, dtype)

        recorded.__wrapped__ = original
        module._chunk_stats = recorded

    def teardown(self, worker):
        import fastem.backends.dask as module

        module._chunk_stats = getattr(module._chunk_stats, "__wrapped__", module._chunk_stats)


def _worker_calls(dask_worker):
    plugin = dask_worker.plugins[RecordChunkPasses.name]
    calls, plugin.calls = plugin.calls, []
    return calls


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_dask_fit_equals_in_memory(client, covariance_type):
    dX = da.from_array(X, chunks=(700, 3))
    sw = np.random.default_rng(0).uniform(0.5, 1.5, size=len(X))
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, max_iter=8, tol=0)
    client.register_plugin(RecordChunkPasses())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = GaussianMixture(**kw).fit(dX, sample_weight=sw)
            ref = GaussianMixture(**kw).fit(X, sample_weight=sw)
        calls = client.run(_worker_calls)
    finally:
        client.unregister_worker_plugin(RecordChunkPasses.name)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-9)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-12)
    # Every EM pass ran on the cluster's two worker processes, every chunk
    # (identified by its first value and length) as often as every other, once
    # per iteration: 8 x 8. The tasks are pure, so a pass under exactly the
    # parameters of an earlier one (a fit at its fixed point to the last bit,
    # as spherical reaches here after 3 to 5 passes, depending on the last bits
    # of a fresh compile) is the same task and runs once, hence <= 8.
    starts = np.cumsum((0,) + dX.chunks[0][:-1])
    counts = Counter(c for per_worker in calls.values() for c in per_worker)
    assert set(counts) == {(float(X[a, 0]), int(m)) for a, m in zip(starts, dX.chunks[0])}
    assert len(set(counts.values())) == 1 and 1 <= min(counts.values()) <= 8
    if covariance_type != "spherical":
        assert min(counts.values()) == 8
    assert sum(1 for per_worker in calls.values() if per_worker) == 2


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
    with pytest.raises(ValueError, match="infinity"):
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
