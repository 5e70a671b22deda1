"""Impact parameters fitted on executions: the η and γ of the Almgren–Chriss model.

For an order of X shares traded at an even rate v = X/T over T days, the model's expected cost
per share, measured against the price the market would have had without the order, is

    cost/X = ε + ½·γ·X + η̃·v,   η̃ = η − ½·γ·τ,

and the price it leaves moved for good is γ·X. `fit_impact` takes one sample per execution —
its cost per share against the undisturbed price, and the move left after it — and fits γ by
least squares through the origin on the moves, then ε and η̃ by least squares on the costs less
the permanent part. The fit is reported as the instrument's coefficients in daily σ over ADV
(`Instrument.impact_temporary`, `impact_permanent`), so it carries over to a price or ADV that
has changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactSample:
    quantity: float
    """Shares executed."""
    horizon: float
    """Days it took."""
    cost: float
    """Currency per share paid beyond the undisturbed price at each fill (+ = a cost)."""
    move: float
    """Currency per share: how far the order left the price from where it would have been,
    some time after it ended (+ = against the order)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactFit:
    eta: float
    """Temporary impact, currency per (share per day)."""
    gamma: float
    """Permanent impact, currency per share."""
    epsilon: float
    """Fixed cost per share (half the spread paid, on average)."""
    temporary: float
    """η in daily σ (currency) over ADV."""
    permanent: float
    """γ in daily σ (currency) over ADV."""
    cost_r2: float
    """Share of the costs' variance the model explains."""
    samples: int


def fit_impact(
    samples: Sequence[ImpactSample], *, sigma: float, adv: float, tau: float
) -> ImpactFit:
    """`sigma`: daily volatility in currency; `tau`: the slice interval in days. Needs at
    least three samples of two sizes or more."""
    if len(samples) < 3 or len({s.quantity / s.horizon for s in samples}) < 2:
        raise ValueError("fitting impact needs at least three samples at two rates or more")
    x = np.array([s.quantity for s in samples])
    rate = x / np.array([s.horizon for s in samples])
    cost = np.array([s.cost for s in samples])
    move = np.array([s.move for s in samples])
    gamma = max(float(move @ x / (x @ x)), 0.0)
    temporary_part = cost - 0.5 * gamma * x
    design = np.column_stack([np.ones_like(rate), rate])
    (epsilon, eta_tilde), *_ = np.linalg.lstsq(design, temporary_part, rcond=None)
    eta = max(float(eta_tilde) + 0.5 * gamma * tau, 0.0)
    fitted = epsilon + 0.5 * gamma * x + eta_tilde * rate
    spread = float(((cost - cost.mean()) ** 2).sum())
    r2 = 1.0 - float(((cost - fitted) ** 2).sum()) / spread if spread > 0 else 0.0
    return ImpactFit(
        eta=eta, gamma=gamma, epsilon=float(epsilon), temporary=eta * adv / sigma,
        permanent=gamma * adv / sigma, cost_r2=r2, samples=len(samples),
    )  # fmt: skip
