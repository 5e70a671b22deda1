"""Composition root of the OMS process: settings in, adapters built and wired, serve, stop.

`python -m fillpath.oms.main` runs the OMS on its own (a Kubernetes pod, `fillpath up --bus
pulsar`, the crash tests, the benchmark), its events published by the relay process
(fillpath.relay); `fillpath up` calls `start_oms` inside the embedded platform.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from fillpath.core.clock import Clock
from fillpath.core.events import EVENT_TYPES
from fillpath.core.venues import VenueGateway
from fillpath.infra.bus import ORDERS_TOPIC, Bus, topic_of
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.grpc_server import RunningServer, create_server, wait_for_signal
from fillpath.infra.outbox import OutboxRelay
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.notifier import PositionNotifier
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.redis.rate_limiter import RedisRateLimiter
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import Settings
from fillpath.infra.storage import resolve_storage
from fillpath.infra.telemetry import configure_tracing
from fillpath.infra.workers import run_workers
from fillpath.oms.expiry import ExpirySweeper
from fillpath.oms.projection import OMS_MIGRATIONS, OrderViews
from fillpath.oms.service import OrderManagement
from fillpath.oms.servicer import OrderManagementServicer
from fillpath.oms.venue_client import GrpcVenueGateway
from fillpath.oms.venues import VenueDispatcher

log = logging.getLogger("fillpath.oms")


def order_codec() -> EventCodec:
    return EventCodec(EVENT_TYPES)


@dataclass(slots=True)
class OmsRuntime:
    """A running OMS and everything it owns, stopped in reverse order of starting."""

    pool: ConnectionPool[Any]
    store: PostgresEventStore
    oms: OrderManagement
    notifier: PositionNotifier
    bus: Bus | None
    relay: OutboxRelay | None
    sweeper: ExpirySweeper
    server: RunningServer
    redis_client: redis.Redis
    venue_client: GrpcVenueGateway | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self, grace: float = 5.0) -> None:
        self.server.stop(grace)
        if self.venue_client is not None:
            self.venue_client.close()
        self.sweeper.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.bus is not None:
            self.bus.close()
        self.notifier.stop()
        self.redis_client.close()
        self.pool.close()


def start_oms(
    settings: Settings,
    pg_dsn: str,
    redis_url: str,
    clock: Clock | None = None,
    bus: Bus | None = None,
    share_port: bool = False,
    migrate_schema: bool = True,
    gateway: VenueGateway | None = None,
    consume_reports: bool = True,
) -> OmsRuntime:
    """Migrates the database (unless told it is done), builds the OMS and starts serving on
    `settings.oms.address`.

    Order events are relayed to `bus` (an in-process bus; over Pulsar the relay is a process
    of its own) if it has subscribers when the OMS starts: subscribe consumers before.
    Child orders go to `gateway` (or to the venue gateway process `settings.oms.venue_gateway`
    names) once recorded; its execution reports are applied here if `consume_reports`, and what
    a previous run may have left unsent is sent again first.
    """
    clock = clock or SystemClock()
    if migrate_schema:
        migrate(pg_dsn, [EVENT_STORE_MIGRATIONS, OMS_MIGRATIONS])
    reference = load_reference_data(settings.config_dir)
    pool = open_pool(pg_dsn, settings.postgres.pool_size, name="oms")
    notifier = PositionNotifier(pg_dsn)
    store = PostgresEventStore(pool, order_codec(), clock, on_commit=notifier.advance)
    relay = None
    if bus is not None and bus.listens_to(ORDERS_TOPIC):
        # Only when something consumes order events: an in-process bus with no subscriber
        # would drop every message, and the relay would spend a read and a checkpoint per
        # commit for nothing. The checkpoint stays where it is until a consumer arrives.
        relay = OutboxRelay(pool, store, bus, notifier, topic_of).start()
    redis_client = redis.Redis.from_url(redis_url)
    oms = OrderManagement(
        store,
        reference,
        RedisRateLimiter(redis_client),
        clock,
        snapshot_every=settings.oms.snapshot_every,
    )
    views = OrderViews(pool)
    venue_client = None
    if gateway is None and settings.oms.venue_gateway:
        gateway = venue_client = GrpcVenueGateway(settings.oms.venue_gateway)
    if gateway is not None:
        dispatcher = VenueDispatcher(gateway, oms, consume_reports=consume_reports)
        oms.on_recorded = dispatcher.recorded
        resent = dispatcher.resend_unsent(views.with_unsent_children()) if consume_reports else 0
        if resent:
            log.info(
                "sent %d child order request(s) again that a previous run left pending", resent
            )
    servicer = OrderManagementServicer(oms, views, store, notifier)
    server = create_server(
        settings.oms.address,
        [servicer.binding()],
        max_workers=settings.oms.max_workers,
        share_port=share_port,
    )
    server.server.start()
    sweeper = ExpirySweeper(oms, views, clock, settings.oms.expiry_interval).start()
    return OmsRuntime(
        pool=pool,
        store=store,
        oms=oms,
        notifier=notifier,
        bus=bus,
        relay=relay,
        sweeper=sweeper,
        server=server,
        redis_client=redis_client,
        venue_client=venue_client,
    )


def serve_worker(settings: Settings, index: int, address: str, ready: Any) -> None:
    """One OMS process of several on `address` (see fillpath.infra.workers)."""
    settings = dataclasses.replace(settings, oms=dataclasses.replace(settings.oms, address=address))
    _configure(settings)
    # The parent migrated before starting the workers.
    # One process applies the venues' reports and re-sends what was left unsent; all send.
    runtime = start_oms(
        settings,
        settings.postgres.dsn,
        settings.redis.url,
        share_port=True,
        migrate_schema=False,
        consume_reports=index == 0,
    )
    ready.put(index)
    try:
        wait_for_signal()
    finally:
        runtime.stop()


def _configure(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )
    configure_tracing("fillpath-oms", settings.trace_to_console)


def main() -> None:
    """Runs the OMS: one process per core on one port (FILLPATH_OMS_PROCESSES to choose)."""
    settings = Settings.from_env(os.environ)
    _configure(settings)
    # Migrate once, here, before the workers start; hand them the resolved connections.
    settings = resolve_storage(settings)
    migrate(settings.postgres.dsn, [EVENT_STORE_MIGRATIONS, OMS_MIGRATIONS])
    processes = settings.oms.processes or os.cpu_count() or 1
    address, wait = run_workers(
        processes, settings.oms.address, functools.partial(serve_worker, settings)
    )
    # One line on stdout that scripts and tests wait for.
    print(f"fillpath-oms ({processes} processes) listening on {address}", flush=True)
    sys.exit(wait())


if __name__ == "__main__":
    main()
