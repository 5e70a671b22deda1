"""Composition root of the algorithm engine: settings in, AlgoService out.

`python -m fillpath.algo.main` runs it on its own, subscribed to Pulsar (the OMS's order events
for fills, the market data), reaching the OMS and the router at their addresses in the
settings; the embedded platform calls `start_algo` with its in-process bus. On start it takes up
every execution that had not ended (`Algos.recover`), then prints one line,
``fillpath-algo listening on <host:port>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from psycopg_pool import ConnectionPool

from fillpath.algo.desk import GrpcDesk
from fillpath.algo.service import ALGO_MIGRATIONS, Algos
from fillpath.algo.servicer import AlgoServicer
from fillpath.core.events import EVENT_TYPES
from fillpath.infra.bus import Bus
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.grpc_server import RunningServer, create_server
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles
from fillpath.infra.service_main import serve_on_pulsar
from fillpath.infra.settings import Settings

log = logging.getLogger("fillpath.algo")


@dataclass(slots=True)
class AlgoRuntime:
    pool: ConnectionPool[Any]
    algos: Algos
    server: RunningServer
    channels: tuple[grpc.Channel, ...]
    stopped: threading.Event
    timer: threading.Thread | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self, grace: float = 2.0) -> None:
        self.stopped.set()
        if self.timer is not None:
            self.timer.join(timeout=10)
        self.server.stop(grace)
        for channel in self.channels:
            channel.close()
        self.pool.close()


def start_algo(
    settings: Settings,
    pg_dsn: str,
    bus: Bus,
    *,
    oms_address: str,
    sor_address: str,
    now: Callable[[], datetime] | None = None,
) -> AlgoRuntime:
    """Migrates, takes up the executions that had not ended, subscribes to `bus` and serves
    AlgoService; ticks every `settings.algo.tick_interval` seconds (if not 0) on `now`'s
    clock (the wall clock by default)."""
    migrate(pg_dsn, [EVENT_STORE_MIGRATIONS, ALGO_MIGRATIONS])
    instruments = load_reference_data(settings.config_dir).instruments
    pool = open_pool(pg_dsn, 4, name="algo")
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    channels = (grpc.insecure_channel(oms_address), grpc.insecure_channel(sor_address))
    algos = Algos(
        store,
        pool,
        GrpcDesk(*channels),
        load_algo_profiles(settings.config_dir),
        instruments,
        now or SystemClock().now,
    )
    algos.subscribe(bus)
    recovered = algos.recover()
    if recovered:
        log.info("took up %d executions where their events left them", recovered)
    server = create_server(settings.algo.address, [AlgoServicer(algos, instruments).binding()])
    server.server.start()
    stopped = threading.Event()
    timer = None
    interval = settings.algo.tick_interval
    if interval > 0:

        def run() -> None:
            while not stopped.wait(interval):
                algos.tick()

        timer = threading.Thread(target=run, name="algo-timer", daemon=True)
        timer.start()
    return AlgoRuntime(
        pool=pool, algos=algos, server=server, channels=channels, stopped=stopped, timer=timer
    )


def main() -> None:
    def start(settings: Settings, bus: Bus) -> tuple[AlgoRuntime, str]:
        runtime = start_algo(
            settings,
            settings.postgres.dsn,
            bus,
            oms_address=settings.oms.address,
            sor_address=settings.sor.address,
        )
        return runtime, runtime.address

    serve_on_pulsar("fillpath-algo", start)


if __name__ == "__main__":
    main()
