"""Crash safety: an OMS killed with SIGKILL in the middle of a stream of submits and fills,
restarted, has exactly the acknowledged orders and fills, each once, in the same state as a
full replay of its events.

The OMS runs as its own process (as in a cluster); four clients submit parent orders, place
child orders and report venue acks and fills as fast as it answers. Twice, at a random moment,
the process is killed and restarted. Each client then resends what was in flight (the same
client order ids and exec ids: the OMS must recognise what it had already recorded).
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import grpc
import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import oms_pb2, oms_pb2_grpc
from fillpath.infra.clock import SystemClock
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.service_process import ServiceProcess, spawn_service
from fillpath.oms.main import order_codec
from fillpath.oms.projection import OrderViews, rebuild
from fillpath.oms.verify import verify

pytestmark = pytest.mark.slow

CLIENTS = 4
Stub = oms_pb2_grpc.OrderManagementServiceStub


@dataclass
class Call:
    method: str
    request: Any
    acked: Any = None


@dataclass
class Client:
    """One trading system + algorithm + venue, recording what the OMS acknowledged."""

    name: str
    calls: list[Call] = field(default_factory=list)
    in_flight: Call | None = None
    orders_sent: int = 0

    def run(self, stub_of: Callable[[], Stub], stop: threading.Event) -> None:
        while not stop.is_set():
            self.orders_sent += 1
            order = self._send(stub_of, "SubmitOrder", self._order(self.orders_sent))
            if order is None:
                return
            placed = self._send(stub_of, "PlaceChildOrders", _two_children(order.order))
            if placed is None:
                return
            for child in placed.children:
                for report in _ack_and_two_fills(child.terms.order_id):
                    if self._send(stub_of, "ApplyExecutionReport", report) is None:
                        return

    def _order(self, n: int) -> oms_pb2.SubmitOrderRequest:
        return oms_pb2.SubmitOrderRequest(
            client_order_id=f"{self.name}-{n}",
            account="CRASH",
            portfolio="P",
            symbol="ACME",
            side=C.SIDE_BUY,
            order_type=C.ORDER_TYPE_MARKET,
            time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=1_000,
        )

    def _send(
        self,
        stub_of: Callable[[], oms_pb2_grpc.OrderManagementServiceStub],
        method: str,
        request: Any,
    ) -> Any:
        call = Call(method, request)
        self.in_flight = call
        try:
            call.acked = getattr(stub_of(), method)(request, timeout=10)
        except grpc.RpcError:
            return None  # the OMS died under us: this call is in flight
        self.calls.append(call)
        self.in_flight = None
        return call.acked

    def resend_in_flight(self, stub: oms_pb2_grpc.OrderManagementServiceStub) -> None:
        if self.in_flight is not None:
            call = self.in_flight
            call.acked = getattr(stub, call.method)(call.request, timeout=10)
            self.calls.append(call)
            self.in_flight = None


def _two_children(parent: oms_pb2.Order) -> oms_pb2.PlaceChildOrdersRequest:
    return oms_pb2.PlaceChildOrdersRequest(
        parent_order_id=parent.terms.order_id,
        children=[
            oms_pb2.ChildOrderRequest(
                client_order_id=f"s{k}",
                venue="XNAS",
                quantity=500,
                order_type=C.ORDER_TYPE_MARKET,
                time_in_force=C.TIME_IN_FORCE_IOC,
            )
            for k in range(2)
        ],
    )


def _ack_and_two_fills(child_id: str) -> list[oms_pb2.ApplyExecutionReportRequest]:
    reports = [oms_pb2.ExecutionReport(exec_id=f"{child_id}-ack", exec_type=C.EXEC_TYPE_NEW)]
    for name, quantity in (("f1", 200), ("f2", 300)):
        reports.append(
            oms_pb2.ExecutionReport(
                exec_id=f"{child_id}-{name}",
                exec_type=C.EXEC_TYPE_TRADE,
                last_quantity=quantity,
                last_price_nanos=100_000_000_000,
            )
        )
    for report in reports:
        report.order_id = child_id
        report.venue = "XNAS"
    return [oms_pb2.ApplyExecutionReportRequest(report=r) for r in reports]


def _config(folder: Path) -> Path:
    shutil.copy(
        str(files("fillpath") / "defaults" / "instruments.yaml"), folder / "instruments.yaml"
    )
    (folder / "accounts.yaml").write_text("accounts: [{id: CRASH, portfolios: [P], limits: {}}]")
    return folder


def test_sigkill_mid_stream_loses_nothing_acknowledged_and_duplicates_nothing(
    pg_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "FILLPATH_PG_DSN": pg_dsn,
        "FILLPATH_REDIS_URL": redis_url,
        "FILLPATH_OMS_ADDRESS": "127.0.0.1:0",
        "FILLPATH_CONFIG_DIR": str(_config(tmp_path)),
        "FILLPATH_SNAPSHOT_EVERY": "4",
    }
    rng = random.Random(20261121)
    clients = [Client(f"client{i}") for i in range(CLIENTS)]
    service: ServiceProcess | None = None
    for round_ in range(2):
        service = spawn_service("fillpath.oms.main", env, log_file=tmp_path / "oms.log")
        channel = grpc.insecure_channel(service.address)
        stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
        for client in clients:
            client.resend_in_flight(stub)
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(lambda s=stub: s, stop)) for c in clients]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.8, 2.0))
        service.kill()  # SIGKILL, in the middle of the stream
        stop.set()
        for t in threads:
            t.join()
        channel.close()
        assert sum(len(c.calls) for c in clients) > 20 * (round_ + 1), "the load did not run"
        cut_off = [c.in_flight.method for c in clients if c.in_flight is not None]
        assert cut_off, "the kill should land while calls are in flight"

    service = spawn_service("fillpath.oms.main", env, log_file=tmp_path / "oms.log")
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
            for client in clients:
                client.resend_in_flight(stub)
            _check_acknowledged(stub, clients)
    finally:
        service.stop()
    _check_replay_and_verify(pg_dsn)


def _check_acknowledged(
    stub: oms_pb2_grpc.OrderManagementServiceStub, clients: list[Client]
) -> None:
    calls = [call for c in clients for call in c.calls]
    submitted = {c.request.client_order_id for c in calls if c.method == "SubmitOrder"}
    parents: list[oms_pb2.Order] = []
    page = oms_pb2.ListOrdersResponse(next_page_token="first")
    token = ""
    while page.next_page_token:
        page = stub.ListOrders(
            oms_pb2.ListOrdersRequest(page=C.PageRequest(page_size=1000, page_token=token))
        )
        parents += page.orders
        token = page.next_page_token
    # Exactly the acknowledged orders, each once.
    assert sorted(o.terms.client_order_id for o in parents) == sorted(submitted)
    fills: dict[str, int] = {}
    for call in calls:
        if (
            call.method == "ApplyExecutionReport"
            and call.request.report.exec_type == C.EXEC_TYPE_TRADE
        ):
            child = call.request.report.order_id
            fills[child] = fills.get(child, 0) + call.request.report.last_quantity
    for parent in parents:
        order = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=parent.terms.order_id)).order
        for child in order.children:
            assert child.filled_quantity == fills.get(child.terms.order_id, 0), child.terms.order_id
        assert order.filled_quantity == sum(c.filled_quantity for c in order.children)
    for call in calls:  # every acknowledged answer still holds (nothing acknowledged was lost)
        if call.method == "SubmitOrder":
            assert (
                stub.GetOrder(
                    oms_pb2.GetOrderRequest(order_id=call.acked.order.terms.order_id)
                ).order.quantity
                == 1_000
            )


def _check_replay_and_verify(pg_dsn: str) -> None:
    pool = open_pool(pg_dsn, 4, name="check")
    try:
        store = PostgresEventStore(pool, order_codec(), SystemClock())
        views = OrderViews(pool)
        live = views.snapshot_rows()
        rebuild(pool, store)
        assert views.snapshot_rows() == live, "the read model differs from a full replay"
        report = verify(pool, store, order_codec())
        assert report.ok, report.inconsistencies
    finally:
        pool.close()
