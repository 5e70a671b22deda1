"""Where a service process keeps its state: the Postgres and Redis its settings name, or an
embedded Postgres and Redis in its data directory when they name none (the one-machine mode)."""

from __future__ import annotations

import dataclasses

from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.redis.embedded import start_embedded_redis
from fillpath.infra.settings import Settings


def resolve_storage(settings: Settings) -> Settings:
    """`settings` with a Postgres DSN and a Redis URL: those given, or those of the embedded
    servers started (or found running) under `settings.data_dir`."""
    pg_dsn = settings.postgres.dsn or start_embedded_postgres(settings.data_dir / "postgres").dsn
    redis_url = settings.redis.url or start_embedded_redis(settings.data_dir / "redis").url
    return dataclasses.replace(
        settings,
        postgres=dataclasses.replace(settings.postgres, dsn=pg_dsn),
        redis=dataclasses.replace(settings.redis, url=redis_url),
    )
