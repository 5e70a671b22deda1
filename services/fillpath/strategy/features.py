"""What a strategy is chosen on: the order, its instrument and the market when it arrives.

`features` folds them into the facts the rules test (`OrderFacts`) and the named figures the
cost model reads (`Features.values`, in `FEATURES` order):

- size_pct_adv: the order as % of the average daily volume;
- spread_bps: the quoted spread; depth_ratio: shares at the touch we would take, over the order;
- volatility_pct: realised daily volatility (the instrument's reference until enough prints);
  vol_ratio: that over the reference;
- volume_left: the share of the day's volume still to trade (on the intraday profile);
  volume_ratio: the volume so far over what the profile expects by now;
- momentum_bps: the mid's move over the last five minutes, positive when it runs against the
  order (up for a buy);
- minutes_to_close;
- window_minutes: the order's window, from its arrival (or later start) to its end time (the
  close when it names none); size_pct_window: the order as % of the volume the intraday profile
  expects over that window — the participation it needs, what most sets the cost of working it;
- impact_bps: the square-root law's estimate of that cost, the daily volatility × √(that
  participation) — the scale of the cost, and of the differences between profiles, that the
  trees would otherwise have to piece together from the two (costly large orders in a stormy
  market are rare in any training set);
- regime_volatility / regime_liquidity: −1, 0 or +1 (calm / normal / stormy; deep / normal /
  thin) — the market-regime label (`Features.regime`, volatility/liquidity: ``stormy/thin``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from fillpath.core.enums import Side, Urgency
from fillpath.core.instruments import Instrument
from fillpath.core.market import Calendar, MarketSnapshot

FEATURES = (
    "size_pct_adv",
    "spread_bps",
    "depth_ratio",
    "volatility_pct",
    "vol_ratio",
    "volume_left",
    "volume_ratio",
    "momentum_bps",
    "minutes_to_close",
    "window_minutes",
    "size_pct_window",
    "impact_bps",
    "regime_volatility",
    "regime_liquidity",
)
"""The cost model's feature schema (stored with every model, checked when one is loaded)."""

STORMY, CALM = 1.3, 0.75
"""Realised over reference volatility above / below which the regime is stormy / calm."""
THIN_VOLUME, DEEP_VOLUME = 0.7, 1.4
"""Volume so far over expected below which liquidity is thin, above which it is deep."""
THIN_SPREAD = 1.6
"""A spread this many times its usual level makes liquidity thin whatever the volume."""
VOLATILITY_NAMES = {-1: "calm", 0: "normal", 1: "stormy"}
LIQUIDITY_NAMES = {-1: "deep", 0: "normal", 1: "thin"}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAtArrival:
    symbol: str
    side: Side
    quantity: int
    account: str
    urgency: Urgency | None = None
    start: datetime | None = None
    """When the order may start (None: on arrival)."""
    end: datetime | None = None
    """When it must be done by (None: the close)."""


@dataclass(frozen=True, slots=True)
class Features:
    values: dict[str, float]

    @property
    def regime(self) -> str:
        return Regime.of(self.values).name

    def vector(self) -> list[float]:
        return [self.values[name] for name in FEATURES]


@dataclass(frozen=True, slots=True)
class Regime:
    """The market's regime: volatility (−1 calm, 0 normal, +1 stormy) and liquidity (−1 deep,
    0 normal, +1 thin), and the figures they come from."""

    volatility: int
    liquidity: int
    sigma: float
    vol_ratio: float
    volume_ratio: float
    volume_done: float

    @property
    def name(self) -> str:
        return f"{VOLATILITY_NAMES[self.volatility]}/{LIQUIDITY_NAMES[self.liquidity]}"

    @classmethod
    def of(cls, values: dict[str, float]) -> Regime:
        """The regime the features `values` were taken in."""
        return cls(
            int(values["regime_volatility"]), int(values["regime_liquidity"]),
            values["volatility_pct"] / 100, values["vol_ratio"], values["volume_ratio"],
            1.0 - values["volume_left"],
        )  # fmt: skip

    @classmethod
    def named(cls, name: str) -> Regime:
        """The regime of a `name` (``stormy/thin``), without its figures."""
        volatility, liquidity = name.split("/")
        return cls(
            _index(VOLATILITY_NAMES, volatility), _index(LIQUIDITY_NAMES, liquidity),
            math.nan, math.nan, math.nan, math.nan,
        )  # fmt: skip


def _index(names: dict[int, str], name: str) -> int:
    return next(k for k, v in names.items() if v == name)


def regime(
    instrument: Instrument, market: MarketSnapshot, calendar: Calendar, now: datetime
) -> Regime:
    sigma = market.sigma if math.isfinite(market.sigma) else instrument.daily_volatility
    vol_ratio = sigma / instrument.daily_volatility
    done = calendar.volume_fraction(now.timestamp())
    volume_ratio = market.volume / (instrument.adv * done) if done > 0.01 else 1.0
    volatility = 1 if vol_ratio > STORMY else (-1 if vol_ratio < CALM else 0)
    thin = volume_ratio < THIN_VOLUME or market.spread_ratio > THIN_SPREAD
    liquidity = 1 if thin else (-1 if volume_ratio > DEEP_VOLUME else 0)
    return Regime(volatility, liquidity, sigma, vol_ratio, volume_ratio, done)


def features(
    order: OrderAtArrival,
    instrument: Instrument,
    market: MarketSnapshot,
    calendar: Calendar,
    now: datetime,
) -> Features:
    """The model's features of `order` arriving at `now` into `market`."""
    mid = market.mid or instrument.reference_price.nanos
    spread_bps = (market.ask - market.bid) / mid * 1e4 if market.mid else 0.0
    touch = market.ask_size if order.side is Side.BUY else market.bid_size
    found = regime(instrument, market, calendar, now)
    sign = 1.0 if order.side is Side.BUY else -1.0
    close = calendar.open + calendar.seconds
    to_close = max(close - now.timestamp(), 0.0) / 60
    start = max(now.timestamp(), order.start.timestamp() if order.start else 0.0)
    end = max(order.end.timestamp() if order.end else close, start)
    expected = instrument.adv * (calendar.volume_fraction(end) - calendar.volume_fraction(start))
    participation = order.quantity / max(expected, 1.0)
    return Features(
        {
            "size_pct_adv": order.quantity / instrument.adv * 100,
            "spread_bps": spread_bps,
            "depth_ratio": touch / order.quantity,
            "volatility_pct": found.sigma * 100,
            "vol_ratio": found.vol_ratio,
            "volume_left": 1.0 - found.volume_done,
            "volume_ratio": found.volume_ratio,
            "momentum_bps": sign * market.momentum * 1e4,
            "minutes_to_close": to_close,
            "window_minutes": (end - start) / 60,
            "size_pct_window": participation * 100,
            "impact_bps": found.sigma * math.sqrt(participation) * 1e4,
            "regime_volatility": float(found.volatility),
            "regime_liquidity": float(found.liquidity),
        }
    )


def notional(order: OrderAtArrival, instrument: Instrument, market: MarketSnapshot) -> float:
    """The order's value at the mid (the reference price before any quote), in currency."""
    nanos = market.mid or instrument.reference_price.nanos
    return order.quantity * nanos / 1e9


def minutes_since_open(calendar: Calendar, now: datetime) -> float:
    return (now.timestamp() - calendar.open) / 60
