"""The parent order aggregate: children, fills flowing up, cancels and amends, idempotency."""

from __future__ import annotations

import pytest

from fillpath.core.commands import AmendOrder, CancelOrder, PlaceChildOrders
from fillpath.core.enums import ExecType, OrderStatus, OrderType, RejectCode, TimeInForce
from fillpath.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    IntegrityError,
    InvalidArgument,
    InvalidTransition,
)
from fillpath.core.events import (
    ChildOrderFilled,
    ChildOrderPlaced,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaceRejected,
)
from fillpath.core.parent_order import ParentOrder
from fillpath.core.risk import RiskRejection
from tests.factories import (
    T0,
    accepted_parent,
    at,
    child_request,
    fill,
    parent_terms,
    place,
    px,
    report,
)

S = OrderStatus


def test_submit_with_passing_checks_records_submitted_then_accepted() -> None:
    aggregate, events = ParentOrder.submit(parent_terms(), T0, None)
    assert [type(e).__name__ for e in events] == ["OrderSubmitted", "OrderAccepted"]
    assert (aggregate.parent.status, aggregate.version) == (S.NEW, 2)


def test_submit_refused_by_checks_records_the_reason() -> None:
    rejection = RiskRejection(RejectCode.MAX_NOTIONAL, "notional too large")
    aggregate, events = ParentOrder.submit(parent_terms(), T0, rejection)
    assert isinstance(events[-1], OrderRejected)
    assert (aggregate.parent.status, aggregate.parent.reject_code) == (
        S.REJECTED,
        RejectCode.MAX_NOTIONAL,
    )


def test_children_take_new_ids_under_the_parent_and_count_as_working() -> None:
    aggregate = accepted_parent()
    ids = place(aggregate, child_request(1, quantity=3_000), child_request(2, quantity=2_000))
    assert ids == [f"{aggregate.order_id}.1", f"{aggregate.order_id}.2"]
    assert (aggregate.working_quantity, aggregate.available_quantity) == (5_000, 5_000)


def test_children_beyond_the_parent_leaves_are_refused_all_together() -> None:
    aggregate = accepted_parent(quantity=10_000)
    place(aggregate, child_request(1, quantity=6_000))
    with pytest.raises(FailedPrecondition, match="exceeds the available 4000"):
        place(aggregate, child_request(2, quantity=3_000), child_request(3, quantity=1_001))
    assert len(aggregate.children) == 1


def test_child_more_aggressive_than_the_parent_limit_is_refused_with_its_field() -> None:
    aggregate = accepted_parent(limit_price=px("100.50"))
    with pytest.raises(InvalidArgument) as raised:
        place(
            aggregate,
            child_request(1, limit_price=px("100.51")),
            child_request(2, order_type=OrderType.MARKET, limit_price=None),
        )
    assert [v.field for v in raised.value.violations] == [
        "children[0].limit_price",
        "children[1].order_type",
    ]


def test_repeated_child_client_id_returns_the_child_and_different_terms_are_refused() -> None:
    aggregate = accepted_parent()
    place(aggregate, child_request(1))
    assert place(aggregate, child_request(1)) == []
    with pytest.raises(AlreadyExists, match="slice-1"):
        place(aggregate, child_request(1, quantity=999))


def test_child_fill_records_the_parents_share_in_the_same_decision() -> None:
    aggregate = accepted_parent(quantity=2_000)
    (child,) = place(aggregate, child_request(1, quantity=2_000))
    events = aggregate.apply_report(fill(child, "e1", 500, "100.20"), at(2))
    assert [type(e) for e in events] == [ChildOrderFilled, OrderPartiallyFilled]
    events = aggregate.apply_report(fill(child, "e2", 1_500, "100.30"), at(3))
    assert [type(e) for e in events] == [ChildOrderFilled, OrderFilled]
    assert aggregate.parent.status is S.FILLED
    assert aggregate.parent.avg_price == px("100.275")
    assert aggregate.fees_nanos == 2_000 * 3_000_000


def test_repeated_execution_report_changes_nothing() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    aggregate.apply_report(fill(child, "e1", 100), at(2))
    version = aggregate.version
    assert aggregate.apply_report(fill(child, "e1", 100), at(3)) == []
    assert (aggregate.version, aggregate.parent.filled_quantity) == (version, 100)


def test_report_for_the_parent_or_an_unknown_venue_is_bad_input() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    with pytest.raises(InvalidArgument, match=r"report\.order_id"):
        aggregate.apply_report(fill(aggregate.order_id, "e1", 100), at(2))
    with pytest.raises(InvalidArgument, match=r"report\.venue"):
        aggregate.apply_report(report(child, "e2", ExecType.NEW, venue="BATS"), at(2))


def test_parent_without_children_cancels_at_once() -> None:
    aggregate = accepted_parent()
    events = aggregate.cancel(CancelOrder(order_id=aggregate.order_id, reason="r"), at(2))
    assert [type(e).__name__ for e in events] == ["OrderCancelRequested", "OrderCanceled"]
    assert aggregate.parent.status is S.CANCELED


def test_parent_cancel_waits_for_its_children_then_completes() -> None:
    aggregate = accepted_parent()
    first, second = place(aggregate, child_request(1), child_request(2))
    aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(2))
    assert aggregate.parent.status is S.PENDING_CANCEL
    assert {c.status for c in aggregate.children.values()} == {S.PENDING_CANCEL}
    aggregate.apply_report(report(first, "c1", ExecType.CANCELED), at(3))
    assert aggregate.parent.status is S.PENDING_CANCEL
    events = aggregate.apply_report(fill(second, "f1", 1_000), at(4))
    assert isinstance(events[-1], OrderCanceled)
    assert (aggregate.parent.status, aggregate.parent.filled_quantity) == (S.CANCELED, 1_000)


def test_child_cancel_rejected_by_the_venue_restores_the_parent() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    aggregate.apply_report(report(child, "a1", ExecType.NEW), at(2))
    aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(3))
    events = aggregate.apply_report(
        report(child, "r1", ExecType.CANCEL_REJECTED, text="locked"), at(4)
    )
    assert isinstance(events[-1], OrderCancelRejected)
    assert "locked" in events[-1].reason
    assert (aggregate.parent.status, aggregate.children[child].status) == (S.NEW, S.NEW)


def test_second_cancel_while_pending_records_nothing() -> None:
    aggregate = accepted_parent()
    place(aggregate, child_request(1))
    aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(2))
    assert aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(3)) == []


def test_cancel_of_a_filled_parent_is_an_invalid_transition() -> None:
    aggregate = accepted_parent(quantity=1_000)
    (child,) = place(aggregate, child_request(1, quantity=1_000))
    aggregate.apply_report(fill(child, "f", 1_000), at(2))
    with pytest.raises(InvalidTransition):
        aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(3))


def test_parent_amend_takes_effect_at_once() -> None:
    aggregate = accepted_parent(quantity=10_000)
    events = aggregate.amend(
        AmendOrder(order_id=aggregate.order_id, quantity=12_000, limit_price=px("100.60")),
        at(2),
        None,
    )
    assert [type(e).__name__ for e in events] == ["OrderReplaceRequested", "OrderReplaced"]
    assert (aggregate.parent.quantity, aggregate.parent.limit_price) == (12_000, px("100.60"))
    assert aggregate.parent.status is S.NEW


def test_parent_amend_refused_by_checks_leaves_the_order_as_it_was() -> None:
    aggregate = accepted_parent(quantity=10_000)
    rejection = RiskRejection(RejectCode.MAX_ORDER_QUANTITY, "too big")
    events = aggregate.amend(
        AmendOrder(order_id=aggregate.order_id, quantity=10**9), at(2), rejection
    )
    assert isinstance(events[-1], OrderReplaceRejected)
    assert (aggregate.parent.quantity, aggregate.parent.status) == (10_000, S.NEW)


def test_parent_amend_below_filled_plus_working_is_refused() -> None:
    aggregate = accepted_parent(quantity=10_000)
    (child,) = place(aggregate, child_request(1, quantity=4_000))
    aggregate.apply_report(fill(child, "f", 1_000), at(2))
    with pytest.raises(FailedPrecondition, match="below filled 1000 plus 3000 working"):
        aggregate.amend(AmendOrder(order_id=aggregate.order_id, quantity=3_999), at(3), None)


def test_amend_that_changes_nothing_records_nothing() -> None:
    aggregate = accepted_parent(quantity=10_000)
    assert (
        aggregate.amend(AmendOrder(order_id=aggregate.order_id, quantity=10_000), at(2), None) == []
    )


def test_child_amend_waits_for_the_venue() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1, quantity=1_000))
    aggregate.apply_report(report(child, "a", ExecType.NEW), at(2))
    aggregate.amend(AmendOrder(order_id=child, quantity=1_500), at(3), None)
    assert aggregate.children[child].status is S.PENDING_REPLACE
    aggregate.apply_report(report(child, "r", ExecType.REPLACED, quantity=1_500), at(4))
    assert (aggregate.children[child].status, aggregate.working_quantity) == (S.NEW, 1_500)


def test_snapshot_restores_the_same_aggregate_as_folding_the_events() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    aggregate.apply_report(fill(child, "e1", 300), at(2))
    restored = ParentOrder.from_snapshot(aggregate.snapshot())
    assert restored.snapshot() == aggregate.snapshot()
    assert restored.apply_report(fill(child, "e1", 300), at(3)) == []  # exec ids survive


def test_placing_children_on_a_parent_that_is_not_working_is_refused() -> None:
    aggregate = accepted_parent()
    aggregate.cancel(CancelOrder(order_id=aggregate.order_id), at(2))
    with pytest.raises(FailedPrecondition, match="CANCELED: no new child orders"):
        aggregate.place_children(
            PlaceChildOrders(parent_order_id=aggregate.order_id, children=(child_request(1),)),
            at(3),
        )


def test_retried_child_placement_returns_the_children_even_after_the_parent_filled() -> None:
    aggregate = accepted_parent(quantity=1_000)
    (child,) = place(aggregate, child_request(1, quantity=1_000))
    aggregate.apply_report(fill(child, "f", 1_000), at(2))
    assert place(aggregate, child_request(1, quantity=1_000)) == []


def test_due_parent_expires_and_asks_its_venues_to_cancel_working_children() -> None:
    aggregate, _ = ParentOrder.submit(parent_terms(), T0, None, expires_at=at(60))
    first, second = place(aggregate, child_request(1), child_request(2))
    aggregate.apply_report(fill(first, "f1", 1_000), at(10))
    assert aggregate.expire(at(59)) == []
    events = aggregate.expire(at(60))
    assert [(type(e).__name__, e.order_id) for e in events] == [
        ("OrderCancelRequested", second),
        ("OrderExpired", aggregate.order_id),
    ]
    assert (aggregate.parent.status, aggregate.parent.leaves_quantity) == (S.EXPIRED, 0)
    # A fill the venue made before it canceled still counts; the parent stays expired.
    aggregate.apply_report(fill(second, "f2", 400), at(61))
    assert (aggregate.parent.status, aggregate.parent.filled_quantity) == (S.EXPIRED, 1_400)
    assert aggregate.expire(at(62)) == []


def test_parent_without_expiry_never_expires() -> None:
    aggregate = accepted_parent(time_in_force=TimeInForce.GTC)
    assert aggregate.expire(at(10**7)) == []


def test_pending_child_increases_count_against_the_parent() -> None:
    aggregate = accepted_parent(quantity=1_000)
    first, second = place(aggregate, child_request(1, quantity=500), child_request(2, quantity=300))
    for child in (first, second):
        aggregate.apply_report(report(child, f"ack-{child}", ExecType.NEW), at(2))
    aggregate.amend(AmendOrder(order_id=first, quantity=700), at(2), None)
    assert (aggregate.working_quantity, aggregate.available_quantity) == (1_000, 0)
    with pytest.raises(FailedPrecondition, match="exceeds the parent's available 0"):
        aggregate.amend(AmendOrder(order_id=second, quantity=500), at(3), None)
    with pytest.raises(FailedPrecondition):
        place(aggregate, child_request(3, quantity=1))
    with pytest.raises(FailedPrecondition, match="below filled 0 plus 1000 working"):
        aggregate.amend(AmendOrder(order_id=aggregate.order_id, quantity=900), at(4), None)


def test_events_out_of_order_or_a_child_placed_twice_are_refused() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    placed = aggregate.snapshot()
    with pytest.raises(IntegrityError, match="version 9 after version 3"):
        aggregate.apply(report_event(child), 9)
    restored = ParentOrder.from_snapshot(placed)
    with pytest.raises(IntegrityError, match="placed twice"):
        restored.apply(
            ChildOrderPlaced(
                order_id=child, occurred_at=at(3), terms=aggregate.children[child].terms
            ),
            restored.version + 1,
        )


def report_event(child: str) -> OrderCanceled:
    return OrderCanceled(order_id=child, occurred_at=at(3))


def test_a_retried_child_amend_while_the_venue_works_on_it_records_nothing() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1, quantity=1_000))
    aggregate.apply_report(report(child, "a", ExecType.NEW), at(2))
    amend = AmendOrder(order_id=child, quantity=800)
    assert len(aggregate.amend(amend, at(3), None)) == 1
    assert aggregate.amend(amend, at(4), None) == []
