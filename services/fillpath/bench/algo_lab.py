"""Algorithm executions on the market lab, in one process: the engine of `fillpath.algo`
deciding, the router of `fillpath.sor` routing every slice, the OMS's order model keeping the
child orders, the lab filling them (fillpath.bench.desk). The executions step through the
simulated session one second of market time at a time, as AlgoService's timer does.

What `fillpath bench algos --quality` and the efficient-frontier sweep measure with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fillpath.algo.execution import TERMINAL, Execution
from fillpath.algo.trajectory import impact_estimate
from fillpath.bench.desk import LIQUIDITY, Fill, LabDesk
from fillpath.core.enums import Side
from fillpath.core.errors import FailedPrecondition, InvalidArgument
from fillpath.core.events import ChildOrderFilled
from fillpath.core.executions import (
    AlgoEvent,
    AlgoParams,
    ExecutionSpec,
    SliceCancelRequested,
    SliceSent,
)
from fillpath.core.market import Calendar, MarketSnapshot, MarketView
from fillpath.core.parent_order import ParentOrder
from fillpath.core.price import Price
from fillpath.sor.market import NANOS
from fillpath.sor.router import RouteOrder

STEP = 1.0
"""Seconds of market time between decisions."""
ROUTER_REFRESH = 10.0
"""Seconds of market time between reloads of the router's breakers and learned venue quality
(from Redis), as the router service's refresh does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoOrder:
    order_id: str
    side: Side
    quantity: int
    params: AlgoParams
    start: float
    """Seconds since the open."""
    end: float
    limit_price: Price | None = None


@dataclass(slots=True)
class Run:
    """One order's execution on the desk, and what it left for the figures."""

    order: AlgoOrder
    parent: ParentOrder
    execution: Execution
    children: dict[int, list[str]] = field(default_factory=dict)  # slice → child order ids
    slice_of: dict[str, int] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    arrival: tuple[float, int, int] = (0.0, 0, 0)  # seconds, bid, ask
    market: MarketSnapshot | None = None
    """The market as the session's view saw it when the order arrived."""
    ended: float | None = None
    track: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the open, executed) after every step."""
    events: list[AlgoEvent] = field(default_factory=list)


class AlgoSession:
    """One lab session (one instrument, one seed) running a set of algorithm executions."""

    def __init__(self, desk: LabDesk) -> None:
        self.desk = desk
        config = desk.config
        self.open = desk.lab.time_of(0.0).timestamp()
        self.calendar = Calendar.from_shares(
            self.open, config.session_seconds, config.volume_profile
        )
        self.view = MarketView(config.session_seconds)
        self._quotes = self._trades = 0
        self._refreshed = -ROUTER_REFRESH
        self.runs: list[Run] = []

    def run(
        self,
        orders: Sequence[AlgoOrder],
        on_step: Callable[[Run], None] | None = None,
        *,
        warm_up: float = 0.0,
    ) -> list[Run]:
        """Executes `orders` (each from its start) until every one has ended or the session
        closes; `on_step` sees each live run after every step (progress bars). The lab runs in
        one stride to `warm_up` seconds before an order's start (its market data conflated),
        then a step at a time, so the view has seen that much of the market at the start."""
        pending = sorted(orders, key=lambda o: o.start)
        active: list[Run] = []
        close = self.desk.config.session_seconds
        now = 0.0
        while now < close and (pending or active):
            now = min(now + STEP, close)
            if pending and not active:
                now = max(now, min(pending[0].start - warm_up, close))
            self._step(now, active)
            while pending and pending[0].start <= now:
                active.append(self._start(pending.pop(0)))
            for run in list(active):
                self._decide(run)
                run.track.append((now, run.execution.executed))
                if on_step is not None:
                    on_step(run)
                if run.execution.state in TERMINAL and not run.execution.open_slices():
                    run.ended = now
                    active.remove(run)
        for run in active:
            run.ended = now
        return self.runs

    # ---- the step ----------------------------------------------------------------------------

    def _step(self, until: float, active: Sequence[Run]) -> None:
        desk = self.desk
        reports = desk.advance(until)
        feed = desk.feed
        quotes = zip(feed.quotes[self._quotes :], feed.sizes[self._quotes :], strict=True)
        for (at, bid, ask), (bid_size, ask_size) in quotes:
            self.view.on_quote(
                self.open + at, round(bid * NANOS), round(ask * NANOS), bid_size, ask_size
            )
        for at, quantity, _ in feed.trades[self._trades :]:
            self.view.on_trade(self.open + at, quantity)
        self._quotes, self._trades = len(feed.quotes), len(feed.trades)
        touched: dict[int, tuple[Run, set[int]]] = {}
        for report in reports:
            run = report.owner
            assert isinstance(run, Run)
            for event in desk.apply(run.parent, report):
                if isinstance(event, ChildOrderFilled):
                    self._fill(run, event, report.report.liquidity)
            slice_ = run.slice_of[report.report.order_id]
            touched.setdefault(id(run), (run, set()))[1].add(slice_)
        for run, slices in touched.values():
            for slice_ in sorted(slices):
                self._close_if_done(run, slice_)
        if until >= self._refreshed + ROUTER_REFRESH:
            desk.refresh_router()
            self._refreshed = until

    def _fill(self, run: Run, event: ChildOrderFilled, liquidity: Any) -> None:
        at = event.executed_at
        run.fills.append(
            Fill(
                time=self.desk.seconds(at), quantity=event.quantity,
                price_nanos=event.price.nanos, liquidity=LIQUIDITY[liquidity],
                fee_nanos=event.fee_nanos, venue=event.venue,
            )
        )  # fmt: skip
        slice_ = run.slice_of[event.order_id]
        self._act(
            run, run.execution.on_fill(slice_, event.exec_id, event.quantity, event.price, at)
        )

    def _close_if_done(self, run: Run, slice_: int) -> None:
        if all(run.parent.order(c).status.is_terminal for c in run.children.get(slice_, ())):
            self._act(run, run.execution.on_slice_closed(slice_, self.desk.time_now()))

    def _start(self, order: AlgoOrder) -> Run:
        desk = self.desk
        instrument = desk.instrument
        lot = 100 * instrument.lot_size
        eta, gamma = impact_estimate(instrument)
        at = desk.time_now()
        spec = ExecutionSpec(
            execution_id=f"X{order.order_id}", order_id=order.order_id, symbol=desk.symbol,
            side=order.side, quantity=order.quantity, lot=lot,
            tick_nanos=instrument.tick_size.nanos, limit_price=order.limit_price,
            start=desk.lab.time_of(order.start), end=desk.lab.time_of(order.end),
            params=order.params, adv=instrument.adv,
            daily_volatility=instrument.daily_volatility, eta=eta, gamma=gamma,
        )  # fmt: skip
        execution, events = Execution.create(spec, self.calendar, at)
        parent = desk.submit(order.order_id, order.side, order.quantity, order.limit_price)
        run = Run(order=order, parent=parent, execution=execution, events=list(events))
        snapshot = self.view.snapshot(at.timestamp())
        run.arrival = (desk.seconds(at), snapshot.bid, snapshot.ask)
        run.market = snapshot
        self.runs.append(run)
        return run

    def _decide(self, run: Run) -> None:
        at = self.desk.time_now()
        execution = run.execution
        if execution.state in TERMINAL:
            return
        self._act(run, execution.decide(at, self.view.snapshot(at.timestamp())))

    # ---- acting on the engine's decisions ----------------------------------------------------

    def _act(self, run: Run, events: Sequence[AlgoEvent]) -> None:
        run.events.extend(events)
        for event in events:
            if isinstance(event, SliceSent):
                self._send(run, event)
            elif isinstance(event, SliceCancelRequested):
                for child in run.children.get(event.slice, ()):
                    if run.parent.order(child).is_live:
                        self.desk.cancel(run.parent, child)

    def _send(self, run: Run, event: SliceSent) -> None:
        desk = self.desk
        order = run.order
        try:
            decision = desk.router.route(
                RouteOrder(
                    order_id=order.order_id, symbol=desk.symbol, side=order.side,
                    quantity=event.quantity, urgency=event.urgency,
                    limit_price=event.limit_price, allow_dark=True,
                )
            )  # fmt: skip
            allocations = decision.allocations
        except (FailedPrecondition, InvalidArgument):
            allocations = ()
        ids = [f"{run.execution.execution_id}-{event.slice}-{i}" for i in range(len(allocations))]
        placed = desk.place(run.parent, allocations, ids, run) if allocations else []
        run.children[event.slice] = [e.order_id for e in placed]
        for child in run.children[event.slice]:
            run.slice_of[child] = event.slice
        self._close_if_done(run, event.slice)  # nothing placed: nothing to wait for

    # ---- figures -----------------------------------------------------------------------------

    def tca(self, run: Run) -> dict[str, Any]:
        end = run.ended if run.ended is not None else self.desk.lab.now
        return self.desk.tca(
            run.order.side, run.order.quantity, run.arrival, end, run.fills,
            self.desk.market_record(),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MidPath:
    """A session's NBBO mid over time: seconds since the open, currency."""

    times: np.ndarray
    mids: np.ndarray

    @classmethod
    def of(cls, desk: LabDesk) -> MidPath:
        quotes = np.array(desk.feed.quotes, dtype=np.float64)
        return cls(quotes[:, 0], (quotes[:, 1] + quotes[:, 2]) / 2)

    def at(self, t: float) -> float:
        return float(self.mids[max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)])


def step_to(desk: LabDesk, until: float) -> None:
    """Runs the desk's session to `until` a `STEP` at a time, as `AlgoSession` does (the same
    seed then gives the same market, but for what our orders change)."""
    t = desk.lab.now
    while t < until:
        t = min(t + STEP, until)
        desk.advance(t)


def undisturbed(
    symbol: str,
    seed: int,
    redis_url: str,
    start: float,
    until: float,
    *,
    warm_up: float = 0.0,
    volatility: float = 1.0,
    liquidity: float = 1.0,
) -> MidPath:
    """The mid of the session `seed` with no order of ours, stepped as an `AlgoSession` whose
    first order starts at `start` (after `warm_up`, in the same regime): what the market would
    have done without us."""
    desk = LabDesk(symbol, seed, redis_url, volatility=volatility, liquidity=liquidity)
    desk.advance(start - warm_up)  # as AlgoSession does: to the first start at once
    step_to(desk, until)
    return MidPath.of(desk)


def off_schedule(run: Run) -> float:
    """TWAP: the most the execution was ever behind or ahead of its straight line, in slices:
    |executed − elapsed share × quantity| after every step, over one slice's quantity."""
    spec = run.execution.spec
    horizon = run.order.end - run.order.start
    slice_quantity = spec.quantity * spec.params.slice_seconds / horizon
    gaps = [
        abs(executed - min(max((t - run.order.start) / horizon, 0.0), 1.0) * spec.quantity)
        for t, executed in run.track
    ]
    return max(gaps, default=0.0) / slice_quantity


def participation_windows(run: Run, tape_times: Any, tape_quantities: Any) -> tuple[float, float]:
    """(overall participation, the highest participation over any trailing 60 s window that
    ended at one of our fills): our fills over all the volume printed (ours included)."""
    start, end = run.arrival[0], run.ended if run.ended is not None else run.order.end
    inside = (tape_times >= start) & (tape_times <= end)
    market = float(tape_quantities[inside].sum())
    own_times = np.array([f.time for f in run.fills])
    own_qty = np.array([f.quantity for f in run.fills], dtype=np.float64)
    overall = float(own_qty.sum()) / market if market else math.nan
    worst = 0.0
    cumulative = np.concatenate(([0.0], np.cumsum(tape_quantities)))
    for t in own_times:
        lo = int(np.searchsorted(tape_times, t - 60.0, side="right"))
        hi = int(np.searchsorted(tape_times, t, side="right"))
        volume = cumulative[hi] - cumulative[lo]
        mine = float(own_qty[(own_times > t - 60.0) & (own_times <= t)].sum())
        if volume > 0:
            worst = max(worst, mine / volume)
    return overall, worst
