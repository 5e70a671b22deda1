"""The facts of smart order routing: a routing decision and the allocations it made.

The router (fillpath.sor) records one `RoutingDecision` per Route call, before it answers, in
the event log every service shares: the audit trail of best execution, published on the routing
topic. Field names match events.proto, with `Price` fields `x` carried as `x_nanos` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from fillpath.core.enums import OrderType, Side, TimeInForce, Urgency
from fillpath.core.price import Price

TAKE = "take"
REST = "rest"
PING = "ping"


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteAllocation:
    """Shares for one venue, and the order that works them."""

    venue: str
    quantity: int
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: Price | None = None
    post_only: bool = False
    min_quantity: int = 0
    expected_cost_bps: float = 0.0
    source: str = TAKE  # TAKE, REST or PING


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingDecision:
    schema_version: ClassVar[int] = 1

    decision_id: str
    order_id: str
    occurred_at: datetime
    symbol: str
    side: Side
    quantity: int
    mode: str
    urgency: Urgency
    limit_price: Price | None = None
    bid_price: Price
    ask_price: Price
    allocations: tuple[RouteAllocation, ...] = ()
    expected_cost_bps: float = 0.0
    miss_cost_bps: float = 0.0
    excluded: tuple[tuple[str, str], ...] = ()
    """(venue, why) for every venue this decision could not use."""

    rationale: str = ""


ROUTING_EVENT_TYPES: tuple[type, ...] = (RoutingDecision,)
