"""Events and their protobuf twins stay the same, field for field."""

from __future__ import annotations

from typing import Any

import pytest

from fillpath.api.v1 import events_pb2
from fillpath.core.events import EVENT_TYPES
from fillpath.infra.event_proto import from_proto, payload_field, to_proto
from tests.factories import sample_events


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
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
