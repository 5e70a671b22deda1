"""Composition root of the monitor: settings in, the monitor wired to the bus, gRPC and the web.

`python -m fillpath.monitor.main` runs it on its own, subscribed to Pulsar (a cluster, or
`fillpath up --bus pulsar`); the embedded platform calls `start_monitor` with its in-process bus.
It prints one line, ``fillpath-monitor listening on <grpc> (dashboard <url>)``, once it serves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from fillpath.infra.bus import Bus
from fillpath.infra.grpc_server import RunningServer, create_server
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import migrate
from fillpath.infra.service_main import serve_on_pulsar
from fillpath.infra.settings import Settings
from fillpath.monitor.alerts import load_rules
from fillpath.monitor.dashboard import Dashboard
from fillpath.monitor.service import AlertChannel, BusChannel, LogChannel, Monitor, WebhookChannel
from fillpath.monitor.servicer import MonitorServicer
from fillpath.monitor.store import MONITOR_MIGRATIONS, MonitorStore

log = logging.getLogger("fillpath.monitor")


@dataclass(slots=True)
class MonitorRuntime:
    pool: ConnectionPool[Any]
    redis_client: redis.Redis
    monitor: Monitor
    server: RunningServer
    dashboard: Dashboard | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def stop(self, grace: float = 2.0) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
        self.server.stop(grace)
        self.monitor.stop()
        self.redis_client.close()
        self.pool.close()


def start_monitor(
    settings: Settings, pg_dsn: str, redis_url: str, bus: Bus, *, dashboard: bool = True
) -> MonitorRuntime:
    """Migrates, folds the journal, subscribes to `bus` and serves MonitorService (and the
    dashboard). With an in-process bus, call it before the OMS starts its relay."""
    migrate(pg_dsn, [MONITOR_MIGRATIONS])
    rules = load_rules(settings.config_dir)
    pool = open_pool(pg_dsn, 4, name="monitor")
    redis_client = redis.Redis.from_url(redis_url)
    channels: list[AlertChannel] = [LogChannel(), BusChannel(bus)]
    webhook = settings.monitor.webhook or rules.webhook_url
    if webhook:
        channels.append(WebhookChannel(webhook))
    monitor = Monitor(
        MonitorStore(pool),
        rules,
        redis_client=redis_client,
        channels=channels,
        check_interval=settings.monitor.check_interval,
    ).start()
    monitor.subscribe(bus)
    server = create_server(settings.monitor.address, [MonitorServicer(monitor).binding()])
    server.server.start()
    web = Dashboard(monitor, settings.monitor.http_address).start() if dashboard else None
    return MonitorRuntime(
        pool=pool, redis_client=redis_client, monitor=monitor, server=server, dashboard=web
    )


def main() -> None:
    def start(settings: Settings, bus: Bus) -> tuple[MonitorRuntime, str]:
        runtime = start_monitor(settings, settings.postgres.dsn, settings.redis.url, bus)
        dashboard = runtime.dashboard.url if runtime.dashboard else "off"
        return runtime, f"{runtime.address} (dashboard {dashboard})"

    serve_on_pulsar("fillpath-monitor", start)


if __name__ == "__main__":
    main()
