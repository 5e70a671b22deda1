"""Domain dataclasses to and from their protobuf twins, by one set of rules.

The events and order terms in fillpath.core have protobuf messages with the same field names
(events.proto); this walks the dataclass fields instead of mapping each type by hand. Rules:
`Price` field ``x`` ↔ int64 ``x_nanos``; datetime ↔ google.protobuf.Timestamp; IntEnum ↔ the
proto enum with the same numbers (None ↔ 0, UNSPECIFIED); nested dataclass ↔ message; tuple of
dataclasses ↔ repeated message; tuple of (key, value) pairs ↔ map; ``T | None`` ↔ a field with
presence (proto3 ``optional`` or a message). tests/unit/test_event_proto.py round-trips every
event type, which is what holds the two definitions together.

The algorithm execution's events are the exception: the engine records one class per decision
(fillpath.core.executions), and each is published as the one `AlgorithmExecution` message, its
`kind` naming the decision (`algorithm_execution`, below, maps them by hand).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, TypeVar, cast

from google.protobuf.message import Message

from fillpath.api.v1 import common_pb2, events_pb2
from fillpath.core.executions import (
    ALGO_EVENT_TYPES,
    AlgoEvent,
    DeviationRecorded,
    ExecutionAdjusted,
    ExecutionCreated,
    SliceFilled,
    SliceRouted,
    SliceSent,
)
from fillpath.core.price import Price
from fillpath.infra.event_store import RecordedEvent

T = TypeVar("T")


def to_proto(value: object, message: Message) -> Message:
    """Fills `message` from the dataclass `value` and returns it."""
    assert dataclasses.is_dataclass(value)
    assert not isinstance(value, type)
    descriptor = message.DESCRIPTOR
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is None:
            continue
        if isinstance(item, Price):
            setattr(message, f"{field.name}_nanos", item.nanos)
        elif isinstance(item, datetime):
            getattr(message, field.name).FromDatetime(item)
        elif isinstance(item, IntEnum):
            setattr(message, field.name, item.value)
        elif dataclasses.is_dataclass(item):
            to_proto(item, getattr(message, field.name))
        elif isinstance(item, tuple | set | frozenset):
            target = getattr(message, field.name)
            proto_field = descriptor.fields_by_name[field.name]
            entries = sorted(item) if isinstance(item, set | frozenset) else item
            if (
                proto_field.message_type is not None
                and proto_field.message_type.GetOptions().map_entry
            ):
                target.update(dict(entries))
            elif proto_field.message_type is not None:
                for entry in entries:
                    to_proto(entry, target.add())
            else:
                target.extend(entries)
        else:
            setattr(message, field.name, item)
    return message


def from_proto(cls: type[T], message: Message) -> T:
    """Builds a `cls` dataclass from `message`."""
    kwargs: dict[str, Any] = {}
    for name, tp in _field_types(cast(type, cls)).items():
        kwargs[name] = _value(message, name, tp)
    return cls(**kwargs)


_ALGO_EVENT_NAMES = frozenset(cls.__name__ for cls in ALGO_EVENT_TYPES)


def payload_field(event_type: str) -> str:
    """The envelope's oneof field for an event type: OrderSubmitted → order_submitted (and
    every algorithm execution event → algorithm_execution)."""
    if event_type in _ALGO_EVENT_NAMES:
        return "algorithm_execution"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()


def envelope_of(recorded: RecordedEvent) -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(
        position=recorded.position,
        stream_id=recorded.stream_id,
        stream_version=recorded.version,
        event_type=recorded.event_type,
        schema_version=recorded.schema_version,
        hash=recorded.hash.hex(),
    )
    envelope.recorded_at.FromDatetime(recorded.recorded_at)
    to_proto(recorded.metadata, envelope.metadata)
    if isinstance(recorded.event, AlgoEvent):
        algorithm_execution(recorded.event, envelope.algorithm_execution)
    else:
        to_proto(recorded.event, getattr(envelope, payload_field(recorded.event_type)))
    return envelope


def algorithm_execution(event: AlgoEvent, message: events_pb2.AlgorithmExecution) -> None:
    """Fills the `AlgorithmExecution` message of one algorithm execution event."""
    message.execution_id = event.execution_id
    message.order_id = event.order_id
    message.occurred_at.FromDatetime(event.occurred_at)
    message.kind = events_pb2.AlgoEventKind.ValueType(event.kind.value)
    message.reason = getattr(event, "reason", "")
    message.slice = getattr(event, "slice", 0)
    match event:
        case ExecutionCreated(spec=spec):
            message.algorithm = common_pb2.AlgorithmKind.ValueType(spec.params.algorithm.value)
            message.algo_profile = spec.params.profile
            message.symbol = spec.symbol
            message.side = common_pb2.Side.ValueType(spec.side.value)
            message.quantity = spec.quantity
            message.start_time.FromDatetime(spec.start)
            message.end_time.FromDatetime(spec.end)
            message.max_participation_bps = round(spec.params.max_participation * 10_000)
            if spec.limit_price is not None:
                message.limit_price_nanos = spec.limit_price.nanos
        case SliceSent():
            message.slice_quantity = event.quantity
            message.urgency = common_pb2.Urgency.ValueType(event.urgency.value)
            message.scheduled_quantity = event.scheduled
            message.executed_quantity = event.executed
            if event.limit_price is not None:
                message.limit_price_nanos = event.limit_price.nanos
        case SliceRouted():
            message.decision_id = event.decision_id
            for allocation in event.allocations:
                to_proto(allocation, message.allocations.add())
        case SliceFilled():
            message.exec_id = event.exec_id
            message.fill_quantity = event.quantity
            message.fill_price_nanos = event.price.nanos
        case DeviationRecorded():
            message.scheduled_quantity = event.scheduled
            message.executed_quantity = event.executed
        case ExecutionAdjusted():
            if event.end is not None:
                message.end_time.FromDatetime(event.end)
            if event.max_participation is not None:
                message.max_participation_bps = round(event.max_participation * 10_000)
            if event.urgency is not None:
                message.urgency = common_pb2.Urgency.ValueType(event.urgency.value)
            if event.limit_price is not None:
                message.limit_price_nanos = event.limit_price.nanos


def event_of(envelope: events_pb2.EventEnvelope, event_types: dict[str, type[T]]) -> T:
    """The domain event inside an envelope."""
    cls = event_types[envelope.event_type]
    return from_proto(cls, getattr(envelope, payload_field(envelope.event_type)))


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _value(message: Message, name: str, tp: Any) -> Any:
    optional = False
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = True
        origin = typing.get_origin(tp)
    if tp is Price:
        proto_name = f"{name}_nanos"
        if optional and not message.HasField(proto_name):
            return None
        return Price(getattr(message, proto_name))
    if optional and _has_presence(message, name) and not message.HasField(name):
        return None
    raw = getattr(message, name)
    if tp is datetime:
        return raw.ToDatetime(tzinfo=UTC)
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        return tp(raw) if raw else None
    if dataclasses.is_dataclass(tp):
        return from_proto(typing.cast(type, tp), raw)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        if typing.get_origin(inner) is tuple:
            return tuple(sorted(raw.items()))
        if dataclasses.is_dataclass(inner):
            return tuple(from_proto(typing.cast(type, inner), m) for m in raw)
        return tuple(raw)
    if origin in (set, frozenset):
        return origin(raw)
    return raw


def _has_presence(message: Message, name: str) -> bool:
    return bool(message.DESCRIPTOR.fields_by_name[name].has_presence)
