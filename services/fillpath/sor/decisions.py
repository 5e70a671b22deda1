"""The router's decisions in the event log: recorded before Route answers, listed for audit.

Each decision is the one event of its own stream (``routing-<decision id>``), so replicas never
contend for a stream version; the outbox relay publishes it on the routing topic. Listing reads
the event log itself, newest first, a page at a time (the page token is the last position).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from psycopg_pool import ConnectionPool

from fillpath.core.errors import InvalidArgument
from fillpath.core.routing import RoutingDecision
from fillpath.infra.event_store import GENESIS_HASH, CommandContext
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.schema import MigrationSet

SOR_MIGRATIONS = MigrationSet("sor", "fillpath.sor")


class DecisionLog:
    def __init__(self, pool: ConnectionPool[Any], store: PostgresEventStore) -> None:
        self._pool = pool
        self._store = store

    def record(self, decision: RoutingDecision, context: CommandContext) -> int:
        """Appends the decision; durable when it returns. Its position in the log."""
        (recorded,) = self._store.append(
            f"routing-{decision.decision_id}", 0, [decision], context, prev_hash=GENESIS_HASH
        )
        return recorded.position

    def list(
        self,
        *,
        order_id: str = "",
        symbol: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 100,
        page_token: str = "",
    ) -> tuple[list[RoutingDecision], str]:
        """Decisions matching every filter given, newest first; and the next page's token."""
        where = ["event_type = 'RoutingDecision'"]
        params: list[Any] = []
        for clause, value in (
            ("payload->>'order_id' = %s", order_id),
            ("payload->>'symbol' = %s", symbol),
            ("recorded_at >= %s", start),
            ("recorded_at < %s", end),
        ):
            if value:
                where.append(clause)
                params.append(value)
        if page_token:
            if not page_token.isdigit():
                raise InvalidArgument.single(
                    "page.page_token", page_token, "not a token from this API"
                )
            where.append("position < %s")
            params.append(int(page_token))
        params.append(page_size + 1)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT position, schema_version, payload FROM events WHERE "
                + " AND ".join(where)
                + " ORDER BY position DESC LIMIT %s",
                params,
            ).fetchall()
        codec = self._store.codec
        page = rows[:page_size]
        decisions = [
            cast(RoutingDecision, codec.from_payload("RoutingDecision", r[1], r[2])) for r in page
        ]
        token = str(page[-1][0]) if len(rows) > page_size else ""
        return decisions, token
