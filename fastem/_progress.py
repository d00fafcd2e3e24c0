"""Progress bars, drawn by tqdm.

``tqdm.auto`` picks a notebook widget in Jupyter and a text bar in a terminal,
the bar people know from every other scientific Python library; a hand-drawn
bar did neither well (it could not render in notebooks and redrew on every
call). Bars write to stderr, so a command's results on stdout stay clean.
"""

from __future__ import annotations


def bar(total, desc, unit, file=None, disable=False):
    """A tqdm progress bar of ``total`` steps named ``desc``.

    Parameters
    ----------
    total : int
        Number of steps expected (the bar may finish early).
    desc : str
        Label on the left of the bar.
    unit : str
        What one step is ("iter", "epoch", "kernel").
    file : file-like, optional
        Where to draw; stderr by default.
    disable : bool, default False
        Draw nothing (the bar still counts).

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=file, disable=disable,
                dynamic_ncols=True, leave=True)


class FitProgress:
    """A ``progress_callback`` that draws the iterations of a fit as a tqdm bar.

    Called as ``progress(n_iter, max_iter, bound, change, seconds)`` after
    every iteration (EM iterations or VAE epochs); a new start (``n_iter``
    back at 1) restarts the bar. ``close()`` ends it.

    Parameters
    ----------
    desc : str
        Label of the bar ("EM", "VI", "VAE").
    unit : str, default "iter"
    file : file-like, optional
        Where to draw; stderr by default.
    """

    def __init__(self, desc, unit="iter", file=None):
        self.desc, self.unit, self.file = desc, unit, file
        self._bar = None

    def __call__(self, n_iter, max_iter, lower_bound, change, seconds):
        if self._bar is None:
            self._bar = bar(max_iter, self.desc, self.unit, self.file)
        elif n_iter <= self._bar.n:  # the next start
            self._bar.reset(total=max_iter)
        self._bar.set_postfix_str(f"log-likelihood {lower_bound:.6f}, change {change:.2e}",
                                  refresh=False)
        self._bar.update(n_iter - self._bar.n)

    def close(self):
        """End the bar (a no-op if nothing was drawn)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
