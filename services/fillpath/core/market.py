"""What the algorithms and the strategy service see of the market: one instrument's quotes and
prints, folded into the few figures a schedule adapts to (or a strategy is chosen on), and the
session's calendar with its volume profile.

`MarketView` takes the consolidated quote and every trade print (ours included: a
participation rate is our share of all the volume), and answers with a `MarketSnapshot`:
the touch and its sizes, the cumulative volume since the open and over a trailing window, the
spread against its own recent typical level, the volatility the prints imply and the move of
the mid over the last few minutes. Times are seconds
(any epoch, the same for every call); prices are nanos.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from fillpath.core.session import SESSION_SECONDS, TIMEZONE, US_EQUITY_PROFILE, open_of

WINDOW = 60.0
"""Seconds of the trailing window for volume (participation caps, surges)."""
FILL_LAG = 10.0
"""Seconds a slice sent now may take to fill: the prints older than `WINDOW − FILL_LAG` will
have left the trailing window by then."""
SPREAD_TAU = 300.0
"""Seconds over which the typical spread is averaged (exponentially)."""
SIGMA_SAMPLE = 30.0
"""Seconds between the midpoints that estimate volatility (longer than the bid–ask bounce)."""
SIGMA_MIN_SAMPLES = 20
"""Below this many returns the instrument's reference volatility is used instead."""
MOMENTUM_WINDOW = 300.0
"""Seconds over which the mid's recent move (momentum) is measured."""


@dataclass(frozen=True, slots=True)
class Calendar:
    """The trading session and its historical intraday volume profile."""

    open: float
    """Seconds (on the engine's clock) of the open."""
    seconds: float
    """Length of the session."""
    profile: np.ndarray
    """The cumulative share of a day's volume at each of len − 1 equal buckets' ends (from 0 to
    1)."""

    @classmethod
    def from_shares(
        cls, open_: float, seconds: float, shares: Sequence[float] | np.ndarray
    ) -> Calendar:
        array = np.asarray(shares, dtype=np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(array) / array.sum()))
        return cls(open=open_, seconds=seconds, profile=cumulative)

    def volume_fraction(self, at: float) -> float:
        """The share of a day's volume that trades, on the profile, by `at`."""
        x = (at - self.open) / self.seconds * (len(self.profile) - 1)
        return float(np.interp(x, np.arange(len(self.profile)), self.profile))


def us_equity_calendar(at: datetime) -> Calendar:
    """The US equity session of `at`'s day, with its intraday volume profile."""
    return _us_equity_session(at.astimezone(ZoneInfo(TIMEZONE)).date())


@functools.lru_cache(maxsize=8)
def _us_equity_session(day: date) -> Calendar:
    """Built once per day asked about (every strategy choice asks for today's)."""
    return Calendar.from_shares(open_of(day).timestamp(), SESSION_SECONDS, US_EQUITY_PROFILE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSnapshot:
    at: float
    bid: int
    ask: int
    bid_size: int = 0
    ask_size: int = 0
    volume: int
    """Shares printed since the view began (the open, in a session)."""
    window_volume: int
    """Shares printed over the last `WINDOW` seconds."""
    lasting_volume: int
    """Shares printed over the last `WINDOW − FILL_LAG` seconds: what will still be in the
    trailing window when the fills of a slice sent now land."""
    spread_ratio: float
    """The spread now against its typical level (1: usual; 2: twice as wide)."""
    sigma: float
    """Daily volatility (a fraction of the price) from the prints; NaN until enough are seen."""
    momentum: float = 0.0
    """The log move of the mid over the last `MOMENTUM_WINDOW` seconds (0 until seen)."""

    @property
    def mid(self) -> int:
        return (self.bid + self.ask) // 2 if self.bid > 0 and self.ask > 0 else 0


class MarketView:
    """One instrument's market, as it unfolds."""

    def __init__(self, session_seconds: float) -> None:
        self._session = session_seconds
        self._bid = self._ask = 0
        self._bid_size = self._ask_size = 0
        self._mids: deque[tuple[float, float]] = deque()  # (seconds, log mid), sampled
        self._volume = 0
        self._window: deque[tuple[float, int]] = deque()
        self._window_volume = 0
        self._typical = math.nan
        self._spread_at = math.nan
        self._sample: tuple[float, float] | None = None  # (seconds, log mid)
        self._squares = 0.0
        self._elapsed = 0.0
        self._returns = 0
        self._log_mid = math.nan

    def on_quote(self, at: float, bid: int, ask: int, bid_size: int = 0, ask_size: int = 0) -> None:
        if bid <= 0 or ask <= bid:
            return
        self._bid_size, self._ask_size = bid_size, ask_size
        spread = float(ask - bid)
        if math.isnan(self._typical):
            self._typical = spread
        else:
            weight = 1.0 - math.exp(-max(at - self._spread_at, 0.0) / SPREAD_TAU)
            self._typical += weight * (spread - self._typical)
        self._spread_at = at
        self._bid, self._ask = bid, ask
        log_mid = math.log((bid + ask) / 2)
        if self._sample is None:
            self._sample = (at, log_mid)
            self._mids.append(self._sample)
        elif at - self._sample[0] >= SIGMA_SAMPLE:
            self._squares += (log_mid - self._sample[1]) ** 2
            self._elapsed += at - self._sample[0]
            self._returns += 1
            self._sample = (at, log_mid)
            self._mids.append(self._sample)
            while len(self._mids) > 1 and self._mids[1][0] <= at - MOMENTUM_WINDOW:
                self._mids.popleft()
        self._log_mid = log_mid

    def on_trade(self, at: float, quantity: int) -> None:
        self._volume += quantity
        self._window.append((at, quantity))
        self._window_volume += quantity

    def snapshot(self, at: float) -> MarketSnapshot:
        while self._window and self._window[0][0] <= at - WINDOW:
            self._window_volume -= self._window.popleft()[1]
        leaving = 0
        for printed, quantity in self._window:
            if printed > at - WINDOW + FILL_LAG:
                break
            leaving += quantity
        spread = self._ask - self._bid
        ratio = spread / self._typical if spread > 0 and self._typical > 0 else 1.0
        sigma = (
            math.sqrt(self._squares / self._elapsed * self._session)
            if self._returns >= SIGMA_MIN_SAMPLES
            else math.nan
        )
        momentum = self._log_mid - self._mids[0][1] if self._mids else 0.0
        return MarketSnapshot(
            at=at, bid=self._bid, ask=self._ask, bid_size=self._bid_size,
            ask_size=self._ask_size, volume=self._volume, window_volume=self._window_volume,
            lasting_volume=self._window_volume - leaving, spread_ratio=ratio, sigma=sigma,
            momentum=momentum,
        )  # fmt: skip
