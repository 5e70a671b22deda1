"""The schedule an algorithm would follow, planned ahead (AlgoService.PlanSchedule): the shares
per slice interval over the window, and the expected cost and variance of that trajectory under
Almgren & Chriss's model with the instrument's volatility and impact estimate.

TWAP is the straight line, VWAP follows the session's volume profile, implementation shortfall
and arrival price the optimal trajectory at the profile's risk aversion. POV and iceberg follow
the market's volume and their own fills, so they have no schedule to plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from fillpath.algo.trajectory import ImpactModel, cost_kernel, impact_estimate, trajectory
from fillpath.core.enums import AlgorithmKind
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.market import Calendar
from fillpath.core.profiles import AlgoProfile, profile_for, resolve
from fillpath.core.session import SESSION_SECONDS

NANOS = 1e9


@dataclass(frozen=True, slots=True)
class Plan:
    slices: list[tuple[datetime, int, int]]
    """(time, shares, shares still to trade after them) per slice interval."""
    expected_cost: float
    """Currency."""
    variance: float
    """Currency²."""


def plan(
    profiles: Mapping[str, AlgoProfile],
    instrument: Instrument,
    *,
    algorithm: AlgorithmKind | None,
    profile: str,
    quantity: int,
    start: datetime,
    end: datetime,
    params: Mapping[str, float],
    calendar: Calendar,
) -> Plan:
    chosen = profile_for(list(profiles.values()), profile, algorithm)
    resolved = resolve(chosen, algorithm=algorithm, params=params)
    kind = resolved.algorithm
    violations = []
    if quantity <= 0:
        violations.append(FieldViolation("quantity", quantity, "must be positive"))
    if end <= start:
        violations.append(FieldViolation("end_time", end.isoformat(), "must be after start_time"))
    if kind in (AlgorithmKind.POV, AlgorithmKind.ICEBERG):
        reason = "follows the market's volume and its fills: no schedule ahead of time"
        violations.append(FieldViolation("algorithm", kind.name, reason))
    if violations:
        raise InvalidArgument(violations)
    seconds = (end - start).total_seconds()
    periods = max(1, round(seconds / resolved.slice_seconds))
    price = instrument.reference_price.nanos / NANOS
    eta, gamma = impact_estimate(instrument)
    sigma = instrument.daily_volatility * price
    epsilon = instrument.tick_size.nanos / NANOS / 2
    horizon = seconds / SESSION_SECONDS  # trading days, the unit η, γ and σ are in
    times = [start + timedelta(seconds=seconds * k / periods) for k in range(periods + 1)]
    if kind in (AlgorithmKind.IS, AlgorithmKind.ARRIVAL, AlgorithmKind.TWAP):
        risk = 0.0 if kind == AlgorithmKind.TWAP else resolved.risk_aversion
        model = ImpactModel(
            shares=quantity, horizon=horizon, periods=periods, sigma=sigma, eta=eta,
            gamma=gamma, epsilon=epsilon, risk_aversion=risk,
        )  # fmt: skip
        holdings = trajectory(model).holdings
    else:  # VWAP: the volume profile's share of the window by each slice's end
        done = np.array([calendar.volume_fraction(t.timestamp()) for t in times])
        share = (done - done[0]) / max(done[-1] - done[0], 1e-12)
        holdings = quantity * (1.0 - share)
    whole = np.rint(holdings).astype(np.int64)
    whole[-1] = 0
    expected, variance = cost_kernel(
        whole.astype(np.float64), horizon / periods, sigma, eta, gamma, epsilon
    )
    slices = [
        (times[k], int(whole[k - 1] - whole[k]), int(whole[k])) for k in range(1, periods + 1)
    ]
    return Plan(slices=slices, expected_cost=expected, variance=variance)
