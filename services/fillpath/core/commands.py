"""Commands: what a trading system, an algorithm or a venue asks the OMS to do.

Commands are imperative and may be refused; the events they lead to are facts. A command here is
already well formed (the API mapping validated every field against the reference data); whether
the order's state allows it is decided by the `ParentOrder` aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fillpath.core.enums import ExecType, LiquidityFlag, OrderType, Side, TimeInForce
from fillpath.core.price import Price
from fillpath.core.terms import ExecutionInstructions, OrderTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder:
    client_order_id: str
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
    instructions: ExecutionInstructions | None = None
    decision_price: Price | None = None

    def terms(self, order_id: str) -> OrderTerms:
        return OrderTerms(
            order_id=order_id,
            client_order_id=self.client_order_id,
            account=self.account,
            portfolio=self.portfolio,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            quantity=self.quantity,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            expire_time=self.expire_time,
            instructions=self.instructions,
            decision_price=self.decision_price,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendOrder:
    order_id: str
    # None leaves the value as it is.
    quantity: int | None = None
    limit_price: Price | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    order_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildOrderRequest:
    client_order_id: str
    venue: str
    quantity: int
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: Price | None = None
    post_only: bool = False
    min_quantity: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceChildOrders:
    parent_order_id: str
    children: tuple[ChildOrderRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyExecutionReport:
    """One execution report from a venue, for a child order."""

    order_id: str
    exec_id: str
    exec_type: ExecType
    venue: str = ""
    venue_order_id: str = ""
    last_quantity: int = 0
    last_price: Price | None = None
    liquidity: LiquidityFlag | None = None
    fee_nanos: int = 0
    # EXEC_TYPE_REPLACED: the new terms.
    quantity: int = 0
    limit_price: Price | None = None
    text: str = ""
    transact_time: datetime | None = None
