"""Random streams shared by initialisation and re-seeding.

Every draw happens on the client from one ``RandomState``, whatever holds X
(memory, a memory map, a Dask cluster, a GPU), so every backend picks the same
rows and gives the same model.
"""

from __future__ import annotations

import numpy as np

from . import config


def check_random_state(seed) -> np.random.RandomState:
    """None, an int or a RandomState -> RandomState (scikit-learn's rule)."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    return np.random.RandomState(seed)


def sample_rows(n_samples, size, rng):
    """``size`` distinct row indices drawn uniformly, in draw order.

    Matches ``rng.choice(n, size, replace=False)`` (scikit-learn's call) for
    ``n <= config.PERMUTATION_MAX_ROWS``; above that, draws with rejection of repeats so
    that memory stays O(size) instead of an O(n) permutation.
    """
    if n_samples <= config.PERMUTATION_MAX_ROWS or size > n_samples // 2:
        return rng.choice(n_samples, size=size, replace=False)
    chosen = []
    seen = set()
    while len(chosen) < size:
        for v in rng.randint(0, n_samples, size=size - len(chosen)):
            if v not in seen:
                seen.add(v)
                chosen.append(v)
    return np.asarray(chosen[:size], dtype=np.int64)


def choose_rows(n_samples, size, sample_weight, rng):
    """``size`` distinct rows, uniformly (as scikit-learn) or by sample weight."""
    if sample_weight is None:
        return sample_rows(n_samples, size, rng)
    positive = int(np.count_nonzero(sample_weight))
    if positive < size:
        raise ValueError(
            f"Only {positive} samples have positive sample_weight, fewer than n_components={size}."
        )
    return rng.choice(n_samples, size=size, replace=False, p=sample_weight / sample_weight.sum())
