"""What the market lab simulates: venues from `Venue` resources, instruments from the reference
data (with their `lab` parameters), the intraday volume profile, and the model parameters each
instrument's engine runs with, derived from its ADV, volatility and spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.price import NANOS_PER_UNIT, Price
from fillpath.core.session import SESSION_SECONDS, US_EQUITY_PROFILE
from fillpath.infra.reference_data import read_yaml
from fillpath.infra.resources import Resource, load_resources
from fillpath.market import engine as eng
from fillpath.market.layout import LIQ_MAKER, LIQ_MIDPOINT

# Of the simulated volume, the share that market orders bring (the rest is marketable limit
# orders picking off the stale quotes that were not pulled). Measured on the default universe;
# tests/unit/market/test_stylized_facts.py checks each day's volume against ADV.
MARKET_ORDER_VOLUME_SHARE = 0.9

# The propagator G(τ) = (1 + τ/τ₀)^(-1/2) as a sum of exponentials with these time scales.
IMPACT_TAU0 = 10.0
IMPACT_TAUS = tuple(IMPACT_TAU0 * 4.0**k for k in range(9))


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    name: str
    kind: str  # "lit" | "dark"
    maker_fee_nanos: int  # per share; negative is a rebate
    taker_fee_nanos: int
    midpoint_fee_nanos: int
    min_quantity: int
    order_entry_latency: float  # seconds, one way
    market_data_latency: float
    market_share: float
    toxicity: float = 1.0  # dark: how strongly informed flow steers the pool's contras
    enabled: bool = True
    preference: int = 50

    def fee_nanos(self, liquidity: int, quantity: int) -> int:
        per_share = {LIQ_MAKER: self.maker_fee_nanos, LIQ_MIDPOINT: self.midpoint_fee_nanos}.get(
            liquidity, self.taker_fee_nanos
        )
        return per_share * quantity


def venues_from_resources(resources: Sequence[Resource]) -> tuple[VenueConfig, ...]:
    """The simulated venues, lit ones first (the engine numbers them that way)."""
    venues = []
    for r in resources:
        spec = r.spec
        if spec["connection"]["type"] != "simulated" or not spec["enabled"]:
            continue
        fees, latency = spec.get("fees", {}), spec.get("latency", {})
        simulated = spec["connection"].get("simulated", {})
        venues.append(
            VenueConfig(
                name=r.name,
                kind=spec["kind"],
                maker_fee_nanos=Price.parse(fees.get("makerFee", "0")).nanos,
                taker_fee_nanos=Price.parse(fees.get("takerFee", "0")).nanos,
                midpoint_fee_nanos=Price.parse(fees.get("midpointFee", "0")).nanos,
                min_quantity=spec["minQuantity"],
                order_entry_latency=latency.get("orderEntryMicros", 250) / 1e6,
                market_data_latency=latency.get("marketDataMicros", 150) / 1e6,
                market_share=simulated.get("marketShare", 0.25),
                toxicity=simulated.get("toxicity", 1.0),
                enabled=spec["enabled"],
                preference=spec["preference"],
            )
        )
    if not any(v.kind == "lit" for v in venues):
        raise InvalidArgument.single(
            "venues", [r.name for r in resources], "no simulated lit venue"
        )
    return tuple(sorted(venues, key=lambda v: v.kind != "lit"))


def load_venues(path: Path | None = None) -> tuple[VenueConfig, ...]:
    return venues_from_resources(load_resources(path, "Venue", default="venues.yaml"))


@dataclass(frozen=True, slots=True, kw_only=True)
class LabParameters:
    """An instrument's market-lab parameters: the `lab` mapping of its entry in instruments.yaml."""

    spread_ticks: int = 1
    """The quoted spread the crowd's quotes centre on (the realised spread varies around it)."""
    order_to_trade: float = 40.0
    """Limit orders per market order."""
    resting_orders: float = 25.0
    """Background orders resting per venue and side on average: with the arrival rate, this sets
    how long an order lives before it is canceled (busy names churn, quiet ones wait)."""
    limit_order_lots: float = 2.0
    market_order_lots: float = 3.0
    dark_contra_lots: float = 12.0
    dark_contras_per_minute: float = 4.0
    dark_contra_life_seconds: float = 90.0
    dark_adverse_selection: float = 0.35
    """How strongly informed flow drives which side contra orders arrive on (0 to 0.5)."""
    quote_fade: float = 0.85
    """Chance a stale quote is pulled before it is picked off when the efficient price moves
    through it (fast market makers); the rest trade against the next arriving orders."""
    impact_y: float = 0.7
    """Scale of the square-root law, impact ≈ Y·σ·√(Q/ADV), set for a meta-order at 10 %
    participation (temporary impact from walking the book comes on top)."""


def lab_parameters(folder: Path | None = None) -> dict[str, LabParameters]:
    """Each instrument's `lab` mapping in instruments.yaml (defaults where it is absent).

    Raises:
        InvalidArgument: an unknown key or a value that is not a positive number.
    """
    origin, data = read_yaml(folder, "instruments.yaml")
    found: dict[str, LabParameters] = {}
    violations: list[FieldViolation] = []
    known = set(LabParameters.__dataclass_fields__)
    for i, entry in enumerate(data.get("instruments", [])):
        lab = entry.get("lab") or {}
        path = f"{origin}: instruments[{i}].lab"
        if not isinstance(lab, Mapping):
            violations.append(FieldViolation(path, lab, "must be a mapping"))
            continue
        values: dict[str, Any] = {}
        for key, value in lab.items():
            if key not in known:
                violations.append(FieldViolation(f"{path}.{key}", value, f"one of {sorted(known)}"))
            elif type(value) not in (int, float) or value <= 0:
                violations.append(FieldViolation(f"{path}.{key}", value, "must be positive"))
            else:
                values[key] = int(value) if key == "spread_ticks" else float(value)
        found[str(entry.get("symbol"))] = LabParameters(**values)
    if violations:
        raise InvalidArgument(violations)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class LabConfig:
    """One simulated session."""

    seed: int = 7
    session_date: date = date(2026, 11, 20)
    open_time: time = time(9, 30)
    timezone: str = "America/New_York"
    session_seconds: float = SESSION_SECONDS
    volume_profile: tuple[float, ...] = US_EQUITY_PROFILE
    grid_seconds: float = 0.2
    levels: int = 8192
    """Price levels of each book's grid, centred on the reference price (the price band)."""
    venues: tuple[VenueConfig, ...] = field(default_factory=load_venues)

    @property
    def open_utc(self) -> datetime:
        local = datetime.combine(self.session_date, self.open_time, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    @property
    def lit(self) -> tuple[VenueConfig, ...]:
        return tuple(v for v in self.venues if v.kind == "lit")

    @property
    def dark(self) -> tuple[VenueConfig, ...]:
        return tuple(v for v in self.venues if v.kind == "dark")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentModel:
    """The numbers an instrument's engine runs with."""

    instrument: Instrument
    params: LabParameters
    fp: np.ndarray
    base_ticks: int
    tick_nanos: int

    def level_of(self, price_nanos: int) -> int:
        """The grid level of a price on the tick grid."""
        return price_nanos // self.tick_nanos - self.base_ticks


def propagator_weights(
    taus: Sequence[float] = IMPACT_TAUS, tau0: float = IMPACT_TAU0
) -> np.ndarray:
    """Least-squares weights making Σ wₖ e^(−τ/τₖ) ≈ (1 + τ/τ₀)^(−1/2) from 0.1 s to a day."""
    lags = np.geomspace(0.1, 2 * SESSION_SECONDS, 400)
    target = (1.0 + lags / tau0) ** -0.5
    basis = np.exp(-lags[:, None] / np.asarray(taus)[None, :])
    weights, *_ = np.linalg.lstsq(basis / target[:, None], np.ones_like(lags), rcond=None)
    return np.asarray(weights, dtype=np.float64)


def _propagator_integral(weights: np.ndarray, horizon: float) -> float:
    """∫₀ᵀ G(s) ds for the fitted kernel."""
    taus = np.asarray(IMPACT_TAUS)
    return float(np.sum(weights * taus * (1.0 - np.exp(-horizon / taus))))


def instrument_model(
    instrument: Instrument, params: LabParameters, config: LabConfig
) -> InstrumentModel:
    tick = instrument.tick_size.nanos
    ref_ticks = instrument.reference_price.nanos // tick
    base = ref_ticks - config.levels // 2
    day = config.session_seconds
    lot = 100 * instrument.lot_size
    market_rate = (
        MARKET_ORDER_VOLUME_SHARE * instrument.adv / (params.market_order_lots * lot * day)
    )
    sigma = instrument.daily_volatility / math.sqrt(day)
    lit_venues = max(1, len(config.lit))
    limit_rate = market_rate * params.order_to_trade
    # Impact scale: a meta-order of 1 % of ADV at 10 % participation moves the price by
    # Y·σ·√0.01 (in ticks), through the propagator.
    weights = propagator_weights()
    participation, fraction = 0.1, 0.01
    horizon = fraction * day / participation
    rate = participation * instrument.adv / day
    target_ticks = params.impact_y * instrument.daily_volatility * math.sqrt(fraction) * ref_ticks
    impact = target_ticks / (rate * _propagator_integral(weights, horizon))
    dark = config.dark
    fp = np.zeros(eng.FP_SIZE)
    fp[eng.F_REF_TICKS] = ref_ticks - base
    fp[eng.F_BASE_TICKS] = base
    fp[eng.F_SIGMA] = sigma
    fp[eng.F_GRID_DT] = config.grid_seconds
    fp[eng.F_SPREAD] = params.spread_ticks
    fp[eng.F_DEPTH_MEAN] = 3.0 + params.spread_ticks
    fp[eng.F_LIMIT_RATE] = limit_rate
    fp[eng.F_MARKET_RATE] = market_rate
    fp[eng.F_LIFETIME] = min(900.0, max(2.0, params.resting_orders * 2 * lit_venues / limit_rate))
    fp[eng.F_LIMIT_LOTS] = params.limit_order_lots
    fp[eng.F_MARKET_LOTS] = params.market_order_lots
    fp[eng.F_LOT] = lot
    fp[eng.F_IMPACT] = impact
    fp[eng.F_ALPHA_TAU] = 30.0
    fp[eng.F_ALPHA_STD] = 0.3 * sigma / math.sqrt(30.0)
    fp[eng.F_DARK_RATE] = params.dark_contras_per_minute / 60.0 if dark else 0.0
    fp[eng.F_DARK_LOTS] = params.dark_contra_lots
    fp[eng.F_DARK_LIFE] = params.dark_contra_life_seconds
    fp[eng.F_DARK_ADVERSE] = params.dark_adverse_selection
    fp[eng.F_DAY_END] = day
    fp[eng.F_TICK_NANOS] = tick
    fp[eng.F_FADE] = params.quote_fade
    if tick % 2 or NANOS_PER_UNIT % tick:
        raise InvalidArgument.single(
            "tick_size", str(instrument.tick_size), "the lab needs an even tick in nanos"
        )
    return InstrumentModel(
        instrument=instrument, params=params, fp=fp, base_ticks=base, tick_nanos=tick
    )


def profile_arrays(config: LabConfig) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ends in seconds, activity per bucket with mean 1) of the volume profile."""
    shares = np.asarray(config.volume_profile, dtype=np.float64)
    if len(shares) == 0 or np.any(shares <= 0):
        raise InvalidArgument.single("volume_profile", config.volume_profile, "positive shares")
    shares = shares / shares.sum()
    n = len(shares)
    ends = np.arange(1, n + 1) * (config.session_seconds / n)
    return ends, shares * n


def cumulative_shares(venues: Sequence[VenueConfig]) -> np.ndarray:
    shares = np.asarray([v.market_share for v in venues], dtype=np.float64)
    if len(shares) == 0:
        return shares
    total = shares.sum()
    if total <= 0:
        shares = np.ones_like(shares)
        total = shares.sum()
    return np.cumsum(shares / total)
