"""`python -m fillpath.market.main` (what `fillpath lab` runs) serves the lab's venues as a
process of its own, its session running ahead of the wall clock."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from fillpath.api.v1 import market_pb2
from fillpath.api.v1.market_pb2_grpc import VenueGatewayServiceStub
from fillpath.infra.service_process import spawn_service
from fillpath.infra.settings import LabSettings, Settings


def test_lab_process_serves_the_session_and_its_clock_runs(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, lab=LabSettings(address="127.0.0.1:0", speed=100.0, seed=3)
    )
    service = spawn_service(
        "fillpath.market.main", settings.to_env(), log_file=tmp_path / "lab.log", timeout=180
    )
    try:
        with grpc.insecure_channel(service.address) as channel:
            venues = VenueGatewayServiceStub(channel)
            first = venues.GetSession(market_pb2.GetSessionRequest())
            started = time.monotonic()
            deadline = started + 30
            while time.monotonic() < deadline:
                later = venues.GetSession(market_pb2.GetSessionRequest())
                simulated = (later.now.ToDatetime() - first.now.ToDatetime()).total_seconds()
                if simulated >= 30:
                    break
                time.sleep(0.05)
            wall = time.monotonic() - started
    finally:
        service.stop()
    assert "ACME" in first.symbols
    assert {"lumen", "shade"} <= set(first.venues)
    assert first.seed == 3
    assert simulated >= 30
    assert simulated > 10 * wall  # running ahead of the wall clock (100× asked)
