"""`fillpath verify`: replay every order stream and report every inconsistency found.

Checks, per stream: the hash chain (each event's stored hash matches its content and its
predecessor's hash — any edit after recording shows), version continuity from 1 without gaps,
that every event is a legal transition of the order lifecycle, the fill invariants (cum qty =
Σ fills for every order, the parent's = Σ its children's, never above the order quantity, never
negative leaves), and that stored snapshots agree with the events they summarise (their state,
the hash they chain to, and that the events they summarise are all still there). Each problem
is reported with its stream, version and global position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.core.errors import FillpathError
from fillpath.core.events import ChildOrderFilled, OrderEvent, OrderFilled, OrderPartiallyFilled
from fillpath.core.orders import REACHABLE_STATUSES
from fillpath.core.parent_order import ParentOrder
from fillpath.infra.codec import EventCodec, canonical_json, encode
from fillpath.infra.event_store import GENESIS_HASH, RawEvent
from fillpath.infra.postgres.event_store import PostgresEventStore, raw_event_hash
from fillpath.oms.service import SNAPSHOT_SCHEMA


@dataclass(frozen=True, slots=True)
class Inconsistency:
    stream_id: str
    version: int
    position: int
    problem: str


@dataclass(slots=True)
class VerificationReport:
    streams: int = 0
    events: int = 0
    inconsistencies: list[Inconsistency] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.inconsistencies


def verify(
    pool: ConnectionPool[Any],
    store: PostgresEventStore,
    codec: EventCodec,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VerificationReport:
    with pool.connection() as conn:
        streams = [r[0] for r in conn.execute("SELECT DISTINCT stream_id FROM events ORDER BY 1")]
        snapshots = {
            r[0]: (r[1], r[2], r[3], bytes(r[4]))
            for r in conn.execute(
                "SELECT stream_id, stream_version, schema_version, state, stream_hash"
                " FROM snapshots"
            )
        }
    report = VerificationReport()
    for done, stream_id in enumerate(streams, start=1):
        raw = store.read_raw_stream(stream_id)
        report.streams += 1
        report.events += len(raw)
        report.inconsistencies.extend(
            _verify_stream(stream_id, raw, codec, snapshots.get(stream_id))
        )
        progress(done, len(streams))
    return report


def _verify_stream(
    stream_id: str,
    raw_events: list[RawEvent],
    codec: EventCodec,
    snapshot: tuple[int, int, Any, bytes] | None,
) -> list[Inconsistency]:
    found: list[Inconsistency] = []
    previous_hash = GENESIS_HASH
    aggregate: ParentOrder | None = None
    fills: dict[str, int] = {}
    parent_fills = 0
    broken = False
    last: RawEvent | None = None
    for index, raw in enumerate(raw_events):
        last = raw

        def report(problem: str, raw: RawEvent = raw) -> None:
            found.append(Inconsistency(stream_id, raw.version, raw.position, problem))

        if raw.version != index + 1:
            report(f"version {raw.version} where {index + 1} was expected (gap or duplicate)")
        if raw.prev_hash != previous_hash:
            report("hash chain broken: prev_hash is not the previous event's hash")
        if raw_event_hash(raw) != raw.hash:
            report("hash mismatch: the event was changed after it was recorded")
        previous_hash = raw.hash
        if broken:
            continue
        try:
            event = codec.from_payload(raw.event_type, raw.schema_version, raw.payload)
            if not isinstance(event, OrderEvent):
                continue  # another domain's fact (a routing decision): its chain is all to check
            if aggregate is None:
                aggregate = ParentOrder.from_events([(raw.version, event)])
            else:
                aggregate.apply(event, raw.version)
        except (FillpathError, ValueError, TypeError, KeyError, AssertionError) as err:
            report(f"{raw.event_type} cannot be applied: {err}")
            broken = True
            continue
        if isinstance(event, ChildOrderFilled):
            fills[event.order_id] = fills.get(event.order_id, 0) + event.quantity
        elif isinstance(event, OrderPartiallyFilled | OrderFilled):
            parent_fills += event.quantity
        if snapshot and snapshot[0] == raw.version:
            if snapshot[3] != raw.hash:
                report(f"the snapshot at version {raw.version} names another event's hash")
            if snapshot[1] == SNAPSHOT_SCHEMA and canonical_json(
                encode(aggregate.snapshot())
            ) != canonical_json(snapshot[2]):
                report(f"the snapshot at version {raw.version} disagrees with the events")
    if snapshot and last is not None and snapshot[0] > last.version:
        found.append(
            Inconsistency(
                stream_id,
                last.version,
                last.position,
                f"a snapshot at version {snapshot[0]}, past the last event: events are missing",
            )
        )
    if aggregate is None or broken or last is None:
        return found

    def at_end(problem: str) -> None:
        assert last is not None
        found.append(Inconsistency(stream_id, last.version, last.position, problem))

    orders = [aggregate.parent, *aggregate.children.values()]
    for order in orders:
        if order.status not in REACHABLE_STATUSES:
            at_end(f"{order.order_id} is in an unreachable status {order.status.name}")
        if order.filled_quantity > order.quantity:
            at_end(f"{order.order_id} filled {order.filled_quantity} of {order.quantity}")
        if order.leaves_quantity < 0:
            at_end(f"{order.order_id} has negative leaves {order.leaves_quantity}")
    for child in aggregate.children.values():
        if child.filled_quantity != fills.get(child.order_id, 0):
            at_end(
                f"{child.order_id} cum qty {child.filled_quantity} != Σ fills "
                f"{fills.get(child.order_id, 0)}"
            )
    children_total = sum(fills.values())
    if aggregate.parent.filled_quantity != children_total or parent_fills != children_total:
        at_end(
            f"parent cum qty {aggregate.parent.filled_quantity} (Σ parent fills {parent_fills}) "
            f"!= Σ child fills {children_total}"
        )
    return found
