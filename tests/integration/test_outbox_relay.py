"""The outbox relay publishes the event log in position order, resumes from its checkpoint,
and together with the consumer inbox gives each consumer every event exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from fillpath.api.v1 import events_pb2
from fillpath.core.events import EVENT_TYPES, OrderCancelRequested
from fillpath.infra.bus import ORDERS_TOPIC, BusMessage, InProcessBus
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.event_proto import event_of
from fillpath.infra.event_store import CommandContext, Transaction
from fillpath.infra.outbox import OutboxRelay, to_message
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.inbox import Inbox
from fillpath.infra.postgres.notifier import PositionNotifier
from tests.factories import at
from tests.integration.test_bus_contract import wait_for


@dataclass
class Outbox:
    """An event store, an in-process bus and the relays started between them."""

    pool: ConnectionPool[Any]
    store: PostgresEventStore
    bus: InProcessBus
    notifier: PositionNotifier
    relays: list[OutboxRelay] = field(default_factory=list)

    def relay(self, batch_size: int = 500) -> OutboxRelay:
        relay = OutboxRelay(
            self.pool, self.store, self.bus, self.notifier, _orders, batch_size=batch_size
        )
        self.relays.append(relay)
        return relay

    def append(self, stream: str, n: int, start: int = 0) -> None:
        events = [
            OrderCancelRequested(order_id=stream, occurred_at=at(i), reason=str(i))
            for i in range(n)
        ]
        self.store.append(stream, start, events, CommandContext())


def _orders(_event_type: str) -> str:
    return ORDERS_TOPIC


@pytest.fixture
def outbox(pool: ConnectionPool[Any], pg_dsn: str) -> Iterator[Outbox]:
    parts = Outbox(
        pool=pool,
        store=PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock()),
        bus=InProcessBus(),
        notifier=PositionNotifier(pg_dsn).start(),
    )
    yield parts
    for relay in parts.relays:
        relay.stop()
    parts.notifier.stop()
    parts.bus.close()


def probe(outbox: Outbox) -> list[BusMessage]:
    received: list[BusMessage] = []
    outbox.bus.subscribe(ORDERS_TOPIC, "probe", received.append)
    return received


def test_relay_publishes_every_event_in_position_order_with_its_envelope(outbox: Outbox) -> None:
    received = probe(outbox)
    relay = outbox.relay(batch_size=7).start()
    for i in range(5):
        outbox.append(f"P{i}", 6)
    wait_for(lambda: len(received) == 30)
    recorded = outbox.store.read_all(0, 100)
    assert [m.position for m in received] == [r.position for r in recorded]
    envelope = events_pb2.EventEnvelope.FromString(received[0].payload)
    assert envelope.stream_id == received[0].key == "P0"
    assert event_of(envelope, {c.__name__: c for c in EVENT_TYPES}) == recorded[0].event
    wait_for(lambda: relay.checkpoint() == received[-1].position)


def test_relay_restarted_after_a_crash_resumes_and_consumers_see_each_event_once(
    outbox: Outbox,
) -> None:
    with outbox.pool.connection() as conn:
        conn.execute(
            "CREATE TABLE seen (seq bigserial, event_id text, stream text, position bigint)"
        )

    def consume(tx: Transaction, m: BusMessage) -> None:
        tx.execute(
            "INSERT INTO seen (event_id, stream, position) VALUES (%s, %s, %s)",
            (m.event_id, m.key, m.position),
        )

    outbox.bus.subscribe(
        ORDERS_TOPIC, "consumer", Inbox(outbox.pool, "consumer").handler(consume), consumers=3
    )
    for i in range(4):
        outbox.append(f"P{i}", 10)

    # A relay that dies after publishing a batch and before recording its checkpoint.
    crashed = outbox.relay(batch_size=15)
    outbox.bus.publish([to_message(r, ORDERS_TOPIC) for r in outbox.store.read_all(0, 15)])
    assert crashed.checkpoint() == 0

    outbox.relay(batch_size=15).start()
    writer = threading.Thread(target=lambda: [outbox.append("P9", 1, v) for v in range(10)])
    writer.start()
    writer.join()
    with outbox.pool.connection() as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM seen").fetchone() == (50,))
        # In the order the consumers handled them: per order, the order of the log.
        rows = conn.execute("SELECT stream, position FROM seen ORDER BY seq").fetchall()
    assert len({p for _, p in rows}) == 50  # each event once
    by_stream: dict[str, list[int]] = {}
    for stream, position in rows:
        by_stream.setdefault(stream, []).append(position)
    assert all(ps == sorted(ps) for ps in by_stream.values())


def test_a_stray_notification_does_not_stop_the_relay(outbox: Outbox) -> None:
    received = probe(outbox)
    outbox.relay().start()
    with outbox.pool.connection() as conn:
        conn.execute("NOTIFY fillpath_events, 'not a position'")
    outbox.append("P1", 3)
    wait_for(lambda: len(received) == 3)
