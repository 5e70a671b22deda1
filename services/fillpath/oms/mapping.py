"""Protobuf messages of the OMS API to commands and back.

Requests become commands here, with the checks a protobuf type cannot express (an enum left
UNSPECIFIED or out of range, a negative price). Every violation found is reported at once, named
by its field path. Checks that need reference data (symbol, lot and tick sizes, account) are the
OMS use cases' (fillpath.oms.service), so they hold for every caller, not just gRPC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from fillpath.api.v1 import common_pb2, events_pb2, oms_pb2
from fillpath.core.commands import (
    AmendOrder,
    ApplyExecutionReport,
    CancelOrder,
    ChildOrderRequest,
    PlaceChildOrders,
    SubmitOrder,
)
from fillpath.core.enums import (
    AlgorithmKind,
    ExecType,
    LiquidityFlag,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Urgency,
)
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.orders import Order
from fillpath.core.parent_order import ParentOrder
from fillpath.core.price import Price
from fillpath.core.terms import ExecutionInstructions
from fillpath.infra.event_proto import to_proto
from fillpath.oms.projection import OrderQuery, OrderRow

E = TypeVar("E", bound=IntEnum)

MAX_PAGE_SIZE = 1000


class _Violations:
    """Collects violations while a request is converted; raises them all at the end."""

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def add(self, field: str, value: object, reason: str) -> None:
        self.found.append(FieldViolation(field, value, reason))

    def enum(self, cls: type[E], field: str, value: int, *, required: bool = True) -> E | None:
        if value == 0:
            if required:
                self.add(field, value, f"required: one of {', '.join(m.name for m in cls)}")
            return None
        try:
            return cls(value)
        except ValueError:
            self.add(field, value, f"not a {cls.__name__}")
            return None

    def price(self, message: Message, field: str, path: str = "") -> Price | None:
        if not message.HasField(field):
            return None
        nanos = getattr(message, field)
        if nanos <= 0:
            self.add(path + field, nanos, "must be positive")
            return None
        return Price(nanos)

    def text(self, field: str, value: str, *, limit: int = 64) -> str:
        if not value.strip():
            self.add(field, value, "required")
        elif len(value) > limit or not value.isprintable() or not value.isascii():
            self.add(field, value, f"must be 1–{limit} printable ASCII characters")
        return value

    def free_text(self, field: str, value: str, *, limit: int = 256) -> str:
        """Words for people (reasons, venue texts): any characters but NUL, bounded."""
        if "\x00" in value:
            self.add(field, value, "contains a NUL character")
        elif len(value) > limit:
            self.add(field, value[:40] + "…", f"longer than {limit} characters")
        return value

    def check(self) -> None:
        if self.found:
            raise InvalidArgument(self.found)


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def submit_command(request: oms_pb2.SubmitOrderRequest) -> SubmitOrder:
    v = _Violations()
    client_order_id = v.text("client_order_id", request.client_order_id)
    account = v.text("account", request.account)
    portfolio = v.text("portfolio", request.portfolio)
    symbol = v.text("symbol", request.symbol, limit=32)
    side = v.enum(Side, "side", request.side)
    order_type = v.enum(OrderType, "order_type", request.order_type)
    tif = v.enum(TimeInForce, "time_in_force", request.time_in_force)
    limit_price = v.price(request, "limit_price_nanos")
    stop_price = v.price(request, "stop_price_nanos")
    decision_price = v.price(request, "decision_price_nanos")
    instructions = (
        instructions_of(request.instructions, v) if request.HasField("instructions") else None
    )
    v.check()
    assert side is not None
    assert order_type is not None
    assert tif is not None
    return SubmitOrder(
        client_order_id=client_order_id,
        account=account,
        portfolio=portfolio,
        symbol=symbol,
        side=side,
        order_type=order_type,
        time_in_force=tif,
        quantity=request.quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        expire_time=_time(request, "expire_time"),
        instructions=instructions,
        decision_price=decision_price,
    )


def instructions_of(
    message: common_pb2.ExecutionInstructions, v: _Violations
) -> ExecutionInstructions:
    path = "instructions."
    algorithm = v.enum(AlgorithmKind, path + "algorithm", message.algorithm, required=False)
    urgency = v.enum(Urgency, path + "urgency", message.urgency, required=False)
    if not 0 <= message.max_participation_bps <= 10_000:
        v.add(path + "max_participation_bps", message.max_participation_bps, "must be 0–10000")
    for name, value in message.params.items():
        if not math.isfinite(value):
            v.add(f"{path}params[{name}]", value, "must be a finite number")
    v.free_text(path + "algo_profile", message.algo_profile, limit=64)
    return ExecutionInstructions(
        algo_profile=message.algo_profile,
        algorithm=algorithm,
        urgency=urgency,
        max_participation_bps=message.max_participation_bps,
        params=tuple(sorted(message.params.items())),
        start_time=_time(message, "start_time"),
        end_time=_time(message, "end_time"),
    )


def amend_command(request: oms_pb2.AmendOrderRequest) -> AmendOrder:
    v = _Violations()
    order_id = v.text("order_id", request.order_id)
    quantity = request.quantity if request.HasField("quantity") else None
    limit_price = v.price(request, "limit_price_nanos")
    if quantity is None and not request.HasField("limit_price_nanos"):
        v.add("quantity", None, "give a new quantity, a new limit_price_nanos, or both")
    reason = v.free_text("reason", request.reason)
    v.check()
    return AmendOrder(order_id=order_id, quantity=quantity, limit_price=limit_price, reason=reason)


def cancel_command(request: oms_pb2.CancelOrderRequest) -> CancelOrder:
    v = _Violations()
    order_id = v.text("order_id", request.order_id)
    reason = v.free_text("reason", request.reason)
    v.check()
    return CancelOrder(order_id=order_id, reason=reason)


def place_children_command(request: oms_pb2.PlaceChildOrdersRequest) -> PlaceChildOrders:
    v = _Violations()
    parent_id = v.text("parent_order_id", request.parent_order_id)
    if not request.children:
        v.add("children", [], "at least one child order")
    children = []
    for i, child in enumerate(request.children):
        path = f"children[{i}]."
        order_type = v.enum(OrderType, path + "order_type", child.order_type)
        tif = v.enum(TimeInForce, path + "time_in_force", child.time_in_force)
        limit_price = v.price(child, "limit_price_nanos", path)
        children.append(
            ChildOrderRequest(
                client_order_id=v.text(path + "client_order_id", child.client_order_id),
                venue=v.text(path + "venue", child.venue, limit=32),
                quantity=child.quantity,
                order_type=order_type or OrderType.LIMIT,
                time_in_force=tif or TimeInForce.DAY,
                limit_price=limit_price,
                post_only=child.post_only,
                min_quantity=child.min_quantity,
            )
        )
    v.check()
    return PlaceChildOrders(parent_order_id=parent_id, children=tuple(children))


def report_command(request: oms_pb2.ApplyExecutionReportRequest) -> ApplyExecutionReport:
    v = _Violations()
    report = request.report
    path = "report."
    exec_type = v.enum(ExecType, path + "exec_type", report.exec_type)
    liquidity = v.enum(LiquidityFlag, path + "liquidity", report.liquidity, required=False)
    last_price = None
    if exec_type is ExecType.TRADE:
        if report.last_quantity <= 0:
            v.add(path + "last_quantity", report.last_quantity, "must be positive for a trade")
        if report.last_price_nanos <= 0:
            v.add(
                path + "last_price_nanos", report.last_price_nanos, "must be positive for a trade"
            )
        else:
            last_price = Price(report.last_price_nanos)
    if exec_type is ExecType.REPLACED and report.quantity <= 0:
        v.add(path + "quantity", report.quantity, "the new quantity, required for REPLACED")
    command = ApplyExecutionReport(
        order_id=v.text(path + "order_id", report.order_id),
        exec_id=v.text(path + "exec_id", report.exec_id, limit=128),
        exec_type=exec_type or ExecType.NEW,
        venue=v.free_text(path + "venue", report.venue, limit=32),
        venue_order_id=v.free_text(path + "venue_order_id", report.venue_order_id, limit=128),
        last_quantity=report.last_quantity,
        last_price=last_price,
        liquidity=liquidity,
        fee_nanos=report.fee_nanos,
        quantity=report.quantity,
        limit_price=v.price(report, "limit_price_nanos", path),
        text=v.free_text(path + "text", report.text),
        transact_time=_time(report, "transact_time"),
    )
    v.check()
    return command


def order_query(request: oms_pb2.ListOrdersRequest) -> OrderQuery:
    v = _Violations()
    statuses = tuple(
        s
        for i, raw in enumerate(request.statuses)
        if (s := v.enum(OrderStatus, f"statuses[{i}]", raw)) is not None
    )
    size = request.page.page_size or 100
    if not 1 <= size <= MAX_PAGE_SIZE:
        v.add("page.page_size", request.page.page_size, f"must be 1–{MAX_PAGE_SIZE}")
    v.check()
    return OrderQuery(
        account=request.account,
        portfolio=request.portfolio,
        symbol=request.symbol,
        statuses=statuses,
        created_from=_time(request, "created_from"),
        created_to=_time(request, "created_to"),
        include_children=request.include_children,
        ascending=request.sort == oms_pb2.ORDER_SORT_CREATED_ASC,
        page_size=size,
        page_token=request.page.page_token,
    )


def proto_enum(value: IntEnum | None) -> Any:
    """A domain enum as its proto field value (the numbers agree; None is UNSPECIFIED)."""
    return int(value or 0)


def order_message(
    order: Order,
    *,
    working_quantity: int = 0,
    fees_nanos: int | None = None,
    children: tuple[Order, ...] = (),
) -> oms_pb2.Order:
    message = oms_pb2.Order(
        status=proto_enum(order.status),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        leaves_quantity=order.leaves_quantity,
        venue_order_id=order.venue_order_id or "",
        reject_code=proto_enum(order.reject_code),
        reject_reason=order.reject_reason,
        stream_version=order.version,
        working_quantity=working_quantity,
        fees_nanos=order.fees_nanos if fees_nanos is None else fees_nanos,
    )
    to_proto(order.terms, message.terms)
    if order.limit_price is not None:
        message.limit_price_nanos = order.limit_price.nanos
    if (avg := order.avg_price) is not None:
        message.avg_price_nanos = avg.nanos
    message.created_at.FromDatetime(order.created_at)
    message.updated_at.FromDatetime(order.updated_at)
    if order.expires_at is not None:
        message.expires_at.FromDatetime(order.expires_at)
    message.children.extend(order_message(c) for c in children)
    return message


def aggregate_order(
    aggregate: ParentOrder, order_id: str | None = None, *, with_children: bool = True
) -> oms_pb2.Order:
    """The order `order_id` of `aggregate` (default: the parent), as the API shows it."""
    order = aggregate.order(order_id or aggregate.order_id)
    if order is not aggregate.parent:
        return order_message(order)
    return order_message(
        order,
        working_quantity=aggregate.working_quantity,
        fees_nanos=aggregate.fees_nanos,
        children=tuple(aggregate.children.values()) if with_children else (),
    )


def row_order(row: OrderRow) -> oms_pb2.Order:
    return order_message(
        row.order, working_quantity=row.working_quantity, fees_nanos=row.fees_nanos
    )


def history_entry(envelope: events_pb2.EventEnvelope, summary: str) -> oms_pb2.HistoryEntry:
    return oms_pb2.HistoryEntry(event=envelope, summary=summary)
