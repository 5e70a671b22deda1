"""The embedded platform trading against the market lab on its simulated clock, for the tests
that follow an order through the services: the OMS, the router, the strategy service and the
algorithm engine in this process, the lab's venues behind the OMS and its market data on the
bus. The test moves the clock (`gateway.advance_to`) and ticks the engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from fillpath.api.v1 import algo_pb2, algo_pb2_grpc, common_pb2, oms_pb2, oms_pb2_grpc
from fillpath.embedded import EmbeddedPlatform, start_platform
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import (
    AlgoSettings,
    MonitorSettings,
    OmsSettings,
    Settings,
    SorSettings,
    StrategySettings,
)
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import MarketData, lab_for
from fillpath.market.marketdata import MarketDataPublisher

START = 3_600.0  # 10:30


class Lab:
    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway

    def now(self) -> datetime:
        lab = self.gateway.lab
        return lab.time_of(lab.now)


@contextmanager
def lab_platform(
    tmp_path: Path,
    seed: int = 3,
    symbols: tuple[str, ...] = ("ACME",),
    *,
    choose_strategies: bool = True,
) -> Iterator[tuple[EmbeddedPlatform, SimulatedGateway, Lab]]:
    """The platform, the lab's gateway and its clock, the session run to `START`. Without
    `choose_strategies` the strategy service leaves the orders on the bus alone, so a test
    starts their executions itself."""
    instruments = load_reference_data().instruments
    lab = lab_for(LabConfig(seed=seed), instruments, lab_parameters(), list(symbols))
    publish: list[MarketDataPublisher] = []

    def market_data(data: MarketData) -> None:
        for publisher in publish:
            publisher(data)

    gateway = SimulatedGateway(lab, on_market_data=market_data)
    clock = Lab(gateway)
    settings = Settings(
        data_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0"),
        monitor=MonitorSettings(address="127.0.0.1:0", http_address="127.0.0.1:0"),
        sor=SorSettings(address="127.0.0.1:0"),
        algo=AlgoSettings(address="127.0.0.1:0", tick_interval=0),
        strategy=StrategySettings(address="127.0.0.1:0"),
    )
    platform = start_platform(settings, gateway=gateway, now=clock.now)
    try:
        assert platform.bus is not None
        assert platform.strategy is not None
        if not choose_strategies:
            platform.strategy.strategies.close()
        publish.append(MarketDataPublisher(lab, platform.bus))
        gateway.advance_to(START)
        yield platform, gateway, clock
    finally:
        platform.stop()


def submit(
    oms: oms_pb2_grpc.OrderManagementServiceStub,
    client_id: str,
    quantity: int,
    instructions: common_pb2.ExecutionInstructions | None = None,
    *,
    symbol: str = "ACME",
    side: common_pb2.Side.ValueType = common_pb2.SIDE_BUY,
) -> str:
    """Submits a DAY market parent order; its order id."""
    return oms.SubmitOrder(
        oms_pb2.SubmitOrderRequest(
            client_order_id=client_id, account="DESK-EQ", portfolio="ALPHA", symbol=symbol,
            side=side, order_type=common_pb2.ORDER_TYPE_MARKET,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY, quantity=quantity,
            instructions=instructions,
        )
    ).order.terms.order_id  # fmt: skip


def run_until_completed(
    gateway: SimulatedGateway,
    platform: EmbeddedPlatform,
    api: algo_pb2_grpc.AlgoServiceStub,
    execution_id: str,
    seconds: int = 300,
) -> algo_pb2.Execution:
    """Runs the lab a second at a time, the engine deciding after each, until the execution
    completes or `seconds` have passed; the execution as AlgoService then reports it."""
    assert platform.algo is not None
    ref = algo_pb2.ExecutionRef(execution_id=execution_id)
    for _ in range(seconds):
        gateway.advance_to(gateway.lab.now + 1.0)
        platform.algo.algos.tick()
        if api.GetExecution(ref).state == algo_pb2.EXECUTION_STATE_COMPLETED:
            break
    return api.GetExecution(ref)
