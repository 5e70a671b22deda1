"""Composition root of the smart order router: settings in, RoutingService out.

`python -m fillpath.sor.main` runs it on its own, subscribed to Pulsar (a cluster, or
`fillpath up --bus pulsar`); the embedded platform calls `start_sor` with its in-process bus.
It compiles the routing kernel before it serves, and prints one line,
``fillpath-sor listening on <host:port>``, once it does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from fillpath.core.events import EVENT_TYPES
from fillpath.infra.bus import Bus
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.grpc_server import RunningServer, create_server
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.service_main import serve_on_pulsar
from fillpath.infra.settings import Settings
from fillpath.sor.decisions import SOR_MIGRATIONS, DecisionLog
from fillpath.sor.market import MarketBook
from fillpath.sor.quality import Learner, QualityStore
from fillpath.sor.router import Router
from fillpath.sor.service import Routing
from fillpath.sor.servicer import RoutingServicer
from fillpath.sor.venues import load_venue_specs

log = logging.getLogger("fillpath.sor")


@dataclass(slots=True)
class SorRuntime:
    pool: ConnectionPool[Any]
    redis_client: redis.Redis
    routing: Routing
    server: RunningServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self, grace: float = 2.0) -> None:
        self.server.stop(grace)
        self.routing.stop()
        self.redis_client.close()
        self.pool.close()


def start_sor(settings: Settings, pg_dsn: str, redis_url: str, bus: Bus) -> SorRuntime:
    """Migrates, loads the venues and instruments, compiles the kernel, subscribes to `bus`
    and serves RoutingService."""
    migrate(pg_dsn, [EVENT_STORE_MIGRATIONS, SOR_MIGRATIONS])
    config = settings.config_dir
    specs = load_venue_specs(config / "venues.yaml" if config else None)
    instruments = load_reference_data(config).instruments
    pool = open_pool(pg_dsn, 4, name="sor")
    redis_client = redis.Redis.from_url(redis_url)
    quality = QualityStore(redis_client, specs)
    book = MarketBook(specs)
    sor = settings.sor
    learner = Learner(
        quality, book, breaker_failures=sor.breaker_failures, breaker_cooldown=sor.breaker_cooldown
    )
    router = Router(book, instruments, sor, claim_probe=quality.claim_probe)
    router.warm_up()
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    routing = Routing(
        router,
        book,
        learner,
        quality,
        DecisionLog(pool, store),
        instruments,
        breaker_failures=sor.breaker_failures,
    )
    routing.start()
    routing.subscribe(bus)
    server = create_server(sor.address, [RoutingServicer(routing).binding()])
    server.server.start()
    return SorRuntime(pool=pool, redis_client=redis_client, routing=routing, server=server)


def main() -> None:
    def start(settings: Settings, bus: Bus) -> tuple[SorRuntime, str]:
        runtime = start_sor(settings, settings.postgres.dsn, settings.redis.url, bus)
        return runtime, runtime.address

    serve_on_pulsar("fillpath-sor", start)


if __name__ == "__main__":
    main()
