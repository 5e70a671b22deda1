"""The monitor against the real parts: the OMS trading on the market lab, Postgres, Redis, the
in-process bus and MonitorService over gRPC.

What a desk relies on: the live figures agree with the OMS, the projection is exactly a replay
of the journal (and survives a restart), a fact delivered twice counts once, alerts reach the
bus, the log and a webhook once per level, and bad requests name the field.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
import psycopg
import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import events_pb2, monitor_pb2, monitor_pb2_grpc, oms_pb2
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
from fillpath.infra.bus import MONITORING_TOPIC, BusMessage, InProcessBus
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import MonitorSettings, OmsSettings, Settings
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import lab_for
from fillpath.market.marketdata import MarketDataPublisher
from fillpath.monitor.main import MonitorRuntime, start_monitor
from fillpath.monitor.tca import compute_from_document
from fillpath.oms.main import OmsRuntime, start_oms
from tests.polling import eventually

ALERTS = """
escalate_after_seconds: 600
rules:
  - {name: slippage, kind: slippage, warning: 0, critical: 100000, min_filled: 1}
  - {name: reject-rate, kind: reject_rate, warning: 0.2, critical: 0.5, min_child_orders: 1}
"""


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Platform:
    settings: Settings
    pg_dsn: str
    redis_url: str
    bus: InProcessBus
    gateway: SimulatedGateway
    monitor: MonitorRuntime
    oms_runtime: OmsRuntime
    oms: OrderManagementServiceStub
    api: monitor_pb2_grpc.MonitorServiceStub
    on_bus: list[BusMessage]

    def restart_monitor(self) -> None:
        self.monitor.stop()
        bus = InProcessBus()  # a new process: the old subscriptions are gone
        self.monitor = start_monitor(self.settings, self.pg_dsn, self.redis_url, bus)
        self.api = monitor_pb2_grpc.MonitorServiceStub(grpc.insecure_channel(self.monitor.address))


@pytest.fixture
def webhook() -> Iterator[str]:
    _Webhook.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


@pytest.fixture
def platform(pg_dsn: str, redis_url: str, tmp_path: Path, webhook: str) -> Iterator[Platform]:
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    for name in ("instruments.yaml", "accounts.yaml"):
        (tmp_path / name).write_text(
            (Path(__file__).parents[2] / "services/fillpath/defaults" / name).read_text()
        )
    settings = Settings(
        data_dir=tmp_path,
        config_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0"),
        monitor=MonitorSettings(
            address="127.0.0.1:0", http_address="127.0.0.1:0", webhook=webhook,
            check_interval=0.2,
        ),
    )  # fmt: skip
    bus = InProcessBus()
    on_bus: list[BusMessage] = []
    bus.subscribe(MONITORING_TOPIC, "test", on_bus.append)
    lab = lab_for(LabConfig(seed=3), load_reference_data().instruments, lab_parameters(), ["ACME"])
    gateway = SimulatedGateway(lab, on_market_data=MarketDataPublisher(lab, bus))
    monitor = start_monitor(settings, pg_dsn, redis_url, bus)
    gateway.advance_to(120.0)
    oms_runtime = start_oms(settings, pg_dsn, redis_url, bus=bus, gateway=gateway)
    with (
        grpc.insecure_channel(f"127.0.0.1:{oms_runtime.port}") as oms_channel,
        grpc.insecure_channel(monitor.address) as channel,
    ):
        p = Platform(
            settings=settings, pg_dsn=pg_dsn, redis_url=redis_url, bus=bus, gateway=gateway,
            monitor=monitor, oms_runtime=oms_runtime, oms=OrderManagementServiceStub(oms_channel),
            api=monitor_pb2_grpc.MonitorServiceStub(channel), on_bus=on_bus,
        )  # fmt: skip
        yield p
    p.oms_runtime.stop(grace=1.0)
    p.monitor.stop()


def _trade(p: Platform) -> str:
    """A parent buy of 5,000 ACME: a market IOC at lumen, a child to an unknown venue
    (rejected), then canceled. Returns the parent's id."""
    parent = p.oms.SubmitOrder(
        oms_pb2.SubmitOrderRequest(
            client_order_id="mon-1", account="DESK-EQ", portfolio="ALPHA", symbol="ACME",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=5_000,
        )
    ).order.terms.order_id  # fmt: skip
    p.gateway.advance_to(p.gateway.lab.now + 0.5)
    p.oms.PlaceChildOrders(
        oms_pb2.PlaceChildOrdersRequest(
            parent_order_id=parent,
            children=[
                oms_pb2.ChildOrderRequest(
                    client_order_id=name, venue=venue, quantity=qty,
                    order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_IOC,
                )
                for name, venue, qty in (("take", "lumen", 1_500), ("lost", "atlantis", 100))
            ],
        )
    )  # fmt: skip
    p.gateway.advance_to(p.gateway.lab.now + 1.0)
    p.oms.CancelOrder(oms_pb2.CancelOrderRequest(order_id=parent, reason="done"))
    p.gateway.advance_to(p.gateway.lab.now + 1.0)
    return parent


def _journaled(p: Platform, parent: str) -> None:
    """Waits until the monitor has journaled the order's end: it shows a fact as soon as it
    applies it, and writes the projection with the journal a moment later."""

    def ended() -> bool | None:
        document = p.monitor.monitor._store.execution_documents().get(parent)
        return (document is not None and document["active"] is False) or None

    eventually(ended)


def test_live_execution_matches_the_oms_and_replays_exactly(platform: Platform) -> None:
    p = platform
    parent = _trade(p)
    order = p.oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order
    assert order.status == C.ORDER_STATUS_CANCELED
    assert order.filled_quantity > 0

    def settled() -> monitor_pb2.LiveExecution | None:
        live = p.api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=parent))
        return live if live.status == C.ORDER_STATUS_CANCELED else None

    live = eventually(settled)
    assert live.filled_quantity == order.filled_quantity
    assert dict(live.child_orders_by_venue) == {"lumen": 1, "atlantis": 1}
    assert live.rejects == 1
    execution = p.monitor.monitor.execution(parent)
    assert sum(f.quantity for f in execution.fills) == order.filled_quantity
    average = order.avg_price_nanos / 1e9
    arrival = execution.arrival_mid
    assert arrival is not None
    assert live.slippage_vs_arrival_bps == pytest.approx((average - arrival) / arrival * 1e4)
    assert 0 < live.participation <= 1

    store = p.monitor.monitor._store
    _journaled(p, parent)
    before = store.execution_documents()
    _, replayed = store.rebuild()
    assert replayed > 0
    assert store.execution_documents() == before

    p.restart_monitor()
    again = p.api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=parent))
    assert again == live


def test_a_fact_delivered_twice_counts_once(platform: Platform) -> None:
    p = platform
    parent = _trade(p)
    _journaled(p, parent)
    store = p.monitor.monitor._store
    entries = list(store.journal())
    fill = next(e for e in entries if e.event_type == "ChildOrderFilled")
    before = p.monitor.monitor.execution(parent)
    p.monitor.monitor.handle(
        BusMessage(
            topic="orders", key=parent, event_id=fill.event_id, position=0,
            event_type=fill.event_type, payload=fill.envelope,
        )
    )  # fmt: skip
    assert p.monitor.monitor.execution(parent) == before
    assert len(list(store.journal())) == len(entries)


def test_failed_journal_commits_lose_nothing_and_count_nothing_twice(platform: Platform) -> None:
    p = platform
    with psycopg.connect(p.pg_dsn, autocommit=True) as conn:
        # Postgres refuses the monitor's first two journal commits (a full disk, say).
        conn.execute("CREATE SEQUENCE journal_failures")
        conn.execute(
            "CREATE FUNCTION refuse_twice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF nextval('journal_failures') <= 2 THEN RAISE EXCEPTION 'disk full'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_twice BEFORE INSERT ON monitor_journal"
            " FOR EACH ROW EXECUTE FUNCTION refuse_twice()"
        )

    parent = _trade(p)

    _journaled(p, parent)
    with psycopg.connect(p.pg_dsn) as conn:
        failures = conn.execute("SELECT last_value FROM journal_failures").fetchone()
    assert failures is not None
    assert failures[0] > 2  # both failures happened, then commits went on
    live = p.api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=parent))
    order = p.oms.GetOrder(oms_pb2.GetOrderRequest(order_id=parent)).order
    assert live.filled_quantity == order.filled_quantity > 0
    assert live.rejects == 1
    ids = [e.event_id for e in p.monitor.monitor._store.journal()]
    assert len(ids) == len(set(ids))
    assert p.bus.dead_letters("monitor") == []
    p.restart_monitor()  # the journal folded again gives what was shown
    assert p.api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=parent)) == live


def test_alerts_reach_every_channel_once_per_level_and_can_be_acknowledged(
    platform: Platform,
) -> None:
    p = platform
    parent = _trade(p)

    def raised() -> list[events_pb2.AlertRaised] | None:
        alerts = list(p.api.ListAlerts(monitor_pb2.ListAlertsRequest()).alerts)
        return alerts if {a.rule for a in alerts} >= {"slippage", "reject-rate"} else None

    alerts = eventually(raised)
    # Once per level: the slippage rule raised one warning however many fills came.
    assert [a.rule for a in alerts].count("slippage") == 1
    assert all(a.order_id == parent for a in alerts)
    reject = next(a for a in alerts if a.rule == "reject-rate")
    assert reject.severity == events_pb2.ALERT_SEVERITY_CRITICAL  # 1 of 2 children: 50 %
    eventually(lambda: {a["alert_id"] for a in _Webhook.received} == {a.alert_id for a in alerts})
    on_bus = {
        events_pb2.EventEnvelope.FromString(m.payload).alert_raised.alert_id
        for m in p.on_bus
        if m.event_type == "AlertRaised"
    }
    assert on_bus == {a.alert_id for a in alerts}

    ack = p.api.AcknowledgeAlert(
        monitor_pb2.AcknowledgeAlertRequest(alert_id=reject.alert_id, note="venue typo"),
        metadata=[("fillpath-actor", "trader-7")],
    )
    assert ack.acknowledged_by == "trader-7"
    open_alerts = p.api.ListAlerts(monitor_pb2.ListAlertsRequest(unacknowledged_only=True))
    assert reject.alert_id not in {a.alert_id for a in open_alerts.alerts}
    eventually(lambda: any(m.event_type == "AlertAcknowledged" for m in p.on_bus))


def test_order_tca_is_the_tca_library_on_the_monitors_document(platform: Platform) -> None:
    p = platform
    parent = _trade(p)
    eventually(lambda: p.monitor.monitor.execution(parent).status == C.ORDER_STATUS_CANCELED)
    p.gateway.advance_to(p.gateway.lab.now + 30.0)  # some tape after the end
    got = p.api.GetOrderTca(monitor_pb2.GetOrderTcaRequest(order_id=parent))
    document = p.monitor.monitor.tca_document(parent)
    expected = compute_from_document(document)
    assert got.fill_rate == pytest.approx(expected["fill_rate"])
    assert got.arrival_slippage_bps == pytest.approx(expected["slippage_bps"]["arrival"])
    assert got.trading_cost_bps == pytest.approx(
        expected["implementation_shortfall"]["bps"]["trading"]
    )
    assert any(t["own"] for t in document["tape"]), "our fills are found on the tape"
    assert got.participation > 0

    by_venue = p.api.QueryTca(monitor_pb2.QueryTcaRequest(group_by="venue"))
    assert [g.key for g in by_venue.groups] == ["lumen"]
    report = p.api.GetReport(monitor_pb2.GetReportRequest(order_id=parent, format="csv"))
    assert report.content_type == "text/csv"
    assert report.content.decode().count("\n") == len(document["fills"]) + 1


@pytest.mark.parametrize(
    ("call", "request_", "code", "field"),
    [
        ("QueryTca", monitor_pb2.QueryTcaRequest(group_by="colour"), "INVALID_ARGUMENT",
         "group_by"),
        ("GetLiveExecution", monitor_pb2.GetLiveExecutionRequest(order_id="P404"), "NOT_FOUND",
         "P404"),
        ("GetReport", monitor_pb2.GetReportRequest(day="21/11/2026"), "INVALID_ARGUMENT", "day"),
        ("AcknowledgeAlert", monitor_pb2.AcknowledgeAlertRequest(), "INVALID_ARGUMENT",
         "alert_id"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field(
    platform: Platform, call: str, request_: Any, code: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        getattr(platform.api, call)(request_)
    assert raised.value.code().name == code
    assert field in (raised.value.details() or "")
