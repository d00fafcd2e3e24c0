"""VAE: the reparameterised ELBO against the closed form of the linear-Gaussian
case, the linear VAE against exact pPCA, streaming, files, and without PyTorch."""

import math
import subprocess
import sys

import numpy as np
import pytest

import fastem
from fastem import PPCA, VAE

torch = pytest.importorskip("torch")
from fastem.latent.vae import _build, elbo_rows  # noqa: E402


def _ppca_data(n=20_000, d=10, q=3, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * np.linspace(3, 1, q)
    return rng.normal(size=(n, q)) @ W.T + 0.5 * rng.normal(size=(n, d)) + 5.0


def _closed_form_elbo(enc, dec, x):
    """ELBO of a linear decoder ``W z + b`` with Gaussian noise, in closed form:
    ``log N(x; W mu + b, s I) - tr(W diag(v) W^T) / (2 s) - KL``."""
    mean, log_var = enc(x)
    var = torch.exp(log_var)
    W, b = dec.body[0].weight, dec.body[0].bias
    s = torch.exp(dec.log_noise)
    d = x.shape[1]
    resid = x - mean @ W.T - b
    log_px = -0.5 * (d * (math.log(2 * math.pi) + dec.log_noise) + (resid ** 2).sum(1) / s)
    trace = (var[:, None, :] * W[None] ** 2).sum((1, 2))
    kl = 0.5 * (mean ** 2 + var - 1.0 - log_var).sum(1)
    return log_px - 0.5 * trace / s - kl


def test_reparameterised_elbo_and_gradients_match_the_closed_form():
    torch.manual_seed(0)
    enc, dec = _build(torch, 4, 2, (), "gaussian", (math.log(0.7), True))
    x = torch.randn(5, 4)
    gen = torch.Generator().manual_seed(1)
    mc = elbo_rows(torch, enc, dec, x, 200_000, "gaussian", gen)
    exact = _closed_form_elbo(enc, dec, x)
    np.testing.assert_allclose(mc.detach().numpy(), exact.detach().numpy(), rtol=2e-3, atol=2e-3)
    params = list(enc.parameters()) + list(dec.parameters())
    g_mc = torch.autograd.grad(mc.sum(), params)
    g_exact = torch.autograd.grad(exact.sum(), params)
    for a, b in zip(g_mc, g_exact):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0.02, atol=0.02)


def test_linear_vae_with_default_settings_reaches_the_ppca_optimum():
    """Lucas et al. (2019): the linear VAE's optimum is the pPCA MLE, where its
    ELBO is tight. Default training settings get there."""
    from scipy.linalg import subspace_angles

    X = _ppca_data()
    ppca = PPCA(3).fit(X)
    exact = ppca.log_likelihood_ / len(X)
    vae = VAE(3, hidden_layers=(), random_state=0).fit(X)
    elbo = vae.score(X, n_samples=64)
    assert exact - 0.02 < elbo < exact + 0.002  # within 0.02 nats, never clearly above
    W = vae.decoder_.body[0].weight.detach().numpy().astype(float)
    angles = np.degrees(subspace_angles(W, ppca.components_.T))
    assert angles.max() < 3.0
    assert vae.noise_variance_ == pytest.approx(ppca.noise_variance_, rel=0.05)
    part = X[:2000]
    iw = vae.score(part, importance_samples=64)
    # the importance-weighted bound is tighter than the ELBO and still below log p(x)
    assert vae.score(part, n_samples=64) <= iw < ppca.score(part) + 0.005


def _small(seed=1):
    return _ppca_data(n=600, d=5, q=2, seed=seed)


def test_reproducible_and_memmap_streams_the_same_fit(tmp_path):
    X = _small()
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    kw = dict(hidden_layers=(16,), max_epochs=5, random_state=3)
    a = VAE(2, **kw).fit(X)
    b = VAE(2, **kw).fit(mm)
    assert a.elbo_history_ == b.elbo_history_
    np.testing.assert_array_equal(a.transform(X), b.transform(mm))
    assert len(a.elbo_history_) == a.n_iter_ == 5


def test_rows_and_files(tmp_path):
    X = _small()
    vae = VAE(2, hidden_layers=(8,), max_epochs=3, random_state=0).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (len(X), 2)
    assert vae.inverse_transform(Z).shape == X.shape
    assert vae.sample(7).shape == (7, 5)
    assert np.isfinite(vae.score_samples(X)).all()
    vae.save(tmp_path / "v.npz")
    loaded = fastem.load(tmp_path / "v.npz")
    assert type(loaded) is VAE and loaded.hidden_layers == (8,)
    np.testing.assert_array_equal(loaded.transform(X), Z)
    np.testing.assert_array_equal(loaded.score_samples(X), vae.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(4), vae.sample(4))


def test_bernoulli_likelihood_and_weights():
    rng = np.random.default_rng(0)
    X = (rng.uniform(size=(400, 6)) < np.linspace(0.1, 0.9, 6)).astype(float)
    vae = VAE(2, hidden_layers=(16,), likelihood="bernoulli", max_epochs=20, random_state=0)
    vae.fit(X)
    assert np.all((vae.inverse_transform(vae.transform(X)) >= 0)
                  & (vae.inverse_transform(vae.transform(X)) <= 1))
    assert set(np.unique(vae.sample(50))) <= {0.0, 1.0}
    assert np.isnan(vae.noise_variance_)
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        VAE(2, likelihood="bernoulli").fit(X * 2)
    w = np.r_[np.zeros(200), np.ones(200)]  # half the rows weigh nothing
    only_second = VAE(2, hidden_layers=(16,), likelihood="bernoulli", max_epochs=20,
                      random_state=0).fit(X, sample_weight=w)
    assert only_second.score(X[200:]) > only_second.score(X[:200]) - 1.0  # trained on the second half


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_latent=0), "n_latent"), (dict(hidden_layers=(0,)), "hidden_layers"),
    (dict(hidden_layers=8), "hidden_layers"), (dict(likelihood="poisson"), "likelihood"),
    (dict(noise_variance=-1.0), "noise_variance"), (dict(learning_rate=0.0), "learning_rate"),
    (dict(batch_size=0), "batch_size"), (dict(device="tpu"), "device"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**{"n_latent": 2, **kwargs}).fit(_small())


def test_fixed_noise_variance_is_kept():
    vae = VAE(2, hidden_layers=(), noise_variance=0.3, max_epochs=3, random_state=0).fit(_small())
    assert vae.noise_variance_ == pytest.approx(0.3, rel=1e-6)


def test_without_pytorch_a_clear_error():
    code = ("import sys\n"
            "sys.modules['torch'] = None\n"
            "import numpy as np, fastem\n"
            "try:\n"
            "    fastem.VAE(2).fit(np.ones((10, 3)))\n"
            "except ImportError as e:\n"
            "    assert \"pip install 'fastem[vae]'\" in str(e), e\n"
            "else:\n"
            "    raise AssertionError('no error')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_bernoulli_model_refuses_in_every_method_what_fit_refuses():
    rng = np.random.default_rng(0)
    B = (rng.uniform(size=(200, 4)) < 0.5).astype(float)
    vae = VAE(2, hidden_layers=(8,), likelihood="bernoulli", max_epochs=2, random_state=0).fit(B)
    with pytest.raises(ValueError) as refused:
        VAE(2, likelihood="bernoulli").fit(5 * B)
    for method in (vae.score_samples, vae.score, vae.transform):
        with pytest.raises(ValueError) as info:
            method(5 * B)
        assert str(info.value) == str(refused.value)


def test_fit_leaves_pytorch_global_generator_alone():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    a = VAE(2, hidden_layers=(8,), max_epochs=2, random_state=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
    b = VAE(2, hidden_layers=(8,), max_epochs=2, random_state=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
    for p, q in zip(a.encoder_.parameters(), b.encoder_.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())  # still seeded


def test_training_that_diverges_or_data_beyond_float64_are_errors_not_nan_models():
    """A learning rate that blows the weights up, or a fixed noise variance
    far below the data's, made a model whose every score was NaN; X whose
    variance overflows float64 made one that scaled every row to 0."""
    X = np.random.default_rng(0).normal(size=(200, 4))
    kw = dict(n_latent=2, hidden_layers=(8,), max_epochs=3, random_state=0)
    with pytest.raises(ValueError, match="diverged.*Lower learning_rate"):
        VAE(learning_rate=1e10, **kw).fit(X)
    with pytest.raises(ValueError, match="diverged.*noise_variance nearer"):
        VAE(noise_variance=1e-300, **kw).fit(X)
    with pytest.raises(ValueError, match="variance overflows float64"):
        VAE(**kw).fit(X * 1e200)
    assert np.isfinite(VAE(**kw).fit(X * 1e150).score(X * 1e150))
