"""The parent order aggregate: a parent order and its child orders, one event stream.

Every decision the OMS makes about an order happens here, as a pure function of the stream's
events and the command: the methods below check the command against the current state, record
the events it leads to (applying each, so later checks see its effect) and return them. The
caller appends them with the version the aggregate was loaded at; a failed decision leaves the
aggregate half-changed, so the caller discards it.

Parent state follows its children: a child fill records `ChildOrderFilled` and the parent's share
(`OrderPartiallyFilled` / `OrderFilled`) in the same append; a parent cancel requests the cancel
of every live child and completes when the last of them is done.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fillpath.core.commands import (
    AmendOrder,
    ApplyExecutionReport,
    CancelOrder,
    ChildOrderRequest,
    PlaceChildOrders,
)
from fillpath.core.enums import ExecType, OrderStatus, OrderType, RejectCode, Side
from fillpath.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    IntegrityError,
    InvalidArgument,
    NotFound,
)
from fillpath.core.events import (
    ChildOrderFilled,
    ChildOrderPlaced,
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
    OrderSubmitted,
)
from fillpath.core.ids import child_order_id
from fillpath.core.orders import Order
from fillpath.core.price import Price
from fillpath.core.risk import RiskRejection
from fillpath.core.terms import OrderTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentOrderSnapshot:
    """The aggregate's whole state at `version`, for fast loading of long streams."""

    version: int
    parent: Order
    children: tuple[Order, ...]


class ParentOrder:
    """A parent order and its children, rebuilt from (and only changed by) their events."""

    def __init__(self, parent: Order, children: Iterable[Order] = (), version: int = 0) -> None:
        self.parent = parent
        self.children: dict[str, Order] = {c.order_id: c for c in children}
        self.version = version
        self._client_ids = {c.terms.client_order_id: c.order_id for c in self.children.values()}

    # ---- building ---------------------------------------------------------------------------

    @classmethod
    def from_events(cls, events: Iterable[tuple[int, OrderEvent]]) -> ParentOrder:
        """Folds a stream's `(version, event)` pairs, from the first, into the aggregate."""
        iterator = iter(events)
        try:
            version, first = next(iterator)
        except StopIteration:
            raise ValueError("an order stream starts with OrderSubmitted, got nothing") from None
        if not isinstance(first, OrderSubmitted):
            raise ValueError(f"an order stream starts with OrderSubmitted, got {first}")
        aggregate = cls(Order.create(first.terms, first.occurred_at, version), version=version)
        for version, event in iterator:
            aggregate.apply(event, version)
        return aggregate

    @classmethod
    def from_snapshot(cls, snapshot: ParentOrderSnapshot) -> ParentOrder:
        return cls(_copy(snapshot.parent), (_copy(c) for c in snapshot.children), snapshot.version)

    def snapshot(self) -> ParentOrderSnapshot:
        return ParentOrderSnapshot(
            version=self.version,
            parent=_copy(self.parent),
            children=tuple(_copy(c) for c in self.children.values()),
        )

    def apply(self, event: OrderEvent, version: int) -> None:
        """Applies one event of this stream at `version`, the next one.

        Raises:
            IntegrityError: the version does not follow, or a child is placed twice: the
                stream read is not the stream written.
        """
        if version != self.version + 1:
            raise IntegrityError(
                f"{self.order_id}: event version {version} after version {self.version}"
            )
        if isinstance(event, ChildOrderPlaced):
            if event.order_id in self.children:
                raise IntegrityError(f"{self.order_id}: child {event.order_id} placed twice")
            child = Order.create(event.terms, event.occurred_at, version)
            self.children[child.order_id] = child
            self._client_ids[child.terms.client_order_id] = child.order_id
        elif isinstance(event, OrderSubmitted):
            raise ValueError(f"{self.order_id}: OrderSubmitted can only start a stream")
        else:
            self.order(event.order_id).apply(event, version)
        self.version = version

    # ---- reading ----------------------------------------------------------------------------

    @property
    def order_id(self) -> str:
        return self.parent.order_id

    def order(self, order_id: str) -> Order:
        """The parent or one of its children."""
        if order_id == self.parent.order_id:
            return self.parent
        child = self.children.get(order_id)
        if child is None:
            raise NotFound("order", order_id)
        return child

    def live_children(self) -> list[Order]:
        return [c for c in self.children.values() if c.is_live]

    @property
    def working_quantity(self) -> int:
        """Quantity live child orders may still execute on venues (pending increases count)."""
        return sum(c.committed_quantity for c in self.children.values())

    @property
    def available_quantity(self) -> int:
        """What new child orders may still take: parent leaves less what is working."""
        return self.parent.leaves_quantity - self.working_quantity

    @property
    def fees_nanos(self) -> int:
        return sum(c.fees_nanos for c in self.children.values())

    # ---- decisions --------------------------------------------------------------------------

    @staticmethod
    def submit(
        terms: OrderTerms,
        now: datetime,
        rejection: RiskRejection | None,
        expires_at: datetime | None = None,
    ) -> tuple[ParentOrder, list[OrderEvent]]:
        """A new parent order: submitted, then accepted (to expire at `expires_at`, if any) or
        rejected by pre-trade checks."""
        submitted = OrderSubmitted(order_id=terms.order_id, occurred_at=now, terms=terms)
        aggregate = ParentOrder(Order.create(terms, now, 1), version=1)
        verdict: OrderEvent
        if rejection is None:
            verdict = OrderAccepted(order_id=terms.order_id, occurred_at=now, expires_at=expires_at)
        else:
            verdict = OrderRejected(
                order_id=terms.order_id,
                occurred_at=now,
                code=rejection.code,
                reason=rejection.reason,
            )
        aggregate.apply(verdict, 2)
        return aggregate, [submitted, verdict]

    def place_children(self, command: PlaceChildOrders, now: datetime) -> list[OrderEvent]:
        """Records new child orders, all or none. Children already placed with the same client
        order id and terms are returned as they are (a retry records nothing)."""
        parent = self.parent
        violations: list[FieldViolation] = []
        fresh: list[tuple[int, ChildOrderRequest]] = []
        seen: set[str] = set()
        for i, request in enumerate(command.children):
            path = f"children[{i}]"
            if request.client_order_id in seen:
                violations.append(
                    FieldViolation(f"{path}.client_order_id", request.client_order_id, "repeated")
                )
                continue
            seen.add(request.client_order_id)
            existing_id = self._client_ids.get(request.client_order_id)
            if existing_id is not None:
                self._check_same_child(existing_id, request)
                continue
            violations.extend(self._limit_violations(path, request.order_type, request.limit_price))
            fresh.append((i, request))
        if violations:
            raise InvalidArgument(violations)
        if not fresh:
            return []  # a retry: every child is already placed, whatever happened since
        if parent.status not in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            raise FailedPrecondition(
                "PARENT_NOT_WORKING",
                f"order {parent.order_id} is {parent.status.name}: no new child orders",
                status=parent.status.name,
            )
        requested = sum(r.quantity for _, r in fresh)
        if requested > self.available_quantity:
            raise FailedPrecondition(
                "EXCEEDS_LEAVES",
                f"order {parent.order_id}: child quantity {requested} exceeds the available "
                f"{self.available_quantity} (leaves {parent.leaves_quantity} less "
                f"{self.working_quantity} working on venues)",
                requested=requested,
                available=self.available_quantity,
            )
        events: list[OrderEvent] = []
        for _, request in fresh:
            terms = OrderTerms(
                order_id=child_order_id(parent.order_id, len(self.children) + 1),
                client_order_id=request.client_order_id,
                parent_order_id=parent.order_id,
                account=parent.terms.account,
                portfolio=parent.terms.portfolio,
                symbol=parent.terms.symbol,
                side=parent.terms.side,
                order_type=request.order_type,
                time_in_force=request.time_in_force,
                quantity=request.quantity,
                limit_price=request.limit_price,
                venue=request.venue,
                post_only=request.post_only,
                min_quantity=request.min_quantity,
            )
            self._record(
                events, ChildOrderPlaced(order_id=terms.order_id, occurred_at=now, terms=terms)
            )
        return events

    def apply_report(self, report: ApplyExecutionReport, now: datetime) -> list[OrderEvent]:
        """Records what a venue reported for a child order, and the parent's share of it.

        A report whose exec id was applied before records nothing (idempotent).
        """
        if report.order_id == self.parent.order_id:
            raise InvalidArgument.single(
                "report.order_id", report.order_id, "execution reports are for child orders"
            )
        child = self.order(report.order_id)
        if report.venue and report.venue != child.terms.venue:
            raise InvalidArgument.single(
                "report.venue",
                report.venue,
                f"child order {child.order_id} is on {child.terms.venue}",
            )
        if report.exec_id in child.exec_ids:
            return []
        events: list[OrderEvent] = []
        self._record(events, _child_event(report, child, now))
        if report.exec_type is ExecType.TRADE:
            self._record_parent_fill(events, report, now)
        if (
            report.exec_type is ExecType.CANCEL_REJECTED
            and self.parent.status is OrderStatus.PENDING_CANCEL
            and child.is_live
        ):
            self._record(
                events,
                OrderCancelRejected(
                    order_id=self.parent.order_id,
                    occurred_at=now,
                    reason=f"venue refused to cancel {child.order_id}: {report.text}".rstrip(": "),
                ),
            )
        self._complete_cancel_if_done(events, now)
        return events

    def cancel(self, command: CancelOrder, now: datetime) -> list[OrderEvent]:
        """Requests the cancel of a child, or of the parent and all its live children."""
        order = self.order(command.order_id)
        if order.status is OrderStatus.PENDING_CANCEL:
            return []
        events: list[OrderEvent] = []
        request = OrderCancelRequested(
            order_id=order.order_id, occurred_at=now, reason=command.reason
        )
        self._record(events, request)
        if order is self.parent:
            for child in self.live_children():
                if child.status is not OrderStatus.PENDING_CANCEL:
                    self._record(events, dataclasses.replace(request, order_id=child.order_id))
            self._complete_cancel_if_done(events, now)
        return events

    def amend(
        self, command: AmendOrder, now: datetime, rejection: RiskRejection | None
    ) -> list[OrderEvent]:
        """Changes quantity and/or limit price.

        Parent amendments take effect at once (the OMS is the parent's venue), or are rejected by
        pre-trade checks with the reason recorded; child amendments wait for their venue.
        An amendment that changes nothing records nothing.
        """
        order = self.order(command.order_id)
        quantity = order.quantity if command.quantity is None else command.quantity
        limit_price = order.limit_price if command.limit_price is None else command.limit_price
        if command.limit_price is not None and not order.terms.order_type.needs_limit_price:
            raise InvalidArgument.single(
                "limit_price",
                str(command.limit_price),
                f"a {order.terms.order_type.name} order has none",
            )
        if quantity == order.quantity and limit_price == order.limit_price:
            return []
        if order.status is OrderStatus.PENDING_REPLACE and (quantity, limit_price) == (
            order.pending_quantity,
            order.pending_limit_price,
        ):
            return []  # a retry of the amend the venue is working on
        if order is self.parent:
            self._check_parent_amend(quantity, limit_price)
        else:
            self._check_child_amend(order, quantity, limit_price)
        events: list[OrderEvent] = []
        self._record(
            events,
            OrderReplaceRequested(
                order_id=order.order_id,
                occurred_at=now,
                quantity=quantity,
                limit_price=limit_price,
                reason=command.reason,
            ),
        )
        if order is self.parent:
            outcome: OrderEvent
            if rejection is not None:
                outcome = OrderReplaceRejected(
                    order_id=order.order_id,
                    occurred_at=now,
                    code=rejection.code,
                    reason=rejection.reason,
                )
            else:
                outcome = OrderReplaced(
                    order_id=order.order_id,
                    occurred_at=now,
                    quantity=quantity,
                    limit_price=limit_price,
                )
            self._record(events, outcome)
        return events

    def expire(self, now: datetime) -> list[OrderEvent]:
        """Expires the parent if its time has come: asks its venues to cancel the working child
        orders and records the parent EXPIRED. Fills they report afterwards still count (the
        lifecycle's late-fill edges); a parent already done, or not due, records nothing."""
        parent = self.parent
        if parent.status.is_terminal or parent.expires_at is None or parent.expires_at > now:
            return []
        events: list[OrderEvent] = []
        for child in self.live_children():
            if child.status is not OrderStatus.PENDING_CANCEL:
                self._record(
                    events,
                    OrderCancelRequested(
                        order_id=child.order_id, occurred_at=now, reason="parent expired"
                    ),
                )
        reason = "GTD expire time" if parent.terms.expire_time else "end of the trading day"
        self._record(events, OrderExpired(order_id=parent.order_id, occurred_at=now, reason=reason))
        return events

    # ---- internals --------------------------------------------------------------------------

    def _record(self, events: list[OrderEvent], event: OrderEvent) -> None:
        self.apply(event, self.version + 1)
        events.append(event)

    def _record_parent_fill(
        self, events: list[OrderEvent], report: ApplyExecutionReport, now: datetime
    ) -> None:
        assert report.last_price is not None
        parent = self.parent
        remaining = parent.quantity - parent.filled_quantity
        kind = OrderFilled if report.last_quantity == remaining else OrderPartiallyFilled
        self._record(
            events,
            kind(
                order_id=parent.order_id,
                occurred_at=now,
                child_order_id=report.order_id,
                exec_id=report.exec_id,
                quantity=report.last_quantity,
                price=report.last_price,
            ),
        )

    def _complete_cancel_if_done(self, events: list[OrderEvent], now: datetime) -> None:
        if self.parent.status is OrderStatus.PENDING_CANCEL and not self.live_children():
            self._record(
                events,
                OrderCanceled(order_id=self.parent.order_id, occurred_at=now, reason="canceled"),
            )

    def _limit_violations(
        self, path: str, order_type: OrderType, limit_price: Price | None
    ) -> list[FieldViolation]:
        """A child may not be more aggressive than its parent's limit price."""
        parent_limit = self.parent.limit_price
        if parent_limit is None:
            return []
        if order_type is OrderType.MARKET or limit_price is None:
            return [
                FieldViolation(
                    f"{path}.order_type", order_type.name, f"parent has a limit of {parent_limit}"
                )
            ]
        if _more_aggressive(self.parent.terms.side, limit_price, parent_limit):
            return [
                FieldViolation(
                    f"{path}.limit_price",
                    str(limit_price),
                    f"beyond the parent's limit price {parent_limit}",
                )
            ]
        return []

    def _check_same_child(self, child_id: str, request: ChildOrderRequest) -> None:
        terms = self.children[child_id].terms
        same = (
            terms.venue == request.venue
            and terms.quantity == request.quantity
            and terms.order_type is request.order_type
            and terms.time_in_force is request.time_in_force
            and terms.limit_price == request.limit_price
            and terms.post_only == request.post_only
            and terms.min_quantity == request.min_quantity
        )
        if not same:
            raise AlreadyExists(
                "child client order id",
                request.client_order_id,
                f"used by {child_id} with different terms",
            )

    def _check_parent_amend(self, quantity: int, limit_price: Price | None) -> None:
        parent = self.parent
        committed = parent.filled_quantity + self.working_quantity
        if quantity < committed:
            raise FailedPrecondition(
                "QUANTITY_BELOW_COMMITTED",
                f"order {parent.order_id}: new quantity {quantity} is below filled "
                f"{parent.filled_quantity} plus {self.working_quantity} working on venues; "
                "cancel child orders first",
                quantity=quantity,
                committed=committed,
            )
        if limit_price is None:
            return
        for child in self.live_children():
            if child.limit_price is not None and _more_aggressive(
                parent.terms.side, child.limit_price, limit_price
            ):
                raise FailedPrecondition(
                    "CHILD_BEYOND_LIMIT",
                    f"order {parent.order_id}: child {child.order_id} works at "
                    f"{child.limit_price}, "
                    f"beyond the new limit {limit_price}; amend or cancel it first",
                )

    def _check_child_amend(self, child: Order, quantity: int, limit_price: Price | None) -> None:
        increase = quantity - child.quantity
        if increase > self.available_quantity:
            raise FailedPrecondition(
                "EXCEEDS_LEAVES",
                f"child {child.order_id}: increase of {increase} exceeds the parent's available "
                f"{self.available_quantity}",
            )
        violations = self._limit_violations("limit_price", child.terms.order_type, limit_price)
        if violations:
            raise InvalidArgument(violations)


def _child_event(report: ApplyExecutionReport, child: Order, now: datetime) -> OrderEvent:
    """The event an execution report means for its child order."""
    oid, at, exec_id = child.order_id, now, report.exec_id
    match report.exec_type:
        case ExecType.NEW:
            return OrderAccepted(
                order_id=oid,
                occurred_at=at,
                exec_id=exec_id,
                venue_order_id=report.venue_order_id or None,
            )
        case ExecType.REJECTED:
            return OrderRejected(
                order_id=oid,
                occurred_at=at,
                exec_id=exec_id,
                code=RejectCode.VENUE,
                reason=report.text,
            )
        case ExecType.TRADE:
            if report.last_price is None:
                raise InvalidArgument.single("report.last_price", None, "required for a trade")
            return ChildOrderFilled(
                order_id=oid,
                occurred_at=at,
                exec_id=exec_id,
                venue=child.terms.venue or report.venue,
                quantity=report.last_quantity,
                price=report.last_price,
                liquidity=report.liquidity,
                fee_nanos=report.fee_nanos,
                executed_at=report.transact_time or now,
            )
        case ExecType.CANCELED:
            return OrderCanceled(order_id=oid, occurred_at=at, exec_id=exec_id, reason=report.text)
        case ExecType.CANCEL_REJECTED:
            return OrderCancelRejected(
                order_id=oid, occurred_at=at, exec_id=exec_id, reason=report.text
            )
        case ExecType.REPLACED:
            return OrderReplaced(
                order_id=oid,
                occurred_at=at,
                exec_id=exec_id,
                quantity=report.quantity,
                limit_price=report.limit_price,
            )
        case ExecType.REPLACE_REJECTED:
            return OrderReplaceRejected(
                order_id=oid,
                occurred_at=at,
                exec_id=exec_id,
                code=RejectCode.VENUE,
                reason=report.text,
            )
        case ExecType.EXPIRED:
            return OrderExpired(order_id=oid, occurred_at=at, exec_id=exec_id, reason=report.text)
        case ExecType.DONE_FOR_DAY:
            return OrderDoneForDay(order_id=oid, occurred_at=at, exec_id=exec_id)
    raise InvalidArgument.single("report.exec_type", report.exec_type, "unknown execution type")


def _more_aggressive(side: Side, price: Price, limit: Price) -> bool:
    """Whether `price` is worse for the order than `limit` allows."""
    return price > limit if side is Side.BUY else price < limit


def _copy(order: Order) -> Order:
    return dataclasses.replace(order, exec_ids=set(order.exec_ids))
