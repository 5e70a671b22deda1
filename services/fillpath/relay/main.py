"""Composition root of the relay process: the event store in, Apache Pulsar out.

In a cluster the services run as separate processes, and one relay publishes every event to
its domain's topic (`python -m fillpath.relay.main`). It prints one line,
``fillpath-relay publishing to <pulsar url>``, once it runs. A second relay started against the
same topics fences the first, which then exits: the newest relay is the one that publishes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.core.events import EVENT_TYPES
from fillpath.infra.bus import Bus, topic_of
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.outbox import OutboxRelay
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.notifier import PositionNotifier
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.settings import Settings

log = logging.getLogger("fillpath.relay")

RELAY_NAME = "pulsar"
"""The relay's checkpoint row, and the producer name the broker deduplicates by."""


@dataclass(slots=True)
class RelayRuntime:
    pool: ConnectionPool[Any]
    notifier: PositionNotifier
    bus: Bus
    relay: OutboxRelay

    def stop(self) -> None:
        self.relay.stop()
        self.bus.close()
        self.notifier.stop()
        self.pool.close()


def start_relay(
    pg_dsn: str, bus: Bus, *, batch_size: int = 500, on_fenced: Callable[[], None] = lambda: None
) -> RelayRuntime:
    """Publishes every event after the relay's checkpoint to `bus`, then follows new ones."""
    migrate(pg_dsn, [EVENT_STORE_MIGRATIONS])
    pool = open_pool(pg_dsn, 2, name="relay")
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    notifier = PositionNotifier(pg_dsn).start()
    relay = OutboxRelay(
        pool,
        store,
        bus,
        notifier,
        topic_of,
        name=RELAY_NAME,
        batch_size=batch_size,
        on_fenced=on_fenced,
    ).start()
    return RelayRuntime(pool=pool, notifier=notifier, bus=bus, relay=relay)


def pulsar_bus(settings: Settings) -> PulsarBus:
    return PulsarBus(
        settings.bus.pulsar_url,
        topic_prefix=settings.bus.topic_prefix,
        producer_name=f"fillpath-relay-{RELAY_NAME}",
    )


def main() -> None:
    """Runs the relay until SIGTERM (or until a newer relay fences it: exit status 3)."""
    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )
    if not (settings.postgres.dsn and settings.bus.pulsar_url):
        sys.exit("the relay needs FILLPATH_PG_DSN and FILLPATH_PULSAR_URL")
    fenced = threading.Event()
    runtime = start_relay(settings.postgres.dsn, pulsar_bus(settings), on_fenced=fenced.set)
    print(f"fillpath-relay publishing to {settings.bus.pulsar_url}", flush=True)
    try:
        signalled = wait_for_signal(fenced)
    finally:
        runtime.stop()
    if not signalled:
        sys.exit(3)


if __name__ == "__main__":
    main()
