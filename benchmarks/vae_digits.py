"""The VAE on real data: scikit-learn's digits (8 x 8 images), held-out rows.

    python benchmarks/vae_digits.py --out digits.png            # the figures of the note
    python benchmarks/vae_digits.py --epochs 3 --out /tmp/d.png # a quick run (the tests)

Fits ``fastem.VAE`` (Gaussian likelihood, learned noise) and ``fastem.PPCA`` with
the same latent size on 1,500 rows and reports, on the other 297, the VAE's ELBO
per row (a lower bound on its log-likelihood), its importance-weighted estimate
(256 draws), and pPCA's exact log-likelihood per row. Saves a picture: held-out
digits, their VAE and pPCA reconstructions, and VAE samples.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--hidden", default="256", help="hidden widths, comma-separated")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_digits

    from fastem import PPCA, VAE

    X = load_digits().data.astype(np.float64)
    order = np.random.RandomState(args.seed).permutation(len(X))
    train, test = X[order[:1500]], X[order[1500:]]
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    t0 = time.perf_counter()
    vae = VAE(args.latent, hidden_layers=hidden, max_epochs=args.epochs,
              random_state=args.seed).fit(train)
    seconds = time.perf_counter() - t0
    ppca = PPCA(args.latent).fit(train)
    figures = {
        "latent": args.latent, "hidden_layers": list(hidden), "epochs_run": vae.n_iter_,
        "fit_seconds": seconds,
        "vae_elbo_per_row_test": vae.score(test, n_samples=64),
        "vae_iwae_per_row_test": vae.score(test, importance_samples=256),
        "ppca_loglik_per_row_test": ppca.score(test),
        "vae_elbo_per_row_train": vae.score(train, n_samples=64),
        "ppca_loglik_per_row_train": ppca.score(train),
    }
    for key, value in figures.items():
        print(f"{key:<28} {value:.3f}" if isinstance(value, float) else f"{key:<28} {value}")

    rows = test[:10]
    recon_vae = vae.inverse_transform(vae.transform(rows))
    recon_ppca = ppca.inverse_transform(ppca.transform(rows))
    samples = vae.sample(10)
    panels = [("held-out", rows), ("VAE reconstruction", recon_vae),
              ("pPCA reconstruction", recon_ppca), ("VAE samples", samples)]
    fig, axes = plt.subplots(len(panels), 10, figsize=(10, 4.6))
    for r, (title, images) in enumerate(panels):
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c], 0, 16).reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"digits, latent {args.latent}: test ELBO/row VAE "
                 f"{figures['vae_elbo_per_row_test']:.1f}, pPCA log-lik/row "
                 f"{figures['ppca_loglik_per_row_test']:.1f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
