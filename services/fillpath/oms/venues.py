"""The OMS's side of the venue boundary: send what was recorded, record what comes back.

`VenueDispatcher.recorded` runs after a command's events are durably appended (write-ahead): a
child order placed is sent as a new order, a cancel or replace requested for a child is sent on.
Execution reports from the gateway become `apply_report` commands, recorded under the actor
``venue:<name>``. On start, `resend_unsent` sends again what a crash may have left unsent —
children still pending new, cancel or replace — which a gateway ignores if it had them. A report
that cannot be recorded for a temporary reason (the database down, a lost race) is retried.
"""

from __future__ import annotations

import logging
import time

from fillpath.core.commands import ApplyExecutionReport
from fillpath.core.enums import OrderStatus
from fillpath.core.errors import FillpathError
from fillpath.core.events import ChildOrderPlaced, OrderCancelRequested, OrderReplaceRequested
from fillpath.core.ids import is_child_id
from fillpath.core.orders import Order
from fillpath.core.venues import VenueGateway, VenueOrder
from fillpath.infra.event_store import CommandContext
from fillpath.oms.service import OrderManagement, Outcome

log = logging.getLogger(__name__)
_REPORT_ATTEMPTS = 8


class VenueDispatcher:
    def __init__(
        self, gateway: VenueGateway, oms: OrderManagement, *, consume_reports: bool = True
    ) -> None:
        """`consume_reports`: whether this process applies the gateway's reports (one OMS
        process of several does; the others only send)."""
        self._gateway = gateway
        self._oms = oms
        if consume_reports:
            gateway.subscribe(self.on_report)

    def recorded(self, outcome: Outcome) -> None:
        """Sends on what `outcome` recorded for venues (called after the append committed).

        Never raises into the command that recorded it: what could not be sent stays pending
        and is sent again on the next start.
        """
        try:
            self._send(outcome)
        except Exception:
            log.exception(
                "could not send %s to its venue; it stays pending", outcome.aggregate.order_id
            )

    def _send(self, outcome: Outcome) -> None:
        for event in outcome.events:
            if isinstance(event, ChildOrderPlaced):
                self._gateway.new_order(_venue_order(outcome.aggregate.order(event.order_id)))
            elif isinstance(event, OrderCancelRequested) and is_child_id(event.order_id):
                self._gateway.cancel_order(event.order_id)
            elif isinstance(event, OrderReplaceRequested) and is_child_id(event.order_id):
                self._gateway.replace_order(event.order_id, event.quantity, event.limit_price)

    def on_report(self, report: ApplyExecutionReport) -> None:
        context = CommandContext(actor=f"venue:{report.venue}" if report.venue else "venue")
        for attempt in range(1, _REPORT_ATTEMPTS + 1):
            try:
                self._oms.apply_report(report, context)
                return
            except FillpathError as err:
                if not err.retryable or attempt == _REPORT_ATTEMPTS:
                    log.exception(
                        "execution report %s for %s not applied", report.exec_id, report.order_id
                    )
                    return
                time.sleep(min(0.05 * 2**attempt, 2.0))

    def resend_unsent(self, order_ids: list[str]) -> int:
        """Sends again the pending requests of the children of `order_ids`; how many.

        A child the venue never acknowledged is sent as a new order first (a cancel or replace
        may have been recorded before the venue answered), then its pending cancel or replace.
        """
        sent = 0
        for order_id in order_ids:
            aggregate = self._oms.get(order_id)
            for child in aggregate.children.values():
                if not child.status.is_pending and child.status is not OrderStatus.PENDING_NEW:
                    continue
                if child.venue_order_id is None:
                    self._gateway.new_order(_venue_order(child))
                    sent += 1
                if child.status is OrderStatus.PENDING_CANCEL:
                    self._gateway.cancel_order(child.order_id)
                    sent += 1
                elif child.status is OrderStatus.PENDING_REPLACE:
                    assert child.pending_quantity is not None
                    self._gateway.replace_order(
                        child.order_id, child.pending_quantity, child.pending_limit_price
                    )
                    sent += 1
        return sent


def _venue_order(child: Order) -> VenueOrder:
    terms = child.terms
    assert terms.venue is not None, "a child order always names its venue"
    return VenueOrder(
        order_id=terms.order_id,
        symbol=terms.symbol,
        venue=terms.venue,
        side=terms.side,
        quantity=child.quantity,
        order_type=terms.order_type,
        limit_price=child.limit_price,
        time_in_force=terms.time_in_force,
        post_only=terms.post_only,
        min_quantity=terms.min_quantity,
    )
