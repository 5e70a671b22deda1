"""The Helm chart: lint and template pass, the rendered manifests are accepted by a real API
server (its schemas, server-side dry run), bad values are refused by values.schema.json, and the
operator's least-privilege RBAC is enough for the operator and no more."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fillpath.infra.kube.controlplane import ControlPlane
from tests.k8s.conftest import ROOT
from tests.polling import eventually

CHART = str(ROOT / "charts" / "fillpath")
KUBE_VERSION = "1.34.12"
EVERYTHING = (
    "--set", "services.oms.enabled=true", "--set", "services.relay.enabled=true",
    "--set", "services.lab.enabled=true", "--set", "connections.existingSecret=fillpath-conn",
)  # fmt: skip


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    return name


def test_helm_lint_passes(control_plane: ControlPlane) -> None:
    result = control_plane.helm("lint", CHART, "--kube-version", KUBE_VERSION, *EVERYTHING)

    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_rendered_manifests_are_accepted_by_the_api_server(
    control_plane: ControlPlane, namespace: str
) -> None:
    rendered = control_plane.helm(
        "template", "fp", CHART, "--namespace", namespace, "--kube-version", KUBE_VERSION,
        *EVERYTHING,
    ).stdout  # fmt: skip

    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input_text=rendered
    )

    for created in (
        "deployment.apps/fp-operator", "deployment.apps/fp-oms", "deployment.apps/fp-relay",
        "deployment.apps/fp-lab", "service/fp-oms", "role.rbac.authorization.k8s.io/fp-operator",
        "pod/fp-test",
    ):  # fmt: skip
        assert created in result.stdout
    # The operator tells the algorithm engine it deploys where the release's OMS is.
    (operator,) = (
        d for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "fp-operator"
    )  # fmt: skip
    env = {
        e["name"]: e.get("value")
        for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["FILLPATH_OPERATOR_OMS_ADDRESS"] == f"fp-oms.{namespace}.svc:50051"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("--set", "operator.refreshSeconds=0"), "/operator/refreshSeconds"),
        (("--set", "services.oms.port=70000"), "/services/oms/port"),
        (("--set", "image.pullPolicy=Sometimes"), "/image/pullPolicy"),
        (("--set", "services.oms.enabled=true"), "connections.existingSecret must name a Secret"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    control_plane: ControlPlane, values: tuple[str, ...], message: str
) -> None:
    result = control_plane.helm(
        "template", "fp", CHART, "--kube-version", KUBE_VERSION, *values, check=False
    )

    assert result.returncode != 0
    assert message in result.stderr


@pytest.fixture
def installed(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    control_plane.helm(
        "install", "fp", CHART, "--namespace", namespace, "--skip-crds", "--wait=false"
    )
    yield namespace
    control_plane.helm("uninstall", "fp", "--namespace", namespace)


def test_operator_works_with_only_the_charts_rbac(
    control_plane: ControlPlane, installed: str, tmp_path: Path
) -> None:
    namespace = installed
    account = f"system:serviceaccount:{namespace}:fp-operator"
    for verb, resource in (("get", "secrets"), ("list", "pods"), ("delete", "venues")):
        assert (
            control_plane.kubectl(
                "auth", "can-i", verb, resource, "-n", namespace, "--as", account, check=False
            ).stdout.strip()
            == "no"
        )
    assert (
        control_plane.kubectl(
            "auth", "can-i", "patch", "venues/status", "-n", namespace, "--as", account
        ).stdout.strip()
        == "yes"
    )

    token = control_plane.kubectl("create", "token", "fp-operator", "-n", namespace).stdout.strip()
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(
        control_plane.kubeconfig.read_text().replace(
            f"token: {control_plane.token}", f"token: {token}"
        )
    )
    log = open(tmp_path / "operator.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
         "-m", "fillpath_operator.handlers"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "FILLPATH_OPERATOR_INTERVAL": "2"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        control_plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples"))
        got = eventually(
            lambda: (
                control_plane.kubectl(
                    "get", "-n", namespace, "configmap/fillpath-strategy-config", check=False
                ).returncode
                == 0
            ),
            timeout=60,
        )
        assert got, (tmp_path / "operator.log").read_text()[-2000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert b"Forbidden" not in (tmp_path / "operator.log").read_bytes()
