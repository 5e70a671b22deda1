"""The OMS use cases: load an order stream, decide, append — with checks, limits and retries.

Each command is checked against the reference data (symbol, account, lot and tick sizes), handed
to the `ParentOrder` aggregate to decide, and its events appended with the version the stream was
loaded at, together with the read model rows and, every `snapshot_every` events, a snapshot.
A lost concurrency race (another call appended first) reloads and decides again. Nothing is
written unless everything holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fillpath.core.clock import Clock
from fillpath.core.commands import (
    AmendOrder,
    ApplyExecutionReport,
    CancelOrder,
    PlaceChildOrders,
    SubmitOrder,
)
from fillpath.core.enums import OrderType, TimeInForce
from fillpath.core.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from fillpath.core.events import OrderEvent
from fillpath.core.ids import is_child_id, parent_order_id, stream_id_of
from fillpath.core.instruments import Instrument
from fillpath.core.parent_order import ParentOrder, ParentOrderSnapshot
from fillpath.core.price import Price
from fillpath.core.risk import Account, RiskRejection, check_order, rate_limit_rejection
from fillpath.infra.codec import decode, encode
from fillpath.infra.event_store import GENESIS_HASH, CommandContext, RecordedEvent, SnapshotWrite
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.redis.rate_limiter import RateLimiter
from fillpath.infra.reference_data import ReferenceData
from fillpath.oms.projection import projection_rows, upsert_statement

SNAPSHOT_SCHEMA = 1
MAX_ATTEMPTS = 8

Decision = Callable[[ParentOrder], list[OrderEvent]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The order stream after a command, and what the command recorded."""

    aggregate: ParentOrder
    events: tuple[OrderEvent, ...]

    @property
    def duplicate(self) -> bool:
        return not self.events


def _expiry(command: SubmitOrder, instrument: Instrument, now: datetime) -> datetime | None:
    """When an accepted order expires: GTD at its expire time, DAY at the session close."""
    if command.time_in_force is TimeInForce.GTD:
        return command.expire_time
    if command.time_in_force is TimeInForce.DAY:
        return instrument.session_close_after(now)
    return None  # GTC lives until canceled; IOC/FOK are the algorithm's to finish at once


class OrderManagement:
    def __init__(
        self,
        store: PostgresEventStore,
        reference: ReferenceData,
        rate_limiter: RateLimiter,
        clock: Clock,
        *,
        snapshot_every: int = 50,
    ) -> None:
        self._store = store
        self._reference = reference
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._snapshot_every = snapshot_every
        self.on_recorded: Callable[[Outcome], None] | None = None
        """Called with every outcome that recorded events, after they are durable (the venue
        dispatcher sends child orders, cancels and replaces on from here)."""

    # ---- commands ---------------------------------------------------------------------------

    def submit(self, command: SubmitOrder, context: CommandContext) -> Outcome:
        """Records a new parent order, accepted or rejected by pre-trade checks.

        Idempotent on (account, client order id): the same request again returns the original
        order and records nothing.

        Raises:
            InvalidArgument: a field is wrong for the instrument or account.
            AlreadyExists: the client order id was used for a different order.
        """
        instrument, account = self._check_submit(command)
        order_id = parent_order_id(command.account, command.client_order_id)
        terms = command.terms(order_id)
        rejection = self._risk(account, instrument, command.quantity, command.limit_price)
        limit = account.limits.max_orders_per_second
        if (
            rejection is None
            and limit
            and not self._rate_limiter.acquire(account.account_id, limit)
        ):
            rejection = rate_limit_rejection(limit)
        now = self._clock.now()
        aggregate, events = ParentOrder.submit(
            terms, now, rejection, _expiry(command, instrument, now)
        )
        try:
            self._append(aggregate, 0, GENESIS_HASH, events, context)
        except ConcurrencyConflict:
            # The stream exists: a retry, or a concurrent duplicate that won the race. (The
            # rate limit counted this message too, as a venue would.)
            return self._original(order_id, command)
        return self._recorded(Outcome(aggregate=aggregate, events=tuple(events)))

    def amend(self, command: AmendOrder, context: CommandContext) -> Outcome:
        def decide(aggregate: ParentOrder) -> list[OrderEvent]:
            order = aggregate.order(command.order_id)
            instrument = self._instrument(order.terms.symbol)
            violations = []
            if command.quantity is not None and (
                reason := instrument.quantity_violation(command.quantity)
            ):
                violations.append(FieldViolation("quantity", command.quantity, reason))
            if command.limit_price is not None and (
                reason := instrument.price_violation(command.limit_price)
            ):
                violations.append(
                    FieldViolation("limit_price_nanos", command.limit_price.nanos, reason)
                )
            if violations:
                raise InvalidArgument(violations)
            rejection = None
            if order is aggregate.parent:
                rejection = self._risk(
                    self._account(order.terms.account),
                    instrument,
                    order.quantity if command.quantity is None else command.quantity,
                    order.limit_price if command.limit_price is None else command.limit_price,
                )
            return aggregate.amend(command, self._clock.now(), rejection)

        return self._execute(command.order_id, decide, context)

    def cancel(self, command: CancelOrder, context: CommandContext) -> Outcome:
        return self._execute(
            command.order_id, lambda a: a.cancel(command, self._clock.now()), context
        )

    def place_children(self, command: PlaceChildOrders, context: CommandContext) -> Outcome:
        """Records child orders (write-ahead: before anything is sent to a venue)."""
        if is_child_id(command.parent_order_id):
            raise InvalidArgument.single(
                "parent_order_id", command.parent_order_id, "a child order cannot have children"
            )

        def decide(aggregate: ParentOrder) -> list[OrderEvent]:
            instrument = self._instrument(aggregate.parent.terms.symbol)
            violations: list[FieldViolation] = []
            for i, child in enumerate(command.children):
                path = f"children[{i}]."
                if reason := instrument.quantity_violation(child.quantity):
                    violations.append(FieldViolation(path + "quantity", child.quantity, reason))
                if child.order_type not in (OrderType.MARKET, OrderType.LIMIT):
                    violations.append(
                        FieldViolation(
                            path + "order_type", child.order_type.name, "MARKET or LIMIT"
                        )
                    )
                if child.time_in_force is TimeInForce.GTD:
                    violations.append(
                        FieldViolation(path + "time_in_force", "GTD", "not for child orders")
                    )
                violations.extend(
                    self._price_violations(path, instrument, child.order_type, child.limit_price)
                )
                if child.post_only and child.order_type is not OrderType.LIMIT:
                    violations.append(FieldViolation(path + "post_only", True, "LIMIT orders only"))
                if not 0 <= child.min_quantity <= child.quantity:
                    violations.append(
                        FieldViolation(
                            path + "min_quantity", child.min_quantity, "0 to the quantity"
                        )
                    )
            if violations:
                raise InvalidArgument(violations)
            return aggregate.place_children(command, self._clock.now())

        return self._execute(command.parent_order_id, decide, context)

    def expire(self, order_id: str, context: CommandContext) -> Outcome:
        """Expires the parent `order_id` if its expiry has come (see `ParentOrder.expire`)."""
        return self._execute(order_id, lambda a: a.expire(self._clock.now()), context)

    def apply_report(self, command: ApplyExecutionReport, context: CommandContext) -> Outcome:
        """Records an execution report; one seen before (same exec id) records nothing."""
        return self._execute(
            command.order_id, lambda a: a.apply_report(command, self._clock.now()), context
        )

    # ---- queries ----------------------------------------------------------------------------

    def get(self, order_id: str) -> ParentOrder:
        """The stream holding `order_id`, as it stands (`NotFound` if there is none)."""
        aggregate = self._load(stream_id_of(order_id), order_id)
        aggregate.order(order_id)  # NotFound for an unknown child
        return aggregate

    def history(self, order_id: str) -> list[RecordedEvent]:
        """Every event of the order: for a parent, its children's too."""
        stream = stream_id_of(order_id)
        events = self._store.read_stream(stream)
        if not events:
            raise NotFound("order", order_id)
        if order_id == stream:
            return events
        mine = [e for e in events if e.event.order_id == order_id]
        if not mine:
            raise NotFound("order", order_id)
        return mine

    # ---- internals --------------------------------------------------------------------------

    def _execute(self, order_id: str, decide: Decision, context: CommandContext) -> Outcome:
        stream_id = stream_id_of(order_id)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            aggregate, head_hash = self._load_with_head(stream_id, order_id)
            loaded_version = aggregate.version
            events = decide(aggregate)
            if not events:
                return Outcome(aggregate=aggregate, events=())
            try:
                self._append(aggregate, loaded_version, head_hash, events, context)
            except ConcurrencyConflict:
                if attempt == MAX_ATTEMPTS:
                    raise
                continue
            return self._recorded(Outcome(aggregate=aggregate, events=tuple(events)))
        raise AssertionError("unreachable")

    def _recorded(self, outcome: Outcome) -> Outcome:
        if self.on_recorded is not None:
            self.on_recorded(outcome)
        return outcome

    def _append(
        self,
        aggregate: ParentOrder,
        expected_version: int,
        prev_hash: bytes,
        events: Sequence[OrderEvent],
        context: CommandContext,
    ) -> None:
        rows = projection_rows(aggregate, {e.order_id for e in events})
        snapshot = None
        if aggregate.version // self._snapshot_every > expected_version // self._snapshot_every:
            snapshot = SnapshotWrite(
                schema_version=SNAPSHOT_SCHEMA, state=encode(aggregate.snapshot())
            )
        self._store.append(
            aggregate.order_id,
            expected_version,
            events,
            context,
            prev_hash=prev_hash,
            also=[upsert_statement(rows)],
            snapshot=snapshot,
        )

    def _load(self, stream_id: str, order_id: str | None = None) -> ParentOrder:
        return self._load_with_head(stream_id, order_id)[0]

    def _load_with_head(self, stream_id: str, order_id: str | None) -> tuple[ParentOrder, bytes]:
        """The aggregate and the hash its next append chains to."""
        loaded = self._store.load(stream_id)
        pairs = [(r.version, r.event) for r in loaded.events]
        if loaded.snapshot is not None and loaded.snapshot.schema_version == SNAPSHOT_SCHEMA:
            aggregate = ParentOrder.from_snapshot(
                decode(ParentOrderSnapshot, loaded.snapshot.state)
            )
            for version, event in pairs:
                aggregate.apply(event, version)
            return aggregate, loaded.head_hash
        if loaded.snapshot is not None:
            # A snapshot from another schema: ignore it and fold the whole stream.
            pairs = [(r.version, r.event) for r in self._store.read_stream(stream_id)]
        if not pairs:
            raise NotFound("order", order_id or stream_id)
        return ParentOrder.from_events(pairs), loaded.head_hash

    def _original(self, order_id: str, command: SubmitOrder) -> Outcome:
        aggregate = self._load(order_id)
        if aggregate.parent.terms != command.terms(order_id):
            raise AlreadyExists(
                "client order id",
                command.client_order_id,
                f"account {command.account} used it for order {order_id} with different terms",
            )
        return Outcome(aggregate=aggregate, events=())

    def _check_submit(self, command: SubmitOrder) -> tuple[Instrument, Account]:
        violations: list[FieldViolation] = []
        instrument = self._reference.instruments.get(command.symbol)
        account = self._reference.accounts.get(command.account)
        if instrument is None:
            violations.append(FieldViolation("symbol", command.symbol, "unknown instrument"))
        if account is None:
            violations.append(FieldViolation("account", command.account, "unknown account"))
        elif command.portfolio not in account.portfolios:
            violations.append(
                FieldViolation(
                    "portfolio",
                    command.portfolio,
                    "not a portfolio of "
                    f"{account.account_id}: {', '.join(sorted(account.portfolios))}",
                )
            )
        if command.quantity <= 0:
            violations.append(FieldViolation("quantity", command.quantity, "must be positive"))
        elif instrument is not None and (reason := instrument.quantity_violation(command.quantity)):
            violations.append(FieldViolation("quantity", command.quantity, reason))
        if instrument is not None:
            violations.extend(
                self._price_violations("", instrument, command.order_type, command.limit_price)
            )
        if command.order_type.needs_stop_price and command.stop_price is None:
            violations.append(
                FieldViolation("stop_price_nanos", None, f"required for {command.order_type.name}")
            )
        if not command.order_type.needs_stop_price and command.stop_price is not None:
            violations.append(
                FieldViolation(
                    "stop_price_nanos",
                    command.stop_price.nanos,
                    f"not for {command.order_type.name}",
                )
            )
        if (
            instrument is not None
            and command.stop_price is not None
            and (reason := instrument.price_violation(command.stop_price))
        ):
            violations.append(FieldViolation("stop_price_nanos", command.stop_price.nanos, reason))
        if command.time_in_force is TimeInForce.GTD:
            if command.expire_time is None:
                violations.append(FieldViolation("expire_time", None, "required for GTD"))
            elif command.expire_time <= self._clock.now():
                violations.append(
                    FieldViolation(
                        "expire_time", command.expire_time.isoformat(), "must be in the future"
                    )
                )
        elif command.expire_time is not None:
            violations.append(
                FieldViolation(
                    "expire_time", command.expire_time.isoformat(), "only for GTD orders"
                )
            )
        if violations:
            raise InvalidArgument(violations)
        assert instrument is not None
        assert account is not None
        return instrument, account

    @staticmethod
    def _price_violations(
        path: str, instrument: Instrument, order_type: OrderType, limit_price: Price | None
    ) -> list[FieldViolation]:
        field = path + "limit_price_nanos"
        if order_type.needs_limit_price and limit_price is None:
            return [FieldViolation(field, None, f"required for {order_type.name}")]
        if not order_type.needs_limit_price and limit_price is not None:
            return [FieldViolation(field, limit_price.nanos, f"not for {order_type.name}")]
        if limit_price is not None and (reason := instrument.price_violation(limit_price)):
            return [FieldViolation(field, limit_price.nanos, reason)]
        return []

    def _risk(
        self, account: Account, instrument: Instrument, quantity: int, limit_price: Price | None
    ) -> RiskRejection | None:
        return check_order(
            account.limits, instrument, quantity, limit_price, instrument.reference_price
        )

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self._reference.instruments.get(symbol)
        if instrument is None:
            raise NotFound("instrument", symbol)
        return instrument

    def _account(self, account_id: str) -> Account:
        account = self._reference.accounts.get(account_id)
        if account is None:
            raise NotFound("account", account_id)
        return account
