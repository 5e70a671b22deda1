"""Crashes on the Pulsar path: SIGKILL the relay while it publishes a burst, or a consumer while
it handles one; after a restart each consumer has every event exactly once, each order's events
in the order of the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from fillpath.core.events import EVENT_TYPES, OrderCancelRequested
from fillpath.infra.bus import ORDERS_TOPIC
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.event_store import CommandContext
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.pulsar.standalone import PulsarStandalone
from fillpath.infra.service_process import ServiceProcess, spawn_service
from fillpath.relay.main import start_relay
from tests.factories import at
from tests.integration.pulsar_consumer import TABLES, recorder
from tests.integration.test_bus_contract import wait_for

pytestmark = pytest.mark.slow

STREAMS = 40
EVENTS_PER_STREAM = 150
TOTAL = STREAMS * EVENTS_PER_STREAM


@pytest.fixture
def prefix() -> str:
    return f"persistent://public/default/{uuid.uuid4().hex[:12]}-"


@pytest.fixture
def env(pg_dsn: str, pulsar_broker: PulsarStandalone, prefix: str) -> dict[str, str]:
    return {
        "FILLPATH_PG_DSN": pg_dsn,
        "FILLPATH_PULSAR_URL": pulsar_broker.service_url,
        "FILLPATH_PULSAR_TOPIC_PREFIX": prefix,
    }


@pytest.fixture
def burst(pool: ConnectionPool[Any]) -> None:
    """TOTAL events in the store, the streams interleaved, and the consumer's tables."""
    with pool.connection() as conn:
        conn.execute(TABLES)
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    for chunk in range(0, EVENTS_PER_STREAM, 10):
        for s in range(STREAMS):
            events = [
                OrderCancelRequested(order_id=f"P{s}", occurred_at=at(i), reason=str(i))
                for i in range(chunk, chunk + 10)
            ]
            store.append(f"P{s}", chunk, events, CommandContext())


def count(pool: ConnectionPool[Any], table: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def check_each_event_once_in_order(pool: ConnectionPool[Any]) -> None:
    wait_for(lambda: count(pool, "seen") >= TOTAL, timeout=120)
    with pool.connection() as conn:
        rows = conn.execute("SELECT stream, position FROM seen ORDER BY seq").fetchall()
        logged = conn.execute("SELECT position FROM events ORDER BY position").fetchall()
    assert sorted(p for _, p in rows) == [p for (p,) in logged]  # every event, once
    by_stream: dict[str, list[int]] = {}
    for stream, position in rows:
        by_stream.setdefault(stream, []).append(position)
    assert len(by_stream) == STREAMS
    assert all(ps == sorted(ps) for ps in by_stream.values())  # each order in log order


def spawn_relay(env: dict[str, str], tmp_path: Path) -> ServiceProcess:
    return spawn_service(
        "fillpath.relay.main",
        env,
        log_file=tmp_path / "relay.log",
        ready_after=" publishing to ",
    )


@pytest.fixture
def consumer(
    pool: ConnectionPool[Any], pulsar_broker: PulsarStandalone, prefix: str
) -> Iterator[None]:
    bus = PulsarBus(pulsar_broker.service_url, topic_prefix=prefix)
    bus.subscribe(ORDERS_TOPIC, "crash-consumer", recorder(pool), consumers=2)
    yield
    bus.close()


@pytest.mark.usefixtures("burst", "consumer")
def test_relay_killed_mid_burst_and_restarted_publishes_each_event_once(
    pool: ConnectionPool[Any], env: dict[str, str], tmp_path: Path
) -> None:
    relay = spawn_relay(env, tmp_path)
    wait_for(lambda: count(pool, "deliveries") > TOTAL // 10, timeout=60)
    relay.kill()  # SIGKILL while it publishes
    with pool.connection() as conn:
        checkpoint = conn.execute("SELECT max(position) FROM relay_checkpoints").fetchone()
    assert checkpoint is not None
    assert (checkpoint[0] or 0) < TOTAL, "the kill should land mid-burst"

    relay = spawn_relay(env, tmp_path)
    try:
        check_each_event_once_in_order(pool)
    finally:
        assert relay.stop() == 0
    # The broker stored each position once: no event reached the consumer twice.
    assert count(pool, "deliveries") == TOTAL


@pytest.mark.usefixtures("burst")
def test_consumer_killed_mid_batch_and_restarted_handles_each_event_once(
    pool: ConnectionPool[Any], env: dict[str, str], tmp_path: Path
) -> None:
    consumer_env = {**env, "CONSUMER_DELAY": "0.002"}
    log = tmp_path / "consumer.log"
    consumer = spawn_service("tests.integration.pulsar_consumer", consumer_env, log_file=log)
    relay = start_relay(
        env["FILLPATH_PG_DSN"],
        PulsarBus(env["FILLPATH_PULSAR_URL"], topic_prefix=env["FILLPATH_PULSAR_TOPIC_PREFIX"]),
    )
    try:
        wait_for(lambda: count(pool, "seen") > TOTAL // 5, timeout=60)
        consumer.kill()  # SIGKILL while it handles messages
        assert count(pool, "seen") < TOTAL, "the kill should land mid-batch"
        consumer = spawn_service("tests.integration.pulsar_consumer", consumer_env, log_file=log)
        check_each_event_once_in_order(pool)
    finally:
        consumer.stop()
        relay.stop()
