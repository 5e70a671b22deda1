"""`fillpath up --bus pulsar`: the services as separate processes around a standalone broker,
the OMS's order events published to Pulsar, keyed by order, for any process to consume."""

from __future__ import annotations

import logging
import re
import uuid

import pulsar
import pytest

from fillpath.api.v1 import events_pb2
from fillpath.infra.service_process import spawn_service
from fillpath.infra.settings import DEFAULT_TOPIC_PREFIX
from tests.e2e.test_cli import orders

pytestmark = pytest.mark.slow


def test_up_with_pulsar_publishes_the_oms_events_to_the_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("up-pulsar")
    service = spawn_service(
        "fillpath.cli",
        {},
        args=[
            "up",
            "--bus",
            "pulsar",
            "--data-dir",
            str(data),
            "--oms-address",
            "127.0.0.1:0",
            "--monitor-address",
            "127.0.0.1:0",
            "--sor-address",
            "127.0.0.1:0",
            "--algo-address",
            "127.0.0.1:0",
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        log_file=data / "up.log",
        timeout=180,
    )
    try:
        table = "\n".join(service.output)
        assert re.search(r"OMS +│ pid \d+ +│ separate process", table)
        assert re.search(r"Outbox relay +│ pid \d+ +│ separate process", table)
        broker = re.search(r"pulsar://127\.0\.0\.1:\d+", table)
        assert broker is not None, table

        submitted = orders(
            service.address, "submit", "--account", "DESK-EQ", "--portfolio", "ALPHA",
            "--symbol", "ACME", "--side", "buy", "--qty", "300", "--limit", "101.50",
        )  # fmt: skip
        assert submitted.exit_code == 0, submitted.output
        order_id = re.search(r"(P[0-9A-F]{20})", submitted.output).group(1)  # type: ignore[union-attr]

        client = pulsar.Client(broker.group(0), logger=logging.getLogger("pulsar"))
        try:
            consumer = client.subscribe(
                f"{DEFAULT_TOPIC_PREFIX}orders",
                f"e2e-{uuid.uuid4().hex[:8]}",
                initial_position=pulsar.InitialPosition.Earliest,
            )
            received = [consumer.receive(timeout_millis=30_000) for _ in range(2)]
        finally:
            client.close()
        envelopes = [events_pb2.EventEnvelope.FromString(m.data()) for m in received]
        assert [e.event_type for e in envelopes] == ["OrderSubmitted", "OrderAccepted"]
        assert {m.partition_key() for m in received} == {order_id}
        assert envelopes[0].order_submitted.terms.quantity == 300
    finally:
        assert service.stop(timeout=60) == 0, "fillpath up should stop cleanly on SIGTERM"
