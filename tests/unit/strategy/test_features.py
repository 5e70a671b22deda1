"""The order's window among the features: how long it has, and the participation that needs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from fillpath.core.enums import Side
from fillpath.core.market import MarketSnapshot, us_equity_calendar
from fillpath.core.session import open_of
from fillpath.infra.reference_data import load_reference_data
from fillpath.strategy.features import OrderAtArrival, features

MARKET = MarketSnapshot(
    at=0.0, bid=99_990_000_000, ask=100_010_000_000, bid_size=500, ask_size=500,
    volume=1_000_000, window_volume=10_000, lasting_volume=8_000, spread_ratio=1.0,
    sigma=math.nan,
)  # fmt: skip
ARRIVAL = open_of(datetime(2026, 3, 10).date()) + timedelta(hours=2)


def window_features(
    *, start: datetime | None = None, end: datetime | None = None
) -> dict[str, float]:
    order = OrderAtArrival(
        symbol="ACME", side=Side.BUY, quantity=50_000, account="DESK-EQ", start=start, end=end
    )
    instrument = load_reference_data().instruments["ACME"]
    return features(order, instrument, MARKET, us_equity_calendar(ARRIVAL), ARRIVAL).values


def test_an_order_without_an_end_time_has_until_the_close() -> None:
    values = window_features()
    assert values["window_minutes"] == pytest.approx(values["minutes_to_close"])


def test_half_the_window_needs_about_twice_the_participation() -> None:
    half_hour = window_features(end=ARRIVAL + timedelta(minutes=30))
    quarter = window_features(end=ARRIVAL + timedelta(minutes=15))
    to_close = window_features()
    assert half_hour["window_minutes"] == pytest.approx(30)
    assert quarter["window_minutes"] == pytest.approx(15)
    # Midday the intraday profile is nearly flat: halving the window about doubles the share
    # of its volume the order needs; the whole afternoon needs far less.
    assert 1.7 < quarter["size_pct_window"] / half_hour["size_pct_window"] < 2.3
    assert to_close["size_pct_window"] < half_hour["size_pct_window"] / 5


def test_a_later_start_shortens_the_window() -> None:
    later = window_features(
        start=ARRIVAL + timedelta(minutes=10), end=ARRIVAL + timedelta(minutes=30)
    )
    assert later["window_minutes"] == pytest.approx(20)
