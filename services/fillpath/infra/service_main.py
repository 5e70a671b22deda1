"""The `main` of a service process in a cluster: settings from ``FILLPATH_*``, logging and
tracing, storage resolved, a Pulsar bus, then serve until SIGTERM and stop in order."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Protocol

from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.settings import Settings
from fillpath.infra.storage import resolve_storage
from fillpath.infra.telemetry import configure_tracing


class Runtime(Protocol):
    def stop(self) -> None: ...


def serve_on_pulsar(name: str, start: Callable[[Settings, PulsarBus], tuple[Runtime, str]]) -> None:
    """Runs the service `start` builds (it returns the runtime and where it listens) until a
    signal; prints ``<name> listening on <where>`` once it serves."""
    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    configure_tracing(name, settings.trace_to_console)
    settings = resolve_storage(settings)
    bus = PulsarBus(
        settings.bus.pulsar_url, topic_prefix=settings.bus.topic_prefix, producer_name=name
    )
    runtime, where = start(settings, bus)
    print(f"{name} listening on {where}", flush=True)
    try:
        wait_for_signal()
    finally:
        runtime.stop()
        bus.close()
