"""The order lifecycle: one transition table, and `Order.apply` as the only way to change an order.

Statuses follow FIX OrdStatus. An event is first classified into a `Transition` (a fill becomes
FILL_PARTIAL or FILL_COMPLETE by the quantity it leaves; a replace becomes REPLACE or
REPLACE_TO_FILLED), then looked up in `TRANSITIONS` by ``(status, transition)``. A missing key is
an illegal transition and raises `InvalidTransition` without changing the order.

Real-world edges are in the table on purpose, each with a comment: a fill racing a cancel, an ack
arriving after a cancel request, a rejected cancel or amend restoring the status before it, and
late fills after an order was canceled or expired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Final

from fillpath.core.enums import OrderStatus, RejectCode
from fillpath.core.errors import FailedPrecondition, InvalidTransition, Overfill
from fillpath.core.events import (
    ChildOrderFilled,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDoneForDay,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
)
from fillpath.core.price import Price, average_price
from fillpath.core.terms import OrderTerms


class Transition(StrEnum):
    """What an event does to an order's lifecycle."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    CANCEL_REQUEST = "CANCEL_REQUEST"
    CANCEL = "CANCEL"
    CANCEL_REJECT = "CANCEL_REJECT"
    REPLACE_REQUEST = "REPLACE_REQUEST"
    REPLACE = "REPLACE"
    REPLACE_TO_FILLED = "REPLACE_TO_FILLED"
    REPLACE_REJECT = "REPLACE_REJECT"
    EXPIRE = "EXPIRE"
    DONE_FOR_DAY = "DONE_FOR_DAY"
    FILL_PARTIAL = "FILL_PARTIAL"
    FILL_COMPLETE = "FILL_COMPLETE"


class Resolve(Enum):
    """Targets that depend on the order rather than being a fixed status."""

    PREVIOUS = "the status before the pending request"
    UNCHANGED = "the current status"
    WORKING = "NEW if nothing is filled, else PARTIALLY_FILLED"


S = OrderStatus
T = Transition

_WORKING_EDGES: Final[dict[Transition, OrderStatus | Resolve]] = {
    T.CANCEL_REQUEST: S.PENDING_CANCEL,
    T.REPLACE_REQUEST: S.PENDING_REPLACE,
    T.FILL_PARTIAL: S.PARTIALLY_FILLED,
    T.FILL_COMPLETE: S.FILLED,
    # Unsolicited: the venue canceled (IOC remainder, self-trade prevention, kill switch).
    T.CANCEL: S.CANCELED,
    T.EXPIRE: S.EXPIRED,
    T.DONE_FOR_DAY: S.DONE_FOR_DAY,
}

TRANSITIONS: Final[dict[tuple[OrderStatus, Transition], OrderStatus | Resolve]] = {
    (S.PENDING_NEW, T.ACCEPT): S.NEW,
    (S.PENDING_NEW, T.REJECT): S.REJECTED,
    # Cancel before the venue's ack: FIX allows it, the ack or a reject may still arrive.
    (S.PENDING_NEW, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    # IOC/FOK with nothing done, or canceled by the venue before it acknowledged.
    (S.PENDING_NEW, T.CANCEL): S.CANCELED,
    (S.PENDING_NEW, T.EXPIRE): S.EXPIRED,
    # A fill can overtake the ack on the wire; it implies the acceptance.
    (S.PENDING_NEW, T.FILL_PARTIAL): S.PARTIALLY_FILLED,
    (S.PENDING_NEW, T.FILL_COMPLETE): S.FILLED,
    **{(S.NEW, t): target for t, target in _WORKING_EDGES.items()},
    **{(S.PARTIALLY_FILLED, t): target for t, target in _WORKING_EDGES.items()},
    (S.PENDING_CANCEL, T.CANCEL): S.CANCELED,
    # The venue refused the cancel: the order is back where it was (with any fills since).
    (S.PENDING_CANCEL, T.CANCEL_REJECT): Resolve.PREVIOUS,
    # The ack of an order we are already canceling; if the cancel is rejected we are NEW.
    (S.PENDING_CANCEL, T.ACCEPT): Resolve.UNCHANGED,
    # The venue rejected the order we were canceling: nothing to cancel any more.
    (S.PENDING_CANCEL, T.REJECT): S.REJECTED,
    # A fill racing the cancel. Partial: the cancel is still pending. Complete: the fill won,
    # the venue will reject the cancel ("too late to cancel").
    (S.PENDING_CANCEL, T.FILL_PARTIAL): Resolve.UNCHANGED,
    (S.PENDING_CANCEL, T.FILL_COMPLETE): S.FILLED,
    (S.PENDING_CANCEL, T.EXPIRE): S.EXPIRED,
    # The answer to an amend sent before the cancel: the new terms hold, the cancel still pends.
    (S.PENDING_CANCEL, T.REPLACE): Resolve.UNCHANGED,
    (S.PENDING_CANCEL, T.REPLACE_REJECT): Resolve.UNCHANGED,
    (S.PENDING_CANCEL, T.REPLACE_TO_FILLED): S.FILLED,
    (S.PENDING_REPLACE, T.REPLACE): Resolve.WORKING,
    # A cancel supersedes a pending amend (FIX allows canceling an order with a replace pending).
    (S.PENDING_REPLACE, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    # Amended down to exactly what is filled: nothing left to do.
    (S.PENDING_REPLACE, T.REPLACE_TO_FILLED): S.FILLED,
    # A rejected amend restores the status before it (with any fills since).
    (S.PENDING_REPLACE, T.REPLACE_REJECT): Resolve.PREVIOUS,
    # Fills racing the amend, as with a cancel.
    (S.PENDING_REPLACE, T.FILL_PARTIAL): Resolve.UNCHANGED,
    (S.PENDING_REPLACE, T.FILL_COMPLETE): S.FILLED,
    (S.PENDING_REPLACE, T.CANCEL): S.CANCELED,
    (S.PENDING_REPLACE, T.EXPIRE): S.EXPIRED,
    # The venue's "too late to cancel/replace" arrives after the fill that beat the request.
    (S.FILLED, T.CANCEL_REJECT): S.FILLED,
    (S.FILLED, T.REPLACE_REJECT): S.FILLED,
    # Late fills: executed before the cancel or expiry took effect, reported after it. The
    # quantity counts; the order stays done unless the fill completes it.
    (S.CANCELED, T.FILL_PARTIAL): S.CANCELED,
    (S.CANCELED, T.FILL_COMPLETE): S.FILLED,
    (S.EXPIRED, T.FILL_PARTIAL): S.EXPIRED,
    (S.EXPIRED, T.FILL_COMPLETE): S.FILLED,
    # Done for the day (GTC/GTD): no more executions today, but still an order.
    (S.DONE_FOR_DAY, T.FILL_PARTIAL): S.DONE_FOR_DAY,
    (S.DONE_FOR_DAY, T.FILL_COMPLETE): S.FILLED,
    (S.DONE_FOR_DAY, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.DONE_FOR_DAY, T.CANCEL): S.CANCELED,
    (S.DONE_FOR_DAY, T.EXPIRE): S.EXPIRED,
    # The venue's "too late to cancel/replace" for an order that ended meanwhile (an IOC
    # remainder canceled, an expiry, a reject racing our request).
    **{(s, t): Resolve.UNCHANGED for s in (S.CANCELED, S.EXPIRED, S.REJECTED)
       for t in (T.CANCEL_REJECT, T.REPLACE_REJECT)},
    # An ack that arrives after what implied it (a fill, a cancel, an expiry, the day's end):
    # the order has moved on; the ack changes nothing.
    **{(s, T.ACCEPT): Resolve.UNCHANGED for s in (
        S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_REPLACE, S.CANCELED, S.EXPIRED,
        S.DONE_FOR_DAY,
    )},
}  # fmt: skip


_SIMPLE_TRANSITIONS: Final[dict[type[OrderEvent], Transition]] = {
    OrderAccepted: T.ACCEPT,
    OrderRejected: T.REJECT,
    OrderCancelRequested: T.CANCEL_REQUEST,
    OrderCanceled: T.CANCEL,
    OrderCancelRejected: T.CANCEL_REJECT,
    OrderReplaceRequested: T.REPLACE_REQUEST,
    OrderReplaceRejected: T.REPLACE_REJECT,
    OrderExpired: T.EXPIRE,
    OrderDoneForDay: T.DONE_FOR_DAY,
}


@dataclass(slots=True, kw_only=True)
class Order:
    """One order, parent or child, as its events have left it."""

    terms: OrderTerms
    status: OrderStatus = OrderStatus.PENDING_NEW
    # The status to return to when a pending cancel or replace is rejected.
    previous_status: OrderStatus | None = None
    quantity: int
    limit_price: Price | None = None
    filled_quantity: int = 0
    # Σ fill quantity × fill price, in currency nanos: the exact basis of the average price.
    filled_notional: int = 0
    fees_nanos: int = 0
    pending_quantity: int | None = None
    pending_limit_price: Price | None = None
    venue_order_id: str | None = None
    expires_at: datetime | None = None
    reject_code: RejectCode | None = None
    reject_reason: str = ""
    created_at: datetime
    updated_at: datetime
    # Stream version of the last event that changed this order.
    version: int = 0
    # Exec ids already applied (fills and venue reports), so a repeated report changes nothing.
    exec_ids: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, terms: OrderTerms, at: datetime, version: int = 0) -> Order:
        return cls(
            terms=terms,
            quantity=terms.quantity,
            limit_price=terms.limit_price,
            created_at=at,
            updated_at=at,
            version=version,
        )

    @property
    def order_id(self) -> str:
        return self.terms.order_id

    @property
    def leaves_quantity(self) -> int:
        """Quantity still to execute: zero once the order is done."""
        if self.status.is_terminal:
            return 0
        return self.quantity - self.filled_quantity

    @property
    def committed_quantity(self) -> int:
        """What may still execute, counting an increase the venue has not yet confirmed: a
        pending amend to more can be filled at the new size the moment the venue applies it."""
        if self.status.is_terminal:
            return 0
        return max(self.quantity, self.pending_quantity or 0) - self.filled_quantity

    @property
    def is_live(self) -> bool:
        return not self.status.is_terminal

    @property
    def avg_price(self) -> Price | None:
        if self.filled_quantity == 0:
            return None
        return average_price(self.filled_notional, self.filled_quantity)

    def transition_for(self, event: OrderEvent) -> Transition:
        """Classifies `event` for this order, checking its quantities.

        Raises:
            Overfill: a fill larger than the quantity left.
            FailedPrecondition: quantities that contradict the order (e.g. a replace below the
                filled quantity, or an OrderFilled that does not complete it).
        """
        simple = _SIMPLE_TRANSITIONS.get(type(event))
        if simple is not None:
            if isinstance(event, OrderReplaceRequested):
                self._check_new_quantity(event.quantity)
            return simple
        if isinstance(event, OrderReplaced):
            self._check_new_quantity(event.quantity)
            return T.REPLACE_TO_FILLED if event.quantity == self.filled_quantity else T.REPLACE
        if isinstance(event, ChildOrderFilled | OrderPartiallyFilled | OrderFilled):
            return self._fill_transition(event)
        raise FailedPrecondition(
            "UNKNOWN_EVENT",
            f"order {self.order_id}: {type(event).__name__} is not a lifecycle event",
        )

    def apply(self, event: OrderEvent, version: int = 0) -> None:
        """Applies one event; the only thing that changes an order.

        Raises:
            InvalidTransition: the lifecycle has no edge for this event from the current status.
                The order is left exactly as it was.
        """
        transition = self.transition_for(event)
        target = TRANSITIONS.get((self.status, transition))
        if target is None:
            raise InvalidTransition(self.order_id, self.status.name, type(event).__name__)
        new_status = self._resolve(target)

        if isinstance(event, ChildOrderFilled | OrderPartiallyFilled | OrderFilled):
            self.filled_quantity += event.quantity
            self.filled_notional += event.price.notional(event.quantity)
            self.exec_ids.add(event.exec_id)
            if isinstance(event, ChildOrderFilled):
                self.fees_nanos += event.fee_nanos
        elif isinstance(event, OrderReplaceRequested):
            self.pending_quantity = event.quantity
            self.pending_limit_price = event.limit_price
        elif isinstance(event, OrderReplaced):
            self.quantity = event.quantity
            self.limit_price = event.limit_price
            self.pending_quantity = self.pending_limit_price = None
        elif isinstance(event, OrderReplaceRejected):
            self.pending_quantity = self.pending_limit_price = None
        elif isinstance(event, OrderAccepted):
            self.venue_order_id = event.venue_order_id or self.venue_order_id
            self.expires_at = event.expires_at or self.expires_at
        elif isinstance(event, OrderRejected):
            self.reject_code = event.code
            self.reject_reason = event.reason
        exec_id = getattr(event, "exec_id", None)
        if exec_id:
            self.exec_ids.add(exec_id)

        self._track_previous(transition, new_status)
        self.status = new_status
        self.updated_at = event.occurred_at
        self.version = version or self.version

    def _track_previous(self, transition: Transition, new_status: OrderStatus) -> None:
        if new_status.is_pending and not self.status.is_pending:
            self.previous_status = self.status
        elif new_status.is_pending:
            # Still pending: remember what the order became meanwhile, for a rejection to restore.
            if transition is T.ACCEPT and self.previous_status is S.PENDING_NEW:
                self.previous_status = S.NEW
            elif transition is T.FILL_PARTIAL and self.previous_status in (
                S.PENDING_NEW,
                S.NEW,
                S.PARTIALLY_FILLED,
            ):
                self.previous_status = S.PARTIALLY_FILLED
        else:
            self.previous_status = None

    def _resolve(self, target: OrderStatus | Resolve) -> OrderStatus:
        if isinstance(target, OrderStatus):
            return target
        if target is Resolve.UNCHANGED:
            return self.status
        if target is Resolve.WORKING:
            return S.NEW if self.filled_quantity == 0 else S.PARTIALLY_FILLED
        if self.status is S.PENDING_CANCEL and self.pending_quantity is not None:
            # The cancel overrode an amend the venue has not answered yet: its rejection leaves
            # the amend pending (and the status before the amend remembered).
            return S.PENDING_REPLACE
        assert self.previous_status is not None, f"{self.order_id}: pending without a previous"
        return self.previous_status

    def _fill_transition(self, event: ChildOrderFilled | OrderPartiallyFilled | OrderFilled) -> T:
        if event.quantity <= 0:
            raise FailedPrecondition(
                "NON_POSITIVE_FILL",
                f"order {self.order_id}: fill quantity {event.quantity} must be positive",
            )
        remaining = self.quantity - self.filled_quantity
        if event.quantity > remaining:
            raise Overfill(self.order_id, remaining, event.quantity)
        transition = T.FILL_COMPLETE if event.quantity == remaining else T.FILL_PARTIAL
        expected = {OrderFilled: T.FILL_COMPLETE, OrderPartiallyFilled: T.FILL_PARTIAL}.get(
            type(event), transition
        )
        if transition is not expected:
            raise FailedPrecondition(
                "INCONSISTENT_FILL",
                f"order {self.order_id}: {type(event).__name__} of {event.quantity} leaves "
                f"{remaining - event.quantity}",
            )
        return transition

    def _check_new_quantity(self, quantity: int) -> None:
        if quantity < self.filled_quantity:
            raise FailedPrecondition(
                "QUANTITY_BELOW_FILLED",
                f"order {self.order_id}: new quantity {quantity} is below the filled "
                f"quantity {self.filled_quantity}",
                quantity=quantity,
                filled=self.filled_quantity,
            )


REACHABLE_STATUSES: Final = frozenset({S.PENDING_NEW}) | frozenset(
    t for t in TRANSITIONS.values() if isinstance(t, OrderStatus)
)
