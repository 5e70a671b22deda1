"""The fact of a strategy choice: which algorithm profile, urgency and venues a parent order gets,
and why.

The strategy service (fillpath.strategy) records one `StrategySelected` per parent order that
arrives without naming its algorithm, in the event log every service shares, before anything
acts on it; the outbox relay publishes it on the strategy topic, where the algorithm engine
starts the execution from it. While the order is worked, a material change of the market's
regime is a `StrategyRecommended` in the same stream, which the engine applies. Field names
match events.proto.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from fillpath.core.enums import AlgorithmKind, Urgency


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySelected:
    schema_version: ClassVar[int] = 1

    order_id: str
    occurred_at: datetime
    algo_profile: str
    algorithm: AlgorithmKind
    urgency: Urgency | None = None
    params: tuple[tuple[str, float], ...] = ()
    """Overrides of the profile's parameters (sorted by name), within its bounds."""
    venue_preferences: tuple[str, ...] = ()
    excluded_venues: tuple[str, ...] = ()
    allow_dark: bool = True
    strategy: str = ""
    """The ExecutionStrategy resource whose rules applied."""
    rule: str = ""
    """The rule that matched ("" when the strategy's default profile applied)."""
    model_version: str = ""
    """The cost model that ranked the candidates ("" when the rule's choice stood)."""
    predicted_cost_bps: float = 0.0
    predicted_risk_bps: float = 0.0
    features: tuple[tuple[str, float], ...] = ()
    """What the choice was made on (sorted by name)."""
    candidate_costs: tuple[tuple[str, float], ...] = ()
    """Each candidate profile's predicted cost in bps (empty without a model)."""
    explanation: str = ""
    max_participation_bps: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    """The participation cap and window, kept from the order's own instructions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyRecommended:
    """Mid-execution: the regime changed materially since the choice; the parameters the
    strategy service recommends (within the profile's bounds) for the algorithm engine to
    apply."""

    schema_version: ClassVar[int] = 1

    order_id: str
    occurred_at: datetime
    regime_before: str
    regime_now: str
    urgency: Urgency | None = None
    reason: str = ""


STRATEGY_EVENT_TYPES: tuple[type, ...] = (StrategySelected, StrategyRecommended)
