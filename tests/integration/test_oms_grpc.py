"""The OMS over real gRPC, on real Postgres and Redis: what a trading system, an algorithm and
a venue see."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import oms_pb2
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.infra.settings import OmsSettings, Settings
from fillpath.infra.telemetry import ACTOR_KEY
from fillpath.oms.main import OmsRuntime, start_oms

Stub = OrderManagementServiceStub
_slices = itertools.count()


def submit_request(client_id: str = "c-1", **overrides: Any) -> oms_pb2.SubmitOrderRequest:
    fields: dict[str, Any] = {
        "client_order_id": client_id,
        "account": "DESK-EQ",
        "portfolio": "ALPHA",
        "symbol": "ACME",
        "side": C.SIDE_BUY,
        "order_type": C.ORDER_TYPE_LIMIT,
        "time_in_force": C.TIME_IN_FORCE_DAY,
        "quantity": 10_000,
        "limit_price_nanos": 102_500_000_000,
    }
    return oms_pb2.SubmitOrderRequest(**(fields | overrides))


def submit(oms: Stub, client_id: str = "c-1", **overrides: Any) -> oms_pb2.Order:
    return oms.SubmitOrder(submit_request(client_id, **overrides)).order


def children(
    oms: Stub, parent_id: str, *quantities: int, price: int = 102_400_000_000
) -> list[str]:
    response = oms.PlaceChildOrders(
        oms_pb2.PlaceChildOrdersRequest(
            parent_order_id=parent_id,
            children=[
                oms_pb2.ChildOrderRequest(
                    client_order_id=f"s{next(_slices)}",
                    venue="XNAS",
                    quantity=q,
                    order_type=C.ORDER_TYPE_LIMIT,
                    time_in_force=C.TIME_IN_FORCE_DAY,
                    limit_price_nanos=price,
                )
                for q in quantities
            ],
        )
    )
    return [c.terms.order_id for c in response.children]


def report(
    oms: Stub, child: str, exec_id: str, exec_type: int, **fields: Any
) -> oms_pb2.ApplyExecutionReportResponse:
    return oms.ApplyExecutionReport(
        oms_pb2.ApplyExecutionReportRequest(
            report=oms_pb2.ExecutionReport(
                order_id=child, exec_id=exec_id, exec_type=exec_type, venue="XNAS", **fields
            )
        )
    )


def fill(
    oms: Stub, child: str, exec_id: str, quantity: int, price: int = 102_300_000_000
) -> oms_pb2.ApplyExecutionReportResponse:
    return report(
        oms, child, exec_id, C.EXEC_TYPE_TRADE, last_quantity=quantity, last_price_nanos=price,
        liquidity=C.LIQUIDITY_FLAG_TAKER, fee_nanos=quantity * 3_000_000,
    )  # fmt: skip


def status_details(err: grpc.RpcError) -> list[Any]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    found = []
    for detail in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.ResourceInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                unpacked = kind()
                detail.Unpack(unpacked)
                found.append(unpacked)
    return found


def test_submit_records_an_accepted_order(oms: Stub) -> None:
    order = submit(oms)
    assert order.status == C.ORDER_STATUS_NEW
    assert (order.quantity, order.leaves_quantity, order.filled_quantity) == (10_000, 10_000, 0)
    assert oms.GetOrder(oms_pb2.GetOrderRequest(order_id=order.terms.order_id)).order == order


def test_retried_submit_returns_the_original_and_records_nothing(oms: Stub) -> None:
    first = oms.SubmitOrder(submit_request())
    again = oms.SubmitOrder(submit_request())
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.order == first.order
    history = oms.GetOrderHistory(
        oms_pb2.GetOrderHistoryRequest(order_id=first.order.terms.order_id)
    )
    assert len(history.entries) == 2


def test_concurrent_duplicate_submits_make_one_order(oms: Stub) -> None:
    results: list[oms_pb2.SubmitOrderResponse] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        results.append(oms.SubmitOrder(submit_request("race")))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert len({r.order.terms.order_id for r in results}) == 1
    listing = oms.ListOrders(oms_pb2.ListOrdersRequest())
    assert len(listing.orders) == 1


def test_reused_client_order_id_with_other_terms_is_already_exists(oms: Stub) -> None:
    submit(oms)
    with pytest.raises(grpc.RpcError) as raised:
        oms.SubmitOrder(submit_request(quantity=9_999))
    assert raised.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "c-1" in raised.value.details()


def test_bad_fields_are_invalid_argument_naming_each_field_and_value(
    oms: Stub, oms_runtime: OmsRuntime
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        oms.SubmitOrder(
            submit_request(
                symbol="NOPE", quantity=0, limit_price_nanos=102_505_000_000, portfolio="ZZZ"
            )
        )
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = status_details(raised.value)
    described = {v.field: v.description for v in bad.field_violations}
    assert set(described) == {"symbol", "portfolio", "quantity"}
    assert "'NOPE'" in described["symbol"]
    with pytest.raises(grpc.RpcError) as raised:
        oms.SubmitOrder(submit_request(quantity=0, limit_price_nanos=102_505_000_000))
    (bad,) = status_details(raised.value)
    described = {v.field: v.description for v in bad.field_violations}
    assert described == {
        "quantity": "0: must be positive",
        "limit_price_nanos": "102505000000: must be a multiple of the tick size 0.01",
    }
    assert oms_runtime.store.head_position() == 0, "bad input must change nothing"


def test_unknown_order_is_not_found(oms: Stub) -> None:
    for call, request in (
        (oms.GetOrder, oms_pb2.GetOrderRequest(order_id="P0000")),
        (oms.CancelOrder, oms_pb2.CancelOrderRequest(order_id="P0000.3")),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call(request)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND


def test_pre_trade_refusal_is_a_rejected_order_with_its_reason(oms: Stub) -> None:
    order = submit(
        oms,
        account="DESK-QUANT",
        portfolio="STATARB",
        symbol="UMBR",
        limit_price_nanos=312_000_000_000,
        quantity=10,
    )
    assert order.status == C.ORDER_STATUS_REJECTED
    assert order.reject_code == C.REJECT_CODE_RESTRICTED_SYMBOL
    assert "UMBR" in order.reject_reason


@pytest.fixture
def slow_account_oms(pg_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[Stub]:
    """An OMS whose only account may send 2 orders per second."""
    shutil.copy(
        str(files("fillpath") / "defaults" / "instruments.yaml"), tmp_path / "instruments.yaml"
    )
    (tmp_path / "accounts.yaml").write_text(
        "accounts: [{id: SLOW, portfolios: [P], limits: {max_orders_per_second: 2}}]"
    )
    settings = Settings(
        data_dir=tmp_path, config_dir=tmp_path, oms=OmsSettings(address="127.0.0.1:0")
    )
    runtime = start_oms(settings, pg_dsn, redis_url)
    with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield OrderManagementServiceStub(channel)
    runtime.stop(grace=1.0)


def test_order_rate_limit_rejects_the_excess_orders(slow_account_oms: Stub) -> None:
    started = time.monotonic()
    orders = [
        submit(slow_account_oms, f"burst-{i}", account="SLOW", portfolio="P", quantity=10)
        for i in range(10)
    ]
    elapsed = time.monotonic() - started
    accepted = [o for o in orders if o.status == C.ORDER_STATUS_NEW]
    rejected = [o for o in orders if o.status == C.ORDER_STATUS_REJECTED]
    # A burst of 2 passes, plus one more per 0.5 s the ten submits took.
    assert 2 <= len(accepted) <= 2 + int(elapsed / 0.5) + 1
    assert rejected
    assert len(accepted) + len(rejected) == 10
    assert {o.reject_code for o in rejected} == {C.REJECT_CODE_RATE_LIMIT}


def test_children_fills_and_parent_progress(oms: Stub) -> None:
    parent = submit(oms).terms.order_id
    first, second = children(oms, parent, 4_000, 6_000)
    report(oms, first, "a1", C.EXEC_TYPE_NEW, venue_order_id="X-1")
    response = fill(oms, first, "f1", 1_000)
    assert response.order.status == C.ORDER_STATUS_PARTIALLY_FILLED
    assert (response.parent.filled_quantity, response.parent.working_quantity) == (1_000, 9_000)
    fill(oms, first, "f2", 3_000, price=102_400_000_000)
    final = fill(oms, second, "f3", 6_000, price=102_400_000_000)
    assert final.parent.status == C.ORDER_STATUS_FILLED
    assert final.parent.avg_price_nanos == 102_390_000_000
    assert final.parent.fees_nanos == 10_000 * 3_000_000
    got = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order
    assert [c.status for c in got.children] == [C.ORDER_STATUS_FILLED] * 2


def test_repeated_execution_report_is_a_duplicate(oms: Stub) -> None:
    parent = submit(oms).terms.order_id
    (child,) = children(oms, parent, 1_000)
    assert not fill(oms, child, "f1", 500).duplicate
    again = fill(oms, child, "f1", 500)
    assert again.duplicate
    assert again.order.filled_quantity == 500


def test_children_beyond_leaves_and_overfills_are_failed_precondition(oms: Stub) -> None:
    parent = submit(oms, quantity=1_000).terms.order_id
    (child,) = children(oms, parent, 1_000)
    with pytest.raises(grpc.RpcError) as raised:
        children(oms, parent, 1)
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    (info,) = status_details(raised.value)
    assert (info.reason, info.metadata["available"]) == ("EXCEEDS_LEAVES", "0")
    with pytest.raises(grpc.RpcError) as raised:
        fill(oms, child, "f1", 1_001)
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    (info,) = status_details(raised.value)
    assert info.reason == "OVERFILL"


def test_cancel_of_a_filled_order_is_failed_precondition_invalid_transition(oms: Stub) -> None:
    parent = submit(oms, quantity=100).terms.order_id
    (child,) = children(oms, parent, 100)
    fill(oms, child, "f", 100)
    with pytest.raises(grpc.RpcError) as raised:
        oms.CancelOrder(oms_pb2.CancelOrderRequest(order_id=parent))
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    (info,) = status_details(raised.value)
    assert (info.reason, info.metadata["status"]) == ("INVALID_TRANSITION", "FILLED")


def test_cancel_with_working_children_completes_when_the_venue_confirms(oms: Stub) -> None:
    parent = submit(oms).terms.order_id
    (child,) = children(oms, parent, 2_000)
    pending = oms.CancelOrder(oms_pb2.CancelOrderRequest(order_id=parent, reason="risk off")).order
    assert pending.status == C.ORDER_STATUS_PENDING_CANCEL
    done = report(oms, child, "x1", C.EXEC_TYPE_CANCELED)
    assert (done.order.status, done.parent.status) == (
        C.ORDER_STATUS_CANCELED,
        C.ORDER_STATUS_CANCELED,
    )


def test_amend_accepted_and_amend_refused_by_checks(oms: Stub) -> None:
    parent = submit(oms).terms.order_id
    amended = oms.AmendOrder(
        oms_pb2.AmendOrderRequest(order_id=parent, quantity=12_000, reason="more")
    )
    assert amended.accepted
    assert amended.order.quantity == 12_000
    refused = oms.AmendOrder(oms_pb2.AmendOrderRequest(order_id=parent, quantity=3_000_000))
    assert not refused.accepted
    assert refused.reject_code == C.REJECT_CODE_MAX_ORDER_QUANTITY
    assert refused.order.quantity == 12_000


def test_history_says_who_when_and_why(oms: Stub) -> None:
    parent = oms.SubmitOrder(
        submit_request(), metadata=((ACTOR_KEY, "alice"),)
    ).order.terms.order_id
    oms.CancelOrder(
        oms_pb2.CancelOrderRequest(order_id=parent, reason="changed my mind"),
        metadata=((ACTOR_KEY, "bob"),),
    )
    entries = oms.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=parent)).entries
    assert [e.event.event_type for e in entries] == [
        "OrderSubmitted", "OrderAccepted", "OrderCancelRequested", "OrderCanceled",
    ]  # fmt: skip
    assert [e.event.metadata.actor for e in entries] == ["alice", "alice", "bob", "bob"]
    assert entries[2].summary == "cancel requested: changed my mind"
    assert entries[2].event.order_cancel_requested.reason == "changed my mind"
    assert all(e.event.recorded_at.seconds > 0 for e in entries)
    assert len({e.event.metadata.correlation_id for e in entries[2:]}) == 1


def test_list_filters_sorts_and_pages(oms: Stub) -> None:
    ids = [
        submit(
            oms,
            f"c{i}",
            symbol="GLBX" if i % 2 else "ACME",
            limit_price_nanos=48_000_000_000 if i % 2 else 102_500_000_000,
        ).terms.order_id
        for i in range(7)
    ]
    page = oms.ListOrders(
        oms_pb2.ListOrdersRequest(
            sort=oms_pb2.ORDER_SORT_CREATED_ASC, page=C.PageRequest(page_size=3)
        )
    )
    seen = [o.terms.order_id for o in page.orders]
    while page.next_page_token:
        page = oms.ListOrders(
            oms_pb2.ListOrdersRequest(
                sort=oms_pb2.ORDER_SORT_CREATED_ASC,
                page=C.PageRequest(page_size=3, page_token=page.next_page_token),
            )
        )
        seen += [o.terms.order_id for o in page.orders]
    assert seen == ids
    glbx = oms.ListOrders(oms_pb2.ListOrdersRequest(symbol="GLBX"))
    assert [o.terms.order_id for o in glbx.orders] == [ids[5], ids[3], ids[1]]
    rejected = oms.ListOrders(oms_pb2.ListOrdersRequest(statuses=[C.ORDER_STATUS_REJECTED]))
    assert list(rejected.orders) == []


def test_order_updates_stream_from_a_position_and_then_live(oms: Stub) -> None:
    first = submit(oms, "a").terms.order_id
    stream = oms.StreamOrderUpdates(oms_pb2.StreamOrderUpdatesRequest(from_position=1))
    updates = [next(stream)]
    second = submit(oms, "b").terms.order_id
    updates += [next(stream) for _ in range(2)]
    stream.cancel()
    assert [(u.event.position, u.event.event_type) for u in updates] == [
        (2, "OrderAccepted"), (3, "OrderSubmitted"), (4, "OrderAccepted"),
    ]  # fmt: skip
    assert [u.order.terms.order_id for u in updates] == [first, second, second]
    assert updates[1].order.status == C.ORDER_STATUS_PENDING_NEW
    assert updates[2].order.status == C.ORDER_STATUS_NEW


def test_health_and_reflection_answer(oms_runtime: OmsRuntime) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{oms_runtime.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="fillpath.v1.OrderManagementService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        (answer,) = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for s in answer.list_services_response.service}
        assert {"fillpath.v1.OrderManagementService", "grpc.health.v1.Health"} <= names
        # grpcurl's `describe` and ghz ask for a method's symbol.
        method = "fillpath.v1.OrderManagementService.SubmitOrder"
        (answer,) = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=method)])
        )
        assert answer.WhichOneof("message_response") == "file_descriptor_response"


def test_gtd_order_expires_on_time_and_a_late_fill_still_counts(oms: Stub) -> None:
    expire = datetime.now(UTC) + timedelta(seconds=1)
    request = submit_request("gtd", time_in_force=C.TIME_IN_FORCE_GTD)
    request.expire_time.FromDatetime(expire)
    parent = oms.SubmitOrder(request).order
    assert parent.expires_at.ToDatetime(tzinfo=UTC) == expire.replace(
        microsecond=expire.microsecond
    )
    (child,) = children(oms, parent.terms.order_id, 2_000)
    deadline = time.monotonic() + 10
    while (
        oms.GetOrder(oms_pb2.GetOrderRequest(order_id=child)).order.status
        != C.ORDER_STATUS_PENDING_CANCEL
    ):
        assert time.monotonic() < deadline, "the order did not expire"
        time.sleep(0.05)
    got = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent.terms.order_id)).order
    assert got.status == C.ORDER_STATUS_EXPIRED
    late = fill(oms, child, "late-1", 500)
    assert (late.parent.status, late.parent.filled_quantity) == (C.ORDER_STATUS_EXPIRED, 500)
    trail = oms.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=parent.terms.order_id))
    expired = [e for e in trail.entries if e.event.event_type == "OrderExpired"]
    assert [(e.summary, e.event.metadata.actor) for e in expired] == [
        ("expired: GTD expire time", "oms:expiry")
    ]


def test_day_order_is_accepted_to_expire_at_the_session_close(oms: Stub) -> None:
    order = submit(oms, "day")
    close = order.expires_at.ToDatetime(tzinfo=UTC)
    assert close > datetime.now(UTC)
    assert close.astimezone(ZoneInfo("America/New_York")).time() == dt_time(16, 0)
