"""The boundary between the OMS and the venues: what is sent (a child order, a cancel, a
replace) and what comes back (execution reports, as `ApplyExecutionReport` commands).

A port, implemented by the market lab's simulated gateway and, later, by a FIX gateway. The OMS
sends only what it has durably recorded (write-ahead) and may send it again after a restart, so
a gateway must ignore a new order whose id it has seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fillpath.core.commands import ApplyExecutionReport
from fillpath.core.enums import OrderType, Side, TimeInForce
from fillpath.core.price import Price


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueOrder:
    """A child order as a venue receives it (FIX NewOrderSingle); its id is the ClOrdID."""

    order_id: str
    symbol: str
    venue: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LIMIT
    limit_price: Price | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    post_only: bool = False
    min_quantity: int = 0


ReportHandler = Callable[[ApplyExecutionReport], None]


class VenueGateway(Protocol):
    def new_order(self, order: VenueOrder) -> bool:
        """Sends a new order; one whose id was sent before is ignored (False)."""
        ...

    def cancel_order(self, order_id: str) -> None: ...

    def replace_order(self, order_id: str, quantity: int, limit_price: Price | None) -> None:
        """Cancel/replace to a new total quantity and limit price."""
        ...

    def subscribe(self, on_report: ReportHandler) -> None:
        """Where execution reports go (one handler; called from the gateway's thread)."""
        ...
