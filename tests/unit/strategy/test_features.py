"""The order's window among the features: how long it has, and the participation that needs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fillpath.core.enums import Side
from fillpath.core.market import us_equity_calendar
from fillpath.infra.reference_data import load_reference_data
from fillpath.strategy.features import OrderAtArrival, features
from tests.factories import MIDDAY, ORDINARY_MARKET


def window_features(
    *, start: datetime | None = None, end: datetime | None = None
) -> dict[str, float]:
    order = OrderAtArrival(
        symbol="ACME", side=Side.BUY, quantity=50_000, account="DESK-EQ", start=start, end=end
    )
    instrument = load_reference_data().instruments["ACME"]
    return features(order, instrument, ORDINARY_MARKET, us_equity_calendar(MIDDAY), MIDDAY).values


def test_an_order_without_an_end_time_has_until_the_close() -> None:
    values = window_features()
    assert values["window_minutes"] == pytest.approx(values["minutes_to_close"])


def test_half_the_window_needs_about_twice_the_participation() -> None:
    half_hour = window_features(end=MIDDAY + timedelta(minutes=30))
    quarter = window_features(end=MIDDAY + timedelta(minutes=15))
    to_close = window_features()
    assert half_hour["window_minutes"] == pytest.approx(30)
    assert quarter["window_minutes"] == pytest.approx(15)
    # Midday the intraday profile is nearly flat: halving the window about doubles the share
    # of its volume the order needs; the whole afternoon needs far less.
    assert 1.7 < quarter["size_pct_window"] / half_hour["size_pct_window"] < 2.3
    assert to_close["size_pct_window"] < half_hour["size_pct_window"] / 5


def test_a_later_start_shortens_the_window() -> None:
    later = window_features(
        start=MIDDAY + timedelta(minutes=10), end=MIDDAY + timedelta(minutes=30)
    )
    assert later["window_minutes"] == pytest.approx(20)
