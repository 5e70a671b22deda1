"""The implementation-shortfall trajectory: Almgren & Chriss (2000), "Optimal Execution of
Portfolio Transactions" (Journal of Risk 3(2)), with linear permanent and temporary impact.

X shares are to be traded over T (any unit of time: the unit of σ², η and the rates) in N
periods of τ = T/N. The price moves by σ√τ·ξ per period, permanently by γ per share traded,
and a period's trades pay a temporary ε·sign(n) + (η/τ)·n per share. For a trajectory x_0 = X,
…, x_N = 0 (holdings after each period, n_k = x_{k−1} − x_k traded in period k) the shortfall
has

    E = ½γX² + ε·Σ|n_k| + (η̃/τ)·Σn_k²        V = σ²·Σ_{k=1..N} τ·x_k²,    η̃ = η − ½γτ,

and the trajectory minimising E + λV, for a trader of risk aversion λ, is

    x_j = sinh(κ(T − t_j)) / sinh(κT) · X,    with  (2/τ²)(cosh(κτ) − 1) = κ̃² = λσ²/η̃.

λ = 0 gives the straight line (TWAP: the least expected cost); a larger λ trades earlier, paying
impact to carry less risk. 1/κ is the trade's half-life. `trajectory` is the numba kernel (the
holdings by the recurrence above, E and V by their sums); `closed_form` is the paper's closed
form of E and V for the optimal trajectory, the reference the kernel is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument

KAPPA_LINEAR = 1e-12
"""Below this κT the trajectory is the straight line (the λ → 0 limit), computed as such."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactModel:
    """Almgren & Chriss's parameters, in one consistent unit of time (the paper uses days)."""

    shares: float
    """X: the shares to trade."""
    horizon: float
    """T: the time to trade them in."""
    periods: int
    """N: the number of periods (τ = T/N)."""
    sigma: float
    """σ: price volatility, in price per √(unit of time)."""
    eta: float
    """η: temporary impact, price per (share per unit of time)."""
    gamma: float
    """γ: permanent impact, price per share."""
    epsilon: float
    """ε: fixed cost per share traded (half the spread, fees)."""
    risk_aversion: float
    """λ: the weight of variance against expected cost, per unit of currency."""

    def __post_init__(self) -> None:
        violations = []
        for name, value in (("shares", self.shares), ("horizon", self.horizon)):
            if not value > 0:
                violations.append(FieldViolation(name, value, "must be positive"))
        if self.periods < 1:
            violations.append(FieldViolation("periods", self.periods, "at least 1"))
        for name, value in (
            ("sigma", self.sigma), ("eta", self.eta), ("gamma", self.gamma),
            ("epsilon", self.epsilon), ("risk_aversion", self.risk_aversion),
        ):  # fmt: skip
            if not value >= 0 or math.isinf(value):
                violations.append(FieldViolation(name, value, "a finite number ≥ 0"))
        if not violations and self.eta_tilde <= 0:
            floor = self.gamma * self.tau / 2
            reason = f"must exceed γτ/2 = {floor:g} (η̃ = η − γτ/2 > 0)"
            violations.append(FieldViolation("eta", self.eta, reason))
        if violations:
            raise InvalidArgument(violations)

    @property
    def tau(self) -> float:
        return self.horizon / self.periods

    @property
    def eta_tilde(self) -> float:
        return self.eta - 0.5 * self.gamma * self.tau


def impact_estimate(instrument: Instrument) -> tuple[float, float]:
    """(η, γ) for an instrument, in currency and days, from its impact coefficients in daily σ
    over ADV (`Instrument.impact_temporary`, `impact_permanent`: fitted on the market lab by
    `fillpath algos calibrate`, else a rule of thumb)."""
    sigma = instrument.daily_volatility * instrument.reference_price.nanos / 1e9
    scale = sigma / instrument.adv
    return instrument.impact_temporary * scale, instrument.impact_permanent * scale


@dataclass(frozen=True, slots=True)
class Trajectory:
    holdings: np.ndarray
    """x_0 = X, …, x_N = 0: what is left after each period."""
    kappa: float
    expected_cost: float
    variance: float

    @property
    def trades(self) -> np.ndarray:
        """n_1, …, n_N: what is traded in each period."""
        return -np.diff(self.holdings)

    @property
    def half_life(self) -> float:
        """1/κ: the time in which the trajectory trades away ~63 % of what is left (∞ for TWAP)."""
        return math.inf if self.kappa == 0 else 1 / self.kappa


@njit(cache=True, nogil=True)
def _kappa(tau: float, kappa_tilde_sq: float) -> float:
    """κ from (2/τ²)(cosh(κτ) − 1) = κ̃²."""
    return math.acosh(1.0 + 0.5 * kappa_tilde_sq * tau * tau) / tau


@njit(cache=True, nogil=True)
def trajectory_kernel(
    shares: float,
    horizon: float,
    periods: int,
    sigma: float,
    eta: float,
    gamma: float,
    epsilon: float,
    risk_aversion: float,
    holdings: np.ndarray,
) -> tuple[float, float, float]:
    """Writes x_0..x_N into `holdings` (N + 1 floats); returns κ, E and V."""
    tau = horizon / periods
    eta_tilde = eta - 0.5 * gamma * tau
    kappa = _kappa(tau, risk_aversion * sigma * sigma / eta_tilde)
    if kappa * horizon < KAPPA_LINEAR:
        kappa = 0.0
        for j in range(periods + 1):
            holdings[j] = shares * (1.0 - j / periods)
    else:
        # sinh(κ(T − t))/sinh(κT) as e^(−κt)(1 − e^(−2κ(T−t)))/(1 − e^(−2κT)): no overflow
        # however urgent the trader (κT in the thousands).
        denominator = -math.expm1(-2.0 * kappa * horizon)
        for j in range(periods + 1):
            t = j * tau
            holdings[j] = (
                shares * math.exp(-kappa * t) * -math.expm1(-2.0 * kappa * (horizon - t))
            ) / denominator
    holdings[periods] = 0.0
    expected, variance = cost_kernel(holdings, tau, sigma, eta, gamma, epsilon)
    return kappa, expected, variance


@njit(cache=True, nogil=True)
def cost_kernel(
    holdings: np.ndarray, tau: float, sigma: float, eta: float, gamma: float, epsilon: float
) -> tuple[float, float]:
    """E and V of any trajectory x_0..x_N (x_N = 0) traded in periods of τ: Almgren & Chriss's
    E = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k² and V = σ²τΣx_k²."""
    shares = holdings[0]
    eta_tilde = eta - 0.5 * gamma * tau
    traded = 0.0
    squares = 0.0
    exposure = 0.0
    for k in range(1, len(holdings)):
        n = holdings[k - 1] - holdings[k]
        traded += abs(n)
        squares += n * n
        exposure += holdings[k] * holdings[k]
    expected = 0.5 * gamma * shares * shares + epsilon * traded + eta_tilde / tau * squares
    return expected, sigma * sigma * tau * exposure


def trajectory(model: ImpactModel) -> Trajectory:
    """The trajectory minimising E + λV for `model`, with its expected cost and variance."""
    holdings = np.empty(model.periods + 1)
    kappa, expected, variance = trajectory_kernel(
        model.shares, model.horizon, model.periods, model.sigma, model.eta, model.gamma,
        model.epsilon, model.risk_aversion, holdings,
    )  # fmt: skip
    return Trajectory(holdings=holdings, kappa=kappa, expected_cost=expected, variance=variance)


def closed_form(model: ImpactModel) -> tuple[float, float]:
    """E and V of the optimal trajectory in the paper's closed form (its equation for E(x*) and
    V(x*)), and for λ = 0 the straight line's: the reference the kernel's sums are held to.
    Written as the paper writes it, so it overflows past κT ≈ 350 (the kernel does not)."""
    x, t, n, tau = model.shares, model.horizon, model.periods, model.tau
    fixed = 0.5 * model.gamma * x * x + model.epsilon * x
    sigma_sq, eta_tilde = model.sigma**2, model.eta_tilde
    kappa = math.acosh(1 + 0.5 * model.risk_aversion * sigma_sq / eta_tilde * tau * tau) / tau
    if kappa * t < KAPPA_LINEAR:
        # The straight line: n_k = X/N, x_k = X(1 − k/N).
        expected = fixed + eta_tilde * x * x / t
        variance = sigma_sq * tau * x * x * (n - 1) * (2 * n - 1) / (6 * n)
        return expected, variance
    expected = fixed + eta_tilde * x * x * math.tanh(0.5 * kappa * tau) * (
        tau * math.sinh(2 * kappa * t) + 2 * t * math.sinh(kappa * tau)
    ) / (2 * tau * tau * math.sinh(kappa * t) ** 2)
    variance = (
        0.5 * sigma_sq * x * x
        * (tau * math.sinh(kappa * t) * math.cosh(kappa * (t - tau)) - t * math.sinh(kappa * tau))
        / (math.sinh(kappa * t) ** 2 * math.sinh(kappa * tau))
    )  # fmt: skip
    return expected, variance
