from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fillpath.infra.kube.controlplane import ControlPlane, start_control_plane

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver and the garbage collector on loopback, with the CRDs installed."""
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        plane.kubectl("apply", "-f", str(ROOT / "crds"))
        plane.wait_established(
            "venues.fillpath.io", "algoprofiles.fillpath.io", "executionstrategies.fillpath.io"
        )
        yield plane
    finally:
        plane.stop()
