"""The event store on Postgres (see fillpath.infra.event_store for the port).

The events of an append are encoded and hashed first; then the append joins a group commit
(fillpath.infra.postgres.group_commit): one multi-statement query, which Postgres runs as one
transaction, takes the global append lock, inserts the events of every append in the batch (a
version already taken fails the unique key: that is the optimistic concurrency check), runs
their inline projection statements, stores snapshots and notifies listeners. The commit is
synchronous, so an append that returns is durable. The lock serialises appends so positions
become visible strictly in order (the outbox relay and update streams read by position and must
never skip one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import ClientCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool

from fillpath.core.clock import Clock
from fillpath.core.errors import ConcurrencyConflict, IntegrityError, Unavailable
from fillpath.infra.codec import EventCodec, canonical_json, format_time
from fillpath.infra.event_store import (
    GENESIS_HASH,
    CommandContext,
    EventMetadata,
    LoadedStream,
    RawEvent,
    RecordedEvent,
    SnapshotWrite,
    Statement,
    StoredSnapshot,
)
from fillpath.infra.postgres.group_commit import GroupCommitter, PendingAppend

APPEND_LOCK = 0x4150504E44  # "APPND": held by every append, and by projection rebuilds
NOTIFY_CHANNEL = "fillpath_events"

# The events of an append travel as one JSON array (one bound parameter, not ten per event).
_INSERT = (
    "WITH inserted AS (INSERT INTO events (stream_id, stream_version, event_id, event_type,"
    " schema_version, payload, metadata, recorded_at, prev_hash, hash)"
    " SELECT r.stream_id, r.stream_version, r.event_id, r.event_type, r.schema_version,"
    " r.payload, r.metadata, r.recorded_at, decode(r.prev_hash, 'hex'), decode(r.hash, 'hex')"
    " FROM json_to_recordset(%s::json) AS r(stream_id text, stream_version integer,"
    " event_id uuid, event_type text, schema_version smallint, payload json, metadata json,"
    " recorded_at timestamptz, prev_hash text, hash text)"
    " ORDER BY r.stream_version RETURNING position)"
    # One notification per append, delivered at commit.
    " SELECT position, pg_notify('fillpath_events', (SELECT max(position) FROM inserted)::text)"
    " FROM inserted ORDER BY position"
)
_UPSERT_SNAPSHOT = (
    "INSERT INTO snapshots (stream_id, stream_version, schema_version, state, stream_hash)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET"
    " stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version,"
    " state = EXCLUDED.state, stream_hash = EXCLUDED.stream_hash, recorded_at = now()"
)

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
    payload_json: str,
    metadata_json: str,
    recorded_at: str,
) -> bytes:
    """SHA-256 over the previous event's hash and this event's fields, the payload and metadata
    as canonical JSON (sorted keys, no spaces: the same text whatever Postgres did to the jsonb)."""
    header = f"{stream_id}\n{version}\n{event_type}\n{schema_version}\n{recorded_at}\n"
    body = f"{header}{payload_json}\n{metadata_json}"
    return hashlib.sha256(prev_hash + body.encode()).digest()


def raw_event_hash(raw: RawEvent) -> bytes:
    return event_hash(
        raw.prev_hash,
        stream_id=raw.stream_id,
        version=raw.version,
        event_type=raw.event_type,
        schema_version=raw.schema_version,
        payload_json=canonical_json(raw.payload),
        metadata_json=canonical_json(raw.metadata),
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
    def __init__(
        self,
        pool: ConnectionPool[Any],
        codec: EventCodec,
        clock: Clock,
        *,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        """`on_commit` is told the last position of each append once it has committed: a
        reader in this process (the outbox relay) need not wait for Postgres's notification."""
        self._pool = pool
        self._codec = codec
        self._clock = clock
        self._on_commit = on_commit
        self._committer = GroupCommitter(pool, ("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,)))

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
        prev_hash: bytes | None = None,
        also: Sequence[Statement] = (),
        snapshot: SnapshotWrite | None = None,
    ) -> list[RecordedEvent]:
        if not events:
            return []
        try:
            if prev_hash is None:
                prev_hash = self._hash_at(stream_id, expected_version)
            # Everything that costs CPU happens before the append lock is taken.
            rows, recorded = self._encode(stream_id, expected_version, prev_hash, events, context)
            statements: list[Statement] = [(_INSERT, (rows,)), *also]
            if snapshot is not None:
                last = recorded[-1]
                state = Json(snapshot.state, dumps=canonical_json)
                statements.append(
                    (
                        _UPSERT_SNAPSHOT,
                        (stream_id, last.version, snapshot.schema_version, state, last.hash),
                    )
                )
            positions = self._committer.commit(PendingAppend(statements))
            if self._on_commit is not None:
                self._on_commit(positions[-1])
            return [
                dataclasses.replace(r, position=p) for r, p in zip(recorded, positions, strict=True)
            ]
        except psycopg.errors.UniqueViolation as err:
            raise ConcurrencyConflict(stream_id, expected_version) from err
        except psycopg.OperationalError as err:
            raise Unavailable("postgres", str(err)) from err

    def _hash_at(self, stream_id: str, version: int) -> bytes:
        if version == 0:
            return GENESIS_HASH
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT hash FROM events WHERE stream_id = %s AND stream_version = %s",
                (stream_id, version),
            ).fetchone()
        if row is None:
            raise ConcurrencyConflict(stream_id, version)
        return bytes(row[0])

    def _encode(
        self,
        stream_id: str,
        version: int,
        prev_hash: bytes,
        events: Sequence[object],
        context: CommandContext,
    ) -> tuple[str, list[RecordedEvent]]:
        """The rows to insert, as one JSON array, and the events as they will be recorded."""
        rows: list[str] = []
        recorded: list[RecordedEvent] = []
        recorded_at = self._clock.now()
        at = format_time(recorded_at)
        for event in events:
            version += 1
            event_type = self._codec.type_name(event)
            schema_version = self._codec.schema_version(event)
            metadata = EventMetadata.new(context)
            payload = canonical_json(self._codec.to_payload(event))
            meta = canonical_json(metadata_json(metadata))
            digest = event_hash(
                prev_hash,
                stream_id=stream_id,
                version=version,
                event_type=event_type,
                schema_version=schema_version,
                payload_json=payload,
                metadata_json=meta,
                recorded_at=at,
            )
            # Written by hand so the payload's canonical JSON text is embedded as it is.
            rows.append(
                f'{{"stream_id":{json.dumps(stream_id)},"stream_version":{version},'
                f'"event_id":"{metadata.event_id}","event_type":{json.dumps(event_type)},'
                f'"schema_version":{schema_version},"payload":{payload},"metadata":{meta},'
                f'"recorded_at":"{at}","prev_hash":"{prev_hash.hex()}","hash":"{digest.hex()}"}}'
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
        return "[" + ",".join(rows) + "]", recorded

    def load(self, stream_id: str) -> LoadedStream:
        with self._pool.connection() as conn, ClientCursor(conn) as cursor:
            # Both reads in one round trip and one snapshot of the database: read committed,
            # an append committing between them could pair an old snapshot with a later tail.
            cursor.execute(
                cursor.mogrify(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                    " SELECT stream_version, schema_version, state, stream_hash FROM snapshots"
                    " WHERE stream_id = %(s)s;"
                    f" SELECT {_COLUMNS} FROM events WHERE stream_id = %(s)s AND stream_version >"
                    " coalesce((SELECT stream_version FROM snapshots WHERE stream_id = %(s)s), 0)"
                    " ORDER BY stream_version;"
                    " COMMIT",
                    {"s": stream_id},
                )
            )
            cursor.nextset()  # past BEGIN
            row = cursor.fetchone()
            cursor.nextset()
            rows = cursor.fetchall()
        snapshot = None
        if row is not None:
            snapshot = StoredSnapshot(
                version=row[0], schema_version=row[1], state=row[2], stream_hash=bytes(row[3])
            )
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

    def _read_rows(self, after_position: int, limit: int) -> list[TupleRow]:
        with self._pool.connection() as conn:
            rows: list[TupleRow] = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (after_position, limit),
            ).fetchall()
        return rows

    def _decode(self, row: TupleRow) -> RecordedEvent:
        return self.decode(_raw(row))

    def decode(self, raw: RawEvent) -> RecordedEvent:
        """A stored event, decoded and upcast to its current schema."""
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
