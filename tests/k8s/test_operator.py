"""The operator against a real API server: it creates each domain's children owned by the
resources, re-renders the configuration on change, writes conditions, and removes what it created
when the resources go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fillpath.infra.kube.controlplane import ControlPlane
from tests.k8s.conftest import ROOT
from tests.polling import eventually


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    return name


@pytest.fixture
def operator(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[None]:
    log = open(tmp_path / "operator.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
            "-m", "fillpath_operator.handlers",
        ],
        env={**os.environ, **control_plane.env(), "FILLPATH_OPERATOR_INTERVAL": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield
    process.terminate()
    process.wait(timeout=30)
    log.close()


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

    # Deleting the resources removes what the operator created for them.
    plane.kubectl("delete", "-n", namespace, "venues", "--all", "--wait=true", "--timeout=60s")
    eventually(lambda: _get(plane, namespace, "configmap", "fillpath-sor-config") is None)
    eventually(lambda: _get(plane, namespace, "deployment", "fillpath-sor") is None)
    assert _get(plane, namespace, "deployment", "fillpath-algo") is not None  # other kinds stay
