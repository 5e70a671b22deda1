"""The event store on Postgres (see fillpath.infra.event_store for the port).

An append is one transaction: take the global append lock, check the stream's head against the
expected version, insert the events with their hash chain, run the caller's inline projection,
store a snapshot if given, and notify listeners; the commit is synchronous, so an append that
returns is durable. The lock serialises appends so positions become visible strictly in order
(the outbox relay and update streams read by position and must never skip one); it is held
only for the few statements of the append.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from fillpath.core.clock import Clock
from fillpath.core.errors import ConcurrencyConflict, IntegrityError, Unavailable
from fillpath.infra.codec import JSON, EventCodec, canonical_json, format_time
from fillpath.infra.event_store import (
    GENESIS_HASH,
    CommandContext,
    EventMetadata,
    LoadedStream,
    RawEvent,
    RecordedEvent,
    SnapshotWrite,
    StoredSnapshot,
    Transaction,
)

APPEND_LOCK = 0x4150504E44  # "APPND": held by every append, and by projection rebuilds
NOTIFY_CHANNEL = "fillpath_events"

_COLUMNS = (
    "position, stream_id, stream_version, event_type, schema_version, payload, metadata,"
    " recorded_at, prev_hash, hash"
)


def event_hash(
    prev_hash: bytes,
    *,
    stream_id: str,
    version: int,
    event_type: str,
    schema_version: int,
    payload: JSON,
    metadata: JSON,
    recorded_at: str,
) -> bytes:
    """SHA-256 of the previous hash and the event's canonical JSON."""
    body = canonical_json(
        {
            "stream_id": stream_id,
            "version": version,
            "event_type": event_type,
            "schema_version": schema_version,
            "payload": payload,
            "metadata": metadata,
            "recorded_at": recorded_at,
        }
    )
    return hashlib.sha256(prev_hash + body.encode()).digest()


def raw_event_hash(raw: RawEvent) -> bytes:
    return event_hash(
        raw.prev_hash,
        stream_id=raw.stream_id,
        version=raw.version,
        event_type=raw.event_type,
        schema_version=raw.schema_version,
        payload=raw.payload,
        metadata=raw.metadata,
        recorded_at=format_time(raw.recorded_at),
    )


def metadata_json(metadata: EventMetadata) -> dict[str, str]:
    return {
        "event_id": metadata.event_id,
        "correlation_id": metadata.correlation_id,
        "causation_id": metadata.causation_id,
        "traceparent": metadata.traceparent,
        "actor": metadata.actor,
    }


class PostgresEventStore:
    def __init__(self, pool: ConnectionPool[Any], codec: EventCodec, clock: Clock) -> None:
        self._pool = pool
        self._codec = codec
        self._clock = clock

    @property
    def codec(self) -> EventCodec:
        return self._codec

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[object],
        context: CommandContext,
        *,
        also: Callable[[Transaction, Sequence[RecordedEvent]], None] | None = None,
        snapshot: SnapshotWrite | None = None,
    ) -> list[RecordedEvent]:
        if not events:
            return []
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
                cur.execute(
                    "SELECT stream_version, hash FROM events WHERE stream_id = %s"
                    " ORDER BY stream_version DESC LIMIT 1",
                    (stream_id,),
                )
                head = cur.fetchone()
                version, prev_hash = (head[0], bytes(head[1])) if head else (0, GENESIS_HASH)
                if version != expected_version:
                    raise ConcurrencyConflict(stream_id, expected_version)
                recorded_at = self._clock.now()
                rows, recorded = self._encode(
                    stream_id, version, prev_hash, events, context, recorded_at
                )
                cur.executemany(
                    "INSERT INTO events (stream_id, stream_version, event_id, event_type,"
                    " schema_version, payload, metadata, recorded_at, prev_hash, hash)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING position",
                    rows,
                    returning=True,
                )
                positions = []
                while True:
                    row = cur.fetchone()
                    assert row is not None
                    positions.append(row[0])
                    if not cur.nextset():
                        break
                recorded = [
                    dataclasses.replace(r, position=p)
                    for r, p in zip(recorded, positions, strict=True)
                ]
                if also is not None:
                    also(cur, recorded)
                if snapshot is not None:
                    cur.execute(
                        "INSERT INTO snapshots (stream_id, stream_version, schema_version, state)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET"
                        " stream_version = EXCLUDED.stream_version,"
                        " schema_version = EXCLUDED.schema_version, state = EXCLUDED.state,"
                        " recorded_at = now()",
                        (
                            stream_id,
                            snapshot.version,
                            snapshot.schema_version,
                            Jsonb(snapshot.state),
                        ),
                    )
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(positions[-1])))
            return recorded
        except psycopg.errors.UniqueViolation as err:
            raise ConcurrencyConflict(stream_id, expected_version) from err
        except psycopg.OperationalError as err:
            raise Unavailable("postgres", str(err)) from err

    def _encode(
        self,
        stream_id: str,
        version: int,
        prev_hash: bytes,
        events: Sequence[object],
        context: CommandContext,
        recorded_at: datetime,
    ) -> tuple[list[tuple[Any, ...]], list[RecordedEvent]]:
        rows: list[tuple[Any, ...]] = []
        recorded: list[RecordedEvent] = []
        at = format_time(recorded_at)
        for event in events:
            version += 1
            event_type = self._codec.type_name(event)
            schema_version = self._codec.schema_version(event)
            payload = self._codec.to_payload(event)
            metadata = EventMetadata.new(context)
            meta_json = metadata_json(metadata)
            digest = event_hash(
                prev_hash,
                stream_id=stream_id,
                version=version,
                event_type=event_type,
                schema_version=schema_version,
                payload=payload,
                metadata=meta_json,
                recorded_at=at,
            )
            rows.append(
                (
                    stream_id,
                    version,
                    metadata.event_id,
                    event_type,
                    schema_version,
                    Jsonb(payload, dumps=canonical_json),
                    Jsonb(meta_json, dumps=canonical_json),
                    recorded_at,
                    prev_hash,
                    digest,
                )
            )
            recorded.append(
                RecordedEvent(
                    position=0,
                    stream_id=stream_id,
                    version=version,
                    event_type=event_type,
                    schema_version=schema_version,
                    event=event,
                    metadata=metadata,
                    recorded_at=recorded_at,
                    hash=digest,
                )
            )
            prev_hash = digest
        return rows, recorded

    def load(self, stream_id: str) -> LoadedStream:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT stream_version, schema_version, state FROM snapshots WHERE stream_id = %s",
                (stream_id,),
            ).fetchone()
            snapshot = (
                StoredSnapshot(version=row[0], schema_version=row[1], state=row[2]) if row else None
            )
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND stream_version > %s"
                " ORDER BY stream_version",
                (stream_id, snapshot.version if snapshot else 0),
            ).fetchall()
        return LoadedStream(
            stream_id=stream_id, snapshot=snapshot, events=tuple(self._decode(r) for r in rows)
        )

    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND stream_version >= %s"
                " AND stream_version <= %s ORDER BY stream_version",
                (stream_id, from_version, to_version if to_version is not None else 2**31 - 1),
            ).fetchall()
        return [self._decode(r) for r in rows]

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        return [self._decode(r) for r in self._read_rows(after_position, limit)]

    def read_raw(self, after_position: int, limit: int) -> list[RawEvent]:
        """Events exactly as stored (payloads not upcast), for verification."""
        return [_raw(r) for r in self._read_rows(after_position, limit)]

    def read_raw_stream(self, stream_id: str) -> list[RawEvent]:
        """A stream's events exactly as stored, in version order, for verification."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s ORDER BY stream_version",
                (stream_id,),
            ).fetchall()
        return [_raw(r) for r in rows]

    def head_position(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    def stream_exists(self, stream_id: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM events WHERE stream_id = %s AND stream_version = 1", (stream_id,)
            ).fetchone()
        return row is not None

    def _read_rows(self, after_position: int, limit: int) -> list[TupleRow]:
        with self._pool.connection() as conn:
            rows: list[TupleRow] = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (after_position, limit),
            ).fetchall()
        return rows

    def _decode(self, row: TupleRow) -> RecordedEvent:
        raw = _raw(row)
        return RecordedEvent(
            position=raw.position,
            stream_id=raw.stream_id,
            version=raw.version,
            event_type=raw.event_type,
            schema_version=raw.schema_version,
            event=self._codec.from_payload(raw.event_type, raw.schema_version, raw.payload),
            metadata=EventMetadata(**raw.metadata),
            recorded_at=raw.recorded_at,
            hash=raw.hash,
        )


def _raw(row: TupleRow) -> RawEvent:
    if len(row) != 10:
        raise IntegrityError(f"unexpected event row shape: {len(row)} columns")
    return RawEvent(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event_type=row[3],
        schema_version=row[4],
        payload=row[5],
        metadata=row[6],
        recorded_at=row[7],
        prev_hash=bytes(row[8]),
        hash=bytes(row[9]),
    )
