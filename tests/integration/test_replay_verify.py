"""`fillpath replay` rebuilds the read model exactly; `fillpath verify` finds every kind of
tampering and inconsistency, with its stream and position."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.oms.main import OmsRuntime
from fillpath.oms.projection import OrderViews, rebuild
from fillpath.oms.verify import verify
from tests.integration.test_oms_grpc import children, fill, report, submit


def trade(oms: OrderManagementServiceStub) -> list[str]:
    """A few orders with children, fills, cancels and a rejection; returns the parent ids."""
    parents = []
    for i in range(4):
        parent = submit(oms, f"c{i}", quantity=5_000).terms.order_id
        parents.append(parent)
        first, second = children(oms, parent, 2_000, 3_000)
        report(oms, first, f"a{i}", C.EXEC_TYPE_NEW)
        for n in range(1, 9):  # enough events to cross snapshot boundaries
            fill(oms, first, f"f{i}-{n}", 100)
        fill(oms, second, f"g{i}", 3_000)
    submit(
        oms,
        "rejected",
        account="DESK-QUANT",
        portfolio="STATARB",
        symbol="UMBR",
        quantity=1,
        limit_price_nanos=312_000_000_000,
    )
    return parents


def test_replay_rebuilds_the_read_model_exactly(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    trade(oms)
    views = OrderViews(oms_runtime.pool)
    live = views.snapshot_rows()
    with oms_runtime.pool.connection() as conn:
        conn.execute("UPDATE order_view SET status = 0, filled_quantity = -1")
    streams, events = rebuild(oms_runtime.pool, oms_runtime.store)
    assert views.snapshot_rows() == live
    assert (streams, events) == (5, oms_runtime.store.head_position())


def test_verify_passes_on_an_honest_store(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    trade(oms)
    report_ = verify(oms_runtime.pool, oms_runtime.store, oms_runtime.store.codec)
    assert report_.ok, report_.inconsistencies
    assert report_.streams == 5


def _tamper(pool: ConnectionPool[Any], sql: str) -> None:
    with pool.connection() as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        conn.execute(sql)
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")


def test_verify_finds_a_rewritten_fill_by_stream_and_position(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    parent = trade(oms)[1]
    pool = oms_runtime.pool
    with pool.connection() as conn:
        position, version = conn.execute(
            "SELECT position, stream_version FROM events WHERE stream_id = %s"
            " AND event_type = 'ChildOrderFilled' ORDER BY position LIMIT 1",
            (parent,),
        ).fetchone()  # type: ignore[misc]
    _tamper(
        pool,
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{quantity}', '50')::json"
        f" WHERE position = {position}",
    )
    found = verify(pool, oms_runtime.store, oms_runtime.store.codec).inconsistencies
    assert [
        (i.stream_id, i.position, i.version) for i in found if "hash mismatch" in i.problem
    ] == [(parent, position, version)]
    # The lower fill also breaks the books: the child's fills no longer add up to the parent's.
    assert any("Σ child fills" in i.problem for i in found)


def test_verify_finds_a_removed_event_as_a_gap_and_a_broken_chain(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    parent = trade(oms)[0]
    _tamper(
        oms_runtime.pool, f"DELETE FROM events WHERE stream_id = '{parent}' AND stream_version = 3"
    )
    problems = [
        i.problem
        for i in verify(
            oms_runtime.pool, oms_runtime.store, oms_runtime.store.codec
        ).inconsistencies
    ]
    assert any("version 4 where 3 was expected" in p for p in problems)
    assert any("hash chain broken" in p for p in problems)


def test_verify_finds_a_snapshot_that_disagrees_with_the_events(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    parent = trade(oms)[2]
    with oms_runtime.pool.connection() as conn:
        conn.execute(
            "UPDATE snapshots SET state"
            " = jsonb_set(state::jsonb, '{parent,filled_quantity}', '1')::json"
            " WHERE stream_id = %s",
            (parent,),
        )
    found = verify(oms_runtime.pool, oms_runtime.store, oms_runtime.store.codec).inconsistencies
    assert [i.stream_id for i in found] == [parent]
    assert "snapshot" in found[0].problem


def test_verify_finds_missing_tail_events_behind_a_snapshot(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    parent = trade(oms)[3]
    with oms_runtime.pool.connection() as conn:
        version = conn.execute(
            "SELECT stream_version FROM snapshots WHERE stream_id = %s", (parent,)
        ).fetchone()[0]  # type: ignore[index]
    _tamper(
        oms_runtime.pool,
        f"DELETE FROM events WHERE stream_id = '{parent}' AND stream_version >= {version}",
    )
    problems = [
        i.problem
        for i in verify(
            oms_runtime.pool, oms_runtime.store, oms_runtime.store.codec
        ).inconsistencies
    ]
    assert any("past the last event" in p for p in problems)


def test_verify_passes_with_extreme_float_parameters(
    oms: OrderManagementServiceStub, oms_runtime: OmsRuntime
) -> None:
    instructions = C.ExecutionInstructions(
        params={"big": 1e16, "negative_zero": -0.0, "tiny": 5e-324}
    )
    submit(oms, "floats", instructions=instructions)
    report_ = verify(oms_runtime.pool, oms_runtime.store, oms_runtime.store.codec)
    assert report_.ok, report_.inconsistencies
