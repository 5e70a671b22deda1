"""The facts of an algorithm execution: frozen, past tense, one class per decision.

They live in the core, beside the order events and routing decisions, because they share the
event log: the outbox relay publishes each one as an `AlgorithmExecution` on the algo topic
(its `kind` names which), for the monitor and any auditor.

Every decision the engine takes is one of these, recorded before it is acted on: a
`SliceSent` is written before the slice is routed and placed (its child orders carry ids
derived from the slice, so placing it again after a crash is a no-op at the OMS), a
`SliceCancelRequested` before the cancels go out. An execution is rebuilt by replaying them
(`Execution.from_events`), which is how an algo process resumes after a crash and how an
execution is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from fillpath.core.enums import AlgoEventKind, AlgorithmKind, Side, Urgency
from fillpath.core.price import Price
from fillpath.core.routing import RouteAllocation


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoParams:
    """What one execution runs with."""

    algorithm: AlgorithmKind
    profile: str
    urgency: Urgency
    participation: float
    """POV: the target share of market volume."""
    min_participation: float
    max_participation: float
    """No trailing window may see more than this share of the market's volume (1: no cap)."""
    slice_seconds: float
    min_slice: int
    randomize: float
    risk_aversion: float
    display_quantity: int
    display_randomize: float
    price_limit_bps: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoEvent:
    schema_version: ClassVar[int] = 1
    kind: ClassVar[AlgoEventKind]

    execution_id: str
    order_id: str
    """The parent order the execution works."""
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSpec:
    """What an execution was asked to do."""

    execution_id: str
    order_id: str
    symbol: str
    side: Side
    quantity: int
    lot: int
    tick_nanos: int
    limit_price: Price | None
    """The parent's limit: no slice is ever priced beyond it."""
    start: datetime
    end: datetime
    params: AlgoParams
    adv: int
    """The instrument's average daily volume (VWAP's volume prior)."""
    daily_volatility: float
    """The instrument's reference volatility, until the prints give an estimate."""
    eta: float
    """Temporary impact, $ per (share per day) (implementation shortfall, arrival price)."""
    gamma: float
    """Permanent impact, $ per share."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCreated(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.CREATED
    spec: ExecutionSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStarted(AlgoEvent):
    """The window opened; the arrival price is the mid at this moment."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.STARTED
    arrival_mid_nanos: int
    market_volume: int
    """The market's volume so far (MarketSnapshot.volume): VWAP and POV count from here."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceSent(AlgoEvent):
    """A slice goes to the router and the OMS; child ids are `<execution>-<slice>-<n>`."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.SLICE_SENT
    slice: int
    quantity: int
    urgency: Urgency
    limit_price: Price | None
    scheduled: int
    """Where the schedule said the execution should be (shares)."""
    executed: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceRouted(AlgoEvent):
    """The router's answer for a slice, recorded before its child orders are placed: child `n`
    is `allocations[n]` with client order id `<execution>-<slice>-<n>`, so an algo process that
    restarts places exactly these again (the OMS returns the existing children) instead of
    asking the router anew."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.SLICE_ROUTED
    slice: int
    decision_id: str
    allocations: tuple[RouteAllocation, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceFilled(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.SLICE_FILLED
    slice: int
    exec_id: str
    quantity: int
    price: Price


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceClosed(AlgoEvent):
    """Every child order of the slice is done (filled, canceled, rejected or expired)."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.SLICE_CLOSED
    slice: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceCancelRequested(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.SLICE_CANCEL_REQUESTED
    slice: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviationRecorded(AlgoEvent):
    """The execution fell behind its schedule by more than a slice (`behind`), or caught up."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.DEVIATION
    scheduled: int
    executed: int
    behind: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionPaused(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.PAUSED
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResumed(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.RESUMED


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionAdjusted(AlgoEvent):
    """New values in flight; None leaves a value as it was."""

    kind: ClassVar[AlgoEventKind] = AlgoEventKind.ADJUSTED
    end: datetime | None = None
    max_participation: float | None = None
    urgency: Urgency | None = None
    limit_price: Price | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCompleted(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.COMPLETED
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCanceled(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.CANCELED
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionFailed(AlgoEvent):
    kind: ClassVar[AlgoEventKind] = AlgoEventKind.FAILED
    reason: str


ALGO_EVENT_TYPES: tuple[type[AlgoEvent], ...] = (
    ExecutionCreated,
    ExecutionStarted,
    SliceSent,
    SliceRouted,
    SliceFilled,
    SliceClosed,
    SliceCancelRequested,
    DeviationRecorded,
    ExecutionPaused,
    ExecutionResumed,
    ExecutionAdjusted,
    ExecutionCompleted,
    ExecutionCanceled,
    ExecutionFailed,
)


def child_client_id(execution_id: str, slice_: int, n: int) -> str:
    """The client order id of a slice's `n`-th child order."""
    return f"{execution_id}-{slice_}-{n}"
