"""Connection pools to Postgres, configured the same way in every process."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.core.errors import Unavailable


def open_pool(dsn: str, size: int, *, name: str = "fillpath") -> ConnectionPool[Any]:
    """A pool of `size` connections, open and checked; `Unavailable` if Postgres is not there."""
    pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        # All connections from the start: growing on demand makes the first burst wait for
        # new backends (tens of milliseconds each).
        min_size=size,
        max_size=size,
        open=False,
        timeout=10.0,
        name=name,
        # A read is one round trip; a write says where its transaction is (an append is one
        # multi-statement query, others use `conn.transaction()`).
        kwargs={"autocommit": True},
    )
    pool.open(wait=True, timeout=30.0)
    try:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    except Exception as err:
        pool.close()
        raise Unavailable("postgres", str(err)) from err
    return pool
