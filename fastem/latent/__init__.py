"""Continuous latent-variable models: exact probabilistic PCA, and a VAE (PyTorch)."""

from .ppca import PPCA
from .vae import VAE

__all__ = ["PPCA", "VAE"]
