"""The dashboard in a real browser (headless Chromium from Debian's package) while the lab trades.

The page is loaded twice as fills arrive: once for a screenshot a person can look at, once for
the DOM, whose numbers must match MonitorService — read before and after the page, since the
figures move while the lab trades — and, once trading stops, match it exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import grpc
import pytest

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import monitor_pb2, monitor_pb2_grpc, oms_pb2
from fillpath.api.v1.oms_pb2_grpc import OrderManagementServiceStub
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
from tests.polling import eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(url: str, profile: Path, *flags: str) -> str:
    """Runs headless Chromium on `url` (flags as the machine's closed network needs them)."""
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=4000",
            *flags, url,
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


class _Rows(HTMLParser):
    """The order rows of the page: data-order-id → (filled shown, slippage shown)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._order = ""
        self._cell = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-order-id"):
            self._order = a["data-order-id"] or ""
            self.rows[self._order] = {"filled": a.get("data-filled") or ""}
        elif tag == "td" and self._order:
            classes = (a.get("class") or "").split()
            self._cell = next((c for c in ("filled", "slippage") if c in classes), "")

    def handle_data(self, data: str) -> None:
        if self._order and self._cell and data.strip():
            self.rows[self._order][self._cell + "_text"] = data.strip()
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._order = ""


def _shown(dom: str) -> dict[str, dict[str, str]]:
    parser = _Rows()
    parser.feed(dom)
    return parser.rows


@pytest.fixture
def trading(tmp_path: Path) -> Iterator[tuple[EmbeddedPlatform, SimulatedGateway]]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    lab = lab_for(LabConfig(seed=5), load_reference_data().instruments, lab_parameters(), ["ACME"])
    publish: list[MarketDataPublisher] = []

    def market_data(data: MarketData) -> None:
        for publisher in publish:
            publisher(data)

    gateway = SimulatedGateway(lab, speed=30.0, on_market_data=market_data)
    settings = Settings(
        data_dir=tmp_path,
        oms=OmsSettings(address="127.0.0.1:0"),
        monitor=MonitorSettings(address="127.0.0.1:0", http_address="127.0.0.1:0"),
        sor=SorSettings(address="127.0.0.1:0"),
        algo=AlgoSettings(address="127.0.0.1:0"),
        strategy=StrategySettings(address="127.0.0.1:0"),
    )
    platform = start_platform(settings, gateway=gateway)
    assert platform.bus is not None
    publish.append(MarketDataPublisher(lab, platform.bus))
    gateway.advance_to(600.0)
    yield platform, gateway
    gateway.stop()
    platform.stop()


def test_the_dashboard_shows_the_orders_and_figures_the_api_gives(
    trading: tuple[EmbeddedPlatform, SimulatedGateway], tmp_path: Path
) -> None:
    platform, gateway = trading
    with (
        grpc.insecure_channel(platform.oms_address) as oms_channel,
        grpc.insecure_channel(platform.monitor_address) as channel,
    ):
        oms = OrderManagementServiceStub(oms_channel)
        api = monitor_pb2_grpc.MonitorServiceStub(channel)
        parents = []
        for i, (side, venue) in enumerate(((C.SIDE_BUY, "lumen"), (C.SIDE_SELL, "orbit"))):
            parent = oms.SubmitOrder(
                oms_pb2.SubmitOrderRequest(
                    client_order_id=f"dash-{i}", account="DESK-EQ", portfolio="ALPHA",
                    symbol="ACME", side=side, order_type=C.ORDER_TYPE_MARKET,
                    time_in_force=C.TIME_IN_FORCE_DAY, quantity=20_000,
                )
            ).order.terms.order_id  # fmt: skip
            parents.append(parent)
            gateway.advance_to(gateway.lab.now + 0.5)
            oms.PlaceChildOrders(
                oms_pb2.PlaceChildOrdersRequest(
                    parent_order_id=parent,
                    children=[
                        oms_pb2.ChildOrderRequest(
                            client_order_id=f"slice-{n}", venue=venue, quantity=400,
                            order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_IOC,
                        )
                        for n in range(3)
                    ],
                )
            )  # fmt: skip
        gateway.start()  # the lab now trades on its own, 30 simulated seconds a second

        def filled() -> dict[str, int]:
            return {
                p: api.GetLiveExecution(
                    monitor_pb2.GetLiveExecutionRequest(order_id=p)
                ).filled_quantity
                for p in parents
            }

        eventually(lambda: all(filled().values()))
        url = platform.dashboard_url
        screenshot = tmp_path / "dashboard.png"
        _chromium(url, tmp_path / "p1", f"--screenshot={screenshot}", "--window-size=1400,900")
        assert screenshot.stat().st_size > 10_000, "a rendered page, not a blank one"

        before = filled()
        rows = _shown(_chromium(url, tmp_path / "p2", "--dump-dom"))
        after = filled()
        for parent in parents:
            shown = int(rows[parent]["filled"])
            assert before[parent] <= shown <= after[parent]

        gateway.stop()  # trading stops: the page and the API must now agree exactly
        rows = _shown(_chromium(url, tmp_path / "p3", "--dump-dom"))
        for parent in parents:
            live = api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=parent))
            assert int(rows[parent]["filled"]) == live.filled_quantity
            assert rows[parent]["filled_text"] == f"{live.filled_quantity:,}"
            shown_slippage = float(re.sub(r"[^0-9.+-]", "", rows[parent]["slippage_text"]))
            assert shown_slippage == pytest.approx(live.slippage_vs_arrival_bps, abs=0.005)
    print(f"dashboard screenshot: {screenshot}")
