"""The OMS and the router over gRPC: the `Desk` the algo engine works through in production.

Their refusals come back as domain errors (INVALID_ARGUMENT → InvalidArgument, FAILED_PRECONDITION
→ FailedPrecondition, NOT_FOUND → NotFound); anything else (UNAVAILABLE, a deadline) is raised as
it is, and the engine retries on its next tick.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TypeVar

import grpc

from fillpath.algo.service import ChildFill, ChildView, ParentView
from fillpath.api.v1 import (
    common_pb2,
    oms_pb2,
    oms_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)
from fillpath.core.enums import OrderStatus, Side, Urgency
from fillpath.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from fillpath.core.price import Price
from fillpath.core.routing import RouteAllocation
from fillpath.infra.event_proto import from_proto
from fillpath.infra.telemetry import ACTOR_KEY

T = TypeVar("T")
ACTOR = ((ACTOR_KEY, "fillpath-algo"),)
TIMEOUT = 10.0
WORKING = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_REPLACE})


def _call(what: str, key: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as err:
        code = err.code()
        detail = err.details() or ""
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound(what, key) from err
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument([FieldViolation(what, key, detail)]) from err
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            raise FailedPrecondition("REFUSED", f"{what} {key}: {detail}") from err
        raise


def _child(order: oms_pb2.Order) -> ChildView:
    return ChildView(
        order_id=order.terms.order_id,
        client_order_id=order.terms.client_order_id,
        quantity=order.quantity,
        done=OrderStatus(order.status).is_terminal,
    )


class GrpcDesk:
    def __init__(self, oms: grpc.Channel, router: grpc.Channel) -> None:
        self._oms = oms_pb2_grpc.OrderManagementServiceStub(oms)
        self._router = routing_pb2_grpc.RoutingServiceStub(router)

    def _order(self, order_id: str) -> oms_pb2.Order:
        request = oms_pb2.GetOrderRequest(order_id=order_id)
        return _call("order", order_id, lambda: self._oms.GetOrder(request, timeout=TIMEOUT).order)

    def parent(self, order_id: str) -> ParentView:
        order = self._order(order_id)
        terms = order.terms
        return ParentView(
            order_id=order_id,
            symbol=terms.symbol,
            side=Side(terms.side),
            quantity=order.quantity,
            limit_price=(
                Price(order.limit_price_nanos) if order.HasField("limit_price_nanos") else None
            ),
            working=OrderStatus(order.status) in WORKING,
        )

    def route(
        self, parent: ParentView, quantity: int, urgency: Urgency, limit_price: Price | None
    ) -> tuple[str, tuple[RouteAllocation, ...]]:
        request = routing_pb2.RouteRequest(
            order_id=parent.order_id,
            symbol=parent.symbol,
            side=common_pb2.Side.ValueType(parent.side.value),
            quantity=quantity,
            urgency=common_pb2.Urgency.ValueType(urgency.value),
            allow_dark=True,
        )
        if limit_price is not None:
            request.limit_price_nanos = limit_price.nanos
        response = _call(
            "route", parent.order_id, lambda: self._router.Route(request, timeout=TIMEOUT)
        )
        return response.decision_id, tuple(
            from_proto(RouteAllocation, a) for a in response.allocations
        )

    def place(
        self, parent_id: str, children: Sequence[tuple[str, RouteAllocation]]
    ) -> list[ChildView]:
        request = oms_pb2.PlaceChildOrdersRequest(parent_order_id=parent_id)
        for client_id, a in children:
            child = request.children.add(
                client_order_id=client_id,
                venue=a.venue,
                quantity=a.quantity,
                order_type=common_pb2.OrderType.ValueType(a.order_type.value),
                time_in_force=common_pb2.TimeInForce.ValueType(a.time_in_force.value),
                post_only=a.post_only,
                min_quantity=a.min_quantity,
            )
            if a.limit_price is not None:
                child.limit_price_nanos = a.limit_price.nanos
        response = _call(
            "children",
            parent_id,
            lambda: self._oms.PlaceChildOrders(request, metadata=ACTOR, timeout=TIMEOUT),
        )
        return [_child(c) for c in response.children]

    def cancel(self, child_order_id: str) -> None:
        request = oms_pb2.CancelOrderRequest(order_id=child_order_id, reason="algo")
        # Refused when the child is done already: its end is on its way to the engine.
        with contextlib.suppress(FailedPrecondition, NotFound):
            _call(
                "order",
                child_order_id,
                lambda: self._oms.CancelOrder(request, metadata=ACTOR, timeout=TIMEOUT),
            )

    def children(self, parent_id: str) -> list[ChildView]:
        return [_child(c) for c in self._order(parent_id).children]

    def fills(self, child_order_id: str) -> list[ChildFill]:
        history = _call(
            "order",
            child_order_id,
            lambda: self._oms.GetOrderHistory(
                oms_pb2.GetOrderHistoryRequest(order_id=child_order_id), timeout=TIMEOUT
            ),
        )
        return [
            ChildFill(
                exec_id=fill.exec_id,
                quantity=fill.quantity,
                price=Price(fill.price_nanos),
                executed_at=fill.executed_at.ToDatetime(tzinfo=UTC),
            )
            for fill in (
                e.event.child_order_filled
                for e in history.entries
                if e.event.event_type == "ChildOrderFilled"
            )
        ]
