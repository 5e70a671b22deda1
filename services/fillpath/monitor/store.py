"""The monitor's Postgres tables: its journal, the live executions, alerts and the market tape.

See migrations/0001_monitor.sql for what each table holds. The live executions are a
projection of the journal: `rebuild` folds the journal again from its first entry and rewrites
them, in one transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from psycopg_pool import ConnectionPool

from fillpath.api.v1 import events_pb2
from fillpath.core.errors import InvalidArgument
from fillpath.infra.postgres.schema import MigrationSet
from fillpath.monitor.alerts import Alert
from fillpath.monitor.live import Execution, LiveBook, Mark

MONITOR_MIGRATIONS = MigrationSet("monitor", "fillpath.monitor")

TAPE_TRADE = 1
TAPE_QUOTE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    seq: int
    event_id: str
    event_type: str
    envelope: bytes
    mark: Mark


def _execution_row(execution: Execution, seq: int) -> tuple[Any, ...]:
    return (
        execution.order_id,
        execution.account,
        execution.symbol,
        execution.active,
        seq,
        json.dumps(execution.to_document(), separators=(",", ":")),
    )


_UPSERT_EXECUTION = """
INSERT INTO monitor_execution (order_id, account, symbol, active, seq, document)
VALUES (%s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (order_id) DO UPDATE SET active = EXCLUDED.active, seq = EXCLUDED.seq,
    document = EXCLUDED.document
"""


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    return (
        alert.alert_id,
        datetime.fromtimestamp(alert.raised_at, UTC),
        alert.acknowledged,
        json.dumps(dataclasses.asdict(alert), separators=(",", ":")),
    )


def _token(raised_at: datetime, alert_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([raised_at.isoformat(), alert_id]).encode()).decode()


def _untoken(token: str) -> tuple[datetime, str]:
    try:
        raised, alert_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(raised), str(alert_id)
    except (ValueError, TypeError) as err:
        raise InvalidArgument.single("page.page_token", token, "not a token from this API") from err


class MonitorStore:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    # ---- journal and executions ----------------------------------------------------------

    def last_seq(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM monitor_journal").fetchone()
        return int(row[0]) if row else 0

    def commit(self, entries: Sequence[JournalEntry], executions: Sequence[Execution]) -> None:
        """Journals `entries` and writes the executions they changed, in one transaction."""
        seq = entries[-1].seq if entries else 0
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO monitor_journal (seq, event_id, event_type, envelope, mark)"
                " VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (event_id) DO NOTHING",
                [
                    (e.seq, e.event_id, e.event_type, e.envelope, json.dumps(e.mark.to_json()))
                    for e in entries
                ],
            )
            if executions:
                cur.executemany(_UPSERT_EXECUTION, [_execution_row(x, seq) for x in executions])

    def journal(self, batch: int = 2000) -> Iterator[JournalEntry]:
        """Every journal entry, in order."""
        after = 0
        while True:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT seq, event_id, event_type, envelope, mark FROM monitor_journal"
                    " WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after, batch),
                ).fetchall()
            for seq, event_id, event_type, envelope, mark in rows:
                yield JournalEntry(
                    seq=seq,
                    event_id=event_id,
                    event_type=event_type,
                    envelope=bytes(envelope),
                    mark=Mark.from_json(mark),
                )
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def execution_documents(self) -> dict[str, dict[str, Any]]:
        """Every row of the projection, by order id: what a rebuild must reproduce."""
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT order_id, document FROM monitor_execution").fetchall()
        return dict(rows)

    def rebuild(self) -> tuple[LiveBook, int]:
        """Rewrites `monitor_execution` from the journal; the book it folded and the number of
        entries replayed."""
        book = LiveBook()
        entries = 0
        last_seq: dict[str, int] = {}
        for entry in self.journal():
            envelope = events_pb2.EventEnvelope.FromString(entry.envelope)
            changed = book.apply(envelope, entry.mark)
            if changed is not None:
                last_seq[changed.order_id] = entry.seq
            entries += 1
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("LOCK TABLE monitor_execution")
            cur.execute("TRUNCATE monitor_execution")
            if book.executions:
                cur.executemany(
                    _UPSERT_EXECUTION,
                    [_execution_row(x, last_seq[x.order_id]) for x in book.executions.values()],
                )
        return book, entries

    # ---- alerts ------------------------------------------------------------------------

    def save_alert(self, alert: Alert) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO monitor_alert (alert_id, raised_at, acknowledged, document)"
                " VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (alert_id) DO UPDATE SET"
                " acknowledged = EXCLUDED.acknowledged, document = EXCLUDED.document",
                _alert_row(alert),
            )

    def alert(self, alert_id: str) -> Alert | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT document FROM monitor_alert WHERE alert_id = %s", (alert_id,)
            ).fetchone()
        return None if row is None else Alert(**row[0])

    def alerts(
        self, *, unacknowledged_only: bool = False, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[Alert], str]:
        """Alerts, newest first, one page; and the next page's token ('' at the end)."""
        where: list[str] = []
        params: list[Any] = []
        if unacknowledged_only:
            where.append("NOT acknowledged")
        if page_token:
            where.append("(raised_at, alert_id) < (%s, %s)")
            params.extend(_untoken(page_token))
        sql = (
            "SELECT raised_at, alert_id, document FROM monitor_alert"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY raised_at DESC, alert_id DESC LIMIT %s"
        )
        params.append(page_size + 1)
        with self._pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        page = rows[:page_size]
        token = _token(page[-1][0], page[-1][1]) if len(rows) > page_size else ""
        return [Alert(**r[2]) for r in page], token

    # ---- the tape ----------------------------------------------------------------------

    def append_tape(self, rows: Sequence[tuple[str, float, int, int, int, int]]) -> None:
        """(symbol, t, kind, price or bid, quantity, ask) rows, by COPY."""
        with (
            self._pool.connection() as conn,
            conn.cursor() as cur,
            cur.copy(
                "COPY monitor_tape (symbol, t, kind, price_nanos, quantity, ask_nanos) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def tape(self, symbol: str, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The trades (t, price, quantity) and quotes (t, bid, ask) of `symbol` in [start, end],
        prices in currency, each as an (n, 3) float array in time order."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT t, kind, price_nanos, quantity, ask_nanos FROM monitor_tape"
                " WHERE symbol = %s AND t >= %s AND t <= %s ORDER BY t",
                (symbol, start, end),
            ).fetchall()
        data = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        trades = data[data[:, 1] == TAPE_TRADE][:, [0, 2, 3]]
        quotes = data[data[:, 1] == TAPE_QUOTE][:, [0, 2, 4]]
        trades[:, 1] /= 1e9
        quotes[:, 1:] /= 1e9
        return trades, quotes
