"""The one-machine platform: embedded Postgres and Redis, the in-process bus and the services.

`fillpath up`, `make demo` and the end-to-end tests start the same thing: external Postgres or
Redis are used when the settings name them, embedded servers in the data directory otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from fillpath.infra.postgres.embedded import EmbeddedPostgres, start_embedded_postgres
from fillpath.infra.redis.embedded import EmbeddedRedis, start_embedded_redis
from fillpath.infra.settings import Settings
from fillpath.oms.main import OmsRuntime, start_oms


@dataclass(slots=True)
class EmbeddedPlatform:
    settings: Settings
    pg_dsn: str
    redis_url: str
    oms: OmsRuntime
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    @property
    def oms_address(self) -> str:
        host = self.settings.oms.address.rsplit(":", 1)[0]
        return f"{host}:{self.oms.port}"

    def endpoints(self) -> list[tuple[str, str, str]]:
        """(part, where, how) for each running part, for `fillpath up` to print."""
        return [
            ("OMS (gRPC)", self.oms_address, "fillpath.v1.OrderManagementService"),
            (
                "Postgres",
                self.pg_dsn,
                "embedded" if self.postgres else "external",
            ),
            ("Redis", self.redis_url, "embedded" if self.redis else "external"),
            ("Event bus", "in-process", "outbox relay from the event store"),
        ]

    def stop(self) -> None:
        self.oms.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_platform(settings: Settings) -> EmbeddedPlatform:
    postgres = (
        None if settings.postgres.dsn else start_embedded_postgres(settings.data_dir / "postgres")
    )
    redis = None if settings.redis.url else start_embedded_redis(settings.data_dir / "redis")
    pg_dsn = settings.postgres.dsn or (postgres.dsn if postgres else "")
    redis_url = settings.redis.url or (redis.url if redis else "")
    try:
        oms = start_oms(settings, pg_dsn, redis_url)
    except BaseException:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        raise
    return EmbeddedPlatform(
        settings=settings,
        pg_dsn=pg_dsn,
        redis_url=redis_url,
        oms=oms,
        postgres=postgres,
        redis=redis,
    )
