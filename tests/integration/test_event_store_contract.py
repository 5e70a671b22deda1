"""The event store contract, held against every adapter (today: Postgres).

A contract test class says what any event store must do; each adapter subclasses it once and
provides `store`, so a future adapter is held to exactly the same behaviour.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from fillpath.core.errors import ConcurrencyConflict
from fillpath.core.events import EVENT_TYPES, OrderAccepted, OrderCancelRequested
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.event_store import GENESIS_HASH, CommandContext, EventStore, SnapshotWrite
from fillpath.infra.postgres.event_store import PostgresEventStore, raw_event_hash
from tests.factories import at, sample_events

CONTEXT = CommandContext(actor="tester", correlation_id="corr-1", traceparent="00-abc-def-01")


def _events(stream: str, n: int) -> list[Any]:
    return [
        OrderCancelRequested(order_id=stream, occurred_at=at(i), reason=f"r{i}") for i in range(n)
    ]


class EventStoreContract:
    """What every event store adapter must do."""

    @pytest.fixture
    def store(self) -> EventStore:
        raise NotImplementedError

    def test_append_to_a_new_stream_then_load_it_back(self, store: EventStore) -> None:
        written = store.append("S1", 0, sample_events(), CONTEXT)
        loaded = store.load("S1")
        assert [r.event for r in loaded.events] == sample_events()
        assert [r.version for r in loaded.events] == list(range(1, len(written) + 1))
        assert loaded.version == len(written)

    def test_metadata_records_who_and_in_answer_to_what(self, store: EventStore) -> None:
        (recorded,) = store.append("S1", 0, _events("S1", 1), CONTEXT)
        (loaded,) = store.load("S1").events
        assert loaded.metadata == recorded.metadata
        assert (loaded.metadata.actor, loaded.metadata.correlation_id) == ("tester", "corr-1")
        assert loaded.metadata.traceparent == "00-abc-def-01"

    def test_append_at_a_stale_version_is_a_conflict_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        store.append("S1", 0, _events("S1", 2), CONTEXT)
        with pytest.raises(ConcurrencyConflict):
            store.append("S1", 1, _events("S1", 1), CONTEXT)
        with pytest.raises(ConcurrencyConflict):
            store.append("S1", 0, _events("S1", 1), CONTEXT)
        assert store.load("S1").version == 2

    def test_concurrent_writers_at_one_version_exactly_one_wins(self, store: EventStore) -> None:
        store.append("S1", 0, _events("S1", 1), CONTEXT)
        outcomes: list[str] = []
        barrier = threading.Barrier(8)

        def write() -> None:
            barrier.wait()
            try:
                store.append("S1", 1, _events("S1", 3), CONTEXT)
                outcomes.append("won")
            except ConcurrencyConflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=write) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
        assert store.load("S1").version == 4

    def test_positions_increase_across_streams_in_append_order(self, store: EventStore) -> None:
        for i in range(5):
            store.append(f"S{i % 2}", i // 2, _events(f"S{i % 2}", 1), CONTEXT)
        everything = store.read_all(0, 100)
        positions = [r.position for r in everything]
        assert positions == sorted(positions)
        assert len(set(positions)) == 5
        assert store.read_all(positions[2], 100) == everything[3:]
        assert store.head_position() == positions[-1]

    def test_concurrent_appends_never_let_a_reader_skip_a_position(self, store: EventStore) -> None:
        seen: list[int] = []
        done = threading.Event()

        def tail() -> None:
            position = 0
            while not done.is_set() or store.head_position() > position:
                for recorded in store.read_all(position, 50):
                    seen.append(recorded.position)
                    position = recorded.position

        reader = threading.Thread(target=tail)
        reader.start()
        writers = [
            threading.Thread(
                target=lambda w=w: [
                    store.append(f"W{w}", v, _events(f"W{w}", 1), CONTEXT) for v in range(25)
                ]
            )
            for w in range(6)
        ]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        reader.join()
        assert seen == sorted(seen)
        assert seen == [r.position for r in store.read_all(0, 1000)]

    def test_each_event_hashes_its_predecessor(self, store: EventStore) -> None:
        recorded = store.append("S1", 0, _events("S1", 3), CONTEXT)
        recorded += store.append("S1", 3, _events("S1", 2), CONTEXT)
        assert len({r.hash for r in recorded}) == 5
        assert all(len(r.hash) == 32 for r in recorded)

    def test_snapshot_is_returned_with_only_the_events_after_it(self, store: EventStore) -> None:
        store.append(
            "S1",
            0,
            _events("S1", 3),
            CONTEXT,
            snapshot=SnapshotWrite(schema_version=1, state={"n": 3}),
        )
        store.append("S1", 3, _events("S1", 2), CONTEXT)
        loaded = store.load("S1")
        assert loaded.snapshot is not None
        assert (loaded.snapshot.version, loaded.snapshot.state) == (3, {"n": 3})
        assert [r.version for r in loaded.events] == [4, 5]
        assert loaded.version == 5

    def test_inline_projection_shares_the_transaction(self, store: EventStore) -> None:
        with pytest.raises(Exception, match="no_such_table"):
            store.append(
                "S1",
                0,
                _events("S1", 1),
                CONTEXT,
                also=[("INSERT INTO no_such_table VALUES (%s)", (1,))],
            )
        assert store.load("S1").events == ()

    def test_read_stream_window(self, store: EventStore) -> None:
        store.append("S1", 0, _events("S1", 5), CONTEXT)
        assert [r.version for r in store.read_stream("S1", 2, 4)] == [2, 3, 4]


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, pool: ConnectionPool[Any]) -> EventStore:
        return PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())

    def test_stored_hashes_verify_from_the_raw_rows(self, pool: ConnectionPool[Any]) -> None:
        store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
        store.append("S1", 0, sample_events(), CONTEXT)
        raw = store.read_raw_stream("S1")
        assert raw[0].prev_hash == GENESIS_HASH
        assert all(raw_event_hash(r) == r.hash for r in raw)
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(raw))

    def test_events_cannot_be_updated_or_deleted(self, pool: ConnectionPool[Any]) -> None:
        store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
        store.append("S1", 0, [OrderAccepted(order_id="S1", occurred_at=at(0))], CONTEXT)
        for statement in (
            "UPDATE events SET payload = '{}'",
            "DELETE FROM events",
            "TRUNCATE events",
        ):
            with (
                pool.connection() as conn,
                pytest.raises(psycopg.errors.RaiseException, match="append-only"),
            ):
                conn.execute(statement)
        assert len(store.read_all(0, 10)) == 1

    def test_an_acknowledged_append_is_visible_to_a_new_connection(
        self, pool: ConnectionPool[Any], pg_dsn: str
    ) -> None:
        store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
        store.append("S1", 0, _events("S1", 2), CONTEXT)
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone() == (2,)
