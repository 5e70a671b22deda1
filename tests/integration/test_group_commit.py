"""Group commit: appends batched into one transaction, each answered with its own outcome."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from fillpath.infra.postgres.group_commit import GroupCommitter, PendingAppend


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
