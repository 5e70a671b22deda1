"""The order lifecycle: FIX statuses, the real-world edges, and invariants under any sequence."""

from __future__ import annotations

import copy
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillpath.core.enums import OrderStatus, RejectCode
from fillpath.core.errors import FailedPrecondition, InvalidTransition, Overfill
from fillpath.core.events import (
    ChildOrderFilled,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDoneForDay,
    OrderEvent,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
)
from fillpath.core.orders import REACHABLE_STATUSES, TRANSITIONS, Order, Resolve
from fillpath.core.price import Price
from tests.factories import T0, at, child_terms, parent_terms, px

S = OrderStatus
_exec_ids = itertools.count()


def new_order(quantity: int = 1_000) -> Order:
    return Order.create(child_terms(parent_terms(), quantity=quantity), T0)


def oid() -> str:
    return new_order().order_id


def fill(quantity: int, price: str = "100.00") -> ChildOrderFilled:
    return ChildOrderFilled(
        order_id=oid(),
        occurred_at=at(5),
        exec_id=f"x{next(_exec_ids)}",
        venue="XNAS",
        quantity=quantity,
        price=px(price),
        executed_at=at(5),
    )


def accepted() -> OrderAccepted:
    return OrderAccepted(order_id=oid(), occurred_at=at(1), venue_order_id="V1")


def cancel_request() -> OrderCancelRequested:
    return OrderCancelRequested(order_id=oid(), occurred_at=at(2), reason="user")


def working(quantity: int = 1_000) -> Order:
    order = new_order(quantity)
    order.apply(accepted())
    return order


def test_ack_makes_a_pending_order_new() -> None:
    order = new_order()
    order.apply(accepted())
    assert order.status is S.NEW
    assert order.venue_order_id == "V1"


def test_partial_then_complete_fill_reaches_filled_with_exact_average() -> None:
    order = working()
    order.apply(fill(400, "100.01"))
    assert (order.status, order.leaves_quantity) == (S.PARTIALLY_FILLED, 600)
    order.apply(fill(600, "100.02"))
    assert (order.status, order.leaves_quantity) == (S.FILLED, 0)
    assert order.avg_price == px("100.016")


def test_fill_before_ack_implies_acceptance() -> None:
    order = new_order()
    order.apply(fill(100))
    assert order.status is S.PARTIALLY_FILLED


def test_complete_fill_racing_a_cancel_wins_and_the_late_reject_is_absorbed() -> None:
    order = working()
    order.apply(cancel_request())
    order.apply(fill(1_000))
    assert order.status is S.FILLED
    order.apply(OrderCancelRejected(order_id=oid(), occurred_at=at(6), reason="too late"))
    assert order.status is S.FILLED


def test_partial_fill_during_pending_cancel_keeps_it_pending_and_reject_restores_partial() -> None:
    order = working()
    order.apply(cancel_request())
    order.apply(fill(300))
    assert order.status is S.PENDING_CANCEL
    assert order.leaves_quantity == 700
    order.apply(OrderCancelRejected(order_id=oid(), occurred_at=at(6)))
    assert order.status is S.PARTIALLY_FILLED


def test_ack_arriving_after_a_cancel_request_is_remembered_for_a_rejected_cancel() -> None:
    order = new_order()
    order.apply(cancel_request())
    order.apply(accepted())
    assert order.status is S.PENDING_CANCEL
    order.apply(OrderCancelRejected(order_id=oid(), occurred_at=at(6)))
    assert order.status is S.NEW


def test_rejected_amend_restores_previous_status_and_terms() -> None:
    order = working()
    order.apply(fill(200))
    order.apply(OrderReplaceRequested(order_id=oid(), occurred_at=at(6), quantity=2_000))
    assert order.status is S.PENDING_REPLACE
    order.apply(OrderReplaceRejected(order_id=oid(), occurred_at=at(7), reason="venue says no"))
    assert (order.status, order.quantity, order.pending_quantity) == (
        S.PARTIALLY_FILLED,
        1_000,
        None,
    )


def test_replace_to_the_filled_quantity_completes_the_order() -> None:
    order = working()
    order.apply(fill(400))
    order.apply(OrderReplaceRequested(order_id=oid(), occurred_at=at(6), quantity=400))
    order.apply(OrderReplaced(order_id=oid(), occurred_at=at(7), quantity=400))
    assert (order.status, order.leaves_quantity) == (S.FILLED, 0)


@pytest.mark.parametrize(
    "done",
    [OrderCanceled(order_id="-", occurred_at=T0), OrderExpired(order_id="-", occurred_at=T0)],
)
def test_late_fill_after_cancel_or_expiry_counts_but_the_order_stays_done(done: OrderEvent) -> None:
    order = working()
    order.apply(fill(100))
    order.apply(done)
    terminal = order.status
    order.apply(fill(200))
    assert (order.status, order.filled_quantity, order.leaves_quantity) == (terminal, 300, 0)
    order.apply(fill(700))
    assert order.status is S.FILLED


def test_overfill_is_refused_and_changes_nothing() -> None:
    order = working()
    order.apply(fill(900))
    before = copy.deepcopy(order)
    with pytest.raises(Overfill, match="exceeds leaves quantity 100"):
        order.apply(fill(101))
    assert order == before


def _venue_reject() -> OrderRejected:
    return OrderRejected(order_id=oid(), occurred_at=at(1), code=RejectCode.VENUE, reason="halted")


def test_venue_reject_of_a_pending_order_is_final() -> None:
    order = new_order()
    order.apply(_venue_reject())
    assert (order.status, order.reject_reason, order.leaves_quantity) == (S.REJECTED, "halted", 0)
    with pytest.raises(InvalidTransition):
        order.apply(accepted())


def test_reject_of_an_acknowledged_order_is_refused_and_changes_nothing() -> None:
    order = working()
    before = copy.deepcopy(order)
    with pytest.raises(InvalidTransition, match="is NEW: OrderRejected is not allowed"):
        order.apply(_venue_reject())
    assert order == before


def test_cancel_of_a_filled_order_is_an_invalid_transition() -> None:
    order = working()
    order.apply(fill(1_000))
    before = copy.deepcopy(order)
    with pytest.raises(InvalidTransition) as raised:
        order.apply(cancel_request())
    assert (raised.value.status, raised.value.event) == ("FILLED", "OrderCancelRequested")
    assert order == before


def test_amend_below_filled_quantity_is_refused() -> None:
    order = working()
    order.apply(fill(500))
    with pytest.raises(FailedPrecondition, match="below the filled quantity 500"):
        order.apply(OrderReplaceRequested(order_id=oid(), occurred_at=at(6), quantity=499))


def test_every_target_of_the_table_is_a_status_or_a_resolution() -> None:
    assert all(isinstance(t, OrderStatus | Resolve) for t in TRANSITIONS.values())
    assert set(OrderStatus) == REACHABLE_STATUSES


# ---- properties ------------------------------------------------------------------------------

_QTY = 1_000


def _events() -> st.SearchStrategy[OrderEvent]:
    t = st.just(at(3))
    order_id = st.just(oid())
    return st.one_of(
        st.builds(OrderAccepted, order_id=order_id, occurred_at=t),
        st.builds(
            OrderRejected,
            order_id=order_id,
            occurred_at=t,
            code=st.just(RejectCode.VENUE),
            reason=st.just("r"),
        ),
        st.builds(OrderCancelRequested, order_id=order_id, occurred_at=t),
        st.builds(OrderCanceled, order_id=order_id, occurred_at=t),
        st.builds(OrderCancelRejected, order_id=order_id, occurred_at=t),
        st.builds(
            OrderReplaceRequested,
            order_id=order_id,
            occurred_at=t,
            quantity=st.integers(0, 2 * _QTY),
        ),
        st.builds(
            OrderReplaced, order_id=order_id, occurred_at=t, quantity=st.integers(0, 2 * _QTY)
        ),
        st.builds(OrderReplaceRejected, order_id=order_id, occurred_at=t),
        st.builds(OrderExpired, order_id=order_id, occurred_at=t),
        st.builds(OrderDoneForDay, order_id=order_id, occurred_at=t),
        st.builds(
            ChildOrderFilled,
            order_id=order_id,
            occurred_at=t,
            exec_id=st.uuids().map(str),
            venue=st.just("XNAS"),
            quantity=st.integers(-5, _QTY + 50),
            price=st.integers(1, 10**12).map(Price),
            executed_at=t,
        ),
    )


@settings(max_examples=400, deadline=None)
@given(events=st.lists(_events(), max_size=40))
def test_any_event_sequence_keeps_order_invariants(events: list[OrderEvent]) -> None:
    order = new_order(_QTY)
    filled = notional = 0
    for event in events:
        before = copy.deepcopy(order)
        try:
            order.apply(event)
        except FailedPrecondition:  # includes InvalidTransition and Overfill
            assert order == before, "a refused event must change nothing"
            continue
        if isinstance(event, ChildOrderFilled):
            filled += event.quantity
            notional += event.quantity * event.price.nanos
        assert order.status in REACHABLE_STATUSES
        assert 0 <= order.filled_quantity <= order.quantity
        assert order.leaves_quantity >= 0
        assert order.filled_quantity == filled
        assert order.filled_notional == notional
        if order.status.is_terminal:
            assert order.leaves_quantity == 0


def test_ack_after_the_fill_that_implied_it_changes_nothing() -> None:
    order = new_order()
    order.apply(fill(1_000))
    order.apply(accepted())
    assert (order.status, order.venue_order_id) == (S.FILLED, "V1")


def test_too_late_to_cancel_for_an_order_that_ended_meanwhile_is_absorbed() -> None:
    order = working()
    order.apply(cancel_request())
    order.apply(OrderCanceled(order_id=oid(), occurred_at=at(3)))
    order.apply(OrderCancelRejected(order_id=oid(), occurred_at=at(4), reason="unknown order"))
    assert order.status is S.CANCELED


def test_rejected_cancel_over_a_pending_amend_leaves_the_amend_pending() -> None:
    order = working()
    order.apply(fill(100))
    order.apply(OrderReplaceRequested(order_id=oid(), occurred_at=at(6), quantity=1_500))
    order.apply(cancel_request())
    order.apply(OrderCancelRejected(order_id=oid(), occurred_at=at(7)))
    assert order.status is S.PENDING_REPLACE
    order.apply(OrderReplaced(order_id=oid(), occurred_at=at(8), quantity=1_500))
    assert (order.status, order.quantity, order.pending_quantity) == (
        S.PARTIALLY_FILLED,
        1_500,
        None,
    )
