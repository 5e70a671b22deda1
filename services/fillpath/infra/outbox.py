"""The outbox relay: publishes the event log to the bus, in position order, at least once.

The events table is the outbox (ARCHITECTURE.md §3). The relay reads events after its
checkpoint, publishes them, and only then moves the checkpoint. A crash between the two
publishes a batch again, which consumers absorb by event id; nothing is ever skipped, because
appends make positions visible strictly in order. Over Pulsar the broker also remembers the
last position it stored from the relay, so a restarted relay sends nothing twice.

A relay whose bus reports that another publisher took over (`PublisherFenced`) stops for good
and calls `on_fenced`: two relays never publish at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.infra.bus import Bus, BusMessage, PublisherFenced
from fillpath.infra.event_proto import envelope_of
from fillpath.infra.event_store import RecordedEvent
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.notifier import PositionNotifier

log = logging.getLogger(__name__)


def to_message(recorded: RecordedEvent, topic: str) -> BusMessage:
    return BusMessage(
        topic=topic,
        key=recorded.stream_id,
        event_id=recorded.metadata.event_id,
        position=recorded.position,
        event_type=recorded.event_type,
        payload=envelope_of(recorded).SerializeToString(),
    )


class OutboxRelay:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        store: PostgresEventStore,
        bus: Bus,
        notifier: PositionNotifier,
        topic_of: Callable[[str], str],
        *,
        name: str = "bus",
        batch_size: int = 500,
        on_fenced: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._bus = bus
        self._notifier = notifier
        self._topic_of = topic_of
        self._name = name
        self._batch_size = batch_size
        self._stopped = threading.Event()
        self._on_fenced = on_fenced
        self._thread = threading.Thread(target=self._run, name=f"relay-{name}", daemon=True)

    def checkpoint(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT position FROM relay_checkpoints WHERE relay = %s", (self._name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def publish_batch(self, after: int) -> int:
        """Publishes the next batch after position `after`; returns the new checkpoint."""
        batch = self._store.read_raw(after, self._batch_size)
        if not batch:
            return after
        messages = []
        for raw in batch:
            topic = self._topic_of(raw.event_type)
            # An in-process bus with nobody on a topic would drop the message: skip the work.
            if self._bus.listens_to(topic):
                messages.append(to_message(self._store.decode(raw), topic))
        self._bus.publish(messages)
        position = batch[-1].position
        with self._pool.connection() as conn, conn.transaction():
            # Losing a checkpoint only republishes (consumers deduplicate), so it need not wait
            # for its own fsync.
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(
                "INSERT INTO relay_checkpoints (relay, position) VALUES (%s, %s)"
                " ON CONFLICT (relay) DO UPDATE"
                " SET position = EXCLUDED.position, updated_at = now()",
                (self._name, position),
            )
        return position

    def start(self) -> OutboxRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        position = -1
        while not self._stopped.is_set():
            try:
                if position < 0:
                    position = self.checkpoint()
                moved = self.publish_batch(position)
                if moved == position:
                    self._notifier.wait_beyond(position, timeout=1.0)
                position = moved
            except PublisherFenced:
                log.error("relay %s stops: another relay publishes now", self._name)
                self._on_fenced()
                return
            except Exception:
                log.exception("relay %s failed after position %d; retrying", self._name, position)
                self._stopped.wait(1.0)
