"""Events and their protobuf twins stay the same, field for field."""

from __future__ import annotations

from typing import Any

import pytest

from fillpath.api.v1 import events_pb2
from fillpath.core.events import EVENT_TYPES
from fillpath.core.executions import AlgoEvent
from fillpath.infra.bus import ALGO_TOPIC, topic_of
from fillpath.infra.event_proto import algorithm_execution, from_proto, payload_field, to_proto
from tests.factories import sample_algo_events, sample_events


@pytest.mark.parametrize(
    "event",
    [e for e in sample_events() if not isinstance(e, AlgoEvent)],
    ids=lambda e: type(e).__name__,
)
def test_every_event_round_trips_through_its_proto_message(event: Any) -> None:
    name = type(event).__name__
    message = getattr(events_pb2, name)()
    to_proto(event, message)
    wire = type(message).FromString(message.SerializeToString())
    assert from_proto(type(event), wire) == event


def test_every_event_type_has_a_place_in_the_envelope() -> None:
    fields = events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"].fields
    names = {f.name for f in fields}
    assert {payload_field(cls.__name__) for cls in EVENT_TYPES} <= names


def test_unset_optional_fields_come_back_as_none() -> None:
    event = sample_events()[2]  # OrderAccepted
    bare = type(event)(order_id=event.order_id, occurred_at=event.occurred_at)
    message = to_proto(bare, events_pb2.OrderAccepted())
    assert not message.HasField("exec_id")
    assert from_proto(type(event), message) == bare


def test_every_algorithm_execution_event_is_published_as_one_message_kind_by_kind() -> None:
    events = sample_algo_events()
    messages = []
    for event in events:
        assert payload_field(type(event).__name__) == "algorithm_execution"
        assert topic_of(type(event).__name__) == ALGO_TOPIC
        message = events_pb2.AlgorithmExecution()
        algorithm_execution(event, message)
        messages.append(events_pb2.AlgorithmExecution.FromString(message.SerializeToString()))
    kinds = [events_pb2.AlgoEventKind.Name(m.kind) for m in messages]
    assert kinds == [f"ALGO_EVENT_KIND_{e.kind.name}" for e in events]
    assert len(set(kinds)) == len(events)
    assert all(m.execution_id == "X-1" and m.order_id == "P-1" for m in messages)
    created, _, sent, routed, filled, *_ = messages
    assert (created.symbol, created.quantity, created.algo_profile) == (
        "ACME",
        9_000,
        "is-balanced",
    )
    assert created.max_participation_bps == 2_000
    assert created.limit_price_nanos == 99_500_000_000
    assert (sent.slice, sent.slice_quantity, sent.scheduled_quantity) == (3, 300, 1_200)
    assert sent.reason == "behind by 1.2 slices"
    assert [(a.venue, a.quantity, a.post_only) for a in routed.allocations] == [
        ("orbit", 300, True)
    ]
    assert (filled.exec_id, filled.fill_quantity, filled.fill_price_nanos) == (
        "E-5",
        200,
        100_010_000_000,
    )
