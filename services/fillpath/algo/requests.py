"""What starting an execution asks for, and how it is read from the proto's
`ExecutionInstructions` — those of a StartExecution request, or those a parent order carries
when it names its algorithm (the engine then starts it when the order is accepted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from fillpath.api.v1 import common_pb2
from fillpath.core.enums import AlgorithmKind, Urgency
from fillpath.core.errors import InvalidArgument


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRequest:
    order_id: str
    algo_profile: str = ""
    algorithm: AlgorithmKind | None = None
    urgency: Urgency | None = None
    max_participation_bps: int = 0
    params: Mapping[str, float] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None


def start_request(
    order_id: str, instructions: common_pb2.ExecutionInstructions, path: str = "instructions"
) -> StartRequest:
    """Raises InvalidArgument naming `path`'s field when an enum is out of range."""
    i = instructions
    return StartRequest(
        order_id=order_id,
        algo_profile=i.algo_profile,
        algorithm=enum_of(AlgorithmKind, f"{path}.algorithm", i.algorithm),  # type: ignore[arg-type]
        urgency=enum_of(Urgency, f"{path}.urgency", i.urgency),  # type: ignore[arg-type]
        max_participation_bps=i.max_participation_bps,
        params=dict(i.params),
        start=time_of(i.start_time, i.HasField("start_time")),
        end=time_of(i.end_time, i.HasField("end_time")),
    )


def names_an_algorithm(instructions: common_pb2.ExecutionInstructions) -> bool:
    """The order says how it is to be executed (else the strategy service chooses)."""
    return bool(instructions.algorithm or instructions.algo_profile)


def time_of(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def enum_of(kind: type[AlgorithmKind] | type[Urgency], field: str, value: int) -> object:
    """The domain enum for a proto value (None for 0, unspecified)."""
    if not value:
        return None
    if value not in kind._value2member_map_:
        names = ", ".join(m.name for m in kind)
        raise InvalidArgument.single(field, value, f"one of {names}")
    return kind(value)
