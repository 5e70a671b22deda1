"""The facts of an algorithm execution: frozen, past tense, one class per decision.

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

from fillpath.algo.params import AlgoParams
from fillpath.core.enums import Side, Urgency
from fillpath.core.price import Price


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoEvent:
    schema_version: ClassVar[int] = 1

    execution_id: str
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
    spec: ExecutionSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStarted(AlgoEvent):
    """The window opened; the arrival price is the mid at this moment."""

    arrival_mid_nanos: int
    market_volume: int
    """The market's volume so far (MarketSnapshot.volume): VWAP and POV count from here."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceSent(AlgoEvent):
    """A slice goes to the router and the OMS; child ids are `<execution>-<slice>-<n>`."""

    slice: int
    quantity: int
    urgency: Urgency
    limit_price: Price | None
    scheduled: int
    """Where the schedule said the execution should be (shares)."""
    executed: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceFilled(AlgoEvent):
    slice: int
    exec_id: str
    quantity: int
    price: Price


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceClosed(AlgoEvent):
    """Every child order of the slice is done (filled, canceled, rejected or expired)."""

    slice: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceCancelRequested(AlgoEvent):
    slice: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviationRecorded(AlgoEvent):
    """The execution fell behind its schedule by more than a slice (`behind`), or caught up."""

    scheduled: int
    executed: int
    behind: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionPaused(AlgoEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResumed(AlgoEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionAdjusted(AlgoEvent):
    """New values in flight; None leaves a value as it was."""

    end: datetime | None = None
    max_participation: float | None = None
    urgency: Urgency | None = None
    limit_price: Price | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCompleted(AlgoEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCanceled(AlgoEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionFailed(AlgoEvent):
    reason: str
