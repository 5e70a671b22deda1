"""Settings of every fillpath process, read once by its composition root.

Grouped frozen dataclasses with a docstring on every field; `Settings.from_env` is the only
place that reads environment variables (``FILLPATH_*``), and only `main` modules call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "fillpath"


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresSettings:
    dsn: str = ""
    """Connection string of an external Postgres 14+; empty starts the embedded server."""

    pool_size: int = 8
    """Connections per process. Appends share one per group commit, so reads need the rest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    url: str = ""
    """URL of an external Redis 6+ (``redis://host:6379/0``); empty starts the embedded server."""


BUS_KINDS = ("in-process", "pulsar")
DEFAULT_TOPIC_PREFIX = "persistent://public/default/fillpath-"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSettings:
    kind: str = "in-process"
    """``in-process`` (one machine, services in one process) or ``pulsar`` (services as
    separate processes sharing events through Apache Pulsar)."""

    pulsar_url: str = ""
    """Service URL of an external Pulsar (``pulsar://host:6650``); empty starts the standalone
    broker in the data directory."""

    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    """Prefix of every topic name; the domain (``orders``, ``algo``, …) follows it."""

    def __post_init__(self) -> None:
        if self.kind not in BUS_KINDS:
            raise ValueError(f"bus kind {self.kind!r} is none of {', '.join(BUS_KINDS)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OmsSettings:
    address: str = "127.0.0.1:50051"
    """Where the OMS gRPC server listens (``host:port``; port 0 picks a free one)."""

    snapshot_every: int = 50
    """Store a snapshot of an order stream each time it grows by this many events."""

    max_workers: int = 16
    """gRPC worker threads per process: the most calls served at once, streams included."""

    expiry_interval: float = 1.0
    """Seconds between sweeps for GTD and DAY orders whose expiry has come."""

    processes: int = 0
    """Processes serving on the one port (`python -m fillpath.oms.main`); 0 = one per core."""

    venue_gateway: str = ""
    """``host:port`` of the venue gateway child orders are sent to (`fillpath lab`); empty:
    child orders are recorded only, and venues report through ApplyExecutionReport."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabSettings:
    address: str = "127.0.0.1:50061"
    """Where `fillpath lab` serves its venues (VenueGatewayService)."""

    speed: float = 60.0
    """Simulated seconds per wall-clock second."""

    seed: int = 7
    """The session's seed: the same seed, the same market."""

    start_at: float = 0.0
    """Seconds after the open the session starts at (run fast to there first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSettings:
    address: str = "127.0.0.1:50101"
    """Where the monitor's gRPC server (MonitorService) listens."""

    http_address: str = "127.0.0.1:8080"
    """Where the monitor serves its dashboard (a web page and its JSON API)."""

    webhook: str = ""
    """URL every alert is POSTed to as JSON (overrides ``webhook_url`` of alerts.yaml)."""

    check_interval: float = 1.0
    """Seconds between checks of the rules that time makes true (no fill, venue down,
    escalation of unacknowledged warnings)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoSettings:
    address: str = "127.0.0.1:50081"
    """Where the algorithm engine's gRPC server (AlgoService) listens."""

    tick_interval: float = 1.0
    """Seconds between the engine's decisions (0: the caller ticks it, as the demo does on the
    market lab's simulated clock)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySettings:
    address: str = "127.0.0.1:50091"
    """Where the strategy service's gRPC server (StrategyService) listens."""

    model_poll_interval: float = 5.0
    """Seconds between looks at the model registry for a newly promoted cost model (0: only
    at start)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SorSettings:
    address: str = "127.0.0.1:50071"
    """Where the smart order router's gRPC server (RoutingService) listens."""

    leakage_guard: bool = True
    """Guard dark orders against information leakage: randomised ping sizes, a cool-down per
    pool and order, and no pings to pools whose fills are followed by adverse moves."""

    dark_cooldown: float = 2.0
    """Seconds a dark pool rests for an order after it was pinged for it (with the guard on)."""

    adverse_markout_bps: float = 2.0
    """A dark pool whose fills are followed by a move against us of more than this (mean
    markout, bps) is not pinged (with the guard on)."""

    collar_bps: int = 1_000
    """A limit price further than this from the mid (bps) is refused as a likely error."""

    breaker_failures: int = 3
    """Consecutive failures (no acknowledgement within the venue's latency budget, or a venue
    reject) that take a venue out of routing."""

    breaker_cooldown: float = 5.0
    """Seconds an open circuit waits before one probe order may go to the venue again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    """Where the embedded Postgres and Redis keep their data."""

    config_dir: Path | None = None
    """Folder with instruments.yaml and accounts.yaml; None uses the embedded defaults."""

    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    oms: OmsSettings = field(default_factory=OmsSettings)
    lab: LabSettings = field(default_factory=LabSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    sor: SorSettings = field(default_factory=SorSettings)
    algo: AlgoSettings = field(default_factory=AlgoSettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)

    trace_to_console: bool = False
    """Print finished trace spans to stdout (debugging)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, default: str = "") -> str:
            return env.get(f"FILLPATH_{name}", default)

        return cls(
            data_dir=Path(get("DATA_DIR")) if get("DATA_DIR") else _default_data_dir(),
            config_dir=Path(get("CONFIG_DIR")) if get("CONFIG_DIR") else None,
            postgres=PostgresSettings(dsn=get("PG_DSN"), pool_size=int(get("PG_POOL_SIZE", "8"))),
            redis=RedisSettings(url=get("REDIS_URL")),
            bus=BusSettings(
                kind=get("BUS", "in-process"),
                pulsar_url=get("PULSAR_URL"),
                topic_prefix=get("PULSAR_TOPIC_PREFIX", DEFAULT_TOPIC_PREFIX),
            ),
            oms=OmsSettings(
                address=get("OMS_ADDRESS", "127.0.0.1:50051"),
                snapshot_every=int(get("SNAPSHOT_EVERY", "50")),
                max_workers=int(get("OMS_MAX_WORKERS", "16")),
                processes=int(get("OMS_PROCESSES", "0")),
                expiry_interval=float(get("OMS_EXPIRY_INTERVAL", "1.0")),
                venue_gateway=get("VENUE_GATEWAY"),
            ),
            lab=LabSettings(
                address=get("LAB_ADDRESS", "127.0.0.1:50061"),
                speed=float(get("LAB_SPEED", "60")),
                seed=int(get("LAB_SEED", "7")),
                start_at=float(get("LAB_START_AT", "0")),
            ),
            monitor=MonitorSettings(
                address=get("MONITOR_ADDRESS", "127.0.0.1:50101"),
                http_address=get("MONITOR_HTTP_ADDRESS", "127.0.0.1:8080"),
                webhook=get("MONITOR_WEBHOOK"),
                check_interval=float(get("MONITOR_CHECK_INTERVAL", "1.0")),
            ),
            sor=SorSettings(
                address=get("SOR_ADDRESS", "127.0.0.1:50071"),
                leakage_guard=get("SOR_LEAKAGE_GUARD", "1") in ("1", "true", "yes"),
                dark_cooldown=float(get("SOR_DARK_COOLDOWN", "2.0")),
                adverse_markout_bps=float(get("SOR_ADVERSE_MARKOUT_BPS", "2.0")),
                collar_bps=int(get("SOR_COLLAR_BPS", "1000")),
                breaker_failures=int(get("SOR_BREAKER_FAILURES", "3")),
                breaker_cooldown=float(get("SOR_BREAKER_COOLDOWN", "5.0")),
            ),
            algo=AlgoSettings(
                address=get("ALGO_ADDRESS", "127.0.0.1:50081"),
                tick_interval=float(get("ALGO_TICK_INTERVAL", "1.0")),
            ),
            strategy=StrategySettings(
                address=get("STRATEGY_ADDRESS", "127.0.0.1:50091"),
                model_poll_interval=float(get("STRATEGY_MODEL_POLL_INTERVAL", "5.0")),
            ),
            trace_to_console=get("TRACE_CONSOLE") in ("1", "true", "yes"),
        )

    def to_env(self) -> dict[str, str]:
        """The ``FILLPATH_*`` variables `from_env` reads back as these settings: how a process
        hands its settings to the services it starts."""
        env = {
            "DATA_DIR": str(self.data_dir),
            "PG_DSN": self.postgres.dsn,
            "PG_POOL_SIZE": str(self.postgres.pool_size),
            "REDIS_URL": self.redis.url,
            "BUS": self.bus.kind,
            "PULSAR_URL": self.bus.pulsar_url,
            "PULSAR_TOPIC_PREFIX": self.bus.topic_prefix,
            "OMS_ADDRESS": self.oms.address,
            "SNAPSHOT_EVERY": str(self.oms.snapshot_every),
            "OMS_MAX_WORKERS": str(self.oms.max_workers),
            "OMS_PROCESSES": str(self.oms.processes),
            "OMS_EXPIRY_INTERVAL": str(self.oms.expiry_interval),
            "VENUE_GATEWAY": self.oms.venue_gateway,
            "LAB_ADDRESS": self.lab.address,
            "LAB_SPEED": str(self.lab.speed),
            "LAB_SEED": str(self.lab.seed),
            "LAB_START_AT": str(self.lab.start_at),
            "MONITOR_ADDRESS": self.monitor.address,
            "MONITOR_HTTP_ADDRESS": self.monitor.http_address,
            "MONITOR_WEBHOOK": self.monitor.webhook,
            "MONITOR_CHECK_INTERVAL": str(self.monitor.check_interval),
            "SOR_ADDRESS": self.sor.address,
            "SOR_LEAKAGE_GUARD": "1" if self.sor.leakage_guard else "0",
            "SOR_DARK_COOLDOWN": str(self.sor.dark_cooldown),
            "SOR_ADVERSE_MARKOUT_BPS": str(self.sor.adverse_markout_bps),
            "SOR_COLLAR_BPS": str(self.sor.collar_bps),
            "SOR_BREAKER_FAILURES": str(self.sor.breaker_failures),
            "SOR_BREAKER_COOLDOWN": str(self.sor.breaker_cooldown),
            "ALGO_ADDRESS": self.algo.address,
            "ALGO_TICK_INTERVAL": str(self.algo.tick_interval),
            "STRATEGY_ADDRESS": self.strategy.address,
            "STRATEGY_MODEL_POLL_INTERVAL": str(self.strategy.model_poll_interval),
            "TRACE_CONSOLE": "1" if self.trace_to_console else "",
        }
        if self.config_dir is not None:
            env["CONFIG_DIR"] = str(self.config_dir)
        return {f"FILLPATH_{name}": value for name, value in env.items()}
