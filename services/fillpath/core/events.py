"""The facts of the order domain: frozen, past-tense, one class per event type.

Commands (fillpath.core.commands) say what someone wants; events say what happened, and only
events change an order (`Order.apply`). Every event names the order it concerns, parent or
child; the stream it is stored in is always the parent's, so one append covers a child fill and
the parent's share of it.

Each class has a `schema_version`. When a payload's shape changes, bump it and register an
upcaster for the old version (fillpath.infra.codec); stored events are never rewritten. The
field names match the protobuf messages in events.proto, with `Price` fields `x` carried as
`x_nanos` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from fillpath.core.enums import LiquidityFlag, RejectCode
from fillpath.core.executions import ALGO_EVENT_TYPES
from fillpath.core.price import Price
from fillpath.core.routing import ROUTING_EVENT_TYPES
from fillpath.core.strategy import STRATEGY_EVENT_TYPES
from fillpath.core.terms import OrderTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """Base of the order events: which order, and when it happened (UTC)."""

    schema_version: ClassVar[int] = 1

    order_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    """A parent order arrived from a trading system."""

    terms: OrderTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildOrderPlaced(OrderEvent):
    """A child order was recorded for a venue, before it is sent (write-ahead)."""

    terms: OrderTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    """Parent: passed pre-trade checks. Child: acknowledged by the venue."""

    exec_id: str | None = None
    venue_order_id: str | None = None
    # Parents: when the OMS will expire the order (GTD: its expire time; DAY: session close).
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    exec_id: str | None = None
    code: RejectCode
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRequested(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    exec_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRejected(OrderEvent):
    exec_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaceRequested(OrderEvent):
    quantity: int
    limit_price: Price | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(OrderEvent):
    exec_id: str | None = None
    quantity: int
    limit_price: Price | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaceRejected(OrderEvent):
    exec_id: str | None = None
    code: RejectCode | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(OrderEvent):
    exec_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDoneForDay(OrderEvent):
    exec_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildOrderFilled(OrderEvent):
    """An execution on a venue, for a child order."""

    exec_id: str
    venue: str
    quantity: int
    price: Price
    liquidity: LiquidityFlag | None = None
    fee_nanos: int = 0
    executed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPartiallyFilled(OrderEvent):
    """The parent's share of a child fill, leaving quantity to do."""

    child_order_id: str
    exec_id: str
    quantity: int
    price: Price


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    """The parent's share of a child fill that completes the parent."""

    child_order_id: str
    exec_id: str
    quantity: int
    price: Price


ORDER_EVENT_TYPES: tuple[type[OrderEvent], ...] = (
    OrderSubmitted,
    ChildOrderPlaced,
    OrderAccepted,
    OrderRejected,
    OrderCancelRequested,
    OrderCanceled,
    OrderCancelRejected,
    OrderReplaceRequested,
    OrderReplaced,
    OrderReplaceRejected,
    OrderExpired,
    OrderDoneForDay,
    ChildOrderFilled,
    OrderPartiallyFilled,
    OrderFilled,
)

EVENT_TYPES: tuple[type, ...] = (
    *ORDER_EVENT_TYPES,
    *STRATEGY_EVENT_TYPES,
    *ROUTING_EVENT_TYPES,
    *ALGO_EVENT_TYPES,
)
"""Every event type the shared event log holds: the order events, the strategy choices, the
routing decisions and the algorithm executions."""
