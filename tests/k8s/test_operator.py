"""The operator against a real API server: it creates each domain's children owned by the
resources, re-renders the configuration on change, writes conditions, removes what it created
when the resources go, and shows in each Venue's status what a running smart order router (real:
Postgres, Redis, the market lab's feed, gRPC) reports of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from fillpath.infra.bus import InProcessBus
from fillpath.infra.kube.controlplane import ControlPlane
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import AlgoSettings, Settings, SorSettings, StrategySettings
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import lab_for
from fillpath.market.marketdata import MarketDataPublisher
from fillpath.sor.main import SorRuntime, start_sor
from tests.k8s.conftest import ROOT
from tests.polling import eventually


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    return name


@contextmanager
def running_operator(
    plane: ControlPlane, namespace: str, log_path: Path, **env: str
) -> Iterator[None]:
    log = open(log_path, "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
            "-m", "fillpath_operator.handlers",
        ],
        env={**os.environ, **plane.env(), "FILLPATH_OPERATOR_INTERVAL": "2", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def operator(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[None]:
    with running_operator(control_plane, namespace, tmp_path / "operator.log"):
        yield


@pytest.fixture
def router(pg_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[SorRuntime]:
    """The smart order router on the default venues (the examples' names), fed by the lab."""
    settings = Settings(
        data_dir=tmp_path,
        sor=SorSettings(address="127.0.0.1:0"),
        algo=AlgoSettings(address="127.0.0.1:0"),
        strategy=StrategySettings(address="127.0.0.1:0"),
    )
    bus = InProcessBus()
    runtime = start_sor(settings, pg_dsn, redis_url, bus)
    lab = lab_for(LabConfig(seed=3), load_reference_data().instruments, lab_parameters(), ["ACME"])
    SimulatedGateway(lab, on_market_data=MarketDataPublisher(lab, bus)).advance_to(60.0)
    yield runtime
    runtime.stop()
    bus.close()


def _get(plane: ControlPlane, namespace: str, *what: str) -> dict[str, Any] | None:
    result = plane.kubectl("get", "-n", namespace, *what, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _ready(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    body = _get(plane, namespace, kind, name)
    conditions = {c["type"]: c for c in (body or {}).get("status", {}).get("conditions", [])}
    if (
        body
        and "Ready" in conditions
        and body["status"].get("observedGeneration") == (body["metadata"]["generation"])
    ):
        return body
    return None


@pytest.mark.usefixtures("operator")
def test_operator_reconciles_children_status_changes_and_deletion(
    control_plane: ControlPlane, namespace: str
) -> None:
    plane = control_plane
    plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples"))

    venues = {"lumen", "orbit", "vertex", "quarry", "shade", "umbra"}

    def rendered_all() -> list[dict[str, Any]] | None:
        config = _get(plane, namespace, "configmap", "fillpath-sor-config")
        documents = list(yaml.safe_load_all(config["data"]["venues.yaml"])) if config else []
        return documents if {d["metadata"]["name"] for d in documents} == venues else None

    rendered = eventually(rendered_all)
    assert all(set(d) == {"apiVersion", "kind", "metadata", "spec"} for d in rendered)

    def owned_by_all() -> dict[str, Any] | None:
        deployment = _get(plane, namespace, "deployment", "fillpath-sor")
        owners = {
            o["name"] for o in (deployment or {}).get("metadata", {}).get("ownerReferences", [])
        }
        return deployment if owners == venues else None

    deployment = eventually(owned_by_all)
    eventually(lambda: _get(plane, namespace, "service", "fillpath-algo"))

    venue = eventually(lambda: _ready(plane, namespace, "venue", "lumen"))
    conditions = {c["type"]: c for c in venue["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Connected"]["status"] == "Unknown"
    strategy = eventually(lambda: _ready(plane, namespace, "executionstrategy", "equities-desk"))
    assert strategy["status"]["conditions"][0]["status"] == "True"
    assert strategy["status"]["rules"] == 4
    # The strategy service checks its rules against the profiles: they are in its config too.
    strategy_config = eventually(
        lambda: _get(plane, namespace, "configmap", "fillpath-strategy-config")
    )
    assert "name: pov-10" in strategy_config["data"]["algoprofiles.yaml"]

    # A change re-renders the configuration and rolls the deployment.
    before = deployment["spec"]["template"]["metadata"]["annotations"]["fillpath.io/config-hash"]
    plane.kubectl(
        "patch", "-n", namespace, "venue", "lumen", "--type=merge",
        "-p", '{"spec": {"fees": {"takerFee": "0.0027"}}}',
    )  # fmt: skip

    def rolled() -> bool:
        now = _get(plane, namespace, "deployment", "fillpath-sor")
        annotations = (now or {}).get("spec", {}).get("template", {}).get("metadata", {})
        return annotations.get("annotations", {}).get("fillpath.io/config-hash") != before

    eventually(rolled)
    config = _get(plane, namespace, "configmap", "fillpath-sor-config")
    assert config is not None
    assert (
        '"0.0027"' in config["data"]["venues.yaml"] or "'0.0027'" in config["data"]["venues.yaml"]
    )

    # A strategy naming a profile that does not exist is reported, not retried blindly.
    plane.kubectl("delete", "-n", namespace, "algoprofile", "pov-10")
    plane.kubectl("annotate", "-n", namespace, "executionstrategy", "equities-desk", "touch=1")

    def reported() -> str:
        body = _get(plane, namespace, "executionstrategy", "equities-desk") or {}
        conditions = body.get("status", {}).get("conditions", [])
        ready = next((c for c in conditions if c["type"] == "Ready"), {})
        return ready.get("message", "") if ready.get("status") == "False" else ""

    assert "AlgoProfile 'pov-10' does not exist" in eventually(reported)

    def profiles_of_strategy() -> str:
        config = _get(plane, namespace, "configmap", "fillpath-strategy-config") or {}
        return str(config.get("data", {}).get("algoprofiles.yaml", ""))

    eventually(lambda: "name: pov-10" not in profiles_of_strategy())

    # Deleting the resources removes what the operator created for them.
    plane.kubectl("delete", "-n", namespace, "venues", "--all", "--wait=true", "--timeout=60s")
    eventually(lambda: _get(plane, namespace, "configmap", "fillpath-sor-config") is None)
    eventually(lambda: _get(plane, namespace, "deployment", "fillpath-sor") is None)
    assert _get(plane, namespace, "deployment", "fillpath-algo") is not None  # other kinds stay


def test_venue_status_shows_what_the_router_reports(
    control_plane: ControlPlane, namespace: str, router: SorRuntime, tmp_path: Path
) -> None:
    plane = control_plane
    plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "venues.yaml"))

    def reported(name: str, reason: str) -> dict[str, Any] | None:
        body = _get(plane, namespace, "venue", name) or {}
        status = body.get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        connected = conditions.get("Connected", {})
        return status if connected.get("reason") == reason else None

    with running_operator(
        plane, namespace, tmp_path / "operator.log", FILLPATH_OPERATOR_SOR_ADDRESS=router.address
    ):
        lumen = eventually(lambda: reported("lumen", "Routing"))
        quality = lumen["quality"]
        assert quality["circuit"] == "closed"
        assert quality["instruments"] == quality["availableFor"] == 1  # the lab quotes ACME
        assert 0 < quality["score"] <= 100
        assert quality["liquidity"] > 0
        assert quality["latencyMicros"] == 180  # lumen's orderEntryMicros, nothing learned yet
        printed = plane.kubectl("get", "-n", namespace, "venue", "lumen").stdout
        assert f"{quality['score']:g}"[:4] in printed  # the Score column

        # The venue stops answering: the router opens its circuit, and the status says so.
        sor = router.routing
        for _ in range(Settings().sor.breaker_failures):
            sor.quality.failure("orbit", Settings().sor.breaker_failures, 300.0, time.time())
        orbit = eventually(lambda: reported("orbit", "CircuitOpen"))
        conditions = {c["type"]: c for c in orbit["conditions"]}
        assert conditions["Connected"]["status"] == "False"
        assert orbit["quality"]["circuit"] == "open"
        assert orbit["quality"]["availableFor"] == 0
