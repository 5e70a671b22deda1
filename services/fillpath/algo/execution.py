"""One algorithm execution: a state machine that turns a parent order into slices, driven by
the clock, the market and the fills, and rebuilt from its own events.

    PENDING ──window opens──▶ RUNNING ◀──resume── PAUSED
                               │  ▲ └────pause────▶ │
                filled, or the window closed        cancel
                               ▼                    ▼
                           COMPLETED   CANCELED ◀───┘    (FAILED: the order could not be worked)

`decide(now, market)` is the timer: called as often as the caller likes (every second of
market time, say), it sends a slice when the schedule says one is due — never more than the
leaves (what is neither executed nor working), never priced beyond the parent's limit or the
profile's band around the arrival price, never more than the participation cap allows over
the trailing window. It manages the slices out there: one unfilled after its timeout is
canceled and what it did not fill is re-sent on the next decision (cancel/replace, and
re-routed, since every send is a fresh Route); an execution behind its schedule by more than
a slice sends at a higher urgency (the router crosses the spread sooner) and records the
deviation. At the end of the window whatever is left goes as a final slice at high urgency,
and what that leaves goes again (up to `FINAL_ATTEMPTS` final slices); then the execution
completes, with any unfilled remainder named.

The algorithms differ only in their target, the share of the order that should be done by
now (fillpath.algo.schedule): TWAP's straight line (with sizes and times varied by the
profile's `randomize`), VWAP's volume profile corrected by the volume seen, POV's share of the
volume printed, implementation shortfall's Almgren–Chriss trajectory re-optimised from where
the execution stands at every decision, arrival price's trajectory bent by where the price is
against the arrival price. Iceberg instead keeps one displayed slice working and refreshes it
when it is done. Every target is then adapted to the market: a wide spread slows it, a volume
surge brings it forward (`schedule.adapt`).

Pure: no I/O, no clock of its own. The caller persists the returned events, then acts on them
(a `SliceSent` is routed and placed, a `SliceCancelRequested` canceled), and reports back
fills (`on_fill`) and slices whose children are all done (`on_slice_closed`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

import numpy as np

from fillpath.algo.schedule import adapt, next_slice, vwap_target
from fillpath.algo.trajectory import trajectory_kernel
from fillpath.core.enums import AlgorithmKind, Side, Urgency
from fillpath.core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from fillpath.core.executions import (
    AlgoEvent,
    DeviationRecorded,
    ExecutionAdjusted,
    ExecutionCanceled,
    ExecutionCompleted,
    ExecutionCreated,
    ExecutionFailed,
    ExecutionPaused,
    ExecutionResumed,
    ExecutionSpec,
    ExecutionStarted,
    SliceCancelRequested,
    SliceClosed,
    SliceFilled,
    SliceRouted,
    SliceSent,
)
from fillpath.core.market import WINDOW, Calendar, MarketSnapshot
from fillpath.core.price import Price
from fillpath.core.profiles import AlgoProfile
from fillpath.core.routing import RouteAllocation

NANOS = 1_000_000_000
CHILD_TIMEOUT = 30.0
"""Seconds a slice is given before it is canceled and what it did not fill re-sent."""
ESCALATE_AFTER = 5.0
"""Seconds a slice works before it may be pulled to be re-sent at a higher urgency."""
CAP_HEADROOM = 0.9
"""A participation cap is aimed at with this margin, over the prints that will still be in the
trailing window when the fills land (`MarketSnapshot.lasting_volume`): the flow is bursty, and a
minute of heavy prints followed by a quiet one would otherwise carry our share over the cap."""
URGENCY_RISK = {Urgency.LOW: 0.3, Urgency.MEDIUM: 1.0, Urgency.HIGH: 3.0}
"""Arrival price: the risk aversion's multiplier by urgency."""
ARRIVAL_SCALE_BPS = 10.0
"""Arrival price: a move of this many bps from the arrival price bends the target by a quarter
(at most a half)."""
FINAL = "final: the window closed"
FINAL_ATTEMPTS = 4
"""After the window closes, what a final slice leaves unfilled (a thin book, a partial IOC) is
sent again, up to this many final slices; then the execution completes with the rest named."""


class ExecutionState(IntEnum):
    PENDING = 1
    RUNNING = 2
    PAUSED = 3
    COMPLETED = 4
    CANCELED = 5
    FAILED = 6


TERMINAL = frozenset({ExecutionState.COMPLETED, ExecutionState.CANCELED, ExecutionState.FAILED})


@dataclass(slots=True)
class Slice:
    number: int
    quantity: int
    urgency: Urgency
    sent_at: float
    final: bool
    filled: int = 0
    closed: bool = False
    canceling: bool = False
    limit_price: Price | None = None
    routed: tuple[RouteAllocation, ...] | None = None
    """The router's answer, once recorded (None: not routed yet)."""


@dataclass(frozen=True, slots=True)
class Target:
    fraction: float
    """Of the order, done (executed or working) by the end of this decision's interval."""
    step: float
    """One slice's share of the order."""
    reason: str


class Execution:
    """The aggregate; build it with `create` or `from_events`, never by hand."""

    def __init__(self, spec: ExecutionSpec, calendar: Calendar) -> None:
        self.spec = spec
        self.calendar = calendar
        self.state = ExecutionState.PENDING
        self.arrival_mid = 0
        self.start_volume = 0
        self.executed = 0
        self.notional = 0  # Σ quantity × price nanos
        self.slices: dict[int, Slice] = {}
        self._open: dict[int, Slice] = {}  # the slices not yet closed
        self.fills: list[tuple[float, int]] = []  # (seconds, quantity)
        self.exec_ids: set[str] = set()
        self.behind = False
        self.end = spec.end.timestamp()
        self.max_participation = spec.params.max_participation
        self.urgency = spec.params.urgency
        self.limit_price = spec.limit_price
        self.scheduled = 0
        self.reason = ""
        # Not facts: after a restart the next decision is at once, on a fresh trajectory.
        self._next_at = 0.0
        self._period: tuple[float, float] = (0.0, 0.0)
        """Implementation shortfall and arrival price: (end, target) of the trajectory's
        current period."""
        self._holdings = np.empty(1)

    # ---- building ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, spec: ExecutionSpec, calendar: Calendar, now: datetime
    ) -> tuple[Execution, list[AlgoEvent]]:
        """Raises InvalidArgument when the spec cannot be executed (field named)."""
        violations = []
        if spec.quantity <= 0:
            violations.append(FieldViolation("quantity", spec.quantity, "must be positive"))
        if spec.lot <= 0:
            violations.append(FieldViolation("lot", spec.lot, "must be positive"))
        if spec.end <= spec.start:
            reason = f"must be after start {spec.start.isoformat()}"
            violations.append(FieldViolation("end_time", spec.end.isoformat(), reason))
        if spec.end <= now:
            violations.append(FieldViolation("end_time", spec.end.isoformat(), "already passed"))
        if violations:
            raise InvalidArgument(violations)
        execution = cls(spec, calendar)
        events: list[AlgoEvent] = []
        execution._record(
            events,
            ExecutionCreated(
                execution_id=spec.execution_id, order_id=spec.order_id, occurred_at=now, spec=spec
            ),
        )
        return execution, events

    @classmethod
    def from_events(cls, events: Iterable[AlgoEvent], calendar: Calendar) -> Execution:
        iterator = iter(events)
        first = next(iterator)
        if not isinstance(first, ExecutionCreated):
            raise ValueError(f"an execution's stream starts with ExecutionCreated, not {first}")
        execution = cls(first.spec, calendar)
        for event in iterator:
            execution.apply(event)
        return execution

    def apply(self, event: AlgoEvent) -> None:
        at = event.occurred_at.timestamp()
        match event:
            case ExecutionCreated():
                pass
            case ExecutionStarted():
                self.state = ExecutionState.RUNNING
                self.arrival_mid = event.arrival_mid_nanos
                self.start_volume = event.market_volume
            case SliceSent():
                self.slices[event.slice] = self._open[event.slice] = Slice(
                    number=event.slice, quantity=event.quantity, urgency=event.urgency,
                    sent_at=at, final=event.reason == FINAL, limit_price=event.limit_price,
                )  # fmt: skip
                self.scheduled = event.scheduled
            case SliceRouted():
                self.slices[event.slice].routed = event.allocations
            case SliceFilled():
                self.exec_ids.add(event.exec_id)
                self.slices[event.slice].filled += event.quantity
                self.executed += event.quantity
                self.notional += event.quantity * event.price.nanos
                self.fills.append((at, event.quantity))
            case SliceClosed():
                self._open.pop(event.slice).closed = True
            case SliceCancelRequested():
                self.slices[event.slice].canceling = True
            case DeviationRecorded():
                self.behind = event.behind
            case ExecutionPaused():
                self.state = ExecutionState.PAUSED
            case ExecutionResumed():
                self.state = ExecutionState.RUNNING
            case ExecutionAdjusted():
                if event.end is not None:
                    self.end = event.end.timestamp()
                if event.max_participation is not None:
                    self.max_participation = event.max_participation
                if event.urgency is not None:
                    self.urgency = event.urgency
                if event.limit_price is not None:
                    self.limit_price = event.limit_price
            case ExecutionCompleted():
                self.state, self.reason = ExecutionState.COMPLETED, event.reason
            case ExecutionCanceled():
                self.state, self.reason = ExecutionState.CANCELED, event.reason
            case ExecutionFailed():
                self.state, self.reason = ExecutionState.FAILED, event.reason
            case _:
                raise TypeError(f"not an execution event: {event!r}")

    def _record(self, events: list[AlgoEvent], event: AlgoEvent) -> None:
        self.apply(event)
        events.append(event)

    # ---- queries -----------------------------------------------------------------------------

    @property
    def execution_id(self) -> str:
        return self.spec.execution_id

    @property
    def working(self) -> int:
        return sum(s.quantity - s.filled for s in self._open.values())

    @property
    def leaves(self) -> int:
        return self.spec.quantity - self.executed

    @property
    def average_price(self) -> float:
        """Nanos; NaN before the first fill."""
        return self.notional / self.executed if self.executed else math.nan

    def open_slices(self) -> list[Slice]:
        return list(self._open.values())

    # ---- the timer ---------------------------------------------------------------------------

    def decide(self, now: datetime, market: MarketSnapshot) -> list[AlgoEvent]:
        """What to do at `now`: start, cancel a stale slice, send a slice, finish."""
        events: list[AlgoEvent] = []
        t = now.timestamp()
        if self.state is ExecutionState.PENDING:
            if t < self.spec.start.timestamp() or market.mid <= 0:
                return events
            self._record(
                events,
                ExecutionStarted(
                    execution_id=self.execution_id, order_id=self.spec.order_id, occurred_at=now,
                    arrival_mid_nanos=market.mid, market_volume=market.volume,
                ),
            )  # fmt: skip
        if self.state is not ExecutionState.RUNNING:
            return events
        self._cancel_stale(events, now, t)
        if t >= self.end:
            self._finish(events, now)
            return events
        if market.mid <= 0:
            return events
        if self.spec.params.algorithm is AlgorithmKind.ICEBERG:
            if t >= self._next_at:
                self._refresh(events, now, t)
            return events
        # Every step: where the schedule is, and whether slices out there need more urgency.
        target = self._target(t, market)
        quantity = self.spec.quantity
        scheduled = int(target.fraction * quantity)
        urgency = self._urgency(events, now, scheduled, target.step, market)
        self._escalate(events, now, t, urgency)
        done = (self.executed + self.working) / quantity
        if t < self._next_at and not self._lagging(t, done, target.step):
            return events
        volume_ratio = 1.0
        if self.spec.params.algorithm is not AlgorithmKind.POV:
            volume_ratio = market.window_volume / max(self._expected_volume(t - WINDOW, t), 1.0)
        fraction = adapt(target.fraction, done, market.spread_ratio, volume_ratio, target.step)
        if self.spec.params.algorithm is AlgorithmKind.TWAP:
            # However the market hurries it, a TWAP stays within a slice of its straight line.
            fraction = min(fraction, max(self._elapsed(t) + target.step, done))
        cap = self._cap(t, market)
        send = 0
        if cap is None or cap >= self.spec.lot:
            send = next_slice(
                fraction, quantity, self.executed, self.working, self.spec.lot,
                self.spec.params.min_slice, cap or 0, False,
            )  # fmt: skip
        if send > 0:
            self._record(
                events,
                SliceSent(
                    execution_id=self.execution_id, order_id=self.spec.order_id,
                    occurred_at=now, slice=len(self.slices),
                    quantity=send, urgency=urgency, limit_price=self._limit(), scheduled=scheduled,
                    executed=self.executed, reason=target.reason,
                ),
            )  # fmt: skip
        self._next_at = t + self._interval()
        return events

    # ---- reports from the OMS ----------------------------------------------------------------

    def on_fill(
        self, slice_: int, exec_id: str, quantity: int, price: Price, now: datetime
    ) -> list[AlgoEvent]:
        """A fill of one of the slice's children; a repeated `exec_id` changes nothing."""
        events: list[AlgoEvent] = []
        if exec_id in self.exec_ids or slice_ not in self.slices:
            return events
        self._record(
            events,
            SliceFilled(
                execution_id=self.execution_id, order_id=self.spec.order_id,
                occurred_at=now, slice=slice_,
                exec_id=exec_id, quantity=quantity, price=price,
            ),
        )  # fmt: skip
        if self.leaves <= 0 and self.state not in TERMINAL:
            self._record(
                events,
                ExecutionCompleted(execution_id=self.execution_id, order_id=self.spec.order_id,
                                   occurred_at=now,
                                   reason="filled"),
            )  # fmt: skip
        return events

    def on_routed(
        self,
        slice_: int,
        decision_id: str,
        allocations: tuple[RouteAllocation, ...],
        now: datetime,
    ) -> list[AlgoEvent]:
        """The router's answer for a slice, to be placed as child `n` = `allocations[n]`."""
        events: list[AlgoEvent] = []
        self._record(
            events,
            SliceRouted(
                execution_id=self.execution_id, order_id=self.spec.order_id, occurred_at=now,
                slice=slice_, decision_id=decision_id, allocations=allocations,
            ),
        )  # fmt: skip
        return events

    def on_slice_closed(self, slice_: int, now: datetime) -> list[AlgoEvent]:
        """Every child of the slice is done; what it left unfilled is decided again at once."""
        found = self.slices.get(slice_)
        if found is None or found.closed:
            return []
        events: list[AlgoEvent] = []
        self._record(
            events,
            SliceClosed(
                execution_id=self.execution_id,
                order_id=self.spec.order_id,
                occurred_at=now,
                slice=slice_,
            ),
        )
        self._next_at = 0.0
        return events

    # ---- commands ----------------------------------------------------------------------------

    def pause(self, now: datetime, reason: str = "") -> list[AlgoEvent]:
        self._require({ExecutionState.PENDING, ExecutionState.RUNNING}, "pause")
        events: list[AlgoEvent] = []
        self._record(
            events,
            ExecutionPaused(
                execution_id=self.execution_id,
                order_id=self.spec.order_id,
                occurred_at=now,
                reason=reason,
            ),
        )
        self._cancel_open(events, now, "paused")
        return events

    def resume(self, now: datetime) -> list[AlgoEvent]:
        self._require({ExecutionState.PAUSED}, "resume")
        events: list[AlgoEvent] = []
        self._record(
            events,
            ExecutionResumed(
                execution_id=self.execution_id, order_id=self.spec.order_id, occurred_at=now
            ),
        )
        self._next_at, self._period = 0.0, (0.0, 0.0)
        return events

    def cancel(self, now: datetime, reason: str = "canceled by request") -> list[AlgoEvent]:
        self._require(
            {ExecutionState.PENDING, ExecutionState.RUNNING, ExecutionState.PAUSED}, "cancel"
        )
        events: list[AlgoEvent] = []
        self._record(
            events,
            ExecutionCanceled(
                execution_id=self.execution_id,
                order_id=self.spec.order_id,
                occurred_at=now,
                reason=reason,
            ),
        )
        self._cancel_open(events, now, "execution canceled")
        return events

    def fail(self, now: datetime, reason: str) -> list[AlgoEvent]:
        if self.state in TERMINAL:
            return []
        events: list[AlgoEvent] = []
        self._record(
            events,
            ExecutionFailed(
                execution_id=self.execution_id,
                order_id=self.spec.order_id,
                occurred_at=now,
                reason=reason,
            ),
        )
        self._cancel_open(events, now, "execution failed")
        return events

    def adjust(
        self,
        profile: AlgoProfile,
        now: datetime,
        *,
        end: datetime | None = None,
        max_participation: float | None = None,
        urgency: Urgency | None = None,
        limit_price: Price | None = None,
    ) -> list[AlgoEvent]:
        """New parameters in flight, within `profile`'s bounds.

        Raises:
            InvalidArgument: a value outside its bounds (field named); nothing changes.
        """
        self._require(
            {ExecutionState.PENDING, ExecutionState.RUNNING, ExecutionState.PAUSED}, "adjust"
        )
        violations = []
        if end is not None and end <= now:
            violations.append(FieldViolation("end_time", end.isoformat(), "already passed"))
        if max_participation is not None:
            found = profile.participation.check("max_participation_bps", max_participation)
            if found is not None:
                violations.append(
                    FieldViolation(found.field, round(max_participation * 1e4), found.reason)
                )
        if urgency is not None and urgency not in profile.allowed_urgencies:
            allowed = ", ".join(u.name for u in sorted(profile.allowed_urgencies))
            violations.append(FieldViolation("urgency", urgency.name, f"one of {allowed}"))
        parent = self.spec.limit_price
        if (
            limit_price is not None
            and parent is not None
            and _beyond(self.spec.side, limit_price, parent)
        ):
            violations.append(
                FieldViolation("limit_price_nanos", limit_price.nanos,
                               f"beyond the order's limit {parent}")
            )  # fmt: skip
        if violations:
            raise InvalidArgument(violations)
        events: list[AlgoEvent] = []
        self._record(
            events,
            ExecutionAdjusted(
                execution_id=self.execution_id, order_id=self.spec.order_id,
                occurred_at=now, end=end,
                max_participation=max_participation, urgency=urgency, limit_price=limit_price,
            ),
        )  # fmt: skip
        self._next_at, self._period = 0.0, (0.0, 0.0)
        return events

    # ---- the decisions -----------------------------------------------------------------------

    def _target(self, t: float, market: MarketSnapshot) -> Target:
        spec, params = self.spec, self.spec.params
        start = spec.start.timestamp()
        step = min(params.slice_seconds / max(self.end - start, 1.0), 1.0)
        elapsed = self._elapsed(t)
        algorithm = params.algorithm
        if algorithm is AlgorithmKind.TWAP:
            # Half a slice ahead of the line: filled promptly, the execution stays within half
            # a slice of it either way.
            jitter = params.randomize * self._uniform(len(self.slices), "size") * step
            return Target(min(elapsed + 0.5 * step + jitter, 1.0), step, "schedule")
        if algorithm is AlgorithmKind.VWAP:
            calendar = self.calendar
            first, last = calendar.volume_fraction(start), calendar.volume_fraction(self.end)
            window = max(last - first, 1e-12)
            now_share = (calendar.volume_fraction(t) - first) / window
            ahead = (calendar.volume_fraction(t + params.slice_seconds) - first) / window
            observed = market.volume - self.start_volume
            corrected = vwap_target(now_share, observed, spec.adv * window)
            fraction = corrected + (ahead - now_share) * (1.0 - corrected)
            return Target(min(fraction, 1.0), step, "volume curve")
        if algorithm is AlgorithmKind.POV:
            observed = market.volume - self.start_volume
            step = params.participation * max(market.window_volume, 1) / spec.quantity
            return Target(params.participation * observed / spec.quantity, step, "participation")
        # Implementation shortfall and arrival price: the trajectory from where we stand.
        # The trajectory is re-optimised from where the execution stands once a period; a
        # decision within the period (a slice closed early) works to the same target, so
        # re-sends what a slice left and no more.
        end, fraction = self._period
        if t >= end:
            risk = params.risk_aversion
            if algorithm is AlgorithmKind.ARRIVAL:
                risk *= URGENCY_RISK[self.urgency]
            fraction = self._trajectory_target(t, market, risk)
            self._period = (t + params.slice_seconds, fraction)
        reason = "trajectory"
        if algorithm is AlgorithmKind.ARRIVAL and self.arrival_mid > 0 and market.mid > 0:
            fraction, reason = self._bend(fraction, market.mid)
        return Target(fraction, step, reason)

    def _lagging(self, t: float, done: float, step: float) -> bool:
        """TWAP catch-up: executed and working together have fallen half a slice behind the
        straight line (a randomised interval ran long), so the next slice cannot wait."""
        if self.spec.params.algorithm is not AlgorithmKind.TWAP:
            return False
        return self._elapsed(t) - done > 0.5 * step

    def _elapsed(self, t: float) -> float:
        """The share of the window gone by at `t` (TWAP's straight line)."""
        start = self.spec.start.timestamp()
        return min(max((t - start) / max(self.end - start, 1.0), 0.0), 1.0)

    def _trajectory_target(self, t: float, market: MarketSnapshot, risk: float) -> float:
        """1 − x₁/X of the Almgren–Chriss trajectory for what is left over the time left, in
        days; σ from the prints once there are enough, else the instrument's."""
        spec = self.spec
        committed = self.executed + self.working
        remaining = spec.quantity - committed
        day = self.calendar.seconds
        left = (self.end - t) / day
        tau = spec.params.slice_seconds / day
        periods = max(math.ceil(left / tau - 1e-9), 1)
        if remaining <= 0 or periods == 1:
            return 1.0
        price = market.mid / NANOS
        sigma = (market.sigma if not math.isnan(market.sigma) else spec.daily_volatility) * price
        gamma = spec.gamma
        if spec.eta - 0.5 * gamma * left / periods <= 0:
            gamma = 0.0
        if len(self._holdings) < periods + 1:
            self._holdings = np.empty(periods + 1)
        half_spread = (market.ask - market.bid) / 2 / NANOS
        trajectory_kernel(
            float(remaining), left, periods, sigma, spec.eta, gamma, half_spread, risk,
            self._holdings,
        )  # fmt: skip
        return float((spec.quantity - self._holdings[1]) / spec.quantity)

    def _bend(self, fraction: float, mid: int) -> tuple[float, str]:
        """Arrival price: more when the price is better than at arrival, less when worse."""
        sign = 1 if self.spec.side is Side.BUY else -1
        move = sign * (mid - self.arrival_mid) / self.arrival_mid * 1e4  # + = adverse
        bend = min(abs(move) / ARRIVAL_SCALE_BPS * 0.25, 0.5)
        done = (self.executed + self.working) / self.spec.quantity
        if move < 0:
            return fraction + (1.0 - fraction) * bend, f"price {-move:.1f} bps better: faster"
        if move > 0 and fraction > done:
            return done + (fraction - done) * (1.0 - bend), f"price {move:.1f} bps worse: slower"
        return fraction, "trajectory"

    def _urgency(
        self,
        events: list[AlgoEvent],
        now: datetime,
        scheduled: int,
        step: float,
        market: MarketSnapshot,
    ) -> Urgency:
        """The profile's urgency, raised a level when behind the schedule by more than a slice
        (two levels beyond three slices); records the deviation when that changes."""
        slice_ = max(step * self.spec.quantity, self.spec.lot, self.spec.params.min_slice)
        shortfall = scheduled - self.executed
        behind = shortfall > slice_
        if behind != self.behind:
            reason = (
                f"{shortfall:,} behind schedule (a slice is {slice_:,.0f})"
                if behind
                else "back on schedule"
            )
            self._record(
                events,
                DeviationRecorded(
                    execution_id=self.execution_id, order_id=self.spec.order_id,
                    occurred_at=now, scheduled=scheduled,
                    executed=self.executed, behind=behind, reason=reason,
                ),
            )  # fmt: skip
        urgency = self.urgency
        if behind:
            urgency = Urgency(min(urgency + (2 if shortfall > 3 * slice_ else 1), Urgency.HIGH))
        if (
            self.spec.params.algorithm is AlgorithmKind.ARRIVAL
            and self.arrival_mid > 0
            and (market.mid - self.arrival_mid) * (1 if self.spec.side is Side.BUY else -1)
            < -ARRIVAL_SCALE_BPS * 1e-4 * self.arrival_mid
        ):
            urgency = Urgency.HIGH  # a price this much better is taken
        return urgency

    def _escalate(self, events: list[AlgoEvent], now: datetime, t: float, urgency: Urgency) -> None:
        """Slices working at a lower urgency than the schedule now needs are pulled (after
        `ESCALATE_AFTER`), so what they hold is re-routed at the higher urgency; so is a slice
        already at high urgency that has not filled by then while behind (the market moved
        away from its price: re-priced where the market now is)."""
        for s in self.open_slices():
            if s.canceling or t - s.sent_at < ESCALATE_AFTER:
                continue
            if s.urgency < urgency:
                self._pull(events, now, s, f"behind schedule: re-route at {urgency.name} urgency")
            elif self.behind and s.urgency is Urgency.HIGH and s.filled < s.quantity:
                self._pull(events, now, s, "behind schedule, unfilled at HIGH urgency: re-price")

    def _cap(self, t: float, market: MarketSnapshot) -> int | None:
        """The most that may be sent without our share of the trailing window's volume
        exceeding the cap when its fills land (counting only the prints that will still be in
        the window then); None: no cap."""
        if self.max_participation >= 1.0:
            return None
        cap = self.max_participation * CAP_HEADROOM
        own = 0
        for at, quantity in reversed(self.fills):  # in time order: the window is at the end
            if at <= t - WINDOW:
                break
            own += quantity
        allowed = (cap * market.lasting_volume - own) / (1.0 - cap) - self.working
        return max(int(allowed) // self.spec.lot * self.spec.lot, 0)

    def _limit(self) -> Price | None:
        """The most aggressive price a slice may take: the parent's (or adjusted) limit, and
        the profile's band around the arrival price, whichever is tighter."""
        limit = self.limit_price
        bps = self.spec.params.price_limit_bps
        if bps > 0 and self.arrival_mid > 0:
            tick = self.spec.tick_nanos
            buy = self.spec.side is Side.BUY
            edge = self.arrival_mid * (1 + bps / 1e4 if buy else 1 - bps / 1e4)
            ticks = math.floor(edge / tick) if buy else math.ceil(edge / tick)
            band = Price(ticks * tick)
            if limit is None or _beyond(self.spec.side, limit, band):
                limit = band
        return limit

    def _refresh(self, events: list[AlgoEvent], now: datetime, t: float) -> None:
        """Iceberg: when nothing shows, show the next display quantity (varied by the
        profile's `display_randomize`)."""
        params = self.spec.params
        if self.open_slices() or self.leaves <= 0:
            return
        lot = self.spec.lot
        jitter = 1 + params.display_randomize * self._uniform(len(self.slices), "display")
        shown = max(int(params.display_quantity * jitter) // lot * lot, lot)
        self._record(
            events,
            SliceSent(
                execution_id=self.execution_id, order_id=self.spec.order_id,
                occurred_at=now, slice=len(self.slices),
                quantity=min(shown, self.leaves), urgency=self.urgency,
                limit_price=self._limit(), scheduled=self.executed + min(shown, self.leaves),
                executed=self.executed, reason="display refresh",
            ),
        )  # fmt: skip
        self._next_at = t + self._interval()

    def _cancel_stale(self, events: list[AlgoEvent], now: datetime, t: float) -> None:
        if self.spec.params.algorithm is AlgorithmKind.ICEBERG:
            return  # the displayed slice rests until it fills or the window closes
        timeout = CHILD_TIMEOUT
        reason = f"unfilled after {timeout:g} s: cancel, then re-route the rest"
        for s in self.open_slices():
            if not s.canceling and t - s.sent_at >= timeout:
                self._pull(events, now, s, reason)

    def _finish(self, events: list[AlgoEvent], now: datetime) -> None:
        """The window has closed: pull what works, send the rest as final slices, then
        complete."""
        live = self.open_slices()
        for s in live:
            if not s.final and not s.canceling:
                self._pull(events, now, s, "the window closed")
        if live:
            return
        finals = sum(s.final for s in self.slices.values())
        if finals >= FINAL_ATTEMPTS or self.leaves <= 0:
            self._record(
                events,
                ExecutionCompleted(
                    execution_id=self.execution_id, order_id=self.spec.order_id, occurred_at=now,
                    reason=f"the window closed with {self.leaves:,} unfilled",
                ),
            )  # fmt: skip
            return
        self._record(
            events,
            SliceSent(
                execution_id=self.execution_id, order_id=self.spec.order_id,
                occurred_at=now, slice=len(self.slices),
                quantity=self.leaves, urgency=Urgency.HIGH, limit_price=self._limit(),
                scheduled=self.spec.quantity, executed=self.executed, reason=FINAL,
            ),
        )  # fmt: skip

    def _cancel_open(self, events: list[AlgoEvent], now: datetime, reason: str) -> None:
        for s in self.open_slices():
            if not s.canceling:
                self._pull(events, now, s, reason)

    def _pull(self, events: list[AlgoEvent], now: datetime, s: Slice, reason: str) -> None:
        """Asks for the slice's children to be canceled; what they leave is decided again."""
        self._record(
            events,
            SliceCancelRequested(
                execution_id=self.execution_id,
                order_id=self.spec.order_id,
                occurred_at=now,
                slice=s.number,
                reason=reason,
            ),
        )

    def _interval(self) -> float:
        params = self.spec.params
        if params.algorithm is AlgorithmKind.TWAP and params.randomize > 0:
            jitter = params.randomize * self._uniform(len(self.slices), "time")
            return params.slice_seconds * (1 + jitter)
        if params.algorithm is AlgorithmKind.POV:
            return min(params.slice_seconds, 5.0)
        return params.slice_seconds

    def _expected_volume(self, since: float, until: float) -> float:
        calendar = self.calendar
        return self.spec.adv * (calendar.volume_fraction(until) - calendar.volume_fraction(since))

    def _uniform(self, n: int, what: str) -> float:
        """A number in [−1, 1) fixed by the execution, `n` and `what`: the same after a replay."""
        return zlib.crc32(f"{self.execution_id}:{what}:{n}".encode()) / 2**31 - 1.0

    def _require(self, states: set[ExecutionState], action: str) -> None:
        if self.state not in states:
            raise FailedPrecondition(
                "EXECUTION_" + self.state.name,
                f"execution {self.execution_id} is {self.state.name.lower()}: cannot {action}",
                state=self.state.name,
            )


def _beyond(side: Side, price: Price, limit: Price) -> bool:
    """Whether `price` is more aggressive than `limit` for `side`."""
    return price.nanos > limit.nanos if side is Side.BUY else price.nanos < limit.nanos
