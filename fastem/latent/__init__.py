"""Continuous latent-variable models: exact probabilistic PCA."""

from .ppca import PPCA

__all__ = ["PPCA"]
