"""The one-machine platform: Postgres, Redis, an event bus and the services.

`fillpath up`, `make demo` and the end-to-end tests start the same thing: external Postgres,
Redis or Pulsar are used when the settings name them, embedded servers in the data directory
otherwise. With the in-process bus (the default) the OMS runs inside this process. With
``--bus pulsar`` the services run as separate processes, as in a cluster: the OMS, and the
relay that publishes the event log to Pulsar; other processes subscribe there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fillpath.algo.main import AlgoRuntime, start_algo
from fillpath.core.venues import VenueGateway
from fillpath.infra.bus import InProcessBus
from fillpath.infra.postgres.embedded import EmbeddedPostgres, start_embedded_postgres
from fillpath.infra.pulsar.standalone import PulsarStandalone, start_standalone
from fillpath.infra.redis.embedded import EmbeddedRedis, start_embedded_redis
from fillpath.infra.service_process import ServiceProcess, spawn_service
from fillpath.infra.settings import Settings
from fillpath.monitor.main import MonitorRuntime, start_monitor
from fillpath.oms.main import OmsRuntime, start_oms
from fillpath.sor.main import SorRuntime, start_sor
from fillpath.strategy.main import StrategyRuntime, start_strategy


@dataclass(slots=True)
class EmbeddedPlatform:
    settings: Settings
    """The settings the services run with, every server resolved to its address."""

    oms_address: str
    monitor_address: str = ""
    sor_address: str = ""
    algo_address: str = ""
    strategy_address: str = ""
    dashboard_url: str = ""
    oms: OmsRuntime | None = None
    """The OMS when it runs in this process (in-process bus)."""

    monitor: MonitorRuntime | None = None
    """The monitor when it runs in this process (in-process bus)."""

    sor: SorRuntime | None = None
    """The router when it runs in this process (in-process bus)."""

    algo: AlgoRuntime | None = None
    """The algorithm engine when it runs in this process (in-process bus)."""

    strategy: StrategyRuntime | None = None
    """The strategy service when it runs in this process (in-process bus)."""

    bus: InProcessBus | None = None

    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    """The services running as processes of their own (Pulsar bus), by name."""

    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    pulsar: PulsarStandalone | None = None

    def endpoints(self) -> list[tuple[str, str, str]]:
        """(part, where, how) for each running part, for `fillpath up` to print."""
        settings = self.settings
        rows = [
            ("OMS (gRPC)", self.oms_address, "fillpath.v1.OrderManagementService"),
            ("Monitor (gRPC)", self.monitor_address, "fillpath.v1.MonitorService"),
            ("Router (gRPC)", self.sor_address, "fillpath.v1.RoutingService"),
            ("Strategy (gRPC)", self.strategy_address, "fillpath.v1.StrategyService"),
            ("Algorithms (gRPC)", self.algo_address, "fillpath.v1.AlgoService"),
            ("Dashboard", self.dashboard_url, "live executions, alerts, charts"),
            ("Postgres", settings.postgres.dsn, "embedded" if self.postgres else "external"),
            ("Redis", settings.redis.url, "embedded" if self.redis else "external"),
        ]
        if settings.bus.kind == "in-process":
            return [*rows, ("Event bus", "in-process", "outbox relay from the event store")]
        broker = "standalone broker" if self.pulsar else "external"
        return [
            *rows,
            ("Event bus", settings.bus.pulsar_url, f"Apache Pulsar, {broker}"),
            *(
                (name, f"pid {service.process.pid}", "separate process")
                for name, service in self.processes.items()
            ),
        ]

    def stop(self) -> None:
        if self.algo is not None:
            self.algo.stop()
        if self.strategy is not None:
            self.strategy.stop()
        if self.oms is not None:
            self.oms.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if self.sor is not None:
            self.sor.stop()
        if self.bus is not None:
            self.bus.close()
        for service in reversed(self.processes.values()):
            service.stop()
        if self.pulsar is not None:
            self.pulsar.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_platform(
    settings: Settings,
    *,
    gateway: VenueGateway | None = None,
    now: Callable[[], datetime] | None = None,
) -> EmbeddedPlatform:
    """Starts what `settings` ask for. Child orders go to `gateway` (the market lab's simulated
    venues, say) when one is given; that needs the in-process bus (the OMS in this process),
    and the strategy service and the algorithm engine then decide on `now`'s clock (the
    lab's)."""
    if gateway is not None and settings.bus.kind != "in-process":
        raise ValueError("a venue gateway in process needs the in-process bus")
    platform = EmbeddedPlatform(settings=settings, oms_address="")
    try:
        if not settings.postgres.dsn:
            platform.postgres = start_embedded_postgres(settings.data_dir / "postgres")
        if not settings.redis.url:
            platform.redis = start_embedded_redis(settings.data_dir / "redis")
        if settings.bus.kind == "pulsar" and not settings.bus.pulsar_url:
            platform.pulsar = start_standalone(settings.data_dir / "pulsar")
        platform.settings = settings = dataclasses.replace(
            settings,
            postgres=dataclasses.replace(
                settings.postgres,
                dsn=settings.postgres.dsn or (platform.postgres.dsn if platform.postgres else ""),
            ),
            redis=dataclasses.replace(
                settings.redis,
                url=settings.redis.url or (platform.redis.url if platform.redis else ""),
            ),
            bus=dataclasses.replace(
                settings.bus,
                pulsar_url=settings.bus.pulsar_url
                or (platform.pulsar.service_url if platform.pulsar else ""),
            ),
        )
        if settings.bus.kind == "in-process":
            platform.bus = InProcessBus()
            # The monitor subscribes first: the OMS relays its events only to a bus with
            # subscribers.
            platform.monitor = start_monitor(
                settings, settings.postgres.dsn, settings.redis.url, platform.bus
            )
            platform.monitor_address = platform.monitor.address
            platform.sor = start_sor(
                settings, settings.postgres.dsn, settings.redis.url, platform.bus
            )
            platform.sor_address = platform.sor.address
            platform.strategy = start_strategy(
                settings, settings.postgres.dsn, platform.bus, now=now
            )
            platform.strategy_address = platform.strategy.address
            if platform.monitor.dashboard is not None:
                platform.dashboard_url = platform.monitor.dashboard.url
            platform.oms = start_oms(
                settings,
                settings.postgres.dsn,
                settings.redis.url,
                bus=platform.bus,
                gateway=gateway,
            )
            host = settings.oms.address.rsplit(":", 1)[0]
            platform.oms_address = f"{host}:{platform.oms.port}"
            platform.algo = start_algo(
                settings,
                settings.postgres.dsn,
                platform.bus,
                oms_address=platform.oms_address,
                sor_address=platform.sor_address,
                now=now,
            )
            platform.algo_address = platform.algo.address
        else:
            _start_processes(platform)
    except BaseException:
        platform.stop()
        raise
    return platform


def _start_processes(platform: EmbeddedPlatform) -> None:
    env = platform.settings.to_env()
    logs = platform.settings.data_dir
    logs.mkdir(parents=True, exist_ok=True)
    platform.processes["OMS"] = oms = spawn_service(
        "fillpath.oms.main", env, log_file=logs / "oms.log"
    )
    platform.oms_address = oms.address
    platform.processes["Outbox relay"] = spawn_service(
        "fillpath.relay.main", env, log_file=logs / "relay.log", ready_after=" publishing to "
    )
    platform.processes["Monitor"] = monitor = spawn_service(
        "fillpath.monitor.main", env, log_file=logs / "monitor.log"
    )
    platform.monitor_address = monitor.address.split(" ", 1)[0]
    platform.dashboard_url = monitor.address.rsplit("dashboard ", 1)[-1].rstrip(")")
    platform.processes["Router"] = sor = spawn_service(
        "fillpath.sor.main", env, log_file=logs / "sor.log"
    )
    platform.sor_address = sor.address
    platform.processes["Strategy"] = strategy = spawn_service(
        "fillpath.strategy.main", env, log_file=logs / "strategy.log"
    )
    platform.strategy_address = strategy.address
    env = {**env, "FILLPATH_OMS_ADDRESS": oms.address, "FILLPATH_SOR_ADDRESS": sor.address}
    platform.processes["Algorithms"] = algo = spawn_service(
        "fillpath.algo.main", env, log_file=logs / "algo.log"
    )
    platform.algo_address = algo.address
