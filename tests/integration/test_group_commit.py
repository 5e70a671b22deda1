"""Group commit: appends batched into one transaction, each answered with its own outcome."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from fillpath.infra.postgres.group_commit import GroupCommitter, PendingAppend
from fillpath.infra.postgres.pool import open_pool


@pytest.fixture
def committer(pool: ConnectionPool[Any]) -> GroupCommitter:
    with pool.connection() as conn:
        conn.execute("CREATE TABLE log (position bigserial PRIMARY KEY, key text UNIQUE)")
    return GroupCommitter(pool, ("SELECT pg_advisory_xact_lock(%s)", (42,)))


def insert(key: str) -> PendingAppend:
    return PendingAppend([("INSERT INTO log (key) VALUES (%s) RETURNING position", (key,))])


def test_a_batch_answers_each_append_and_a_conflict_fails_only_its_own(
    committer: GroupCommitter, pool: ConnectionPool[Any]
) -> None:
    committer.commit(insert("taken"))
    batch = [insert("a"), insert("taken"), insert("b")]
    committer._run(batch)  # one batch, as if the three had queued together
    assert batch[0].positions
    assert batch[2].positions
    assert batch[0].positions < batch[2].positions
    assert isinstance(batch[1].error, psycopg.errors.UniqueViolation)
    with pool.connection() as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM log ORDER BY position")] == [
            "taken",
            "a",
            "b",
        ]


def test_concurrent_appends_all_commit_each_once(
    committer: GroupCommitter, pool: ConnectionPool[Any]
) -> None:
    results: dict[str, list[int]] = {}
    barrier = threading.Barrier(16)

    def append(key: str) -> None:
        barrier.wait()
        for n in range(20):
            results[f"{key}-{n}"] = committer.commit(insert(f"{key}-{n}"))

    threads = [threading.Thread(target=append, args=(f"t{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    positions = sorted(p for ps in results.values() for p in ps)
    assert len(results) == 320
    assert len(set(positions)) == 320
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM log").fetchone() == (320,)


def test_an_unexpected_failure_reaches_every_caller_and_the_next_batch_still_runs(
    committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(batch: list[PendingAppend]) -> list[list[int]]:
        raise RuntimeError("the database adapter broke")

    with monkeypatch.context() as patch:
        patch.setattr(committer, "_execute", broken)
        with pytest.raises(RuntimeError, match="adapter broke"):
            committer.commit(insert("x"))
    assert committer.commit(insert("y"))  # not stuck behind the failed batch


def test_each_statement_is_prepared_once_per_connection(pg_dsn: str) -> None:
    pool = open_pool(pg_dsn, 1, name="test-prepared")  # one connection: every batch uses it
    try:
        with pool.connection() as conn:
            conn.execute("CREATE TABLE prepared_log (position bigserial PRIMARY KEY, key text)")
        # Two committers on one pool (two stores in one process) share what is prepared.
        committers = [
            GroupCommitter(pool, ("SELECT pg_advisory_xact_lock(%s)", (42,))) for _ in range(2)
        ]
        note = "UPDATE prepared_log SET key = key || '%%' WHERE position = %s"  # a literal %
        for n in range(4):
            (position,) = committers[n % 2].commit(
                PendingAppend(
                    [
                        (
                            "INSERT INTO prepared_log (key) VALUES (%s) RETURNING position",
                            (f"k{n}",),
                        ),
                        (note, (n + 1,)),
                    ]
                )
            )
            assert position == n + 1
        with pool.connection() as conn:
            keys = [r[0] for r in conn.execute("SELECT key FROM prepared_log ORDER BY position")]
            prepared = conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'fillpath_%'"
            ).fetchone()
    finally:
        pool.close()
    assert keys == ["k0%", "k1%", "k2%", "k3%"]
    assert prepared == (3,)  # the lock, the insert, the update: once each


def test_a_statement_postgres_cannot_prepare_runs_as_it_is(
    committer: GroupCommitter, pool: ConnectionPool[Any]
) -> None:
    untyped = ("SELECT %s IS NULL", (None,))  # nothing tells Postgres the parameter's type
    for key in ("u1", "u2"):
        assert committer.commit(PendingAppend([*insert(key).statements, untyped]))
    with pool.connection() as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM log ORDER BY position")] == ["u1", "u2"]


def test_a_connection_the_pool_replaced_prepares_again(pg_dsn: str) -> None:
    pool = open_pool(pg_dsn, 1, name="test-replaced")
    try:
        with pool.connection() as conn:
            conn.execute("CREATE TABLE replaced_log (position bigserial PRIMARY KEY, key text)")
        committer = GroupCommitter(pool, ("SELECT pg_advisory_xact_lock(%s)", (42,)))
        append = ("INSERT INTO replaced_log (key) VALUES (%s) RETURNING position", ("before",))
        committer.commit(PendingAppend([append]))
        with pool.connection() as conn:
            stale = conn
            conn.close()  # the pool replaces a closed connection when it comes back
        with pool.connection() as conn:
            assert conn is not stale
        assert committer.commit(PendingAppend([(append[0], ("after",))]))
        with pool.connection() as conn:
            keys = [r[0] for r in conn.execute("SELECT key FROM replaced_log ORDER BY position")]
    finally:
        pool.close()
    assert keys == ["before", "after"]
