"""Consumer-side deduplication: handle each event once, however often it is delivered.

The bus delivers at least once. A consumer records the event id in ``consumer_inbox`` in the
same transaction as the effects of handling it; a redelivered event finds its id there and is
skipped, and a handler that fails rolls back its id with its effects, so the retry runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.infra.bus import BusMessage, Handler
from fillpath.infra.event_store import Transaction

TransactionalHandler = Callable[[Transaction, BusMessage], None]


class Inbox:
    def __init__(self, pool: ConnectionPool[Any], consumer: str) -> None:
        self._pool = pool
        self._consumer = consumer

    def handle_once(self, message: BusMessage, handler: TransactionalHandler) -> bool:
        """Runs `handler` in a transaction unless `message` was handled before.

        Returns:
            True if the handler ran, False for a duplicate.
        """
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO consumer_inbox (consumer, event_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (self._consumer, message.event_id),
            )
            if cur.rowcount == 0:
                return False
            handler(cur, message)
            return True

    def handler(self, handler: TransactionalHandler) -> Handler:
        """`handler` wrapped for a bus subscription."""

        def deduplicated(message: BusMessage) -> None:
            self.handle_once(message, handler)

        return deduplicated
