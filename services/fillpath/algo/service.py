"""AlgoService's use cases: executions started, driven and steered, each one an event stream.

`Algos` keeps every live execution in memory and its events in the shared log, stream
`algo-<execution id>`, with a summary row per execution (`algo_executions`) written in the same
transaction. The one rule: an event is durable before anything is done about it. A
`SliceSent` is appended, then the slice is routed; the router's answer is appended
(`SliceRouted`), then the child orders are placed with client order ids
`<execution>-<slice>-<n>`. An algo process killed anywhere in between resumes from its events
(`recover`): a slice sent but not routed is routed, a slice routed is placed again — the OMS
answers a repeated placement with the children it already has — and the fills the children got
meanwhile are read back from the OMS (the engine ignores an exec id it has seen).

The executions are driven by `tick` (the timer: every second of the clock's time, the market
lab's simulated clock or the wall clock), by the market data and order events from the bus
(`on_market_data`, `on_order_event`), by the strategy service's choices for the orders that name
no algorithm (`on_strategy_selected`) and its recommendations while they are worked
(`on_strategy_recommended`: the market's regime changed), and by the requests of
`AlgoService`. The rest of the
platform is reached through `Desk` (the OMS and the router, over gRPC in production).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg_pool import ConnectionPool

from fillpath.algo.execution import TERMINAL, Execution, ExecutionState
from fillpath.algo.requests import StartRequest, names_an_algorithm, start_request, time_of
from fillpath.algo.trajectory import impact_estimate
from fillpath.api.v1 import events_pb2
from fillpath.core.enums import AlgorithmKind, Side, Urgency
from fillpath.core.errors import FailedPrecondition, InvalidArgument, NotFound
from fillpath.core.executions import (
    AlgoEvent,
    ExecutionSpec,
    SliceCancelRequested,
    SliceSent,
    child_client_id,
)
from fillpath.core.instruments import Instrument
from fillpath.core.market import Calendar, MarketView, us_equity_calendar
from fillpath.core.price import Price
from fillpath.core.profiles import AlgoProfile, profile_for, resolve
from fillpath.core.routing import RouteAllocation
from fillpath.core.session import SESSION_SECONDS
from fillpath.infra.bus import MARKET_DATA_TOPIC, ORDERS_TOPIC, STRATEGY_TOPIC, Bus, BusMessage
from fillpath.infra.event_store import CommandContext, EventStore
from fillpath.infra.market_views import fold
from fillpath.infra.postgres.schema import MigrationSet

log = logging.getLogger("fillpath.algo")

ALGO_MIGRATIONS = MigrationSet("algo", "fillpath.algo")
SYSTEM = CommandContext(actor="fillpath-algo")
"""Who the engine's own decisions (the timer's, the fills') are recorded as."""


def stream_of(execution_id: str) -> str:
    return f"algo-{execution_id}"


def execution_id_of(order_id: str) -> str:
    """One execution per parent order: starting it again answers with the same execution."""
    return f"X{order_id}"


# ---- what the engine needs of the rest of the platform ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentView:
    order_id: str
    symbol: str
    side: Side
    quantity: int
    limit_price: Price | None
    working: bool
    """The OMS still works the order (accepted, not done)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildView:
    order_id: str
    client_order_id: str
    quantity: int
    done: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFill:
    exec_id: str
    quantity: int
    price: Price
    executed_at: datetime


class Desk(Protocol):
    """The OMS and the router, as the algorithms use them."""

    def parent(self, order_id: str) -> ParentView:
        """Raises NotFound."""
        ...

    def route(
        self, parent: ParentView, quantity: int, urgency: Urgency, limit_price: Price | None
    ) -> tuple[str, tuple[RouteAllocation, ...]]:
        """(decision id, allocations). Raises FailedPrecondition or InvalidArgument when the
        router has nowhere to send it."""
        ...

    def place(
        self, parent_id: str, children: Sequence[tuple[str, RouteAllocation]]
    ) -> list[ChildView]:
        """Places (client order id, allocation) children; placing the same ids again returns
        the children already placed. Raises FailedPrecondition or InvalidArgument when the OMS
        refuses them."""
        ...

    def cancel(self, child_order_id: str) -> None: ...

    def children(self, parent_id: str) -> list[ChildView]: ...

    def fills(self, child_order_id: str) -> list[ChildFill]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """An execution as AlgoService lists it."""

    execution_id: str
    order_id: str
    algorithm: AlgorithmKind
    profile: str
    state: ExecutionState
    quantity: int
    scheduled: int
    executed: int
    start: datetime
    end: datetime


def summary_of(execution: Execution) -> Summary:
    spec = execution.spec
    return Summary(
        execution_id=spec.execution_id, order_id=spec.order_id,
        algorithm=spec.params.algorithm, profile=spec.params.profile, state=execution.state,
        quantity=spec.quantity, scheduled=execution.scheduled, executed=execution.executed,
        start=spec.start, end=datetime.fromtimestamp(execution.end, spec.start.tzinfo),
    )  # fmt: skip


@dataclass(slots=True)
class _Run:
    execution: Execution
    version: int = 0
    head: bytes | None = None
    children: dict[int, dict[str, ChildView]] = field(default_factory=dict)
    """Slice → its child orders by order id, once placed."""
    filled: dict[str, int] = field(default_factory=dict)
    """Child order id → shares the engine has seen it fill."""
    unplaced: set[int] = field(default_factory=set)
    """Slices routed whose placement did not get an answer (the OMS was unreachable)."""


_SUMMARY_UPSERT = """
INSERT INTO algo_executions (execution_id, order_id, algorithm, profile, state, quantity,
                             scheduled, executed, start_time, end_time, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (execution_id) DO UPDATE SET state = EXCLUDED.state, scheduled = EXCLUDED.scheduled,
    executed = EXCLUDED.executed, end_time = EXCLUDED.end_time, updated_at = now()
"""


class Algos:
    def __init__(
        self,
        store: EventStore,
        pool: ConnectionPool[Any],
        desk: Desk,
        profiles: Mapping[str, AlgoProfile],
        instruments: Mapping[str, Instrument],
        now: Callable[[], datetime],
        *,
        calendar_of: Callable[[datetime], Calendar] | None = None,
    ) -> None:
        self._store = store
        self._pool = pool
        self._desk = desk
        self.profiles = profiles
        self._instruments = instruments
        self.now = now
        self.calendar_of = calendar_of or us_equity_calendar
        self._runs: dict[str, _Run] = {}
        self._child: dict[str, tuple[str, int]] = {}  # child order id → (execution, slice)
        self._views: dict[str, MarketView] = {}
        self._lock = threading.RLock()
        self._closed = False

    # ---- requests ----------------------------------------------------------------------------

    def start(self, request: StartRequest, context: CommandContext) -> Summary:
        """Starts executing a parent order (idempotent: the order's execution if it has one).

        Raises InvalidArgument (the field named), NotFound (no such order) or
        FailedPrecondition (the OMS no longer works the order)."""
        execution_id = execution_id_of(request.order_id)
        with self._lock:
            run = self._runs.get(execution_id)
            if run is not None:
                return summary_of(run.execution)
            loaded = self._load(execution_id)
            if loaded is not None:
                return summary_of(loaded.execution)
            profile = profile_for(
                list(self.profiles.values()), request.algo_profile, request.algorithm
            )
            params = resolve(
                profile,
                algorithm=request.algorithm,
                urgency=request.urgency,
                max_participation_bps=request.max_participation_bps,
                params=request.params,
            )
            parent = self._desk.parent(request.order_id)
            if not parent.working:
                raise FailedPrecondition(
                    "ORDER_NOT_WORKING",
                    f"order {request.order_id} is not working",
                    order_id=request.order_id,
                )
            instrument = self._instruments.get(parent.symbol)
            if instrument is None:
                raise InvalidArgument.single("order.symbol", parent.symbol, "unknown instrument")
            now = self.now()
            calendar = self.calendar_of(now)
            start = request.start or now
            end = request.end or datetime.fromtimestamp(calendar.open + calendar.seconds, UTC)
            eta, gamma = impact_estimate(instrument)
            spec = ExecutionSpec(
                execution_id=execution_id, order_id=parent.order_id, symbol=parent.symbol,
                side=parent.side, quantity=parent.quantity, lot=instrument.lot_size,
                tick_nanos=instrument.tick_size.nanos, limit_price=parent.limit_price,
                start=start, end=end, params=params, adv=instrument.adv,
                daily_volatility=instrument.daily_volatility, eta=eta, gamma=gamma,
            )  # fmt: skip
            execution, events = Execution.create(spec, calendar, now)
            run = _Run(execution=execution)
            self._commit(run, events, context)
            self._runs[execution_id] = run
            self._views.setdefault(parent.symbol, MarketView(calendar.seconds))
            return summary_of(execution)

    def pause(self, execution_id: str, context: CommandContext) -> Summary:
        return self._steer(execution_id, context, lambda e, now: e.pause(now, context.actor))

    def resume(self, execution_id: str, context: CommandContext) -> Summary:
        return self._steer(execution_id, context, lambda e, now: e.resume(now))

    def cancel(self, execution_id: str, context: CommandContext) -> Summary:
        return self._steer(execution_id, context, lambda e, now: e.cancel(now))

    def adjust(
        self,
        execution_id: str,
        context: CommandContext,
        *,
        end: datetime | None = None,
        max_participation_bps: int | None = None,
        urgency: Urgency | None = None,
        limit_price: Price | None = None,
    ) -> Summary:
        def change(execution: Execution, now: datetime) -> list[AlgoEvent]:
            return execution.adjust(
                self.profiles[execution.spec.params.profile], now, end=end,
                max_participation=(
                    None if max_participation_bps is None else max_participation_bps / 10_000
                ),
                urgency=urgency, limit_price=limit_price,
            )  # fmt: skip

        return self._steer(execution_id, context, change)

    def get(self, execution_id: str) -> Summary:
        with self._lock:
            run = self._runs.get(execution_id) or self._load(execution_id)
            if run is None:
                raise NotFound("execution", execution_id)
            return summary_of(run.execution)

    def execution(self, execution_id: str) -> Execution:
        """The live execution itself (tests and the demo read its slices)."""
        with self._lock:
            return self._runs[execution_id].execution

    def summaries(
        self, states: Sequence[ExecutionState], page_size: int, page_token: str
    ) -> tuple[list[Summary], str]:
        """Executions by id, `page_size` at a time after `page_token` (an execution id)."""
        query = (
            "SELECT execution_id, order_id, algorithm, profile, state, quantity, scheduled,"
            " executed, start_time, end_time FROM algo_executions WHERE execution_id > %s"
        )
        params: list[Any] = [page_token]
        if states:
            query += " AND state = ANY(%s)"
            params.append([s.name for s in states])
        query += " ORDER BY execution_id LIMIT %s"
        params.append(page_size + 1)
        with self._pool.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        found = [
            Summary(
                execution_id=r[0],
                order_id=r[1],
                algorithm=AlgorithmKind[r[2]],
                profile=r[3],
                state=ExecutionState[r[4]],
                quantity=r[5],
                scheduled=r[6],
                executed=r[7],
                start=r[8],
                end=r[9],
            )
            for r in rows[:page_size]
        ]
        return found, found[-1].execution_id if len(rows) > page_size else ""

    # ---- the timer and the bus -----------------------------------------------------------------

    def close(self) -> None:
        """Stops deciding and listening (the bus keeps the subscription until it closes)."""
        with self._lock:
            self._closed = True

    def tick(self) -> None:
        """Lets every live execution decide at the clock's time."""
        with self._lock:
            if self._closed:
                return
            now = self.now()
            for run in list(self._runs.values()):
                try:
                    self._tick(run, now)
                except Exception:
                    log.exception("execution %s: the decision failed", run.execution.execution_id)

    def subscribe(self, bus: Bus, subscription: str = "algo") -> None:
        bus.subscribe(ORDERS_TOPIC, subscription, self._on_message)
        bus.subscribe(STRATEGY_TOPIC, subscription, self._on_message)
        bus.subscribe(MARKET_DATA_TOPIC, subscription, self._on_message)

    def _on_message(self, message: BusMessage) -> None:
        if self._closed:
            return
        envelope = events_pb2.EventEnvelope.FromString(message.payload)
        if message.topic.endswith(MARKET_DATA_TOPIC):
            self.on_market_data(envelope)
        elif envelope.WhichOneof("payload") == "strategy_selected":
            self.on_strategy_selected(envelope.strategy_selected)
        elif envelope.WhichOneof("payload") == "strategy_recommended":
            self.on_strategy_recommended(envelope.strategy_recommended)
        else:
            self.on_order_event(envelope)

    def on_market_data(self, envelope: events_pb2.EventEnvelope) -> None:
        with self._lock:
            fold(self._views, envelope)

    def on_order_event(self, envelope: events_pb2.EventEnvelope) -> None:
        """A parent order that names its algorithm; fills and ends of our child orders; the
        end of a parent we execute."""
        kind = envelope.WhichOneof("payload")
        if kind == "order_submitted":
            self._start_named(envelope.order_submitted)
            return
        if kind not in _ORDER_EVENTS:
            return
        payload = getattr(envelope, kind)
        with self._lock:
            owner = self._child.get(payload.order_id)
            if owner is None:
                run = self._runs.get(execution_id_of(payload.order_id))
                if run is not None and kind in _PARENT_ENDS:
                    self._parent_ended(run, kind)
                return
            run = self._runs.get(owner[0])
            if run is None:
                return
            slice_ = owner[1]
            child = run.children[slice_][payload.order_id]
            if kind == "child_order_filled":
                fill = ChildFill(
                    exec_id=payload.exec_id, quantity=payload.quantity,
                    price=Price(payload.price_nanos),
                    executed_at=payload.executed_at.ToDatetime(tzinfo=UTC),
                )  # fmt: skip
                self._fill(run, slice_, child, fill)
            else:
                run.children[slice_][child.order_id] = replace(child, done=True)
            self._close_if_done(run, slice_)

    def _start_named(self, submitted: events_pb2.OrderSubmitted) -> None:
        """Starts executing a parent order whose instructions name its algorithm or profile.
        The OMS records a parent's acceptance with its submission, so by now the order is
        working or was refused; a refused order, or instructions that cannot be executed, are
        logged and left alone (a retried delivery finds the execution already started)."""
        terms = submitted.terms
        if terms.HasField("parent_order_id") or not names_an_algorithm(terms.instructions):
            return
        try:
            self.start(start_request(submitted.order_id, terms.instructions), SYSTEM)
        except (InvalidArgument, FailedPrecondition, NotFound) as err:
            log.warning(
                "order %s names an algorithm but is not executed: %s", submitted.order_id, err
            )

    def on_strategy_selected(self, selected: events_pb2.StrategySelected) -> None:
        """Starts executing a parent order as the strategy service chose; an order no longer
        working, or a choice the profiles refuse, is logged and left alone (a retried delivery
        finds the execution already started)."""
        request = StartRequest(
            order_id=selected.order_id, algo_profile=selected.algo_profile,
            algorithm=AlgorithmKind(selected.algorithm),
            urgency=Urgency(selected.urgency) if selected.urgency else None,
            max_participation_bps=selected.max_participation_bps, params=dict(selected.params),
            start=time_of(selected.start_time, selected.HasField("start_time")),
            end=time_of(selected.end_time, selected.HasField("end_time")),
        )  # fmt: skip
        try:
            self.start(request, SYSTEM)
        except (InvalidArgument, FailedPrecondition, NotFound) as err:
            log.warning("order %s: the strategy chosen is not executed: %s", selected.order_id, err)

    def on_strategy_recommended(self, recommended: events_pb2.StrategyRecommended) -> None:
        """Applies the strategy service's mid-execution recommendation (the regime changed) to
        the order's execution, within its profile's bounds; one that no longer applies (the
        execution ended, or was never started) is logged and left."""
        try:
            self.adjust(
                execution_id_of(recommended.order_id), SYSTEM,
                urgency=Urgency(recommended.urgency) if recommended.urgency else None,
            )  # fmt: skip
        except (InvalidArgument, FailedPrecondition, NotFound) as err:
            log.info("order %s: recommendation not applied: %s", recommended.order_id, err)
            return
        log.info(
            "order %s: %s → %s, urgency %s (%s)", recommended.order_id,
            recommended.regime_before, recommended.regime_now,
            Urgency(recommended.urgency).name, recommended.reason,
        )  # fmt: skip

    # ---- recovery ----------------------------------------------------------------------------

    def recover(self) -> int:
        """Loads every execution not yet ended and takes up where its events leave it: routes
        what was sent, places what was routed (the OMS answers a placement it has seen with the
        children it placed), reads back the fills it missed. The number of executions."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT execution_id FROM algo_executions WHERE state <> ALL(%s)"
                " ORDER BY execution_id",
                ([s.name for s in TERMINAL],),
            ).fetchall()
        with self._lock:
            for (execution_id,) in rows:
                run = self._load(execution_id)
                if run is None:
                    continue
                self._runs[execution_id] = run
                execution = run.execution
                self._views.setdefault(execution.spec.symbol, MarketView(SESSION_SECONDS))
                self._resume_slices(run)
            return len(rows)

    def _resume_slices(self, run: _Run) -> None:
        execution = run.execution
        for s in execution.open_slices():
            if s.routed is None:
                self._route(run, s.number, s.quantity, s.urgency, SYSTEM)
                continue
            self._place(run, s.number)
            mine = run.children.get(s.number, {})
            # Where the children stand first, then their fills: a child seen done has every
            # fill it will ever have in the history read after.
            for child in self._desk.children(execution.spec.order_id):
                if child.order_id in mine:
                    mine[child.order_id] = child
            for child in list(mine.values()):
                for fill in self._desk.fills(child.order_id):
                    self._fill(run, s.number, child, fill)
            self._close_if_done(run, s.number)

    def _load(self, execution_id: str) -> _Run | None:
        loaded = self._store.load(stream_of(execution_id))
        if not loaded.events:
            return None
        events = [r.event for r in loaded.events]
        first = events[0]
        calendar = self.calendar_of(first.occurred_at)
        return _Run(
            execution=Execution.from_events(events, calendar),
            version=loaded.version,
            head=loaded.head_hash,
        )

    # ---- acting on decisions -----------------------------------------------------------------

    def _steer(
        self,
        execution_id: str,
        context: CommandContext,
        change: Callable[[Execution, datetime], list[AlgoEvent]],
    ) -> Summary:
        with self._lock:
            run = self._runs.get(execution_id)
            if run is None:
                if self._load(execution_id) is None:
                    raise NotFound("execution", execution_id)
                raise FailedPrecondition(
                    "EXECUTION_ENDED",
                    f"execution {execution_id} has ended",
                    execution_id=execution_id,
                )
            self._commit(run, change(run.execution, self.now()), context)
            return summary_of(run.execution)

    def _tick(self, run: _Run, now: datetime) -> None:
        execution = run.execution
        for slice_ in sorted(run.unplaced):
            self._place(run, slice_)
        if execution.state not in TERMINAL:
            view = self._views.get(execution.spec.symbol)
            if view is not None:
                self._commit(run, execution.decide(now, view.snapshot(now.timestamp())), SYSTEM)
        if execution.state in TERMINAL and not execution.open_slices():
            del self._runs[execution.execution_id]
            for children in run.children.values():
                for child_id in children:
                    self._child.pop(child_id, None)

    def _commit(self, run: _Run, events: Sequence[AlgoEvent], context: CommandContext) -> None:
        """Appends `events` (durable when it returns), then acts on them."""
        if not events:
            return
        execution = run.execution
        summary = summary_of(execution)
        recorded = self._store.append(
            stream_of(execution.execution_id),
            run.version,
            events,
            context,
            prev_hash=run.head,
            also=[
                (
                    _SUMMARY_UPSERT,
                    (
                        summary.execution_id,
                        summary.order_id,
                        summary.algorithm.name,
                        summary.profile,
                        summary.state.name,
                        summary.quantity,
                        summary.scheduled,
                        summary.executed,
                        summary.start,
                        summary.end,
                    ),
                )
            ],
        )
        run.version, run.head = recorded[-1].version, recorded[-1].hash
        for event in events:
            if isinstance(event, SliceSent):
                self._route(run, event.slice, event.quantity, event.urgency, context)
            elif isinstance(event, SliceCancelRequested):
                for child in run.children.get(event.slice, {}).values():
                    if not child.done:
                        self._desk.cancel(child.order_id)

    def _route(
        self, run: _Run, slice_: int, quantity: int, urgency: Urgency, context: CommandContext
    ) -> None:
        execution = run.execution
        spec = execution.spec
        parent = ParentView(
            order_id=spec.order_id, symbol=spec.symbol, side=spec.side, quantity=spec.quantity,
            limit_price=spec.limit_price, working=True,
        )  # fmt: skip
        try:
            decision_id, allocations = self._desk.route(
                parent, quantity, urgency, execution.slices[slice_].limit_price
            )
        except (FailedPrecondition, InvalidArgument) as err:
            log.info("execution %s slice %d: nowhere to route (%s)", spec.execution_id, slice_, err)
            decision_id, allocations = "", ()
        self._commit(
            run, execution.on_routed(slice_, decision_id, allocations, self.now()), context
        )
        self._place(run, slice_)

    def _place(self, run: _Run, slice_: int) -> None:
        execution = run.execution
        routed = execution.slices[slice_].routed or ()
        ids = [child_client_id(execution.execution_id, slice_, n) for n in range(len(routed))]
        placed: list[ChildView] = []
        if routed:
            try:
                placed = self._desk.place(
                    execution.spec.order_id, list(zip(ids, routed, strict=True))
                )
            except (FailedPrecondition, InvalidArgument) as err:
                log.warning("%s slice %d refused: %s", execution.execution_id, slice_, err)
            except Exception:
                log.exception(
                    "%s slice %d: placing failed; retried", execution.execution_id, slice_
                )
                run.unplaced.add(slice_)
                return
        run.unplaced.discard(slice_)
        children = run.children.setdefault(slice_, {})
        for child in placed:
            # Whether a child is done is learned from its events, after its fills.
            children.setdefault(child.order_id, replace(child, done=False))
            self._child[child.order_id] = (execution.execution_id, slice_)
        self._close_if_done(run, slice_)

    def _fill(self, run: _Run, slice_: int, child: ChildView, fill: ChildFill) -> None:
        execution = run.execution
        before = execution.executed
        self._commit(
            run,
            execution.on_fill(slice_, fill.exec_id, fill.quantity, fill.price, fill.executed_at),
            SYSTEM,
        )
        if execution.executed > before:
            run.filled[child.order_id] = run.filled.get(child.order_id, 0) + fill.quantity

    def _close_if_done(self, run: _Run, slice_: int) -> None:
        """A slice is closed once every child is done and every share they filled was seen."""
        execution = run.execution
        s = execution.slices[slice_]
        if s.closed or s.routed is None or slice_ in run.unplaced:
            return
        children = run.children.get(slice_, {})
        if all(c.done or run.filled.get(c.order_id, 0) >= c.quantity for c in children.values()):
            self._commit(run, execution.on_slice_closed(slice_, self.now()), SYSTEM)

    def _parent_ended(self, run: _Run, kind: str) -> None:
        if run.execution.state in TERMINAL:
            return
        reason = "the parent order " + kind.removeprefix("order_").replace("_", " ")
        self._commit(run, run.execution.cancel(self.now(), reason), SYSTEM)


_ORDER_EVENTS = frozenset(
    {
        "child_order_filled", "order_canceled", "order_rejected", "order_expired",
        "order_done_for_day",
    }
)  # fmt: skip
_PARENT_ENDS = _ORDER_EVENTS - {"child_order_filled"}
