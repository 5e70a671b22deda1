"""The OMS against the market lab: child orders placed through the OMS reach the simulated
venues once recorded, and their acks, fills and cancels come back as execution reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import oms_pb2
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import OmsSettings, Settings
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import lab_for
from fillpath.oms.main import OmsRuntime, start_oms


@pytest.fixture
def gateway() -> SimulatedGateway:
    lab = lab_for(LabConfig(seed=3), load_reference_data().instruments, lab_parameters(), ["ACME"])
    gateway = SimulatedGateway(lab)
    gateway.advance_to(120.0)  # a couple of minutes into the session: a book to trade against
    return gateway


def _start(
    pg_dsn: str, redis_url: str, tmp_path: Path, gateway: SimulatedGateway | None
) -> OmsRuntime:
    settings = Settings(data_dir=tmp_path, oms=OmsSettings(address="127.0.0.1:0"))
    return start_oms(settings, pg_dsn, redis_url, gateway=gateway)


@pytest.fixture
def oms(
    pg_dsn: str, redis_url: str, tmp_path: Path, gateway: SimulatedGateway
) -> Iterator[OrderManagementServiceStub]:
    runtime = _start(pg_dsn, redis_url, tmp_path, gateway)
    with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield OrderManagementServiceStub(channel)
    runtime.stop(grace=1.0)


def _parent(stub: OrderManagementServiceStub, quantity: int = 10_000) -> str:
    response = stub.SubmitOrder(
        oms_pb2.SubmitOrderRequest(
            client_order_id="lab-1", account="DESK-EQ", portfolio="ALPHA", symbol="ACME",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=quantity,
        )
    )  # fmt: skip
    assert response.order.status == C.ORDER_STATUS_NEW
    return response.order.terms.order_id


def _child(
    client_id: str, venue: str, quantity: int, **fields: object
) -> oms_pb2.ChildOrderRequest:
    return oms_pb2.ChildOrderRequest(
        client_order_id=client_id, venue=venue, quantity=quantity, **fields
    )  # type: ignore[arg-type]


def test_child_orders_reach_the_lab_and_their_fills_come_back(
    oms: OrderManagementServiceStub, gateway: SimulatedGateway
) -> None:
    parent_id = _parent(oms)
    bid = gateway.lab.engine("ACME").books.best[0, 0]
    resting_price = (gateway.lab.model("ACME").base_ticks + int(bid) - 20) * 10_000_000
    placed = oms.PlaceChildOrders(
        oms_pb2.PlaceChildOrdersRequest(
            parent_order_id=parent_id,
            children=[
                _child("take", "lumen", 1_500, order_type=C.ORDER_TYPE_MARKET,
                       time_in_force=C.TIME_IN_FORCE_IOC),
                _child("rest", "orbit", 1_000, order_type=C.ORDER_TYPE_LIMIT,
                       time_in_force=C.TIME_IN_FORCE_DAY, limit_price_nanos=resting_price),
                _child("nowhere", "atlantis", 100, order_type=C.ORDER_TYPE_MARKET,
                       time_in_force=C.TIME_IN_FORCE_IOC),
            ],
        )
    )  # fmt: skip
    take, rest, nowhere = (c.terms.order_id for c in placed.children)

    gateway.advance_to(gateway.lab.now + 1.0)

    got = {
        c.terms.order_id: c
        for c in oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent_id)).order.children
    }
    # The market IOC took what the book offered; whatever was left was canceled by the venue.
    assert got[take].filled_quantity > 0
    assert got[take].status in (C.ORDER_STATUS_FILLED, C.ORDER_STATUS_CANCELED)
    assert got[take].fees_nanos == got[take].filled_quantity * 3_000_000  # lumen's taker fee
    assert got[rest].status == C.ORDER_STATUS_NEW  # acked, resting 20 ticks below the bid
    assert got[nowhere].status == C.ORDER_STATUS_REJECTED
    assert "atlantis" in got[nowhere].reject_reason

    oms.CancelOrder(oms_pb2.CancelOrderRequest(order_id=parent_id, reason="done"))
    gateway.advance_to(gateway.lab.now + 1.0)

    order = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent_id)).order
    assert order.status == C.ORDER_STATUS_CANCELED
    assert order.filled_quantity == got[take].filled_quantity
    history = oms.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=rest)).entries
    assert [e.event.event_type for e in history][-1] == "OrderCanceled"
    assert history[-1].event.metadata.actor == "venue:orbit"


def test_children_recorded_but_not_sent_are_sent_on_the_next_start(
    pg_dsn: str, redis_url: str, tmp_path: Path, gateway: SimulatedGateway
) -> None:
    # An OMS without a gateway records the child (as if it crashed before sending it).
    runtime = _start(pg_dsn, redis_url, tmp_path, None)
    with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = OrderManagementServiceStub(channel)
        parent_id = _parent(stub)
        stub.PlaceChildOrders(
            oms_pb2.PlaceChildOrdersRequest(
                parent_order_id=parent_id,
                children=[_child("c1", "quarry", 500, order_type=C.ORDER_TYPE_MARKET,
                                 time_in_force=C.TIME_IN_FORCE_IOC)],
            )
        )  # fmt: skip
    runtime.stop(grace=1.0)

    runtime = _start(pg_dsn, redis_url, tmp_path, gateway)
    try:
        gateway.advance_to(gateway.lab.now + 1.0)
        with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            stub = OrderManagementServiceStub(channel)
            (child,) = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=parent_id)).order.children
    finally:
        runtime.stop(grace=1.0)
    assert child.status in (C.ORDER_STATUS_FILLED, C.ORDER_STATUS_CANCELED)
    assert child.filled_quantity > 0


def test_a_replace_recorded_but_not_sent_is_sent_on_the_next_start(
    pg_dsn: str, redis_url: str, tmp_path: Path, gateway: SimulatedGateway
) -> None:
    bid = int(gateway.lab.engine("ACME").books.best[0, 0])
    far = (gateway.lab.model("ACME").base_ticks + bid - 30) * 10_000_000
    runtime = _start(pg_dsn, redis_url, tmp_path, gateway)
    with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = OrderManagementServiceStub(channel)
        parent_id = _parent(stub)
        (child,) = stub.PlaceChildOrders(
            oms_pb2.PlaceChildOrdersRequest(
                parent_order_id=parent_id,
                children=[_child("rest", "lumen", 500, order_type=C.ORDER_TYPE_LIMIT,
                                 time_in_force=C.TIME_IN_FORCE_DAY, limit_price_nanos=far)],
            )
        ).children  # fmt: skip
        gateway.advance_to(gateway.lab.now + 1.0)  # acked, resting far below the market
    runtime.stop(grace=1.0)

    # The amend is recorded by an OMS that cannot reach the venue (as if it crashed first).
    runtime = _start(pg_dsn, redis_url, tmp_path, None)
    with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = OrderManagementServiceStub(channel)
        stub.AmendOrder(oms_pb2.AmendOrderRequest(order_id=child.terms.order_id, quantity=300))
    runtime.stop(grace=1.0)

    runtime = _start(pg_dsn, redis_url, tmp_path, gateway)
    try:
        gateway.advance_to(gateway.lab.now + 1.0)
        with grpc.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            stub = OrderManagementServiceStub(channel)
            got = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=child.terms.order_id)).order
    finally:
        runtime.stop(grace=1.0)
    assert got.status == C.ORDER_STATUS_NEW
    assert got.quantity == 300
