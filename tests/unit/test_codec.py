"""The stored JSON form of events and snapshots, and upcasting of old payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import pytest

from fillpath.core.errors import IntegrityError
from fillpath.core.events import EVENT_TYPES
from fillpath.core.parent_order import ParentOrderSnapshot
from fillpath.infra.codec import EventCodec, canonical_json, decode, encode
from tests.factories import accepted_parent, at, child_request, fill, place, sample_events


def test_sample_covers_every_event_type() -> None:
    assert {type(e) for e in sample_events()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_every_event_survives_the_json_store_form(event: Any) -> None:
    codec = EventCodec(EVENT_TYPES)
    stored = json.loads(json.dumps(codec.to_payload(event)))
    assert codec.from_payload(type(event).__name__, 1, stored) == event


def test_stored_form_is_readable_json_with_integer_nanos() -> None:
    filled = next(e for e in sample_events() if type(e).__name__ == "ChildOrderFilled")
    payload = encode(filled)
    assert payload["price"] == 100_005_000_000
    assert payload["liquidity"] == "MIDPOINT"
    assert payload["executed_at"] == "2026-11-20T14:30:09.500000Z"


def test_snapshot_survives_the_json_store_form() -> None:
    aggregate = accepted_parent()
    (child,) = place(aggregate, child_request(1))
    aggregate.apply_report(fill(child, "e1", 300), at(2))
    snapshot = aggregate.snapshot()
    assert decode(ParentOrderSnapshot, json.loads(json.dumps(encode(snapshot)))) == snapshot


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == canonical_json(
        {"a": [1, {"c": "é", "d": 2}], "b": 1}
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RenamedThing:
    """A test event at schema version 3: v1 called `qty` what v2 calls `quantity`, and v3
    added `venue` (default 'UNKNOWN' for events recorded before)."""

    schema_version: ClassVar[int] = 3
    order_id: str
    occurred_at: datetime
    quantity: int
    venue: str


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    payload["quantity"] = payload.pop("qty")
    return payload


def _v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    return payload | {"venue": "UNKNOWN"}


def test_old_payloads_are_upcast_one_step_at_a_time_on_read() -> None:
    codec = EventCodec(
        [RenamedThing], {("RenamedThing", 1): _v1_to_v2, ("RenamedThing", 2): _v2_to_v3}
    )
    stored_v1 = {"order_id": "P1", "occurred_at": "2026-11-20T14:30:00.000000Z", "qty": 7}
    event = codec.from_payload("RenamedThing", 1, stored_v1)
    assert event == RenamedThing(order_id="P1", occurred_at=at(0), quantity=7, venue="UNKNOWN")
    assert stored_v1 == {"order_id": "P1", "occurred_at": "2026-11-20T14:30:00.000000Z", "qty": 7}


def test_missing_upcaster_or_unknown_type_is_an_integrity_error() -> None:
    codec = EventCodec([RenamedThing], {("RenamedThing", 1): _v1_to_v2})
    with pytest.raises(IntegrityError, match="no upcaster for RenamedThing from schema version 2"):
        codec.from_payload(
            "RenamedThing", 1, {"order_id": "P", "occurred_at": "2026-11-20T14:30:00Z", "qty": 1}
        )
    with pytest.raises(IntegrityError, match="unknown event type"):
        codec.from_payload("Nope", 1, {})
