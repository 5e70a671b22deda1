"""What an order is created with: its immutable terms and its execution instructions.

Terms are values: the order's current quantity and limit price (which amendments change) live on
the `Order`, the terms keep what the client first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fillpath.core.enums import AlgorithmKind, OrderType, Side, TimeInForce, Urgency
from fillpath.core.price import Price


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionInstructions:
    """How a parent order should be executed; empty fields are chosen by the strategy service."""

    algo_profile: str = ""
    algorithm: AlgorithmKind | None = None
    urgency: Urgency | None = None
    max_participation_bps: int = 0
    # Sorted (name, value) pairs, so that equal instructions compare and hash equal.
    params: tuple[tuple[str, float], ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTerms:
    order_id: str
    client_order_id: str
    parent_order_id: str | None = None
    account: str
    portfolio: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: int
    limit_price: Price | None = None
    stop_price: Price | None = None
    expire_time: datetime | None = None
    venue: str | None = None
    instructions: ExecutionInstructions | None = None
    decision_price: Price | None = None
    post_only: bool = False
    min_quantity: int = 0
