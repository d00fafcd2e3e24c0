"""VAE training throughput: fastem.VAE against a plain PyTorch VAE of the same
size written the usual way (TensorDataset + DataLoader(shuffle=True), an
nn.Module, Adam), same data, same machine, same run.

    python benchmarks/vae_speed.py                           # 200,000 x 64, hidden 256, latent 8
    python benchmarks/vae_speed.py --n-samples 20000 --epochs 2

Reported: rows per second per epoch (median over epochs after the first, which
pays the warm-up) and the last epoch's mean training ELBO per row of each; the
architectures, batch size, learning rate and draws per row are identical.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np


def plain_torch_vae(X, n_latent, hidden, batch_size, epochs, lr, seed):
    """The usual PyTorch VAE loop; returns per-epoch seconds and the last mean ELBO
    (in the units of the standardised data it trains on)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    d = X.shape[1]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2 * n_latent))
            self.dec = nn.Sequential(nn.Linear(n_latent, hidden), nn.ReLU(), nn.Linear(hidden, d))
            self.log_noise = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            mu, log_var = self.enc(x).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            out = self.dec(z)
            log_px = -0.5 * (d * (math.log(2 * math.pi) + self.log_noise)
                             + ((x - out) ** 2).sum(-1) * torch.exp(-self.log_noise))
            kl = 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(-1)
            return log_px - kl

    mean, scale = X.mean(axis=0), math.sqrt(X.var(axis=0).mean())
    data = torch.utils.data.TensorDataset(torch.as_tensor((X - mean) / scale, dtype=torch.float32))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    seconds, elbo = [], float("nan")
    for _ in range(epochs):
        t0 = time.perf_counter()
        total = 0.0
        for (xb,) in loader:
            e = net(xb)
            loss = -e.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(e.sum().detach())
        seconds.append(time.perf_counter() - t0)
        elbo = total / len(X) - X.shape[1] * math.log(scale)
    return seconds, elbo


def fastem_vae(X, n_latent, hidden, batch_size, epochs, lr, seed):
    from fastem import VAE

    vae = VAE(n_latent, hidden_layers=(hidden,), batch_size=batch_size, max_epochs=epochs,
              learning_rate=lr, n_iter_no_change=epochs + 1, random_state=seed).fit(X)
    return vae.epoch_seconds_, vae.elbo_history_[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    W = rng.normal(size=(args.n_features, args.latent))
    X = np.tanh(rng.normal(size=(args.n_samples, args.latent)) @ W.T) + 0.1 * rng.normal(
        size=(args.n_samples, args.n_features))
    import torch

    print(f"{args.n_samples:,} x {args.n_features}, hidden {args.hidden}, latent {args.latent}, "
          f"batch {args.batch_size}, {args.epochs} epochs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = {}
    for name, fn in (("fastem", fastem_vae), ("plain-pytorch", plain_torch_vae)):
        secs, elbo = fn(X, args.latent, args.hidden, args.batch_size, args.epochs, 1e-3, args.seed)
        steady = secs[1:] if len(secs) > 1 else secs
        rate = args.n_samples / float(np.median(steady))
        results[name] = {"rows_per_second": rate, "epoch_seconds": secs, "final_elbo_per_row": elbo}
        print(f"  {name:<14} {rate:>12,.0f} rows/s   last-epoch ELBO/row {elbo:10.3f}")
    results["ratio"] = results["fastem"]["rows_per_second"] / results["plain-pytorch"]["rows_per_second"]
    print(f"  fastem / plain PyTorch throughput: {results['ratio']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
