"""AlgoService on the embedded platform with the market lab: a parent order executed through the
engine, the router and the OMS over gRPC, on the lab's simulated clock; an algo process that
dies right after placing a slice's children takes up where its events left it, without a
duplicate child order and without losing its place in the schedule; and bad requests are
refused with the field named, recording nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fillpath.algo.desk import GrpcDesk
from fillpath.algo.execution import ExecutionState
from fillpath.algo.requests import StartRequest
from fillpath.algo.service import Algos, ChildView
from fillpath.api.v1 import algo_pb2, algo_pb2_grpc, common_pb2, oms_pb2, oms_pb2_grpc
from fillpath.core.enums import AlgorithmKind
from fillpath.core.events import EVENT_TYPES
from fillpath.embedded import EmbeddedPlatform
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.event_store import CommandContext
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles
from fillpath.market.gateway import SimulatedGateway
from tests.integration.lab_platform import Lab, lab_platform, run_until_completed, submit
from tests.polling import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[EmbeddedPlatform, SimulatedGateway, Lab]]:
    with lab_platform(tmp_path, choose_strategies=False) as platform:
        yield platform


def _instructions(end: datetime, **fields: Any) -> common_pb2.ExecutionInstructions:
    stamp = Timestamp()
    stamp.FromDatetime(end)
    return common_pb2.ExecutionInstructions(
        algo_profile="twap-standard", algorithm=common_pb2.ALGORITHM_KIND_TWAP, end_time=stamp,
        **fields,
    )  # fmt: skip


@contextmanager
def _stubs(
    platform: EmbeddedPlatform,
) -> Iterator[tuple[oms_pb2_grpc.OrderManagementServiceStub, algo_pb2_grpc.AlgoServiceStub]]:
    """Clients of the platform's OMS and AlgoService."""
    with (
        grpc.insecure_channel(platform.oms_address) as oms_channel,
        grpc.insecure_channel(platform.algo_address) as algo_channel,
    ):
        yield (
            oms_pb2_grpc.OrderManagementServiceStub(oms_channel),
            algo_pb2_grpc.AlgoServiceStub(algo_channel),
        )


def _client_ids(oms: oms_pb2_grpc.OrderManagementServiceStub, parent: str) -> list[str]:
    order = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order
    return [c.terms.client_order_id for c in order.children]


def test_a_twap_executes_through_the_router_and_the_oms(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, gateway, clock = desk
    assert platform.algo is not None
    with _stubs(platform) as (oms, api):
        parent = submit(oms, "algo-twap-1", 6_000)
        end = clock.now() + timedelta(minutes=5)
        started = api.StartExecution(
            algo_pb2.StartExecutionRequest(order_id=parent, instructions=_instructions(end))
        )
        again = api.StartExecution(
            algo_pb2.StartExecutionRequest(order_id=parent, instructions=_instructions(end))
        )
        assert again.execution_id == started.execution_id, "a retried start is the same one"
        for _ in range(400):
            gateway.advance_to(gateway.lab.now + 1.0)
            platform.algo.algos.tick()
            done = api.GetExecution(algo_pb2.ExecutionRef(execution_id=started.execution_id))
            if done.state == algo_pb2.EXECUTION_STATE_COMPLETED:
                break
        assert done.state == algo_pb2.EXECUTION_STATE_COMPLETED
        # Every share is done (what a final slice leaves goes again), and the OMS and the
        # engine agree on each of them.
        ref = algo_pb2.ExecutionRef(execution_id=started.execution_id)
        executed = eventually(
            lambda: (
                (
                    api.GetExecution(ref).executed_quantity
                    == oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order.filled_quantity
                )
                and api.GetExecution(ref).executed_quantity
            )
        )
        assert executed == 6_000
        ids = _client_ids(oms, parent)
        assert len(ids) == len(set(ids))
        assert all(i.startswith(started.execution_id + "-") for i in ids)
        listed = api.ListExecutions(
            algo_pb2.ListExecutionsRequest(states=[algo_pb2.EXECUTION_STATE_COMPLETED])
        )
        assert [e.execution_id for e in listed.executions] == [started.execution_id]


def test_an_order_that_names_its_algorithm_is_executed_without_being_started(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, gateway, clock = desk
    assert platform.algo is not None
    with _stubs(platform) as (oms, api):
        end = clock.now() + timedelta(minutes=3)
        named = submit(oms, "algo-named-1", 3_000, _instructions(end))
        (started,) = eventually(
            lambda: api.ListExecutions(algo_pb2.ListExecutionsRequest()).executions
        )
        assert (started.order_id, started.algorithm) == (named, common_pb2.ALGORITHM_KIND_TWAP)
        assert started.end_time.ToDatetime(tzinfo=UTC) == end
        done = run_until_completed(gateway, platform, api, started.execution_id)
        assert done.executed_quantity == 3_000


def test_bad_instructions_are_refused_with_the_field_named_and_record_nothing(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, _, clock = desk
    with _stubs(platform) as (oms, api):
        parent = submit(oms, "algo-bad-1", 1_000)
        end = clock.now() + timedelta(minutes=5)
        for fields, field in (
            ({"params": {"bogus": 1.0}}, "params.bogus"),
            ({"max_participation_bps": 20_000}, "max_participation_bps"),
            ({"urgency": 7}, "instructions.urgency"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                api.StartExecution(
                    algo_pb2.StartExecutionRequest(
                        order_id=parent, instructions=_instructions(end, **fields)
                    )
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (refused.value.details() or "")
        assert not api.ListExecutions(algo_pb2.ListExecutionsRequest()).executions
        assert _client_ids(oms, parent) == []


def _run(gateway: SimulatedGateway, algos: Algos, *, seconds: int) -> None:
    for _ in range(seconds):
        gateway.advance_to(gateway.lab.now + 1.0)
        algos.tick()


class Crash(BaseException):
    """The process dies here."""


class DyingDesk(GrpcDesk):
    """Places children, then dies before the engine hears the answer."""

    armed = False

    def place(self, parent_id: str, children: Any) -> list[ChildView]:
        placed = super().place(parent_id, children)
        if self.armed:
            raise Crash
        return placed


def test_an_algo_process_that_dies_after_placing_resumes_without_a_duplicate_child(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, gateway, clock = desk
    assert platform.bus is not None
    assert platform.algo is not None
    pool = platform.algo.pool
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    instruments = load_reference_data().instruments
    with (
        grpc.insecure_channel(platform.oms_address) as oms_channel,
        grpc.insecure_channel(platform.sor_address) as sor_channel,
    ):
        oms = oms_pb2_grpc.OrderManagementServiceStub(oms_channel)
        dying = DyingDesk(oms_channel, sor_channel)
        first = Algos(store, pool, dying, load_algo_profiles(None), instruments, clock.now)
        first.subscribe(platform.bus, "algo-first")
        parent = submit(oms, "algo-crash-1", 8_000)
        summary = first.start(
            StartRequest(
                order_id=parent, algo_profile="twap-standard", algorithm=AlgorithmKind.TWAP,
                end=clock.now() + timedelta(minutes=6),
            ),
            CommandContext(actor="test"),
        )  # fmt: skip
        _run(gateway, first, seconds=90)
        before = first.execution(summary.execution_id)
        sent_before = len(before.slices)
        assert sent_before >= 2
        dying.armed = True
        with pytest.raises(Crash):
            _run(gateway, first, seconds=120)
        first.close()  # what is left of the dead process hears nothing more
        crashed_slice = len(before.slices) - 1
        placed = _client_ids(oms, parent)
        assert any(i.startswith(f"{summary.execution_id}-{crashed_slice}-") for i in placed)

        second = Algos(
            store, pool, GrpcDesk(oms_channel, sor_channel), load_algo_profiles(None),
            instruments, clock.now,
        )  # fmt: skip
        second.subscribe(platform.bus, "algo-second")
        assert second.recover() == 1
        resumed = second.execution(summary.execution_id)
        assert len(resumed.slices) == crashed_slice + 1, "its place in the schedule is kept"
        for _ in range(600):
            gateway.advance_to(gateway.lab.now + 1.0)
            second.tick()
            if second.get(summary.execution_id).state == ExecutionState.COMPLETED:
                break
        assert second.get(summary.execution_id).state == ExecutionState.COMPLETED
        ids = _client_ids(oms, parent)
        assert len(ids) == len(set(ids)), "no child order was placed twice"
        executed = eventually(
            lambda: (
                (
                    second.get(summary.execution_id).executed
                    == oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order.filled_quantity
                )
                and second.get(summary.execution_id).executed
            )
        )
        assert executed == 8_000
        replayed = Algos(
            store, pool, GrpcDesk(oms_channel, sor_channel), load_algo_profiles(None),
            instruments, clock.now,
        )  # fmt: skip
        assert replayed.get(summary.execution_id) == second.get(summary.execution_id)
