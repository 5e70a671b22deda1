"""The smart order router against the real parts: the market lab's feed on the in-process bus,
the OMS trading on the lab, Postgres (the decisions), Redis (what was learned) and
RoutingService over gRPC.

What a desk relies on: a route never asks for more than the order or past its limit and uses
the book as it stands; every decision is recorded before the answer and can be listed page by
page; bad requests name the field and record nothing; what the router learns from executions
reaches every replica and survives a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import events_pb2, oms_pb2, routing_pb2
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.api.v1.routing_pb2_grpc import RoutingServiceStub
from fillpath.infra.bus import ROUTING_TOPIC, BusMessage, InProcessBus
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import (
    AlgoSettings,
    OmsSettings,
    Settings,
    SorSettings,
    StrategySettings,
)
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import lab_for
from fillpath.market.marketdata import MarketDataPublisher
from fillpath.oms.main import OmsRuntime, start_oms
from fillpath.sor.main import SorRuntime, start_sor
from tests.polling import eventually

DEFAULTS = Path(__file__).parents[2] / "services/fillpath/defaults"


@dataclass
class Platform:
    settings: Settings
    pg_dsn: str
    redis_url: str
    bus: InProcessBus
    gateway: SimulatedGateway
    oms_runtime: OmsRuntime
    sor: SorRuntime
    oms: OrderManagementServiceStub
    api: RoutingServiceStub
    on_bus: list[BusMessage]

    def advance(self, seconds: float) -> None:
        self.gateway.advance_to(self.gateway.lab.now + seconds)


@pytest.fixture
def platform(pg_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[Platform]:
    for name in ("instruments.yaml", "accounts.yaml", "venues.yaml"):
        (tmp_path / name).write_text((DEFAULTS / name).read_text())
    settings = Settings(
        data_dir=tmp_path,
        config_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0"),
        sor=SorSettings(address="127.0.0.1:0"),
        algo=AlgoSettings(address="127.0.0.1:0"),
        strategy=StrategySettings(address="127.0.0.1:0"),
    )
    bus = InProcessBus()
    on_bus: list[BusMessage] = []
    bus.subscribe(ROUTING_TOPIC, "test", on_bus.append)
    lab = lab_for(LabConfig(seed=5), load_reference_data().instruments, lab_parameters(), ["ACME"])
    gateway = SimulatedGateway(lab, on_market_data=MarketDataPublisher(lab, bus))
    sor = start_sor(settings, pg_dsn, redis_url, bus)
    oms_runtime = start_oms(settings, pg_dsn, redis_url, bus=bus, gateway=gateway)
    gateway.advance_to(120.0)
    with (
        grpc.insecure_channel(f"127.0.0.1:{oms_runtime.port}") as oms_channel,
        grpc.insecure_channel(sor.address) as channel,
    ):
        p = Platform(
            settings=settings, pg_dsn=pg_dsn, redis_url=redis_url, bus=bus, gateway=gateway,
            oms_runtime=oms_runtime, sor=sor, oms=OrderManagementServiceStub(oms_channel),
            api=RoutingServiceStub(channel), on_bus=on_bus,
        )  # fmt: skip
        yield p
    p.oms_runtime.stop(grace=1.0)
    p.sor.stop()


def _route(p: Platform, **fields: object) -> routing_pb2.RouteResponse:
    request = {"order_id": "P-1", "symbol": "ACME", "side": C.SIDE_BUY, "quantity": 3_000}
    request.update(fields)
    response: routing_pb2.RouteResponse = p.api.Route(routing_pb2.RouteRequest(**request))
    return response


def _violations(err: grpc.RpcError) -> dict[str, str]:
    """field → description of the BadRequest detail of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    found = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def test_a_route_respects_the_order_and_the_book_and_is_recorded(platform: Platform) -> None:
    p = platform
    market = p.sor.routing.book.get("ACME")
    assert market is not None
    assert market.mid > 0
    limit = market.ask + 2 * 10_000_000  # two ticks through the offer

    response = _route(p, urgency=C.URGENCY_HIGH, limit_price_nanos=limit, allow_dark=True)

    allocated = sum(a.quantity for a in response.allocations)
    assert 0 < allocated <= 3_000
    for a in response.allocations:
        assert a.limit_price_nanos <= limit
        if a.source == "take":
            assert a.time_in_force == C.TIME_IN_FORCE_IOC
    assert response.rationale
    # Recorded before the answer: listed at once, and published on the routing topic.
    listed = p.api.ListDecisions(routing_pb2.ListDecisionsRequest(order_id="P-1"))
    assert [d.decision_id for d in listed.decisions] == [response.decision_id]
    decision = listed.decisions[0]
    assert list(decision.allocations) == list(response.allocations)
    assert decision.bid_price_nanos < decision.ask_price_nanos
    assert decision.urgency == C.URGENCY_HIGH

    def published() -> events_pb2.EventEnvelope | None:
        for message in p.on_bus:
            envelope = events_pb2.EventEnvelope.FromString(message.payload)
            if envelope.routing_decision.decision_id == response.decision_id:
                return envelope
        return None

    assert eventually(published).routing_decision == decision


def test_modes_and_exclusions_shape_the_route(platform: Platform) -> None:
    p = platform
    fastest = _route(p, mode=routing_pb2.ROUTING_MODE_FASTEST, allow_dark=True)
    assert fastest.allocations
    assert all(a.source == "take" for a in fastest.allocations)

    venues = {a.venue for a in _route(p, excluded_venues=["lumen", "orbit"]).allocations}
    assert venues
    assert not venues & {"lumen", "orbit"}

    no_dark = _route(p, urgency=C.URGENCY_LOW, allow_dark=False)
    assert not {a.venue for a in no_dark.allocations} & {"shade", "umbra"}
    listed = p.api.ListDecisions(routing_pb2.ListDecisionsRequest(order_id="P-1"))
    reasons = dict(listed.decisions[0].excluded)
    assert reasons["shade"] == "dark pools not allowed"


def test_bad_requests_name_the_problem_and_record_nothing(platform: Platform) -> None:
    p = platform
    cases = [
        ({"symbol": "NOPE"}, "symbol"),
        ({"quantity": 0}, "quantity"),
        ({"excluded_venues": ["atlantis"]}, "excluded_venues"),
        ({"limit_price_nanos": 200_000_000_000}, "limit_price_nanos"),  # 200.00: far off
        ({"limit_price_nanos": 102_345_000_000}, "limit_price_nanos"),  # not on the tick
        ({"side": 0}, "side"),
    ]
    for fields, field in cases:
        with pytest.raises(grpc.RpcError) as caught:
            _route(p, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert field in _violations(caught.value), (fields, caught.value.details())
    everything = [v.name for v in p.sor.routing.book.venues]
    with pytest.raises(grpc.RpcError) as caught:
        _route(p, excluded_venues=everything)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "every venue is out of routing" in (caught.value.details() or "")
    listed = p.api.ListDecisions(routing_pb2.ListDecisionsRequest())
    assert list(listed.decisions) == []


def test_decisions_list_page_by_page_newest_first(platform: Platform) -> None:
    p = platform
    ids = [_route(p, order_id=f"P-{i % 2}", quantity=100 * (i + 1)).decision_id for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = p.api.ListDecisions(
            routing_pb2.ListDecisionsRequest(
                symbol="ACME", page=C.PageRequest(page_size=2, page_token=token)
            )
        )
        assert len(page.decisions) <= 2
        seen += [d.decision_id for d in page.decisions]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    only = p.api.ListDecisions(routing_pb2.ListDecisionsRequest(order_id="P-1"))
    assert [d.decision_id for d in only.decisions] == [ids[3], ids[1]]
    with pytest.raises(grpc.RpcError) as caught:
        p.api.ListDecisions(
            routing_pb2.ListDecisionsRequest(page=C.PageRequest(page_token="garbage"))
        )
    assert "page.page_token" in _violations(caught.value)


def _execute(p: Platform, client_order_id: str, response: routing_pb2.RouteResponse) -> str:
    """Submits a parent and places the route's allocations as its children."""
    parent = p.oms.SubmitOrder(
        oms_pb2.SubmitOrderRequest(
            client_order_id=client_order_id, account="DESK-EQ", portfolio="ALPHA",
            symbol="ACME", side=C.SIDE_BUY, order_type=C.ORDER_TYPE_MARKET,
            time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=sum(a.quantity for a in response.allocations),
        )
    ).order.terms.order_id  # fmt: skip
    p.advance(0.5)
    p.oms.PlaceChildOrders(
        oms_pb2.PlaceChildOrdersRequest(
            parent_order_id=parent,
            children=[
                oms_pb2.ChildOrderRequest(
                    client_order_id=f"{client_order_id}-{i}", venue=a.venue, quantity=a.quantity,
                    order_type=a.order_type, time_in_force=a.time_in_force,
                    limit_price_nanos=a.limit_price_nanos, post_only=a.post_only,
                    min_quantity=a.min_quantity,
                )
                for i, a in enumerate(response.allocations)
            ],
        )
    )  # fmt: skip
    return parent


def test_what_is_learned_from_executions_is_shared_and_survives_a_restart(
    platform: Platform,
) -> None:
    p = platform
    for i in range(3):
        response = _route(p, order_id=f"L-{i}", urgency=C.URGENCY_HIGH)
        _execute(p, f"learn-{i}", response)
        p.advance(15.0)  # past the markout horizon

    def learned() -> routing_pb2.VenueQuality | None:
        figures = p.api.GetVenueQuality(routing_pb2.GetVenueQualityRequest(symbol="ACME"))
        taken = [q for q in figures.venues if q.venue == "lumen"]
        configured = 180.0  # lumen's orderEntryMicros in venues.yaml
        return taken[0] if taken and taken[0].latency_micros != configured else None

    lumen = eventually(learned)
    assert lumen.available
    assert lumen.score > 0
    assert lumen.liquidity > 0

    # A second replica (a new process: its own bus subscriptions) reads the same figures.
    p.sor.routing.refresh()
    before = {q.venue: q for q in p.sor.routing.venue_figures("ACME")}
    p.sor.stop()
    bus = InProcessBus()
    p.sor = start_sor(p.settings, p.pg_dsn, p.redis_url, bus)
    p.sor.routing.book.market("ACME")  # it has seen no market data yet
    after = {q.venue: q for q in p.sor.routing.venue_figures("ACME")}
    for venue in before:
        assert after[venue].latency_us == pytest.approx(before[venue].latency_us)
        assert after[venue].markout_bps == pytest.approx(before[venue].markout_bps)
