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


def sample_sorted(n_samples, size, rng):
    """``size`` distinct rows drawn uniformly, sorted (read in row order).

    Repeats are rejected, in draw order, so memory and time are O(size):
    ``rng.choice(n, size, replace=False)`` permutes all n rows, which at
    4,000,000 rows took 0.1 s, as long as the rest of a mini-batch start.
    """
    if 2 * size > n_samples:
        return np.sort(rng.choice(n_samples, size=size, replace=False))
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < size:
        drawn = np.concatenate([chosen, rng.randint(0, n_samples, size=size - chosen.size + 16)])
        _, first = np.unique(drawn, return_index=True)
        chosen = drawn[np.sort(first)]  # distinct, in draw order
    return np.sort(chosen[:size])


def row_drawer(backend, data, sample_weight, rng):
    """``draw_rows(count)``: ``count`` distinct rows of ``data`` (at most all of
    them), drawn by :func:`choose_rows` from ``rng`` and gathered to the host
    by ``backend``; what an M-step re-seeds emptied components with."""
    def draw_rows(count):
        n = data.shape[0]
        return backend.take_rows(data, choose_rows(n, min(count, n), sample_weight, rng))

    return draw_rows
