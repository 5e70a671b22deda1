"""The OMS read model (`order_view`): written with each append, queried by ListOrders,
rebuilt from the events by `fillpath replay`.

Rows are derived from the aggregate as its events left it, never from the request, so a rebuild
from position zero writes exactly what the live appends wrote.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.core.enums import OrderStatus
from fillpath.core.errors import InvalidArgument
from fillpath.core.events import OrderEvent
from fillpath.core.orders import Order
from fillpath.core.parent_order import ParentOrder
from fillpath.infra.codec import decode, encode, format_time, parse_time
from fillpath.infra.event_store import Statement
from fillpath.infra.postgres.event_store import APPEND_LOCK, PostgresEventStore
from fillpath.infra.postgres.schema import MigrationSet

OMS_MIGRATIONS = MigrationSet("oms", "fillpath.oms")

# Rows travel as one JSON array, matched to the table's columns by name.
_UPSERT = """
INSERT INTO order_view SELECT * FROM json_populate_recordset(NULL::order_view, %s::json)
ON CONFLICT (order_id) DO UPDATE SET
    status = EXCLUDED.status, quantity = EXCLUDED.quantity,
    filled_quantity = EXCLUDED.filled_quantity, leaves_quantity = EXCLUDED.leaves_quantity,
    working_quantity = EXCLUDED.working_quantity, fees_nanos = EXCLUDED.fees_nanos,
    expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at,
    stream_version = EXCLUDED.stream_version, document = EXCLUDED.document
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    """An order from the read model, with the parent-level figures its children make."""

    order: Order
    working_quantity: int
    fees_nanos: int


def projection_rows(aggregate: ParentOrder, order_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of `order_ids` (and the parent's, always: its working quantity moves with its
    children) as `aggregate` now stands. Built before the append takes its lock."""
    ids = dict.fromkeys([aggregate.order_id, *order_ids])
    return [_row(aggregate, aggregate.order(i)) for i in ids]


def upsert_statement(rows: list[dict[str, Any]]) -> Statement:
    """One statement writing `rows`, to run in the append's transaction."""
    return _UPSERT, (json.dumps(rows, separators=(",", ":")),)


def _row(aggregate: ParentOrder, order: Order) -> dict[str, Any]:
    is_parent = order is aggregate.parent
    document = encode(order)
    document["exec_ids"] = []  # kept in the stream; a listing does not need them
    terms = order.terms
    return {
        "order_id": order.order_id,
        "stream_id": aggregate.order_id,
        "parent_order_id": terms.parent_order_id,
        "client_order_id": terms.client_order_id,
        "account": terms.account,
        "portfolio": terms.portfolio,
        "symbol": terms.symbol,
        "side": int(terms.side),
        "status": int(order.status),
        "quantity": order.quantity,
        "filled_quantity": order.filled_quantity,
        "leaves_quantity": order.leaves_quantity,
        "working_quantity": aggregate.working_quantity if is_parent else 0,
        "fees_nanos": aggregate.fees_nanos if is_parent else order.fees_nanos,
        "venue": terms.venue,
        "expires_at": document["expires_at"],
        "created_at": document["created_at"],
        "updated_at": document["updated_at"],
        "stream_version": order.version,
        "document": document,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderQuery:
    account: str = ""
    portfolio: str = ""
    symbol: str = ""
    statuses: tuple[OrderStatus, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    include_children: bool = False
    ascending: bool = False
    page_size: int = 100
    page_token: str = ""


def _token(row: tuple[Any, ...]) -> str:
    raw = json.dumps([format_time(row[0]), row[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _untoken(token: str) -> tuple[datetime, str]:
    try:
        created, order_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return parse_time(created), str(order_id)
    except (ValueError, TypeError) as err:
        raise InvalidArgument.single("page.page_token", token, "not a token from this API") from err


class OrderViews:
    """Queries over `order_view`."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def page(self, query: OrderQuery) -> tuple[list[OrderRow], str]:
        """One page of orders matching `query`, and the token of the next page ('' at the end)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("account", query.account),
            ("portfolio", query.portfolio),
            ("symbol", query.symbol),
        ):
            if value:
                where.append(f"{column} = %s")
                params.append(value)
        if query.statuses:
            where.append("status = ANY(%s)")
            params.append([int(s) for s in query.statuses])
        if query.created_from is not None:
            where.append("created_at >= %s")
            params.append(query.created_from)
        if query.created_to is not None:
            where.append("created_at < %s")
            params.append(query.created_to)
        if not query.include_children:
            where.append("parent_order_id IS NULL")
        if query.page_token:
            where.append(f"(created_at, order_id) {'>' if query.ascending else '<'} (%s, %s)")
            params.extend(_untoken(query.page_token))
        direction = "ASC" if query.ascending else "DESC"
        sql = (
            "SELECT created_at, order_id, working_quantity, fees_nanos, document FROM order_view"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY created_at {direction}, order_id {direction} LIMIT %s"
        )
        params.append(query.page_size + 1)
        with self._pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        page = rows[: query.page_size]
        token = _token(page[-1]) if len(rows) > query.page_size else ""
        return [
            OrderRow(order=decode(Order, r[4]), working_quantity=r[2], fees_nanos=r[3])
            for r in page
        ], token

    def due_for_expiry(self, now: datetime, limit: int = 100) -> list[str]:
        """Live parent orders whose expiry has come, oldest expiry first."""
        live = [int(s) for s in OrderStatus if not s.is_terminal]
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT order_id FROM order_view WHERE expires_at <= %s"
                " AND status = ANY(%s) AND parent_order_id IS NULL ORDER BY expires_at LIMIT %s",
                (now, live, limit),
            ).fetchall()
        return [row[0] for row in rows]

    def with_unsent_children(self) -> list[str]:
        """Parents with a child pending new, cancel or replace: what a crash may have left
        unsent."""
        pending = [
            int(OrderStatus.PENDING_NEW),
            int(OrderStatus.PENDING_CANCEL),
            int(OrderStatus.PENDING_REPLACE),
        ]
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT parent_order_id FROM order_view"
                " WHERE parent_order_id IS NOT NULL AND status = ANY(%s) ORDER BY 1",
                (pending,),
            ).fetchall()
        return [row[0] for row in rows]

    def snapshot_rows(self) -> list[tuple[Any, ...]]:
        """Every row, in order id order: what a rebuild must reproduce exactly."""
        with self._pool.connection() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(
                "SELECT * FROM order_view ORDER BY order_id"
            ).fetchall()
        return rows


def rebuild(
    pool: ConnectionPool[Any],
    store: PostgresEventStore,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[int, int]:
    """Rebuilds `order_view` from every event, from position zero, in one transaction.

    Appends wait meanwhile (the append lock is held), so the result is exact. Returns the
    number of streams and of events replayed.
    """
    with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
        cur.execute("TRUNCATE order_view")
        streams = [r[0] for r in cur.execute("SELECT DISTINCT stream_id FROM events ORDER BY 1")]
        events = 0
        for done, stream_id in enumerate(streams, start=1):
            recorded = [r for r in store.read_stream(stream_id) if isinstance(r.event, OrderEvent)]
            if recorded:
                aggregate = ParentOrder.from_events((r.version, r.event) for r in recorded)
                cur.execute(*upsert_statement(projection_rows(aggregate, aggregate.children)))
                events += len(recorded)
            progress(done, len(streams))
    return len(streams), events
