"""The event store port: what the domains may ask of it, and the records it hands back.

One append-only log (ARCHITECTURE.md §3): every event has a global position, a stream and a
version within it (unique, which gives optimistic concurrency), its type and schema version, a
payload, metadata (who, in answer to what, within which trace) and a hash chaining it to the
stream's previous event. The Postgres adapter is in fillpath.infra.postgres.event_store.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

GENESIS_HASH = bytes(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandContext:
    """Who issued a command, in answer to what, within which trace: copied onto its events."""

    actor: str = ""
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str = ""
    traceparent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventMetadata:
    event_id: str
    correlation_id: str = ""
    causation_id: str = ""
    traceparent: str = ""
    actor: str = ""

    @classmethod
    def new(cls, context: CommandContext) -> EventMetadata:
        return cls(
            event_id=str(uuid.uuid4()),
            correlation_id=context.correlation_id,
            causation_id=context.causation_id,
            traceparent=context.traceparent,
            actor=context.actor,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEvent:
    """An event as stored, decoded (and upcast) to its current schema."""

    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    event: Any
    metadata: EventMetadata
    recorded_at: datetime
    hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """An event exactly as stored, for checking its hash."""

    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    payload: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSnapshot:
    version: int
    schema_version: int
    state: dict[str, Any]
    # Hash of the stream's event at `version`.
    stream_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedStream:
    """A stream's latest snapshot (if any) and the events after it."""

    stream_id: str
    snapshot: StoredSnapshot | None
    events: tuple[RecordedEvent, ...]

    @property
    def version(self) -> int:
        if self.events:
            return self.events[-1].version
        return self.snapshot.version if self.snapshot else 0

    @property
    def head_hash(self) -> bytes:
        """Hash of the stream's last event: what the next append chains to."""
        if self.events:
            return self.events[-1].hash
        return self.snapshot.stream_hash if self.snapshot else GENESIS_HASH


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotWrite:
    """A snapshot to store with an append, of the stream as of its last appended event."""

    schema_version: int
    state: dict[str, Any]


class Transaction(Protocol):
    """What a consumer may do inside its transaction (the adapter's cursor)."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


# An SQL statement and its parameters, run inside an append's transaction (inline projections).
Statement = tuple[str, Sequence[Any]]


class EventStore(Protocol):
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
        """Appends `events` atomically if the stream is at `expected_version` (0 = new stream).

        `prev_hash` is the hash of the event at `expected_version` (`LoadedStream.head_hash`);
        without it the store reads it. The `also` statements run in the same transaction
        (inline projections); `snapshot` is stored with it, at the last appended version.
        Durable when it returns.

        Raises:
            ConcurrencyConflict: the stream is not at `expected_version`.
        """
        ...

    def load(self, stream_id: str) -> LoadedStream:
        """The latest snapshot of the stream and every event after it."""
        ...

    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]: ...

    def read_all(self, after_position: int, limit: int) -> list[RecordedEvent]:
        """Events with a position greater than `after_position`, in position order."""
        ...

    def head_position(self) -> int: ...
