"""``fastem.VAE``: a variational autoencoder trained by the reparameterisation trick.

The model (Kingma & Welling 2014) is ``z ~ N(0, I)``, ``x | z ~ N(g(z), sigma^2 I)``
(or Bernoulli with logits ``g(z)``), with the encoder
``q(z | x) = N(mu(x), diag(v(x))^2)``; training maximises the ELBO

    E_q[log p(x | z)] - KL(q(z | x) || N(0, I)),

estimated with ``z = mu(x) + v(x) * xi``, ``xi ~ N(0, I)``, by minibatch Adam.
With ``hidden_layers=()`` encoder and decoder are linear and the optimum is the
probabilistic PCA solution (Lucas et al. 2019), which :class:`fastem.PPCA` gives
exactly: the tests check the one against the other.

PyTorch is the optional extra ``fastem[vae]``; it is imported when a VAE is
fitted or loaded, never by ``import fastem``.

For Gaussian data the network sees ``(x - m) / s`` with ``m`` the column means
and ``s`` one scale for all columns (the root mean column variance): an
isotropic affine map keeps the model class (pPCA stays pPCA) and every
reported ELBO and likelihood is in the units of X (``- d log s``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import _validation as val
from .. import config
from .._estimator import EstimatorBase, SaveLoad
from ..model_file import ModelFile, register_model

INSTALL_HINT = "the VAE needs PyTorch: pip install 'fastem[vae]' (or pip install torch)"
LIKELIHOODS = ("gaussian", "bernoulli")


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return torch


def _build(torch, n_features, n_latent, hidden_layers, likelihood, log_noise):
    """Encoder and decoder as ``torch.nn.Module``s (float32)."""
    nn = torch.nn

    def mlp(sizes):
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        return nn.Sequential(*layers)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = mlp([n_features, *hidden_layers, 2 * n_latent])

        def forward(self, x):
            mean, log_var = self.body(x).chunk(2, dim=-1)
            return mean, log_var

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = mlp([n_latent, *reversed(hidden_layers), n_features])
            # log sigma^2 of the (scaled) Gaussian likelihood; learned unless fixed.
            self.log_noise = nn.Parameter(torch.tensor(float(log_noise[0])),
                                          requires_grad=log_noise[1])

        def forward(self, z):
            return self.body(z)

    return Encoder(), Decoder()


def _draws(torch, encoder, decoder, x, n_draws, likelihood, generator):
    """``n_draws`` reparameterised draws ``z = mu(x) + v(x) * xi`` per row and
    ``log p(x | z)`` of each: ``(mean, log_var, std, eps, z, log_px)``, log_px (S, m).

    Gaussian: ``log N(x; g(z), sigma^2 I)``; Bernoulli: the negative binary
    cross-entropy of the logits ``g(z)``.
    """
    mean, log_var = encoder(x)
    std = torch.exp(0.5 * log_var)
    eps = torch.randn((n_draws,) + mean.shape, generator=generator, dtype=mean.dtype,
                      device=mean.device)
    z = mean + std * eps                                    # (S, m, q)
    out = decoder(z)                                        # (S, m, d)
    if likelihood == "gaussian":
        log_noise = decoder.log_noise
        d = x.shape[-1]
        sq = ((x - out) ** 2).sum(-1)
        log_px = -0.5 * (d * (math.log(2 * math.pi) + log_noise) + sq * torch.exp(-log_noise))
    else:
        log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
            out, x.expand_as(out), reduction="none").sum(-1)
    return mean, log_var, std, eps, z, log_px


def elbo_rows(torch, encoder, decoder, x, n_samples, likelihood, generator=None):
    """Per-row ELBO estimates, shape (m,), with ``n_samples`` reparameterised draws:
    ``log p(x | z)`` averaged over the draws, minus the analytic KL.
    Differentiable with respect to every parameter (the reparameterisation trick).
    """
    mean, log_var, std, _, _, log_px = _draws(torch, encoder, decoder, x, n_samples, likelihood,
                                              generator)
    kl = 0.5 * (mean ** 2 + std ** 2 - 1.0 - log_var).sum(-1)
    return log_px.mean(0) - kl


def importance_log_likelihood_rows(torch, encoder, decoder, x, n_importance, likelihood,
                                   generator=None):
    """Importance-weighted estimate of ``log p(x)`` per row (Burda et al. 2016):
    ``log mean_k p(x, z_k) / q(z_k | x)`` with ``n_importance`` draws; a lower
    bound that tightens towards ``log p(x)`` as ``n_importance`` grows."""
    _, log_var, _, eps, z, log_px = _draws(torch, encoder, decoder, x, n_importance, likelihood,
                                           generator)
    log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(-1)
    log_qz = -0.5 * (eps ** 2 + math.log(2 * math.pi) + log_var).sum(-1)
    return torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(n_importance)


@register_model
class VAE(SaveLoad, EstimatorBase):
    """Variational autoencoder fitted by minibatch gradient ascent on the ELBO.

    Parameters
    ----------
    n_latent : int, default=2
        Dimensions of z.
    hidden_layers : tuple of int, default=(256,)
        Widths of the encoder's hidden layers (ReLU); the decoder mirrors them.
        ``()``: linear encoder and decoder (probabilistic PCA).
    likelihood : {'gaussian', 'bernoulli'}, default='gaussian'
        ``p(x | z)``; 'bernoulli' needs X in [0, 1].
    noise_variance : float or None, default=None
        Gaussian ``sigma^2`` in the units of X: None learns it, a float fixes it.
    n_samples : int, default=1
        Reparameterised draws per row in each gradient step.
    batch_size : int, default=256
        Rows per gradient step.
    max_epochs : int, default=200
        Most passes over the data.
    learning_rate : float, default=1e-3
        Adam's step size.
    tol : float, default=1e-4
        Early stopping: training stops when the epoch's mean ELBO per row has
        not improved by more than ``tol`` nats for ``n_iter_no_change`` epochs.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    device : {'cpu', 'cuda'}, default='cpu'
        Where PyTorch trains and evaluates the network.
    random_state : int or None, default=None
        Seeds the weights, the batch order and the draws (reproducible on the CPU).
    verbose : int, default=0
        1: a progress bar with the ELBO on stderr.

    Attributes
    ----------
    elbo_history_ : list of float
        Mean training ELBO per row (weighted; nats, units of X) of every epoch.
    epoch_seconds_ : list of float
        Wall time of every epoch.
    n_iter_ : int
        Epochs run.
    converged_ : bool
        Whether training stopped early (no improvement of ``tol``).
    noise_variance_ : float
        The Gaussian ``sigma^2`` in the units of X (nan for 'bernoulli').
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,), dtype object
        Column names of a dataframe X, as in :class:`GaussianMixture`.
    encoder_, decoder_ : the fitted ``torch.nn.Module`` objects

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import VAE
    >>> X = np.random.default_rng(0).normal(size=(300, 4))
    >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
    >>> vae.transform(X).shape, len(vae.elbo_history_)
    ((300, 2), 5)
    """

    _fitted_attribute = "encoder_"
    _model_file = ModelFile(arrays={})  # saved and loaded by _file_contents / _from_file

    def __init__(self, n_latent=2, *, hidden_layers=(256,), likelihood="gaussian",
                 noise_variance=None, n_samples=1, batch_size=256, max_epochs=200,
                 learning_rate=1e-3, tol=1e-4, n_iter_no_change=10, device="cpu",
                 random_state=None, verbose=0):
        self.n_latent = n_latent
        self.hidden_layers = hidden_layers
        self.likelihood = likelihood
        self.noise_variance = noise_variance
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Checks
    # ------------------------------------------------------------------

    def _check_params(self):
        for name, low in (("n_latent", 1), ("n_samples", 1), ("batch_size", 1),
                          ("max_epochs", 1), ("n_iter_no_change", 1)):
            val._check_int(getattr(self, name), name, low)
        val._check_int(self.verbose, "verbose", 0)
        if not isinstance(self.hidden_layers, (tuple, list)) or any(
                isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                for h in self.hidden_layers):
            raise ValueError(f"Invalid value for 'hidden_layers': {self.hidden_layers!r}; "
                             "expected a tuple of positive integers (() for linear).")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"Invalid value for 'likelihood': {self.likelihood!r}; expected "
                             f"one of {list(LIKELIHOODS)}.")
        if self.noise_variance is not None:
            val.check_positive_real(self.noise_variance, "noise_variance")
        val.check_positive_real(self.learning_rate, "learning_rate")
        val._check_real(self.tol, "tol", 0.0)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"Invalid value for 'device': {self.device!r}; expected 'cpu' "
                             "or 'cuda'.")
        rs = self.random_state
        if not (rs is None or isinstance(rs, (int, np.integer))) or isinstance(rs, bool):
            raise ValueError(f"Invalid value for 'random_state': {rs!r}; expected None or an int.")

    @staticmethod
    def _check_range(X):
        """'bernoulli' models data in [0, 1]: fit and every method refuse the rest."""
        lo, hi = _column_range(X)
        if lo < 0.0 or hi > 1.0:
            raise ValueError("likelihood='bernoulli' needs X in [0, 1]; got values in "
                             f"[{lo:.4g}, {hi:.4g}].")

    def _torch_device(self, torch):
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but PyTorch sees no CUDA GPU; use device='cpu'.")
        return torch.device(self.device)

    # ------------------------------------------------------------------
    # Fit
    # ------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Train on X by minibatch Adam; rows are read batch by batch, so a
        memory map is never copied whole (nor moved whole to the GPU).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Also a memory map or a dataframe.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the ELBO (an integer weight
            counts a row that many times in expectation).

        Returns
        -------
        self : VAE
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> vae.n_iter_
        5
        """
        self._check_params()
        torch = _torch()
        X = self._check_X(X, reset=True, backend=_HostInput())
        n, d = X.shape
        sw = val.check_sample_weight(sample_weight, n)
        if self.likelihood == "bernoulli":
            self._check_range(X)
            shift, scale = np.zeros(d), 1.0
        else:
            shift, scale = _centre_and_scale(X, sw)
        device = self._torch_device(torch)
        rng = np.random.RandomState(self.random_state)
        seed = 0 if self.random_state is None else int(self.random_state)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(rng.randint(2**31)))
        fixed = self.noise_variance is not None
        log_noise = math.log(self.noise_variance / scale**2) if fixed else 0.0
        # PyTorch draws initial weights from its global generator: seed it
        # inside fork_rng, which restores the caller's state afterwards.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.randint(2**31)))
            encoder, decoder = _build(torch, d, self.n_latent, tuple(self.hidden_layers),
                                      self.likelihood, (log_noise, not fixed))
        encoder.to(device)
        decoder.to(device)
        params = [p for p in list(encoder.parameters()) + list(decoder.parameters())
                  if p.requires_grad]
        opt = torch.optim.Adam(params, lr=self.learning_rate)
        weights = np.ones(n) if sw is None else sw
        offset = -d * math.log(scale) if self.likelihood == "gaussian" else 0.0
        bar = _progress(self.verbose)
        history, seconds, best, stale = [], [], -np.inf, 0
        converged = False
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):
            t0 = time.perf_counter()
            order = rng.permutation(n)
            total = weight_sum = 0.0
            for start in range(0, n, self.batch_size):
                rows = np.sort(order[start:start + self.batch_size])
                w = weights[rows]
                if not w.sum() > 0:
                    continue
                xb = _to_tensor(torch, X, rows, shift, scale, device)
                wb = torch.as_tensor(w, dtype=torch.float32, device=device)
                elbo = elbo_rows(torch, encoder, decoder, xb, self.n_samples, self.likelihood, gen)
                loss = -(wb * elbo).sum() / wb.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float((wb * elbo).sum().detach())
                weight_sum += float(w.sum())
            mean_elbo = total / weight_sum + offset
            if not math.isfinite(mean_elbo):  # the network's weights are NaN or will be
                if bar is not None:
                    bar.close()
                raise ValueError(
                    f"VAE training diverged: the ELBO of epoch {epoch} is {mean_elbo}. Lower "
                    f"learning_rate (now {self.learning_rate:g})"
                    + (f", or fix noise_variance nearer the data's variance (now "
                       f"{self.noise_variance:g})" if fixed else "") + ".")
            history.append(mean_elbo)
            seconds.append(time.perf_counter() - t0)
            if bar is not None:
                bar(epoch, self.max_epochs, mean_elbo, mean_elbo - (history[-2] if epoch > 1
                                                                    else np.nan),
                    time.perf_counter() - t0)
            if mean_elbo > best + self.tol:
                best, stale = mean_elbo, 0
            else:
                stale += 1
                if stale >= self.n_iter_no_change:
                    converged = True
                    break
        if bar is not None:
            bar.close()
        encoder.eval()
        decoder.eval()
        self.encoder_, self.decoder_ = encoder, decoder
        self._shift, self._scale = shift, scale
        self._generator_seed = seed
        self.elbo_history_ = history
        self.epoch_seconds_ = seconds
        self.n_iter_ = epoch
        self.converged_ = converged
        self.noise_variance_ = (float(torch.exp(decoder.log_noise).detach()) * scale**2
                                if self.likelihood == "gaussian" else float("nan"))
        self._set_feature_names(d)
        return self

    # ------------------------------------------------------------------
    # Rows
    # ------------------------------------------------------------------

    def _map(self, X, fn, out_columns):
        """``fn(tensor of scaled rows) -> tensor`` chunk by chunk, into an ndarray."""
        self._check_fitted()
        torch = _torch()
        X = self._check_X(X, reset=False, backend=_HostInput())
        if self.likelihood == "bernoulli":
            self._check_range(X)
        device = next(self.encoder_.parameters()).device
        n = X.shape[0]
        out = np.empty((n,) if out_columns is None else (n, out_columns))
        with torch.no_grad():
            for start in range(0, n, config.CHUNK_ROWS):
                stop = min(n, start + config.CHUNK_ROWS)
                xb = _to_tensor(torch, X, slice(start, stop), self._shift, self._scale, device)
                out[start:stop] = fn(torch, xb).double().cpu().numpy()
        return out

    def _generator(self, torch, device):
        gen = torch.Generator(device=device)
        gen.manual_seed(self._generator_seed)
        return gen

    def transform(self, X):
        """Encoder means ``mu(x)`` of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_latent)
            The means of ``q(z | x)``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> vae.transform(X[:3]).shape
        (3, 2)
        """
        return self._map(X, lambda torch, xb: self.encoder_(xb)[0], self.n_latent)

    def inverse_transform(self, Z):
        """Decoder means for latent rows Z.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_latent)
            Latent coordinates, such as :meth:`transform`'s output.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The means of ``p(x | z)`` in the units of X (probabilities for
            'bernoulli').

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> vae.inverse_transform(np.zeros((1, 2))).shape
        (1, 4)
        """
        self._check_fitted()
        torch = _torch()
        Z = val.check_array(Z, name="Z", n_features=self.n_latent, estimator="VAE")
        device = next(self.decoder_.parameters()).device
        with torch.no_grad():
            out = self.decoder_(torch.as_tensor(Z, dtype=torch.float32, device=device))
            out = torch.sigmoid(out) if self.likelihood == "bernoulli" else out
        out = out.double().cpu().numpy()
        return out * self._scale + self._shift

    def sample(self, n_samples=1):
        """Draw rows ``x ~ p(x | z)`` with ``z ~ N(0, I)``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw (from a generator seeded by ``random_state``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The rows, in the units of X.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> vae.sample(3).shape
        (3, 4)
        """
        self._check_fitted()
        torch = _torch()
        val._check_int(n_samples, "n_samples", 1)
        device = next(self.decoder_.parameters()).device
        gen = self._generator(torch, device)
        with torch.no_grad():
            z = torch.randn((n_samples, self.n_latent), generator=gen, device=device)
            out = self.decoder_(z)
            if self.likelihood == "bernoulli":
                draws = torch.bernoulli(torch.sigmoid(out), generator=gen)
            else:
                noise = torch.randn(out.shape, generator=gen, device=device)
                draws = out + torch.exp(0.5 * self.decoder_.log_noise) * noise
        return draws.double().cpu().numpy() * self._scale + self._shift

    def score_samples(self, X, n_samples=None, importance_samples=None):
        """Evidence lower bound of each row, or an importance-weighted ``log p(x)``.

        Draws come from a generator seeded by ``random_state``: repeatable.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.
        n_samples : int, default=None
            Draws per row for the ELBO; None means the fit's ``n_samples``,
            at least 16.
        importance_samples : int, default=None
            When given, the importance-weighted estimate of ``log p(x)`` with
            this many draws (a tighter bound than the ELBO) instead.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Nats, in the units of X.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> elbo = vae.score_samples(X[:5])
        >>> iwae = vae.score_samples(X[:5], importance_samples=64)
        >>> bool(np.mean(iwae) >= np.mean(elbo))
        True
        """
        self._check_fitted()
        offset = -self.n_features_in_ * math.log(self._scale) if self.likelihood == "gaussian" else 0.0
        torch = _torch()
        gen = self._generator(torch, next(self.encoder_.parameters()).device)
        if importance_samples is not None:
            val._check_int(importance_samples, "importance_samples", 1)

            def fn(torch, xb):
                return importance_log_likelihood_rows(torch, self.encoder_, self.decoder_, xb,
                                                      importance_samples, self.likelihood, gen)
        else:
            s = max(16, self.n_samples) if n_samples is None else n_samples
            val._check_int(s, "n_samples", 1)

            def fn(torch, xb):
                return elbo_rows(torch, self.encoder_, self.decoder_, xb, s, self.likelihood, gen)
        return self._map(X, fn, None) + offset

    def score(self, X, y=None, sample_weight=None, **kwargs):
        """Mean of :meth:`score_samples` over the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the features the model was fitted on.
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the mean.
        **kwargs : dict
            ``n_samples`` or ``importance_samples``, as in :meth:`score_samples`.

        Returns
        -------
        score : float
            The (weighted) mean.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> bool(np.isfinite(vae.score(X)))
        True
        """
        logp = self.score_samples(X, **kwargs)
        return float(np.average(logp, weights=val.check_sample_weight(sample_weight, len(logp))))

    # ------------------------------------------------------------------
    # Model files (weights as arrays; no pickle)
    # ------------------------------------------------------------------

    def _file_contents(self):
        arrays = {f"encoder/{k}": v.detach().cpu().numpy()
                  for k, v in self.encoder_.state_dict().items()}
        arrays.update({f"decoder/{k}": v.detach().cpu().numpy()
                       for k, v in self.decoder_.state_dict().items()})
        arrays["shift"] = np.asarray(self._shift, dtype=np.float64)
        fitted = {"n_features_in_": int(self.n_features_in_), "n_iter_": int(self.n_iter_),
                  "converged_": bool(self.converged_), "scale": float(self._scale),
                  "elbo_history_": [float(v) for v in self.elbo_history_],
                  "noise_variance_": float(self.noise_variance_),
                  "generator_seed": int(self._generator_seed)}
        return arrays, fitted

    @classmethod
    def _from_file(cls, model, fitted, members):
        """The fitted VAE of a model file: ``model`` carries the file's checked
        parameters, ``fitted`` its JSON, ``members`` its arrays (each read only
        after its declared shape matches the network the parameters build).

        The network is loaded onto the CPU (``device='cpu'``) unless the
        caller asks for a device (:func:`fastem.load`'s ``device``): a model
        trained on a GPU loads on a machine without one.
        """
        from ..model_file import FileError, fitted_value, is_float, is_int

        torch = _torch()

        def value(name, check, what):
            return fitted_value(fitted, name, check, what)

        d = value("n_features_in_", is_int(1), "an integer >= 1")
        scale = value("scale", lambda v: is_float(v) and 0 < v < math.inf, "a positive number")
        noise = fitted.get("noise_variance_")
        if model.likelihood == "gaussian":
            value("noise_variance_", lambda v: is_float(v) and 0 < v < math.inf,
                  "a positive number")
        elif not (noise is None or isinstance(noise, float) and math.isnan(noise)):
            raise FileError("metadata.fitted.noise_variance_", "must be NaN for 'bernoulli'")
        history = value("elbo_history_", lambda v: isinstance(v, list)
                        and all(is_float(x) for x in v), "a list of numbers")
        model.hidden_layers = tuple(model.hidden_layers)
        encoder, decoder = _build(torch, d, model.n_latent, model.hidden_layers,
                                  model.likelihood, (0.0, model.noise_variance is None))
        for prefix, net in (("encoder/", encoder), ("decoder/", decoder)):
            state = {key: torch.as_tensor(members.read(prefix + key, tuple(t.shape)),
                                          dtype=t.dtype)
                     for key, t in net.state_dict().items()}
            net.load_state_dict(state)
        model.device = "cpu"
        model.encoder_, model.decoder_ = encoder.eval(), decoder.eval()
        model._shift, model._scale = members.read("shift", (d,)), float(scale)
        model._generator_seed = value("generator_seed", is_int(0), "an integer >= 0")
        model.n_features_in_ = d
        model.n_iter_ = value("n_iter_", is_int(0), "an integer >= 0")
        model.converged_ = value("converged_", lambda v: isinstance(v, bool), "true or false")
        model.elbo_history_ = [float(x) for x in history]
        model.noise_variance_ = float("nan") if noise is None else float(noise)
        return model

    def to_device(self, device):
        """Move the fitted network to another device.

        A model loads onto the CPU (:func:`fastem.load`); move it to the GPU
        with ``to_device("cuda")``.

        Parameters
        ----------
        device : {'cpu', 'cuda'}
            The PyTorch device; becomes the ``device`` parameter.

        Returns
        -------
        self : VAE
            The model, on ``device``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastem import VAE
        >>> X = np.random.default_rng(0).normal(size=(300, 4))
        >>> vae = VAE(n_latent=2, hidden_layers=(16,), max_epochs=5, random_state=0).fit(X)
        >>> vae.to_device("cpu").device
        'cpu'
        """
        self._check_fitted()
        previous, self.device = self.device, device
        try:
            self._check_params()
            target = self._torch_device(_torch())
        except ValueError:
            self.device = previous
            raise
        self.encoder_.to(target)
        self.decoder_.to(target)
        return self


class _HostInput:
    """Input validation for the VAE: host arrays, memory maps, dataframes."""

    @staticmethod
    def check_input(X, n_features=None, estimator="VAE"):
        from ..backends.cpu import CPUBackend

        return CPUBackend().check_input(X, n_features=n_features, estimator=estimator)


def _to_tensor(torch, X, rows, shift, scale, device):
    """Rows of X (an index array or a slice), scaled, as a float32 tensor on ``device``."""
    block = (np.asarray(X[rows], dtype=np.float64) - shift) / scale
    return torch.as_tensor(block, dtype=torch.float32).to(device)


def _centre_and_scale(X, sample_weight):
    """Weighted column means and one scale, the root mean column variance,
    chunk by chunk."""
    n, d = X.shape
    w_all = np.ones(n) if sample_weight is None else sample_weight
    total, s1 = w_all.sum(), np.zeros(d)
    for start in range(0, n, config.CHUNK_ROWS):
        stop = min(n, start + config.CHUNK_ROWS)
        s1 += w_all[start:stop] @ np.asarray(X[start:stop], dtype=np.float64)
    mean = s1 / total
    s2 = 0.0
    for start in range(0, n, config.CHUNK_ROWS):
        stop = min(n, start + config.CHUNK_ROWS)
        diff = np.asarray(X[start:stop], dtype=np.float64) - mean
        s2 += float(w_all[start:stop] @ (diff * diff).sum(axis=1))
    variance = s2 / total / d
    if not math.isfinite(variance):
        raise ValueError("X's variance overflows float64 (values near 1e154 or beyond): "
                         "rescale X. The VAE's densities are in the units of X.")
    scale = math.sqrt(variance)
    return mean, (scale if scale > 0 else 1.0)


def _column_range(X):
    lo, hi = np.inf, -np.inf
    for start in range(0, X.shape[0], config.CHUNK_ROWS):
        chunk = X[start:start + config.CHUNK_ROWS]
        lo, hi = min(lo, float(np.min(chunk))), max(hi, float(np.max(chunk)))
    return lo, hi


def _progress(verbose):
    if not verbose:
        return None
    from .._progress import FitProgress

    return FitProgress("VAE", unit="epoch")


__all__ = ["VAE", "elbo_rows", "importance_log_likelihood_rows"]
