"""Fixtures with the real parts: an embedded Postgres and Redis per test session, a fresh
database (migrated, from a template) and an empty Redis per test, a standalone Pulsar broker
(started by the first test that needs it), and a running OMS on a loopback port for the gRPC
tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import redis as redis_lib
from psycopg_pool import ConnectionPool

from fillpath.api.v1 import oms_pb2_grpc
from fillpath.infra.postgres.embedded import EmbeddedPostgres, start_embedded_postgres
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.pulsar.standalone import PulsarStandalone, start_standalone
from fillpath.infra.redis.embedded import EmbeddedRedis, start_embedded_redis
from fillpath.infra.settings import OmsSettings, Settings
from fillpath.oms.main import OmsRuntime, start_oms
from fillpath.oms.projection import OMS_MIGRATIONS

TEMPLATE = "fillpath_template"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate(server.database_dsn(TEMPLATE), [EVENT_STORE_MIGRATIONS, OMS_MIGRATIONS])
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(postgres_server: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield postgres_server.database_dsn(name)
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pool(pg_dsn: str) -> Iterator[ConnectionPool[Any]]:
    pool = open_pool(pg_dsn, 8, name="test")
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def pulsar_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulsarStandalone]:
    """A broker for the session; tests keep apart by topic prefixes of their own."""
    broker = start_standalone(tmp_path_factory.mktemp("pulsar"))
    yield broker
    broker.stop()


@pytest.fixture
def oms_runtime(pg_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[OmsRuntime]:
    settings = Settings(
        data_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0", snapshot_every=5, expiry_interval=0.1),
    )
    runtime = start_oms(settings, pg_dsn, redis_url)
    yield runtime
    runtime.stop(grace=1.0)


@pytest.fixture
def oms(oms_runtime: OmsRuntime) -> Iterator[oms_pb2_grpc.OrderManagementServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{oms_runtime.port}") as channel:
        yield oms_pb2_grpc.OrderManagementServiceStub(channel)
