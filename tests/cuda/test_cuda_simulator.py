"""CUDA kernels under numba's simulator (NUMBA_ENABLE_CUDASIM=1), tiny shapes.

Runs in its own pytest process (``tests/test_cuda_backend.py`` starts it), since
the simulator must be enabled before numba is imported. On a machine with a
GPU the same tests run on the device when started without the simulator and
with FASTEM_TEST_CUDA=1.
"""

import os
import warnings

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" and os.environ.get("FASTEM_TEST_CUDA") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (or FASTEM_TEST_CUDA=1 on a GPU)",
                allow_module_level=True)

from conftest import COVARIANCE_TYPES, make_blobs  # noqa: E402
from fastem import GaussianHMM, GaussianMixture, config  # noqa: E402
from fastem._model import Params  # noqa: E402
from fastem.backends.cpu import CPUBackend  # noqa: E402
from fastem.backends.cuda import CUDABackend  # noqa: E402

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    from fastem._cudasim import interleave_threads

    interleave_threads()  # faster, and a race between a block's threads shows


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """16 threads per block: tiny data still spans several blocks and tiles."""
    monkeypatch.setattr(config, "CUDA_THREADS", 16)


def _params(X, k, covariance_type):
    gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X)
    return Params(gm.weights_, gm.means_, gm.precisions_cholesky_, covariance_type).kernel_inputs()


def _assert_stats_close(a, b, rtol=1e-11):
    """Statistics equal to ``rtol`` (1e-11: float64 compute on both sides; the
    float32 kernels round differently on the device, the simulator (which
    evaluates ``math.exp`` in float64) and the CPU, so float32 compares at
    float32's 1e-5), their centres exactly."""
    scale = np.abs(b.second).max()
    np.testing.assert_allclose(a.mass, b.mass, rtol=rtol, atol=rtol * b.mass.max())
    np.testing.assert_allclose(a.first, b.first, rtol=rtol, atol=rtol * np.sqrt(scale * b.mass.max()))
    np.testing.assert_allclose(a.second, b.second, rtol=rtol, atol=rtol * scale)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=rtol / 10)
    assert a.weight_sum == pytest.approx(b.weight_sum, rel=1e-15)
    assert a.round_off == b.round_off


#: (data dtype, the estimators' ``dtype`` parameter, tolerance of the comparison)
COMPUTE_CASES = [(np.float64, None, 1e-11), (np.float32, np.float64, 1e-11),
                 (np.float32, None, 1e-5), (np.float64, np.float32, 1e-5)]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype, compute, rtol", COMPUTE_CASES)
def test_accumulate_matches_cpu(covariance_type, dtype, compute, rtol):
    X, _ = make_blobs(n=75, d=3, k=3, seed=1, dtype=dtype)  # 75 = 4 tiles of 16 + 11
    X = X + np.asarray(100.0, dtype)  # an offset the float32 compute must centre away
    p = _params(X, 3, covariance_type)
    sw = np.random.default_rng(2).uniform(0, 2, size=len(X))
    cuda = CUDABackend(compute)
    for weights in (None, sw):
        got = cuda.accumulate(cuda.prepare(X), p, weights)
        _assert_stats_close(got, CPUBackend(compute).accumulate(X, p, weights), rtol)
    if rtol > 1e-11:  # float32 compute is also close to the float64 statistics
        exact = CPUBackend(np.float64).accumulate(X, p)
        got = cuda.accumulate(cuda.prepare(X), p)
        np.testing.assert_allclose(got.mass, exact.mass, rtol=1e-5)
        np.testing.assert_allclose(got.centres + got.first / got.mass[:, None],
                                   exact.centres + exact.first / exact.mass[:, None], rtol=1e-6)
        assert got.log_likelihood == pytest.approx(exact.log_likelihood, rel=1e-6)


@pytest.mark.parametrize("threads", [0, "many", "twice"])
def test_a_block_size_beyond_the_compiled_one_is_an_error(monkeypatch, threads):
    """The kernels' static shared memory is sized by CUDA_THREADS at their
    import: a larger block set later would write past it (an IndexError
    here, silent on a GPU), so it is refused, as is a block of no thread."""
    from fastem.kernels.cuda.gaussian import CUDA_THREADS as compiled

    X, _ = make_blobs(n=40, d=2, k=2, seed=1)
    monkeypatch.setattr(config, "CUDA_THREADS", 2 * compiled if threads == "twice" else threads)
    for est in (GaussianMixture(2, backend="cuda", max_iter=1),
                GaussianHMM(2, backend="cuda", n_iter=1)):
        with pytest.raises(ValueError, match="CUDA_THREADS must be an int from 1 to"):
            est.fit(X)


def test_float32_kernels_are_float32():
    """The float32 twins compute in float32: their shared memory holds float32
    (half the bytes, so more threads fit), unlike the float64 kernels."""
    from fastem.backends.cuda import threads_for
    from fastem.kernels.cuda import gaussian

    assert gaussian.for_dtype(np.float32) == (gaussian.accumulate_f32, gaussian.log_prob_f32)
    assert gaussian.for_dtype(np.float64) == (gaussian.accumulate, gaussian.log_prob)
    assert gaussian.shared_bytes(100, 16, np.float32) < gaussian.shared_bytes(100, 16, np.float64)
    assert threads_for(200, np.float32) >= threads_for(200, np.float64)


def test_parts_with_several_tiles(monkeypatch):
    monkeypatch.setattr(config, "CUDA_MAX_PARTS", 2)  # 2 blocks, each walks 3 tiles
    X, _ = make_blobs(n=90, d=2, k=2, seed=3)
    p = _params(X, 2, "full")
    cuda = CUDABackend()
    _assert_stats_close(cuda.accumulate(cuda.prepare(X), p), CPUBackend().accumulate(X, p))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("compute, rtol", [(np.float64, 1e-12), (None, 1e-6)])
def test_log_prob_matches_cpu(covariance_type, compute, rtol):
    X, _ = make_blobs(n=40, d=4, k=3, seed=4, dtype=np.float32)
    p = _params(X, 3, covariance_type)
    cuda = CUDABackend(compute)
    got = np.concatenate([c for _, _, c in cuda.weighted_log_prob_chunks(cuda.prepare(X), p)])
    want = np.concatenate([c for _, _, c in CPUBackend(compute).weighted_log_prob_chunks(X, p)])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def test_streaming_equals_resident(monkeypatch):
    X, _ = make_blobs(n=70, d=2, k=2, seed=5)
    p = _params(X, 2, "full")
    cuda = CUDABackend()
    resident = cuda.accumulate(cuda.prepare(X), p)
    monkeypatch.setattr(config, "CUDA_MAX_RESIDENT_BYTES", 0)
    monkeypatch.setattr(config, "CUDA_STREAM_BYTES", 25 * X[:1].nbytes)  # 3 chunks
    data = cuda.prepare(X)
    assert data.device is None
    assert len(list(cuda._chunks(data))) == 3
    _assert_stats_close(cuda.accumulate(data, p), resident)


def test_fit_on_cuda_equals_cpu():
    X, _ = make_blobs(n=60, d=2, k=2, seed=6)
    kw = dict(n_components=2, random_state=0, max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = GaussianMixture(backend="cuda", **kw).fit(X)
        cpu = GaussianMixture(backend="cpu", **kw).fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)
    np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-10)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-12)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-12)


def test_fit_is_deterministic():
    X, _ = make_blobs(n=50, d=2, k=2, seed=7)
    kw = dict(n_components=2, random_state=0, max_iter=2, tol=0, backend="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(**kw).fit(X)
        b = GaussianMixture(**kw).fit(X)
    assert a.means_.tobytes() == b.means_.tobytes()
    assert a.covariances_.tobytes() == b.covariances_.tobytes()


def test_device_array_input():
    from numba import cuda

    X, _ = make_blobs(n=48, d=2, k=2, seed=8)
    dX = cuda.to_device(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(2, backend="cuda", random_state=0, max_iter=2, tol=0).fit(dX)
        ref = GaussianMixture(2, backend="cpu", random_state=0, max_iter=2, tol=0).fit(X)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    np.testing.assert_array_equal(gm.predict(dX), ref.predict(X))
    bad = X.copy()
    bad[3, 1] = np.inf
    for rows in (bad, cuda.to_device(bad)):  # infinity is never a missing value
        with pytest.raises(ValueError, match="infinity"):
            GaussianMixture(2, backend="cuda").fit(rows)
        with pytest.raises(ValueError, match="infinity"):
            gm.score_samples(rows)
    with pytest.raises(TypeError, match="backend='cuda'"):
        GaussianMixture(2, backend="cpu").fit(dX)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_gpu_array_fits_the_in_memory_model_above_the_sampling_threshold(init_params, monkeypatch):
    """A GPU array initialises from the same rows and passes as a NumPy array.

    The k-means sample threshold is lowered so that tiny simulator data is
    above it (sample, then full Lloyd passes), and the host chunks that the
    initialisation passes copy from the GPU are small, so there are several.
    """
    from numba import cuda

    monkeypatch.setattr(config, "KMEANS_SAMPLE_ROWS", 60)
    monkeypatch.setattr(config, "CHUNK_ROWS", 50)
    X, _ = make_blobs(n=160, d=2, k=3, seed=9)
    sw = np.random.default_rng(9).uniform(0.5, 1.5, size=len(X))
    kw = dict(n_components=3, random_state=1, max_iter=2, tol=0, init_params=init_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = GaussianMixture(backend="cuda", **kw).fit(cuda.to_device(X), sample_weight=sw)
        ref = GaussianMixture(backend="cpu", **kw).fit(X, sample_weight=sw)
    np.testing.assert_allclose(gpu.weights_, ref.weights_, rtol=1e-10)
    np.testing.assert_allclose(gpu.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(gpu.covariances_, ref.covariances_, rtol=1e-10)
    np.testing.assert_allclose(gpu.lower_bounds_, ref.lower_bounds_, rtol=1e-10)


def test_take_rows_from_gpu_chunks(monkeypatch):
    from numba import cuda

    monkeypatch.setattr(config, "CHUNK_ROWS", 7)
    X, _ = make_blobs(n=40, d=3, k=2, seed=10)
    backend = CUDABackend()
    data = backend.prepare(cuda.to_device(X))
    rows = np.array([39, 0, 13, 7, 6, 13])
    np.testing.assert_array_equal(backend.take_rows(data, rows), X[rows])
    np.testing.assert_array_equal(backend.take_rows(data), X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bayesian_mixture_on_cuda_equals_cpu(covariance_type):
    """The variational E-step is the same CUDA kernel with other inputs."""
    from fastem import BayesianGaussianMixture

    X, _ = make_blobs(n=64, d=2, k=2, seed=12)
    sw = np.random.default_rng(12).uniform(0.5, 1.5, size=len(X))
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, max_iter=2,
              tol=0, init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = BayesianGaussianMixture(backend="cuda", **kw).fit(X, sample_weight=sw)
        cpu = BayesianGaussianMixture(backend="cpu", **kw).fit(X, sample_weight=sw)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)
    np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-10)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-10)


def test_ppca_on_cuda_equals_cpu():
    """PPCA's one pass (one component) and its scoring run on the CUDA kernels."""
    from numba import cuda

    from fastem import PPCA

    rng = np.random.default_rng(13)
    X = rng.normal(size=(80, 2)) @ rng.normal(size=(2, 4)) + 0.3 * rng.normal(size=(80, 4)) + 3.0
    ref = PPCA(2).fit(X)
    for data in (X, cuda.to_device(X)):
        got = PPCA(2, backend="cuda").fit(data)
        np.testing.assert_allclose(got.mean_, ref.mean_, rtol=1e-12)
        np.testing.assert_allclose(got.components_, ref.components_, atol=1e-10)
        assert got.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)
        np.testing.assert_allclose(got.score_samples(data), ref.score_samples(X), rtol=1e-11)


@pytest.mark.parametrize("holes", [False, True])
def test_shared_pass_sends_each_chunk_once(monkeypatch, holes):
    """accumulate_many streams X once for all models (each chunk reaches the
    GPU once per pass), and each model gets the statistics of a pass of its
    own; with NaN, the incomplete-data pass the same way."""
    X, _ = make_blobs(n=70, d=2, k=3, seed=7, dtype=np.float32)
    models = [_params(X, k, t) for k, t in [(1, "full"), (3, "diag"), (2, "tied")]]
    if holes:
        X = _holes(X, 0.2, seed=8)
        models = [p.incomplete() for p in models]
    cuda = CUDABackend()
    monkeypatch.setattr(config, "CUDA_MAX_RESIDENT_BYTES", 0)
    monkeypatch.setattr(config, "CUDA_STREAM_BYTES", 25 * X[:1].nbytes)  # 3 chunks
    data = cuda.prepare(X)
    sent = []
    original = CUDABackend._chunks
    monkeypatch.setattr(CUDABackend, "_chunks",
                        lambda self, d: (sent.append(1) or c for c in original(self, d)))
    together = cuda.accumulate_many(data, models)
    assert len(sent) == 3
    for p, got in zip(models, together):
        _assert_stats_close(got, cuda.accumulate(data, p), rtol=1e-12)
        _assert_stats_close(got, CPUBackend().accumulate(X, p), rtol=1e-5)


def test_sweep_on_cuda_equals_cpu():
    from fastem import GaussianMixtureIC

    X, _ = make_blobs(n=60, d=2, k=2, seed=8)
    kw = dict(n_components=[1, 2, 3], covariance_type=["full", "spherical"], random_state=0,
              max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = GaussianMixtureIC(backend="cuda", **kw).fit(X)
        cpu = GaussianMixtureIC(**kw).fit(X)
    np.testing.assert_allclose(gpu.results_["bic"], cpu.results_["bic"], rtol=1e-10)
    assert gpu.n_passes_ == cpu.n_passes_ == 5
    assert (gpu.n_components_, gpu.covariance_type_) == (cpu.n_components_, cpu.covariance_type_)


def test_partial_fit_and_batch_size_on_cuda_equal_cpu():
    """Each batch is one pass on the device (#27)."""
    from fastem import BayesianGaussianMixture

    X, _ = make_blobs(n=90, d=2, k=2, seed=8)
    for cls in (GaussianMixture, BayesianGaussianMixture):
        gpu = cls(n_components=2, random_state=0, backend="cuda")
        cpu = cls(n_components=2, random_state=0, backend="cpu")
        for a in range(0, 90, 30):
            gpu.partial_fit(X[a:a + 30])
            cpu.partial_fit(X[a:a + 30])
        np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)
        np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-10)
    kw = dict(n_components=2, random_state=0, batch_size=40, max_iter=2, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = GaussianMixture(backend="cuda", **kw).fit(X)
        cpu = GaussianMixture(backend="cpu", **kw).fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)


# -- GaussianHMM (#28) ---------------------------------------------------------------


def _hmm_data(n_seq=2, length=9, seed=0):
    """Short sequences of 2-D emissions from 3 states, and a starting model
    per covariance type (the simulator runs a barrier per step in Python)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(length // 2, length, size=n_seq)
    X = rng.normal(size=(int(lengths.sum()), 2)) + 3.0 * rng.integers(0, 3, size=(int(lengths.sum()), 1))
    A = rng.normal(size=(3, 2, 2)) * 0.3
    full = A @ A.transpose(0, 2, 1) + np.eye(2)
    covars = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, size=(3, 2)),
              "spherical": rng.uniform(0.5, 2.0, size=3)}
    start = (rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3) * 3, size=3),
             rng.normal(scale=2.0, size=(3, 2)))
    return X, lengths, start, covars


def _hmm(cls, covariance_type, start, covars, **kw):
    m = cls(n_components=3, covariance_type=covariance_type, init_params="", **kw)
    m.startprob_, m.transmat_, m.means_ = start
    m.covars_ = covars[covariance_type]
    return m


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_hmm_on_cuda_agrees_with_hmmlearn(covariance_type):
    """Baum-Welch on the GPU gives hmmlearn's model, likelihoods, posteriors
    and Viterbi path from the same start."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    from fastem import GaussianHMM

    X, lengths, start, covars = _hmm_data()
    ours = _hmm(GaussianHMM, covariance_type, start, covars, n_iter=2, backend="cuda").fit(X, lengths)
    ref = _hmm(hmmlearn.GaussianHMM, covariance_type, start, covars, n_iter=2).fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
    for name in ("startprob_", "transmat_", "means_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-8,
                                   atol=1e-12, err_msg=name)
    if covariance_type != "spherical":  # hmmlearn 0.3.3 tiles fitted spherical variances
        np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=1e-8, err_msg="covars_")
    log_prob, post = ours.score_samples(X, lengths)
    ref_log_prob, ref_post = ref.score_samples(X, lengths)
    assert log_prob == pytest.approx(ref_log_prob, rel=1e-10)
    np.testing.assert_allclose(post, ref_post, atol=1e-10)
    path_log_prob, path = ours.decode(X, lengths)
    ref_path_log_prob, ref_path = ref.decode(X, lengths)
    np.testing.assert_array_equal(path, ref_path)
    assert path_log_prob == pytest.approx(ref_path_log_prob, rel=1e-10)


def test_gaussian_hmm_on_cuda_weights_float32_streaming_and_gpu_input_equal_cpu(monkeypatch):
    """Sequence weights (one of them 0), float32 compute, X streamed in
    groups of whole sequences, and X given as a GPU array: the CPU's model."""
    from numba import cuda

    from fastem import GaussianHMM
    from fastem.backends.cuda_hmm import HMMPasses

    X, lengths, start, covars = _hmm_data(n_seq=3, length=8, seed=1)
    weights = np.array([2.0, 0.0, 0.5])
    kw = dict(n_iter=2)
    cpu = _hmm(GaussianHMM, "full", start, covars, **kw).fit(X, lengths, sample_weight=weights)
    monkeypatch.setattr(config, "CUDA_MAX_RESIDENT_BYTES", 0)
    monkeypatch.setattr(config, "CUDA_STREAM_BYTES", 8 * (X[:1].nbytes + 24 * 3))
    groups = []
    original = HMMPasses._groups

    def recorded(self, bounds):
        for s0, s1, rows in original(self, bounds):
            groups.append((s0, s1))
            yield s0, s1, rows

    monkeypatch.setattr(HMMPasses, "_groups", recorded)
    gpu = _hmm(GaussianHMM, "full", start, covars, backend="cuda", **kw).fit(
        X, lengths, sample_weight=weights)
    assert groups[:3] == [(0, 1), (1, 2), (2, 3)]  # sequences of 4 to 7 steps, 8 rows a group
    np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-11)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-11)
    # state 2 gets little mass from these short sequences: its covariance
    # (covars_prior over a small denominator) amplifies round-off
    np.testing.assert_allclose(gpu.covars_, cpu.covars_, rtol=1e-9)
    f32 = _hmm(GaussianHMM, "diag", start, covars, **kw).fit(X.astype(np.float32), lengths)
    gpu32 = _hmm(GaussianHMM, "diag", start, covars, backend="cuda", **kw).fit(
        cuda.to_device(X.astype(np.float32)), lengths)
    np.testing.assert_allclose(gpu32.monitor_.history, f32.monitor_.history, rtol=1e-5)
    np.testing.assert_allclose(gpu32.means_, f32.means_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(gpu32.predict(X.astype(np.float32), lengths),
                                  f32.predict(X.astype(np.float32), lengths))


def test_gaussian_hmm_initialised_on_a_gpu_array_equals_cpu():
    """k-means and the covariance of the initialisation read GPU rows chunk by
    chunk: the CPU's starting model, and after an iteration its fit."""
    from numba import cuda

    from fastem import GaussianHMM

    X, lengths, _, _ = _hmm_data(n_seq=2, length=10, seed=2)
    kw = dict(n_components=3, covariance_type="full", n_iter=1, random_state=0)
    cpu = GaussianHMM(**kw).fit(X, lengths)
    gpu = GaussianHMM(backend="cuda", **kw).fit(cuda.to_device(X), lengths)
    np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-11)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)
    np.testing.assert_allclose(gpu.covars_, cpu.covars_, rtol=1e-9)


def test_gaussian_hmm_on_cuda_refuses_what_the_cpu_refuses():
    """NaN in a GPU array (found on the device), bad lengths and a wrong
    feature count: the CPU's clear errors, from fit and from scoring."""
    from numba import cuda

    from fastem import GaussianHMM

    X, lengths, _, _ = _hmm_data(n_seq=2, length=8, seed=3)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="does not fit missing values"):
        GaussianHMM(2, backend="cuda").fit(cuda.to_device(bad), lengths)
    with pytest.raises(ValueError, match="lengths sum to"):
        GaussianHMM(2, backend="cuda").fit(X, lengths[:1])
    m = GaussianHMM(2, backend="cuda", n_iter=1, random_state=0).fit(X, lengths)
    with pytest.raises(ValueError, match="does not fit missing values"):
        m.score(cuda.to_device(bad), lengths)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :1], lengths)


def _holes(X, fraction, seed, empty_rows=()):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    X[list(empty_rows)] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_incomplete_data_pass_and_densities_match_cpu(covariance_type):
    """The incomplete-data kernels (NaN: missing) against the CPU's, on rows
    spanning several tiles, a row with nothing observed among them, float32
    and float64 rows, with and without sample weights: float32 rows compute
    in float32 on both (float32's tolerance; the same centres, shift and
    round-off), and in float64 when the backends are asked for it."""
    X, _ = make_blobs(n=75, d=3, k=3, seed=1)
    X += 50.0  # off the origin: the float32 kernels centre the rows first
    p = _params(X, 3, covariance_type).incomplete()
    sw = np.random.default_rng(2).uniform(0, 2, size=len(X))
    rows64 = _holes(X, 0.3, seed=3, empty_rows=(5,))
    rows32 = _holes(X, 0.3, seed=4).astype(np.float32)
    for rows, dtype, rtol in ((rows64, None, 1e-11), (rows32, np.float64, 1e-11),
                              (rows32, None, 1e-5)):
        cuda, cpu = CUDABackend(dtype), CPUBackend(dtype)
        for weights in (None, sw):
            got = cuda.accumulate(cuda.prepare(rows), p, weights)
            _assert_stats_close(got, cpu.accumulate(rows, p, weights), rtol=rtol)
            assert (got.round_off > 0) == (rows.dtype == np.float32 and dtype is None)
        got = np.concatenate([c for _, _, c in cuda.weighted_log_prob_chunks(cuda.prepare(rows), p)])
        want = np.concatenate([c for _, _, c in cpu.weighted_log_prob_chunks(rows, p)])
        np.testing.assert_allclose(got, want, rtol=rtol * 10, atol=rtol * 10)


def test_fit_with_missing_values_on_cuda_equals_cpu(monkeypatch):
    """A fit of data with NaN on the GPU is the CPU's: from host rows, from a
    GPU array, and streamed from the host in chunks; and it predicts the
    CPU's labels and densities."""
    from numba import cuda

    X = _holes(make_blobs(n=60, d=3, k=2, seed=6)[0], 0.2, seed=7)
    kw = dict(n_components=2, random_state=0, max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = GaussianMixture(backend="cpu", **kw).fit(X)
        fits = [GaussianMixture(backend="cuda", **kw).fit(X),
                GaussianMixture(backend="cuda", **kw).fit(cuda.to_device(X))]
        monkeypatch.setattr(config, "CUDA_MAX_RESIDENT_BYTES", 0)
        monkeypatch.setattr(config, "CUDA_STREAM_BYTES", 25 * X[:1].nbytes)  # 3 chunks
        fits.append(GaussianMixture(backend="cuda", **kw).fit(X))
    for gpu in fits:
        np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-10)
        np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-10)
        np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-12)
        np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
        np.testing.assert_allclose(gpu.score_samples(cuda.to_device(X)), cpu.score_samples(X),
                                   rtol=1e-12)
    from fastem import GaussianMixtureImputer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = [GaussianMixtureImputer(backend=b, **kw).fit_transform(X) for b in ("cuda", "cpu")]
        # float32 rows: a float32 fit on both
        X32 = X.astype(np.float32)
        narrow = [GaussianMixture(backend=b, **kw).fit(X32) for b in ("cuda", "cpu")]
    np.testing.assert_allclose(filled[0], filled[1], rtol=1e-10)
    np.testing.assert_allclose(narrow[0].means_, narrow[1].means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(narrow[0].covariances_, narrow[1].covariances_, rtol=1e-4)
    np.testing.assert_allclose(narrow[0].score_samples(X32), narrow[1].score_samples(X32),
                               rtol=1e-5)


def test_estimators_without_missing_values_refuse_nan_on_the_gpu():
    """PPCA does not fit missing values: NaN in host rows or in a GPU array is
    its clear error, as on the CPU."""
    from numba import cuda

    from fastem import PPCA

    X = _holes(make_blobs(n=40, d=3, k=2, seed=8)[0], 0.1, seed=9)
    for rows in (X, cuda.to_device(X)):
        with pytest.raises(ValueError, match="NaN"):
            PPCA(1, backend="cuda").fit(rows)


def test_far_rows_on_cuda_are_the_cpus():
    """A row 1e25 standard deviations away: float32 overflows there and the
    chunk is scored again in float64 (mixtures), and the HMM's log-space
    recursions keep the other steps' posteriors and path (its emissions
    shifted per step); a row 1e200 away is refused as on the CPU."""
    from fastem import GaussianHMM

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 4]
    far = X[:5].copy()
    far[2] *= 1e25
    X32, far32 = X.astype(np.float32), far.astype(np.float32)
    cpu = GaussianMixture(2, random_state=0, max_iter=3).fit(X32)
    gpu = GaussianMixture(2, random_state=0, max_iter=3, backend="cuda").fit(X32)
    assert np.all(np.isfinite(gpu.score_samples(far32)))
    np.testing.assert_allclose(gpu.score_samples(far32), cpu.score_samples(far32), rtol=1e-6)
    hmm_kw = dict(n_components=2, random_state=0, n_iter=2)
    cpu_hmm = GaussianHMM(**hmm_kw).fit(X)
    gpu_hmm = GaussianHMM(backend="cuda", **hmm_kw).fit(X)
    log_prob, post = gpu_hmm.score_samples(far)
    want_log_prob, want_post = cpu_hmm.score_samples(far)
    assert log_prob == pytest.approx(want_log_prob, rel=1e-12)
    np.testing.assert_allclose(post, want_post, atol=1e-12)
    np.testing.assert_array_equal(gpu_hmm.predict(far), cpu_hmm.predict(far))
    assert gpu_hmm.decode(far)[0] == pytest.approx(cpu_hmm.decode(far)[0], rel=1e-12)
    # float32 steps that overflow float32 (not float64): the GPU's passes run again in float64
    cpu32 = GaussianHMM(**hmm_kw).fit(X32)
    gpu32 = GaussianHMM(backend="cuda", **hmm_kw).fit(X32)
    assert np.isfinite(gpu32.score(far32))
    assert gpu32.score(far32) == pytest.approx(cpu32.score(far32), rel=1e-6)
    np.testing.assert_allclose(gpu32.predict_proba(far32), cpu32.predict_proba(far32), atol=1e-6)
    np.testing.assert_array_equal(gpu32.predict(far32), cpu32.predict(far32))
    far[2] *= 1e175
    for method in (gpu.predict_proba, gpu_hmm.predict_proba, gpu_hmm.predict):
        with pytest.raises(ValueError, match="overflow float64"):
            method(far)
