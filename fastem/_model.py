"""Model containers and the small float64 math shared by every backend.

Shapes by covariance type: the table in :mod:`fastem._covariance`.

The precision Cholesky factor ``U`` follows scikit-learn: ``precision = U @ U.T``
with ``U`` upper triangular, so ``log N(x) = -d/2 log 2pi + sum(log diag U)
- 1/2 ||(x - mu) @ U||^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._covariance import COVARIANCE_TYPES, Layout, layout_of, n_parameters  # noqa: F401

LOG_2PI = float(np.log(2.0 * np.pi))

# scikit-learn adds 10 * eps to each component's mass before dividing, so an
# empty component does not divide by zero; doing the same keeps fits identical.
# fastem adds it in units of the mean weight (:func:`mass_guard`).
_MASS_EPS = 10.0 * np.finfo(np.float64).eps


@dataclass
class KernelInputs:
    """What a backend's pass takes: per component a mean, a precision factor and
    a constant, so that ``log rho_ij = log_const_j - 1/2 ||(x_i - mu_j) F_j||^2``.

    Every model family maps its parameters to these (maximum likelihood: the
    Gaussian log-density plus ``log w_j``; variational: the expected log joint),
    so one kernel serves them all.

    Attributes
    ----------
    means : ndarray of shape (k, d), float64, C-contiguous
    factor : ndarray of shape (k, d * d) for full/tied (upper ``F_j``, flattened
        row-major), or (k, d) for diag/spherical (per-feature scale); float64
    log_const : ndarray of shape (k,), float64; ``-inf`` switches a component off
    covariance_type : str
    missing : bool
        The rows may hold missing values (NaN): the pass integrates them out
        (EM for incomplete data, ``fastem.kernels.cpu.missing``) instead of
        running the complete-data kernels.
    """

    means: np.ndarray
    factor: np.ndarray
    log_const: np.ndarray
    covariance_type: str
    missing: bool = False

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def layout(self) -> Layout:
        """How a pass stores this model's statistics and factors."""
        return layout_of(self.covariance_type)

    def precisions(self) -> np.ndarray:
        """(k, d, d) precisions ``U_j U_j^T`` of the factors of a FULL layout."""
        k, d = self.means.shape
        return precisions_from_cholesky(self.factor.reshape(k, d, d), "full")

    def incomplete(self) -> "KernelInputs":
        """The same inputs for rows with missing values (``missing=True``)."""
        return replace(self, missing=True)


@dataclass
class Params:
    """Parameters of a Gaussian mixture, always float64.

    Attributes
    ----------
    weights : ndarray of shape (k,)
    means : ndarray of shape (k, d)
    precisions_cholesky : ndarray, shape by covariance type (see module doc)
    covariance_type : str
    covariances : ndarray or None
        The covariances the M-step computed (None: derive them from the
        Cholesky factors when they are needed).
    """

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    covariances: object = None

    def kernel_inputs(self) -> KernelInputs:
        """The pass's inputs: ``log_const_j = log w_j - d/2 log 2pi + log det U_j``."""
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        return factor_inputs(self.means, self.precisions_cholesky, self.covariance_type, log_w)

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def layout(self) -> Layout:
        """How a pass stores this model's statistics and factors."""
        return layout_of(self.covariance_type)

    def copy(self) -> "Params":
        return Params(self.weights.copy(), self.means.copy(),
                      self.precisions_cholesky.copy(), self.covariance_type,
                      None if self.covariances is None else np.copy(self.covariances))


@dataclass
class Stats:
    """Additive weighted sufficient statistics of one pass over the data.

    All moments are centred on ``centres`` (the means used in the E-step), which
    avoids the cancellation of raw moments. Two ``Stats`` with the same centres
    add up.

    Attributes
    ----------
    mass : ndarray of shape (k,)
        ``N_j = sum_i w_i r_ij``.
    first : ndarray of shape (k, d)
        ``S_j = sum_i w_i r_ij (x_i - c_j)``.
    second : ndarray of shape (k, d, d) or (k, d)
        ``SS_j = sum_i w_i r_ij (x_i - c_j)(x_i - c_j)^T``, only its diagonal
        for 'diag' and 'spherical'.
    centres : ndarray of shape (k, d)
    log_likelihood : float
        ``sum_i w_i log p(x_i)`` under the parameters of the E-step.
    weight_sum : float
        ``sum_i w_i``.
    round_off : float
        Relative round-off of ``log_likelihood`` beyond float64's (nonzero for
        passes computed in float32; see ``fastem._precision``).
    rows : float
        Rows the pass read, whatever their weights (0: unknown).
        ``weight_sum / rows`` is the mean weight, the unit of the M-step's
        guard against empty components (:func:`mass_guard`).
    """

    mass: np.ndarray
    first: np.ndarray
    second: np.ndarray
    centres: np.ndarray
    log_likelihood: float
    weight_sum: float
    round_off: float = 0.0
    rows: float = 0.0

    def __add__(self, other: "Stats") -> "Stats":
        if not np.array_equal(self.centres, other.centres):
            raise ValueError("cannot add statistics centred on different means")
        return Stats(self.mass + other.mass, self.first + other.first,
                     self.second + other.second, self.centres,
                     self.log_likelihood + other.log_likelihood,
                     self.weight_sum + other.weight_sum, max(self.round_off, other.round_off),
                     self.rows + other.rows)


    def scaled(self, factor: float) -> "Stats":
        """Every additive quantity times ``factor`` (statistics of ``factor``
        times the weight; what stepwise EM averages)."""
        return Stats(self.mass * factor, self.first * factor, self.second * factor,
                     self.centres, self.log_likelihood * factor, self.weight_sum * factor,
                     self.round_off, self.rows * factor)

    def shifted_moments(self, delta: np.ndarray):
        """``(S', SS')``: the first and second moments about ``c + delta``, with
        ``S' = S - N delta`` and ``SS' = SS - S delta^T - delta S^T + N delta delta^T``
        (only the diagonal for 'diag' and 'spherical' layouts). The M-step's
        scatter about the new means and :meth:`recentred` are this algebra."""
        mass = self.mass
        first = self.first - mass[:, None] * delta
        if self.second.ndim == 3:
            cross = self.first[:, :, None] * delta[:, None, :]
            second = (self.second - cross - np.swapaxes(cross, 1, 2)
                      + mass[:, None, None] * delta[:, :, None] * delta[:, None, :])
        else:
            second = self.second - 2.0 * self.first * delta + mass[:, None] * delta * delta
        return first, second

    def recentred(self, centres: np.ndarray) -> "Stats":
        """The same statistics centred on other means (:meth:`shifted_moments`)."""
        centres = np.array(centres, dtype=np.float64)
        first, second = self.shifted_moments(centres - self.centres)
        return Stats(self.mass, first, second, centres, self.log_likelihood, self.weight_sum,
                     self.round_off, self.rows)


def mass_guard(stats: "Stats") -> float:
    """What the M-step adds to every component's mass: scikit-learn's
    ``10 * eps`` in units of the mean weight, so that multiplying every
    sample weight by a constant leaves the fit unchanged (an absolute
    ``10 * eps`` against weights of 1e-20 turned a covariance of 1.01 into
    0.0014). Unweighted, the mean weight is 1: scikit-learn's own guard."""
    if stats.rows > 0 and stats.weight_sum > 0:
        return _MASS_EPS * (stats.weight_sum / stats.rows)
    return _MASS_EPS


def total_weight(n_samples: int, sample_weight) -> float:
    """``sum_i w_i``, the ``weight_sum`` of :class:`Stats`: ``n_samples`` when
    ``sample_weight`` is None."""
    return float(n_samples if sample_weight is None else sample_weight.sum())


# --------------------------------------------------------------------------
# M-step
# --------------------------------------------------------------------------

def m_step(stats: Stats, covariance_type: str, reg_covar: float):
    """Closed-form M-step from centred sufficient statistics.

    Parameters
    ----------
    stats : Stats
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Added to the diagonal of every covariance.

    Returns
    -------
    weights : ndarray of shape (k,)
    means : ndarray of shape (k, d)
    covariances : ndarray, shape by covariance type
    """
    mass = stats.mass + mass_guard(stats)
    # The mean moves by ``e = S / (N + 10 eps)`` from the centre, and the
    # scatter about the new mean is exactly ``SS - S e^T - e S^T + N e e^T``.
    # (scikit-learn divides raw sums, ``resp.T @ X / (N + 10 eps)``, which
    # moves a singleton component off its point by 10 eps * |x|: at |x| = 1e150
    # that alone breaks the Cholesky factorisation.)
    e = stats.first / mass[:, None]
    means = stats.centres + e
    weights = mass / mass.sum()
    d = means.shape[1]
    scatter = stats.shifted_moments(e)[1]
    if covariance_type in ("full", "tied"):
        if covariance_type == "full":
            cov = scatter / mass[:, None, None]
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
            cov[:, np.arange(d), np.arange(d)] += reg_covar
        else:
            cov = scatter.sum(axis=0) / mass.sum()
            cov = 0.5 * (cov + cov.T)
            cov[np.arange(d), np.arange(d)] += reg_covar
    else:
        # Clamp at zero: a component of identical points has variance 0 up to
        # round-off, which may come out as -1e-17.
        var = np.maximum(scatter / mass[:, None], 0.0) + reg_covar
        cov = var if covariance_type == "diag" else var.mean(axis=1)
    return weights, means, cov


# --------------------------------------------------------------------------
# Precision Cholesky helpers
# --------------------------------------------------------------------------

_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


def regularisation_loss(weights, prec_chol, covariance_type, reg_covar, n_features) -> float:
    """How much log-likelihood per unit weight adding ``reg_covar`` to the
    M-step's covariances can cost (an upper bound), so that EM's bound may
    fall by this much from one iteration to the next.

    EM's bound never decreases when the M-step maximises; with ``S`` the
    maximising covariance and ``C = S + c I`` the one used, component ``j``
    loses ``1/2 sum_i (-log(1 - y_i) - y_i)``, ``y_i = c / lambda_i(C)``, per
    unit weight. 'diag' and 'spherical' sum this exactly; 'full' and 'tied'
    bound it by ``c^2 ||C^-1||_F^2 / (2 (1 - c ||C^-1||_F))`` (no
    eigendecomposition). On data whose variances are ~100 ``reg_covar`` the
    loss is ~1e-4 nats per row, which a warning used to report as instability.

    Parameters
    ----------
    weights : ndarray of shape (k,)
    prec_chol : ndarray, shape by ``covariance_type`` (of ``C``)
    covariance_type : str
    reg_covar : float
    n_features : int

    Returns
    -------
    float, non-negative (inf when ``reg_covar`` dominates a variance)
    """
    c = float(reg_covar)
    if c == 0.0:
        return 0.0
    if covariance_type in ("diag", "spherical"):
        y = c * np.asarray(prec_chol) ** 2
        if np.any(y >= 1.0):
            return np.inf
        loss = -np.log1p(-y) - y
        per_component = loss.sum(axis=1) if covariance_type == "diag" else n_features * loss
        return float(0.5 * np.dot(weights, per_component))
    U = np.asarray(prec_chol).reshape(-1, *np.shape(prec_chol)[-2:])
    fro = np.linalg.norm(U @ np.swapaxes(U, 1, 2), axis=(1, 2))
    s = c * fro
    if np.any(s >= 1.0):
        return np.inf
    per_component = c * c * fro**2 / (2.0 * (1.0 - s))
    share = np.asarray(weights) if covariance_type == "full" else np.ones(1)
    return float(0.5 * np.dot(share, per_component))


def precision_cholesky_from_covariances(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular ``U`` with ``inv(cov) = U @ U.T`` (or ``1/sqrt(var)``).

    Raises
    ------
    ValueError
        When a covariance is not positive definite.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        try:
            lower = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise ValueError(_ILL_DEFINED) from None
        eye = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
        # inv(L).T is upper triangular and inv(cov) = inv(L).T @ inv(L).
        prec_chol = np.swapaxes(np.linalg.solve(lower, eye), -1, -2)
        if not np.all(np.isfinite(prec_chol)):
            raise ValueError(_ILL_DEFINED)
        return np.triu(prec_chol)
    if np.any(~(covariances > 0.0)):
        raise ValueError(_ILL_DEFINED)
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular ``U`` with ``precision = U @ U.T``, as scikit-learn."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        # Reversing rows and columns turns the lower Cholesky factor of the
        # flipped matrix into the upper factor of the original.
        flipped = precisions[..., ::-1, ::-1]
        lower = np.linalg.cholesky(flipped)
        return np.ascontiguousarray(lower[..., ::-1, ::-1])
    return np.sqrt(precisions)


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """``U @ U.T`` for full/tied, ``p**2`` for diag/spherical."""
    if covariance_type in ("full", "tied"):
        return prec_chol @ np.swapaxes(prec_chol, -1, -2)
    return prec_chol**2


def covariances_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Covariances implied by a precision Cholesky factor."""
    if covariance_type in ("full", "tied"):
        eye = np.broadcast_to(np.eye(prec_chol.shape[-1]), prec_chol.shape)
        inv_u = np.linalg.solve(prec_chol, eye)  # inv(U); cov = inv(U).T @ inv(U)
        cov = np.swapaxes(inv_u, -1, -2) @ inv_u
        return 0.5 * (cov + np.swapaxes(cov, -1, -2))
    return 1.0 / prec_chol**2


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int) -> np.ndarray:
    """``log det(U)`` per component, shape (k,) (tied: a scalar broadcast later)."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def factor_inputs(means, precisions_cholesky, covariance_type, log_offset) -> KernelInputs:
    """Kernel inputs of Gaussians with precision Cholesky factors ``U``.

    Parameters
    ----------
    means : (k, d)
    precisions_cholesky : shape by covariance type (see the module doc)
    log_offset : (k,) added to each component's ``-d/2 log 2pi + log det U_j``
        (``log w_j`` for maximum likelihood; the expected log weight and
        Wishart terms for variational inference)
    """
    k, d = means.shape
    pc = precisions_cholesky
    if covariance_type == "full":
        factor = pc.reshape(k, d * d)
    elif covariance_type == "tied":
        factor = np.broadcast_to(pc.reshape(1, d * d), (k, d * d))
    elif covariance_type == "diag":
        factor = pc
    else:
        factor = np.broadcast_to(pc[:, None], (k, d))
    log_const = log_offset - 0.5 * d * LOG_2PI + log_det_cholesky(pc, covariance_type, d)
    # log_const a new, writable array: broadcast_to's read-only view, passed on
    # by ascontiguousarray, compiled the log-density helpers a second time (for
    # the shared pass, whose concatenated inputs are writable)
    return KernelInputs(np.ascontiguousarray(means, dtype=np.float64),
                        np.ascontiguousarray(factor, dtype=np.float64),
                        np.array(np.broadcast_to(log_const, (k,)), dtype=np.float64),
                        covariance_type)


def full_from_lower(second_flat: np.ndarray, n_features: int) -> np.ndarray:
    """(k, d*d) with the lower triangle filled -> symmetric (k, d, d)."""
    k = second_flat.shape[0]
    lower = np.tril(second_flat.reshape(k, n_features, n_features))
    return lower + np.swapaxes(np.tril(lower, -1), 1, 2)
