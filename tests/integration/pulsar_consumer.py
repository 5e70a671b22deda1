"""A consumer service for the Pulsar crash tests, as a process the tests can SIGKILL.

Subscribes to the orders topic with Key_Shared consumers and, through the inbox, records each
event in ``seen`` (in the order handled) in the same transaction that marks it handled; every
delivery, duplicates included, is counted in ``deliveries`` first.

Environment: FILLPATH_PG_DSN, FILLPATH_PULSAR_URL, FILLPATH_PULSAR_TOPIC_PREFIX, and
CONSUMER_DELAY (seconds of work per event).
"""

from __future__ import annotations

import os
import time
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.infra.bus import ORDERS_TOPIC, BusMessage
from fillpath.infra.event_store import Transaction
from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.postgres.inbox import Inbox
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.pulsar.bus import PulsarBus

TABLES = """
CREATE TABLE IF NOT EXISTS seen (
    seq bigserial, event_id text, stream text, position bigint, pid int);
CREATE TABLE IF NOT EXISTS deliveries (event_id text, pid int);
"""


def recorder(pool: ConnectionPool[Any], delay: float = 0.0) -> Any:
    """The handler: counts the delivery, then handles the event once (inbox)."""
    inbox = Inbox(pool, "crash-consumer")
    pid = os.getpid()

    def record(tx: Transaction, m: BusMessage) -> None:
        time.sleep(delay)
        tx.execute(
            "INSERT INTO seen (event_id, stream, position, pid) VALUES (%s, %s, %s, %s)",
            (m.event_id, m.key, m.position, pid),
        )

    def handle(m: BusMessage) -> None:
        with pool.connection() as conn:
            conn.execute("INSERT INTO deliveries VALUES (%s, %s)", (m.event_id, pid))
        inbox.handle_once(m, record)

    return handle


def main() -> None:
    pool = open_pool(os.environ["FILLPATH_PG_DSN"], 4, name="crash-consumer")
    with pool.connection() as conn:
        conn.execute(TABLES)
    bus = PulsarBus(
        os.environ["FILLPATH_PULSAR_URL"], topic_prefix=os.environ["FILLPATH_PULSAR_TOPIC_PREFIX"]
    )
    delay = float(os.environ.get("CONSUMER_DELAY", "0"))
    bus.subscribe(ORDERS_TOPIC, "crash-consumer", recorder(pool, delay), consumers=2)
    print("crash-consumer listening on pulsar", flush=True)
    try:
        wait_for_signal()
    finally:
        bus.close()
        pool.close()


if __name__ == "__main__":
    main()
