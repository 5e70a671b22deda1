"""The lab as a whole: deterministic from its seed, and honest dark pools."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from fillpath.core.enums import ExecType, LiquidityFlag, OrderType, Side, TimeInForce
from fillpath.core.price import Price
from fillpath.core.venues import VenueOrder
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import MarketLab
from fillpath.market.layout import OUT_FILL, OUT_QUOTE, OUT_TRADE
from fillpath.market.marketdata import QuoteBoard


def _session(lab: MarketLab, minutes: int) -> None:
    """Half an hour with a few orders of ours: a resting buy, an IOC sell, dark orders."""
    for minute in range(1, minutes + 1):
        lab.advance(minute * 60.0)
        if minute % 5 == 1:
            lab.submit(
                VenueOrder(
                    order_id=f"dark-{minute}",
                    symbol="ACME",
                    venue="shade",
                    side=Side.BUY,
                    quantity=2_000,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.DAY,
                )
            )
            lab.submit(
                VenueOrder(
                    order_id=f"ioc-{minute}",
                    symbol="ACME",
                    venue="lumen",
                    side=Side.SELL,
                    quantity=500,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.IOC,
                )
            )


def test_same_seed_gives_a_byte_identical_event_log(make_lab: Callable[..., MarketLab]) -> None:
    first, second, other = (make_lab(["ACME"], seed, record=True) for seed in (11, 11, 12))
    for lab in (first, second, other):
        _session(lab, 30)

    assert first.digest() == second.digest()
    assert first.digest() != other.digest()
    assert len(first.event_log("ACME")) > 10_000


def test_dark_fills_are_at_the_midpoint_and_never_below_the_minimum(
    make_lab: Callable[..., MarketLab],
) -> None:
    lab = make_lab(["ACME"], 5, record=True)
    minimum = {v.name: v.min_quantity for v in lab.venues}
    reports = []
    for minute in range(1, 121):
        step = lab.advance(minute * 60.0)
        reports.extend(step.reports)
        for venue, side in (("shade", Side.BUY), ("umbra", Side.SELL), ("shade", Side.SELL)):
            lab.submit(
                VenueOrder(
                    order_id=f"{venue}-{side.name}-{minute}",
                    symbol="ACME",
                    venue=venue,
                    side=side,
                    quantity=5_000,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.DAY,
                    min_quantity=300,
                )
            )
    fills = [r for r in reports if r.exec_type is ExecType.TRADE]
    assert len(fills) > 20
    for fill in fills:
        assert fill.liquidity is LiquidityFlag.MIDPOINT
        assert fill.last_quantity >= max(minimum[fill.venue], 300)

    # Each fill's price is the NBBO midpoint at that instant, rebuilt from the quotes before it.
    log = lab.event_log("ACME")
    board = QuoteBoard(venues=len(lab.venues))
    checked = 0
    dark = {i for i, v in enumerate(lab.venues) if v.kind == "dark"}
    fill_rows = np.flatnonzero((log["kind"] == OUT_FILL) & np.isin(log["venue"], list(dark)))
    start = 0
    for row in fill_rows:
        board.update("ACME", log[start:row][log[start:row]["kind"] == OUT_QUOTE])
        start = row
        nbbo = board.nbbo("ACME")
        assert nbbo.two_sided
        assert nbbo.bid < nbbo.ask
        assert int(log[row]["price"]) * 2 == nbbo.bid + nbbo.ask
        assert Price(int(log[row]["price"])).nanos == nbbo.mid
        checked += 1
    assert checked == len(fills)


def test_gateway_with_a_speed_runs_the_session_ahead_of_the_wall_clock(
    make_lab: Callable[..., MarketLab],
) -> None:
    reports = []
    gateway = SimulatedGateway(make_lab(["ACME"]), speed=600.0)
    gateway.subscribe(reports.append)
    gateway.start()
    try:
        gateway.new_order(
            VenueOrder(
                order_id="live-1",
                symbol="ACME",
                venue="lumen",
                side=Side.BUY,
                quantity=300,
                order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC,
            )
        )
        deadline = time.monotonic() + 60
        while gateway.lab.now < 120.0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        gateway.stop()
    assert gateway.lab.now >= 120.0
    assert reports[0].exec_type is ExecType.NEW
    assert sum(r.last_quantity for r in reports if r.exec_type is ExecType.TRADE) > 0


def test_after_the_close_nothing_trades_and_our_orders_expire(
    make_lab: Callable[..., MarketLab],
) -> None:
    lab = make_lab(["INIT"], 2, record=True)
    close = lab.config.session_seconds
    lab.advance(close - 2.0)
    lab.submit(
        VenueOrder(
            order_id="late", symbol="INIT", venue="lumen", side=Side.BUY, quantity=100,
            order_type=OrderType.LIMIT, limit_price=Price.parse("10.00"),
        )
    )  # fmt: skip
    reports = [*lab.advance(close + 60.0).reports]
    lab.submit(
        VenueOrder(
            order_id="after", symbol="INIT", venue="lumen", side=Side.BUY, quantity=100,
            order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
        )
    )  # fmt: skip
    reports += lab.advance(close + 120.0).reports

    log = lab.event_log("INIT")
    assert not np.any(np.isin(log["kind"], [OUT_QUOTE, OUT_TRADE]) & (log["t"] > close))
    by_order = {(r.order_id, r.exec_type) for r in reports}
    assert ("late", ExecType.EXPIRED) in by_order
    assert ("after", ExecType.REJECTED) in by_order
