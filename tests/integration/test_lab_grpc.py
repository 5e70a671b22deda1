"""`fillpath lab` as a process of its own: the OMS sends child orders to it over gRPC and gets
the reports back on the resumable stream."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import market_pb2, oms_pb2
from fillpath.api.v1.market_pb2_grpc import VenueGatewayServiceStub
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.infra.bus import MARKET_DATA_TOPIC
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.pulsar.standalone import PulsarStandalone
from fillpath.infra.settings import BusSettings, LabSettings, OmsSettings, Settings
from fillpath.market.main import LabRuntime, start_lab
from fillpath.oms.main import start_oms
from tests.polling import eventually


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabRuntime]:
    settings = Settings(data_dir=tmp_path, lab=LabSettings(address="127.0.0.1:0", start_at=600.0))
    runtime = start_lab(settings, symbols=["ACME"], drive=False)
    yield runtime
    runtime.stop()


def test_oms_trades_on_the_lab_over_grpc(
    lab: LabRuntime, pg_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0", venue_gateway=f"127.0.0.1:{lab.port}"),
    )
    oms = start_oms(settings, pg_dsn, redis_url)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{oms.port}") as channel:
            stub = OrderManagementServiceStub(channel)
            parent = stub.SubmitOrder(
                oms_pb2.SubmitOrderRequest(
                    client_order_id="grpc-lab-1", account="DESK-EQ", portfolio="ALPHA",
                    symbol="ACME", side=C.SIDE_SELL, order_type=C.ORDER_TYPE_MARKET,
                    time_in_force=C.TIME_IN_FORCE_DAY, quantity=2_000,
                )
            ).order  # fmt: skip
            stub.PlaceChildOrders(
                oms_pb2.PlaceChildOrdersRequest(
                    parent_order_id=parent.terms.order_id,
                    children=[
                        oms_pb2.ChildOrderRequest(
                            client_order_id="s1", venue="orbit", quantity=2_000,
                            order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_IOC,
                        )
                    ],
                )
            )  # fmt: skip
            lab.gateway.advance_to(601.0)

            def done() -> oms_pb2.Order | None:
                order = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=parent.terms.order_id))
                (child,) = order.order.children
                terminal = (C.ORDER_STATUS_FILLED, C.ORDER_STATUS_CANCELED)
                return child if child.status in terminal else None

            child = eventually(done, timeout=20)
        assert child.filled_quantity > 0
        assert child.fees_nanos == child.filled_quantity * 3_000_000  # orbit's taker fee
    finally:
        oms.stop(grace=1.0)

    # The stream is numbered and resumable: a client asking after #1 gets the rest.
    with grpc.insecure_channel(f"127.0.0.1:{lab.port}") as channel:
        venues = VenueGatewayServiceStub(channel)
        session = venues.GetSession(market_pb2.GetSessionRequest())
        assert list(session.symbols) == ["ACME"]
        stream = venues.StreamExecutionReports(
            market_pb2.StreamExecutionReportsRequest(after_sequence=1), timeout=2.0
        )
        first = next(iter(stream))
        stream.cancel()
        assert first.sequence == 2
        assert first.report.exec_type == C.EXEC_TYPE_TRADE


def test_bad_new_order_names_the_field(lab: LabRuntime) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{lab.port}") as channel:
        venues = VenueGatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            venues.NewOrder(market_pb2.NewOrderRequest(order_id="x", symbol="ACME", venue="orbit"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "side" in raised.value.details()


def test_lab_publishes_its_market_data_to_pulsar(
    pulsar_broker: PulsarStandalone, tmp_path: Path
) -> None:
    prefix = f"persistent://public/default/lab-{uuid.uuid4().hex[:8]}-"
    settings = Settings(
        data_dir=tmp_path,
        bus=BusSettings(kind="pulsar", pulsar_url=pulsar_broker.service_url, topic_prefix=prefix),
        lab=LabSettings(address="127.0.0.1:0"),
    )
    consumer = PulsarBus(pulsar_broker.service_url, topic_prefix=prefix)
    got: list[str] = []
    consumer.subscribe(MARKET_DATA_TOPIC, "test", lambda m: got.append(m.event_type))
    runtime = start_lab(settings, symbols=["INIT"], drive=False)
    try:
        runtime.gateway.advance_to(120.0)
        eventually(
            lambda: {"TradePrinted", "VolumeBar", "ConsolidatedQuoteUpdated"} <= set(got), 30
        )
    finally:
        runtime.stop()
        consumer.close()
    assert {"QuoteUpdated", "BookDepth"} <= set(got)
