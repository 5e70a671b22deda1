"""The live fold and the alert rules, on hand-made events: pure logic, no I/O."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import events_pb2
from fillpath.core.errors import InvalidArgument
from fillpath.monitor.alerts import CRITICAL, WARNING, AlertEngine, rules_from_mapping
from fillpath.monitor.live import Execution, LiveBook, Mark, MarketState

NANOS = 1_000_000_000
PARENT = "P1"


def _envelope(name: str, stream: str = PARENT, **fields: Any) -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(stream_id=stream, event_type=name)
    getattr(envelope, name).CopyFrom(getattr(events_pb2, _type(name))(**fields))
    return envelope


def _type(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _mark(t: float, bid: float, ask: float, volume: int) -> Mark:
    return Mark(time=t, bid_nanos=round(bid * NANOS), ask_nanos=round(ask * NANOS), volume=volume)


def _book_with_a_buy_filled_at(*fills: tuple[int, float]) -> tuple[LiveBook, Execution]:
    book = LiveBook()
    terms = events_pb2.OrderTerms(
        order_id=PARENT, account="DESK", symbol="ACME", side=C.SIDE_BUY, quantity=1_000
    )
    book.apply(_envelope("order_submitted", order_id=PARENT, terms=terms), Mark())
    book.apply(_envelope("order_accepted", order_id=PARENT), _mark(100, 9.99, 10.01, 5_000))
    child = events_pb2.OrderTerms(
        order_id="C1", parent_order_id=PARENT, symbol="ACME", venue="lumen", quantity=1_000
    )
    book.apply(_envelope("child_order_placed", order_id="C1", terms=child), Mark())
    execution = None
    for i, (qty, price) in enumerate(fills):
        nanos = round(price * NANOS)
        book.apply(
            _envelope("child_order_filled", order_id="C1", exec_id=f"E{i}", venue="lumen",
                      quantity=qty, price_nanos=nanos, fee_nanos=qty * 3_000_000,
                      liquidity=C.LIQUIDITY_FLAG_TAKER),
            _mark(101 + i, 9.99, 10.01, 5_000 + 1_000 * (i + 1)),
        )  # fmt: skip
        execution = book.apply(
            _envelope("order_partially_filled", order_id=PARENT, child_order_id="C1",
                      exec_id=f"E{i}", quantity=qty, price_nanos=nanos),
            _mark(101 + i, 9.99, 10.01, 5_000 + 1_000 * (i + 1)),
        )  # fmt: skip
    assert execution is not None
    return book, execution


def test_fills_give_the_average_price_slippage_and_participation_worked_by_hand() -> None:
    _, execution = _book_with_a_buy_filled_at((200, 10.01), (300, 10.02))
    # Average (200·10.01 + 300·10.02) / 500 = 10.016; arrival mid 10.00: +16 bps.
    assert execution.average_price == pytest.approx(10.016)
    assert execution.slippage_vs_arrival_bps == pytest.approx(16.0)
    # The market traded 2,000 shares since arrival (ours included): 500 / 2,000.
    assert execution.participation == pytest.approx(0.25)
    assert execution.child_orders_by_venue == (("lumen", 1),)
    assert execution.fees_nanos == 500 * 3_000_000
    assert execution.status == C.ORDER_STATUS_PARTIALLY_FILLED


def test_a_sell_below_the_arrival_mid_is_a_cost() -> None:
    book = LiveBook()
    terms = events_pb2.OrderTerms(order_id=PARENT, symbol="ACME", side=C.SIDE_SELL, quantity=10)
    book.apply(_envelope("order_submitted", order_id=PARENT, terms=terms), Mark())
    book.apply(_envelope("order_accepted", order_id=PARENT), _mark(1, 9.99, 10.01, 0))
    execution = book.apply(
        _envelope("order_filled", order_id=PARENT, quantity=10, price_nanos=9_990_000_000),
        _mark(2, 9.99, 10.01, 10),
    )
    assert execution is not None
    assert execution.slippage_vs_arrival_bps == pytest.approx(10.0)
    assert not execution.active
    assert execution.end is not None


def test_market_state_keeps_volume_quote_and_when_each_venue_quoted() -> None:
    state = MarketState(symbol="ACME")
    trade = events_pb2.EventEnvelope()
    trade.trade_printed.CopyFrom(
        events_pb2.TradePrinted(symbol="ACME", venue="lumen", exchange_time_unix_nanos=5 * NANOS,
                                price_nanos=10 * NANOS, quantity=300)
    )  # fmt: skip
    quote = events_pb2.EventEnvelope()
    quote.quote_updated.CopyFrom(
        events_pb2.QuoteUpdated(symbol="ACME", venue="orbit", exchange_time_unix_nanos=7 * NANOS)
    )
    assert state.apply(trade)
    assert state.apply(quote)
    assert (state.volume, state.notional_nanos, state.time) == (300, 3_000 * NANOS, 7.0)
    assert state.venue_quoted_at == {"orbit": 7.0}


RULES = {
    "escalate_after_seconds": 60,
    "rules": [
        {"name": "slippage", "kind": "slippage", "warning": 10, "critical": 30, "min_filled": 1},
    ],
}


def test_an_alert_is_raised_once_per_level_then_escalates_and_rearms() -> None:
    engine = AlertEngine(rules_from_mapping(RULES, "test"))
    _, mild = _book_with_a_buy_filled_at((200, 10.01), (300, 10.02))  # +16 bps
    first = engine.alerts(engine.findings(mild, 0), now=0)
    assert [a.severity for a in first] == [WARNING]
    assert engine.alerts(engine.findings(mild, 0), now=1) == []  # de-duplicated
    _, worse = _book_with_a_buy_filled_at((500, 10.04))  # +40 bps
    escalated = engine.alerts(engine.findings(worse, 0), now=2)
    assert [a.severity for a in escalated] == [CRITICAL]
    assert escalated[0].escalated_from == first[0].alert_id
    _, fine = _book_with_a_buy_filled_at((500, 10.0))  # 0 bps: back to normal, re-armed
    assert engine.alerts(engine.findings(fine, 0), now=3) == []
    assert [a.severity for a in engine.alerts(engine.findings(mild, 0), now=4)] == [WARNING]


def test_an_unacknowledged_warning_escalates_after_the_configured_time() -> None:
    engine = AlertEngine(rules_from_mapping(RULES, "test"))
    _, mild = _book_with_a_buy_filled_at((500, 10.012))  # +12 bps
    (_warning,) = engine.alerts(engine.findings(mild, 0), now=0)
    assert engine.alerts(engine.findings(mild, 0), now=59) == []
    (overdue,) = engine.alerts(engine.findings(mild, 0), now=61)
    assert overdue.severity == CRITICAL
    assert "unacknowledged" in overdue.message


def test_an_outlier_against_the_history_of_its_algorithm_and_symbol_is_an_anomaly() -> None:
    rules = rules_from_mapping(
        {"rules": [{"kind": "anomaly", "warning": 3, "critical": 5, "min_history": 5}]}, "test"
    )
    engine = AlertEngine(rules)
    for price in (10.01, 10.012, 10.008, 10.011, 10.009):  # about +10 bps, σ ≈ 1.6 bps
        _, done = _book_with_a_buy_filled_at((1_000, price))
        engine.finished(done)
    _, outlier = _book_with_a_buy_filled_at((1_000, 10.05))  # +50 bps
    finished = dataclasses.replace(outlier, status=C.ORDER_STATUS_FILLED)
    (alert,) = engine.alerts(engine.findings(finished, 0), now=0)
    assert alert.rule == "anomaly"
    assert alert.severity == CRITICAL
    assert alert.value > 5


def test_bad_rules_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidArgument) as raised:
        rules_from_mapping(
            {"rules": [{"kind": "slippage", "warning": 50, "critical": 10},
                       {"kind": "colour", "warning": 1, "critical": 2}],
             "webhook_url": "ftp://x"},
            "alerts.yaml",
        )  # fmt: skip
    text = str(raised.value)
    assert "rules[0].critical" in text
    assert "rules[1].kind" in text
    assert "webhook_url" in text


def test_time_driven_rules_no_fill_and_venue_down_use_market_time() -> None:
    rules = rules_from_mapping(
        {"rules": [{"kind": "no_fill", "warning": 60, "critical": 300},
                   {"kind": "venue_down", "warning": 30, "critical": 120},
                   {"kind": "participation", "warning": 0.2, "critical": 0.5,
                    "min_volume": 100}]},
        "test",
    )  # fmt: skip
    engine = AlertEngine(rules)
    _, execution = _book_with_a_buy_filled_at((500, 10.01))  # last fill at t=101
    # 500 of 1,000 market shares since arrival: 50 % participation, critical at once.
    assert [(a.rule, a.severity) for a in engine.alerts(engine.findings(execution, 130), 0)] == [
        ("participation", CRITICAL)
    ]
    (quiet,) = engine.alerts(engine.findings(execution, 161), now=1)  # 60 s without a fill
    assert (quiet.rule, quiet.severity) == ("no_fill", WARNING)
    market = MarketState(symbol="ACME", time=200.0, venue_quoted_at={"lumen": 199.0, "orbit": 60.0})
    (down,) = engine.alerts(engine.venue_findings(market), now=2)
    assert (down.venue, down.severity) == ("orbit", CRITICAL)
