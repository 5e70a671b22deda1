"""The custom resources on a real API server: the examples apply as they are, bad resources are
refused with the CEL rule's message, and `kubectl get` shows the printer columns."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from fillpath.core.errors import InvalidArgument
from fillpath.infra.kube.controlplane import ControlPlane
from fillpath.infra.resources import load_resources, resources_from_documents
from tests.k8s.conftest import ROOT


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    return name


def _apply(plane: ControlPlane, namespace: str, document: dict) -> str:
    """`kubectl apply` of one document; the error text ('' when it was accepted)."""
    result = plane.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False, input_text=yaml.safe_dump(document)
    )
    return "" if result.returncode == 0 else result.stderr


def test_examples_apply_as_they_are(control_plane: ControlPlane, namespace: str) -> None:
    result = control_plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples"))

    assert "venue.fillpath.io/lumen created" in result.stdout
    assert "algoprofile.fillpath.io/iceberg-passive created" in result.stdout
    assert "executionstrategy.fillpath.io/equities-desk created" in result.stdout


def test_get_venues_shows_the_printer_columns(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "venues.yaml"))

    table = control_plane.kubectl("get", "venues", "-n", namespace).stdout.splitlines()

    assert table[0].split() == [
        "NAME", "KIND", "ENABLED", "CONNECTION", "TAKER", "FEE", "CONNECTED", "SCORE", "READY",
        "AGE",
    ]  # fmt: skip
    vertex = next(line.split() for line in table if line.startswith("vertex"))
    assert vertex[1:5] == ["lit", "true", "simulated", "-0.0005"]


def test_api_server_defaults_agree_with_fillpath_up(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "venues.yaml"))
    served = json.loads(
        control_plane.kubectl("get", "venues", "-n", namespace, "-o", "json").stdout
    )

    local = {
        r.name: r.spec
        for r in load_resources(ROOT / "examples" / "venues.yaml", "Venue", default="")
    }

    assert {item["metadata"]["name"]: item["spec"] for item in served["items"]} == local


BAD = [
    (
        {
            "kind": "AlgoProfile",
            "spec": {"algorithm": "POV", "participation": {"min": 0.2, "max": 0.1}},
        },
        "participation.min must not exceed participation.max",
    ),
    (
        {"kind": "AlgoProfile", "spec": {"algorithm": "ICEBERG"}},
        "an ICEBERG profile needs displayQuantity",
    ),
    (
        {
            "kind": "AlgoProfile",
            "spec": {"algorithm": "TWAP", "urgency": {"default": "HIGH", "allowed": ["LOW"]}},
        },
        "urgency.default must be one of urgency.allowed",
    ),
    (
        {
            "kind": "ExecutionStrategy",
            "spec": {
                "rules": [
                    {"name": "a", "profile": {"name": "p", "algorithm": "TWAP"}},
                    {"name": "a", "profile": {"name": "q", "algorithm": "VWAP"}},
                ]
            },
        },
        "rule names must be unique",
    ),
    (
        {
            "kind": "ExecutionStrategy",
            "spec": {"rules": [{"name": "a", "profile": {"name": "p", "algorithm": "FAST"}}]},
        },
        'Unsupported value: "FAST"',
    ),
    (
        {"kind": "Venue", "spec": {"kind": "lit", "connection": {"type": "fix"}}},
        "connection.fix is required when connection.type is fix",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_resource_is_refused_with_the_rule_message(
    control_plane: ControlPlane, namespace: str, document: dict, message: str
) -> None:
    document = {"apiVersion": "fillpath.io/v1alpha1", "metadata": {"name": "bad"}, **document}

    error = _apply(control_plane, namespace, document)

    assert message in error
    # fillpath refuses the same file when it reads it, with the same rule's message.
    with pytest.raises(InvalidArgument) as local:
        resources_from_documents([document], document["kind"], origin="bad.yaml")
    expected = "is not one of" if message.startswith("Unsupported value") else message
    assert expected in str(local.value)


def test_venue_kind_cannot_change(control_plane: ControlPlane, namespace: str) -> None:
    venue = {
        "apiVersion": "fillpath.io/v1alpha1", "kind": "Venue", "metadata": {"name": "v"},
        "spec": {"kind": "lit", "connection": {"type": "simulated"}},
    }  # fmt: skip
    assert _apply(control_plane, namespace, venue) == ""
    venue["spec"]["kind"] = "dark"

    assert "a venue's kind is immutable" in _apply(control_plane, namespace, venue)
