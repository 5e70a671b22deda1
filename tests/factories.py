"""Small stub factories for the order domain: one place that knows how to build a valid order,
so each test says only what it is about."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from fillpath.core.commands import (
    ApplyExecutionReport,
    ChildOrderRequest,
    PlaceChildOrders,
    SubmitOrder,
)
from fillpath.core.enums import ExecType, LiquidityFlag, OrderType, Side, TimeInForce
from fillpath.core.ids import parent_order_id
from fillpath.core.instruments import Instrument
from fillpath.core.market import MarketSnapshot
from fillpath.core.parent_order import ParentOrder
from fillpath.core.price import Price
from fillpath.core.session import open_of
from fillpath.core.terms import OrderTerms

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


ORDINARY_MARKET = MarketSnapshot(
    at=0.0, bid=99_990_000_000, ask=100_010_000_000, bid_size=500, ask_size=500,
    volume=1_000_000, window_volume=10_000, lasting_volume=8_000, spread_ratio=1.0,
    sigma=math.nan,
)  # fmt: skip
"""A market around 100 with a 2 bps spread, as a strategy choice sees it."""
MIDDAY = open_of(datetime(2026, 3, 10).date()) + timedelta(hours=2)
"""Two hours into a session, where the intraday volume profile is nearly flat."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def px(text: str) -> Price:
    return Price.parse(text)


def instrument(**overrides: Any) -> Instrument:
    fields: dict[str, Any] = {
        "symbol": "ACME",
        "tick_size": px("0.01"),
        "lot_size": 1,
        "adv": 4_500_000,
        "reference_price": px("100.00"),
    }
    return Instrument(**(fields | overrides))


def submit_command(**overrides: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": "c-1",
        "account": "DESK-EQ",
        "portfolio": "ALPHA",
        "symbol": "ACME",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.DAY,
        "quantity": 10_000,
        "limit_price": px("100.50"),
    }
    return SubmitOrder(**(fields | overrides))


def parent_terms(**overrides: Any) -> OrderTerms:
    command = submit_command(**overrides)
    return command.terms(parent_order_id(command.account, command.client_order_id))


def child_terms(parent: OrderTerms, n: int = 1, **overrides: Any) -> OrderTerms:
    fields: dict[str, Any] = {
        "order_id": f"{parent.order_id}.{n}",
        "client_order_id": f"slice-{n}",
        "parent_order_id": parent.order_id,
        "venue": "XNAS",
        "quantity": 1_000,
        "time_in_force": TimeInForce.DAY,
    }
    return dataclasses.replace(parent, instructions=None, **(fields | overrides))


def accepted_parent(**overrides: Any) -> ParentOrder:
    aggregate, _ = ParentOrder.submit(parent_terms(**overrides), T0, None)
    return aggregate


def child_request(n: int = 1, **overrides: Any) -> ChildOrderRequest:
    fields: dict[str, Any] = {
        "client_order_id": f"slice-{n}",
        "venue": "XNAS",
        "quantity": 1_000,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.DAY,
        "limit_price": px("100.40"),
    }
    return ChildOrderRequest(**(fields | overrides))


def place(aggregate: ParentOrder, *requests: ChildOrderRequest) -> list[str]:
    """Places children on `aggregate`; returns their order ids."""
    events = aggregate.place_children(
        PlaceChildOrders(parent_order_id=aggregate.order_id, children=requests), at(1)
    )
    return [e.order_id for e in events]


def report(order_id: str, exec_id: str, exec_type: ExecType, **fields: Any) -> ApplyExecutionReport:
    return ApplyExecutionReport(order_id=order_id, exec_id=exec_id, exec_type=exec_type, **fields)


def fill(order_id: str, exec_id: str, quantity: int, price: str = "100.30") -> ApplyExecutionReport:
    return report(
        order_id,
        exec_id,
        ExecType.TRADE,
        last_quantity=quantity,
        last_price=px(price),
        liquidity=LiquidityFlag.TAKER,
        fee_nanos=quantity * 3_000_000,
    )


def sample_events() -> list[Any]:
    """One instance of every event type, with every optional field set."""
    from fillpath.core.enums import AlgorithmKind, RejectCode, Urgency
    from fillpath.core.events import (
        ChildOrderFilled,
        ChildOrderPlaced,
        OrderAccepted,
        OrderCanceled,
        OrderCancelRejected,
        OrderCancelRequested,
        OrderDoneForDay,
        OrderExpired,
        OrderFilled,
        OrderPartiallyFilled,
        OrderRejected,
        OrderReplaced,
        OrderReplaceRejected,
        OrderReplaceRequested,
        OrderSubmitted,
    )
    from fillpath.core.routing import PING, TAKE, RouteAllocation, RoutingDecision
    from fillpath.core.strategy import StrategyRecommended, StrategySelected
    from fillpath.core.terms import ExecutionInstructions

    terms = parent_terms(
        stop_price=px("99.00"),
        order_type=OrderType.STOP_LIMIT,
        time_in_force=TimeInForce.GTD,
        expire_time=at(3600),
        decision_price=px("100.01"),
        instructions=ExecutionInstructions(
            algo_profile="vwap-default",
            algorithm=AlgorithmKind.VWAP,
            urgency=Urgency.HIGH,
            max_participation_bps=1_500,
            params=(("risk_aversion", 0.5), ("x", 2.0)),
            start_time=at(60),
            end_time=at(7200),
        ),
    )
    child = child_terms(terms, post_only=True, min_quantity=100, order_type=OrderType.LIMIT)
    oid, cid, t = terms.order_id, child.order_id, at(10)
    return [
        OrderSubmitted(order_id=oid, occurred_at=t, terms=terms),
        ChildOrderPlaced(order_id=cid, occurred_at=t, terms=child),
        OrderAccepted(
            order_id=cid, occurred_at=t, exec_id="a1", venue_order_id="V-9", expires_at=at(99)
        ),
        OrderRejected(
            order_id=cid, occurred_at=t, exec_id="r1", code=RejectCode.VENUE, reason="no"
        ),
        OrderCancelRequested(order_id=oid, occurred_at=t, reason="user"),
        OrderCanceled(order_id=cid, occurred_at=t, exec_id="c1", reason="ok"),
        OrderCancelRejected(order_id=cid, occurred_at=t, exec_id="c2", reason="late"),
        OrderReplaceRequested(
            order_id=oid, occurred_at=t, quantity=5, limit_price=px("1.5"), reason="r"
        ),
        OrderReplaced(order_id=cid, occurred_at=t, exec_id="p1", quantity=5, limit_price=px("1.5")),
        OrderReplaceRejected(
            order_id=oid, occurred_at=t, exec_id="p2", code=RejectCode.MAX_NOTIONAL, reason="big"
        ),
        OrderExpired(order_id=cid, occurred_at=t, exec_id="x1", reason="eod"),
        OrderDoneForDay(order_id=cid, occurred_at=t, exec_id="d1"),
        ChildOrderFilled(
            order_id=cid,
            occurred_at=t,
            exec_id="f1",
            venue="XNAS",
            quantity=100,
            price=px("100.005"),
            liquidity=LiquidityFlag.MIDPOINT,
            fee_nanos=-1_234,
            executed_at=at(9.5),
        ),
        OrderPartiallyFilled(
            order_id=oid,
            occurred_at=t,
            child_order_id=cid,
            exec_id="f1",
            quantity=100,
            price=px("100.005"),
        ),
        OrderFilled(
            order_id=oid, occurred_at=t, child_order_id=cid, exec_id="f2", quantity=9, price=px("1")
        ),
        StrategySelected(
            order_id=oid,
            occurred_at=t,
            algo_profile="vwap-standard",
            algorithm=AlgorithmKind.VWAP,
            urgency=Urgency.HIGH,
            params=(("participation", 0.08),),
            venue_preferences=("lumen",),
            excluded_venues=("orbit",),
            allow_dark=False,
            strategy="desk-default",
            rule="standard",
            model_version="m-3",
            predicted_cost_bps=4.25,
            predicted_risk_bps=1.5,
            features=(("size_pct_adv", 0.5), ("spread_bps", 2.0)),
            candidate_costs=(("twap-standard", 5.0), ("vwap-standard", 4.25)),
            explanation="rule standard → vwap-standard",
            max_participation_bps=1500,
            start_time=t,
        ),
        StrategyRecommended(
            order_id=oid,
            occurred_at=t,
            regime_before="normal/normal",
            regime_now="stormy/normal",
            urgency=Urgency.HIGH,
            reason="volatility turned stormy: finish sooner (timing risk)",
        ),
        RoutingDecision(
            decision_id="d-1",
            order_id=oid,
            occurred_at=t,
            symbol="ACME",
            side=Side.BUY,
            quantity=900,
            mode="best_execution",
            urgency=Urgency.MEDIUM,
            limit_price=px("100.02"),
            bid_price=px("99.99"),
            ask_price=px("100.01"),
            allocations=(
                RouteAllocation(
                    venue="lumen",
                    quantity=500,
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce.IOC,
                    limit_price=px("100.01"),
                    expected_cost_bps=1.25,
                    source=TAKE,
                ),
                RouteAllocation(
                    venue="shade",
                    quantity=400,
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce.DAY,
                    min_quantity=100,
                    expected_cost_bps=0.5,
                    source=PING,
                ),
            ),
            expected_cost_bps=0.9,
            miss_cost_bps=4.0,
            excluded=(("orbit", "excluded by the request"), ("umbra", "circuit open")),
            rationale="take 500 on lumen, ping shade for 400",
        ),
        *sample_algo_events(),
    ]


def sample_algo_events() -> list[Any]:
    """One instance of every algorithm execution event, with every optional field set."""
    from fillpath.core.enums import AlgorithmKind, Urgency
    from fillpath.core.executions import (
        AlgoParams,
        DeviationRecorded,
        ExecutionAdjusted,
        ExecutionCanceled,
        ExecutionCompleted,
        ExecutionCreated,
        ExecutionFailed,
        ExecutionPaused,
        ExecutionResumed,
        ExecutionSpec,
        ExecutionStarted,
        SliceCancelRequested,
        SliceClosed,
        SliceFilled,
        SliceRouted,
        SliceSent,
    )
    from fillpath.core.routing import REST, RouteAllocation

    params = AlgoParams(
        algorithm=AlgorithmKind.IS, profile="is-balanced", urgency=Urgency.MEDIUM,
        participation=0.1, min_participation=0.02, max_participation=0.2, slice_seconds=30.0,
        min_slice=100, randomize=0.1, risk_aversion=1e-6, display_quantity=0,
        display_randomize=0.0, price_limit_bps=50.0,
    )  # fmt: skip
    spec = ExecutionSpec(
        execution_id="X-1", order_id="P-1", symbol="ACME", side=Side.SELL, quantity=9_000,
        lot=100, tick_nanos=10_000_000, limit_price=px("99.50"), start=at(0), end=at(3600),
        params=params, adv=4_500_000, daily_volatility=0.02, eta=2.5e-7, gamma=2.5e-8,
    )  # fmt: skip
    ids = {"execution_id": "X-1", "order_id": "P-1", "occurred_at": at(12)}
    allocation = RouteAllocation(
        venue="orbit", quantity=300, order_type=OrderType.LIMIT, time_in_force=TimeInForce.DAY,
        limit_price=px("100.01"), post_only=True, expected_cost_bps=-0.4, source=REST,
    )  # fmt: skip
    return [
        ExecutionCreated(**ids, spec=spec),
        ExecutionStarted(**ids, arrival_mid_nanos=px("100.005").nanos, market_volume=12_345),
        SliceSent(
            **ids,
            slice=3,
            quantity=300,
            urgency=Urgency.HIGH,
            limit_price=px("99.60"),
            scheduled=1_200,
            executed=900,
            reason="behind by 1.2 slices",
        ),
        SliceRouted(**ids, slice=3, decision_id="d-7", allocations=(allocation,)),
        SliceFilled(**ids, slice=3, exec_id="E-5", quantity=200, price=px("100.01")),
        SliceClosed(**ids, slice=3),
        SliceCancelRequested(**ids, slice=4, reason="unfilled after 30 s"),
        DeviationRecorded(**ids, scheduled=1_500, executed=900, behind=True, reason="behind"),
        ExecutionPaused(**ids, reason="trader"),
        ExecutionResumed(**ids),
        ExecutionAdjusted(
            **ids,
            end=at(7200),
            max_participation=0.15,
            urgency=Urgency.LOW,
            limit_price=px("99.40"),
        ),
        ExecutionCompleted(**ids, reason="filled"),
        ExecutionCanceled(**ids, reason="trader"),
        ExecutionFailed(**ids, reason="order rejected"),
    ]
