"""Group commit: appends that arrive while a commit is in flight go together in the next one.

Each append is a list of SQL statements, its event insert first. A batch is one transaction:
the append lock, every append's statements, the commit — one round trip, one lock acquisition
and one fsync for all of them, instead of a queue of backends each waiting for the lock (on
this kind of machine every wake-up of a waiting backend costs a fraction of a millisecond).

Whoever finds no commit in flight leads: it runs the batch of everything queued, hands every
caller its result, and passes the lead to the first caller that queued meanwhile — no extra
thread, no extra hop. When a batch fails, its appends are run again one by one, so one append's
conflict is reported to that append alone. Nobody is answered before their batch committed.

Every statement runs prepared: the first time a connection meets a statement's text it is
PREPAREd there (under a name made from the text), and from then on the batch says
``EXECUTE name(values)``. Postgres then parses and plans each statement once per connection
instead of once per append, which roughly halves the CPU it spends on a small append (the
statements are constants of the code, so there are few of them). A statement whose parameters
Postgres cannot type on their own is run as it is.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import ClientCursor, Connection
from psycopg_pool import ConnectionPool

from fillpath.infra.event_store import Statement


@dataclass(eq=False)
class PendingAppend:
    """One append's statements; the first must return the inserted positions."""

    statements: list[Statement]
    positions: list[int] | None = None
    error: BaseException | None = None
    promoted: bool = False
    ready: threading.Event = field(default_factory=threading.Event)

    def result(self) -> list[int]:
        if self.error is not None:
            raise self.error
        assert self.positions is not None
        return self.positions


class GroupCommitter:
    def __init__(self, pool: ConnectionPool[Any], prefix: Statement, max_batch: int = 64) -> None:
        """`prefix` runs first in every batch (the append lock)."""
        self._pool = pool
        self._prefix = prefix
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[PendingAppend] = []
        self._busy = False
        self._names: dict[str, str | None] = {}
        """Statement text → its prepared statement's name (None: it cannot be prepared)."""
        self._prepared: weakref.WeakKeyDictionary[Connection[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )
        """Connection → the names prepared on it (a connection the pool replaced has none)."""

    def commit(self, append: PendingAppend) -> list[int]:
        """Runs `append` in the next batch; returns its positions once that batch committed."""
        with self._lock:
            self._queue.append(append)
            leading = not self._busy
            self._busy = True
        if not leading:
            append.ready.wait()
            if not append.promoted:
                return append.result()
        with self._lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            self._run(batch)
        finally:
            # Whatever happened, the next batch gets a leader (or the committer goes idle).
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.promoted = True
                    successor.ready.set()
                else:
                    self._busy = False
        return append.result()

    def _run(self, batch: list[PendingAppend]) -> None:
        """Runs `batch`; every append in it ends with positions or an error, and is woken."""
        try:
            try:
                for append, positions in zip(batch, self._execute(batch), strict=True):
                    append.positions = positions
            except psycopg.Error:
                if len(batch) == 1:
                    raise
                for append in batch:  # find whose append failed: run each on its own
                    try:
                        (append.positions,) = self._execute([append])
                    except Exception as single:
                        append.error = single
        except BaseException as err:
            for append in batch:
                if append.positions is None and append.error is None:
                    append.error = err
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt and the like: tell the callers, then go on up
        finally:
            for append in batch:
                append.ready.set()

    def _execute(self, batch: list[PendingAppend]) -> list[list[int]]:
        script = [self._prefix, *(s for append in batch for s in append.statements)]
        with self._pool.connection() as conn, ClientCursor(conn) as cursor:
            # One simple query of many statements: Postgres runs it as one transaction.
            cursor.execute(
                ";\n".join(cursor.mogrify(*self._prepared_form(conn, s)) for s in script)
            )
            results = []
            for append in batch:
                cursor.nextset()  # onto this append's insert
                results.append([row[0] for row in cursor.fetchall()])
                for _ in append.statements[1:]:
                    cursor.nextset()
            return results

    def _prepared_form(self, conn: Connection[Any], statement: Statement) -> Statement:
        """`statement` as an EXECUTE of its prepared form on `conn` (prepared there first if
        it is not yet), or as it is when Postgres cannot prepare it."""
        sql, params = statement
        with self._lock:
            name = self._names.setdefault(sql, _name_of(sql))
            prepared = self._prepared.setdefault(conn, set())
        if name is None:
            return statement
        if name not in prepared:
            try:
                conn.execute(f"PREPARE {name} AS {_numbered(sql)}")
            except psycopg.errors.DuplicatePreparedStatement:
                pass  # another committer on this pool prepared the same text on it
            except psycopg.errors.IndeterminateDatatype:
                with self._lock:
                    self._names[sql] = None
                return statement
            prepared.add(name)
        return f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params


def _name_of(sql: str) -> str:
    return f"fillpath_{hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()}"


_PLACEHOLDER = re.compile(r"%%|%s")


def _numbered(sql: str) -> str:
    """`sql` with its ``%s`` placeholders numbered as Postgres's ``$1``, ``$2``…"""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql)
