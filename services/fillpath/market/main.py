"""Composition root of `fillpath lab`: the market lab as a process of its own.

Reads the settings once, builds the lab from the instruments and `Venue` resources of the config
folder (or the shipped defaults), serves its venues over gRPC (`VenueGatewayService`, with health
and reflection) and, with the Pulsar bus, publishes its market data on the market-data topic. The
session runs `speed` times faster than the wall clock from `start_at` seconds after the open.
`python -m fillpath.market.main` runs it as a Kubernetes pod would.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from fillpath.infra.bus import Bus
from fillpath.infra.grpc_server import RunningServer, create_server, wait_for_signal
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import Settings
from fillpath.market.config import LabConfig, lab_parameters, load_venues
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import lab_for
from fillpath.market.marketdata import MarketDataPublisher
from fillpath.market.servicer import VenueGatewayServicer

log = logging.getLogger("fillpath.lab")


@dataclass(slots=True)
class LabRuntime:
    gateway: SimulatedGateway
    servicer: VenueGatewayServicer
    server: RunningServer
    bus: Bus | None

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self, grace: float = 2.0) -> None:
        self.gateway.stop()
        self.servicer.close()
        self.server.stop(grace)
        if self.bus is not None:
            self.bus.close()


def start_lab(
    settings: Settings, *, symbols: Sequence[str] | None = None, drive: bool = True
) -> LabRuntime:
    """Builds and serves the lab; `drive` False leaves the clock to the caller (tests)."""
    venues_file = settings.config_dir / "venues.yaml" if settings.config_dir else None
    config = LabConfig(
        seed=settings.lab.seed,
        venues=load_venues(venues_file if venues_file and venues_file.exists() else None),
    )
    reference = load_reference_data(settings.config_dir)
    lab = lab_for(config, reference.instruments, lab_parameters(settings.config_dir), symbols)
    bus: Bus | None = None
    publisher = None
    if settings.bus.kind == "pulsar":
        # A producer name of its own per run: the broker deduplicates by (producer, sequence).
        bus = PulsarBus(
            settings.bus.pulsar_url,
            topic_prefix=settings.bus.topic_prefix,
            producer_name=f"fillpath-lab-{uuid.uuid4().hex[:12]}",
        )
        publisher = MarketDataPublisher(lab, bus)
    gateway = SimulatedGateway(
        lab, speed=settings.lab.speed if drive else None, on_market_data=publisher
    )
    if settings.lab.start_at > 0:
        gateway.advance_to(settings.lab.start_at)
    servicer = VenueGatewayServicer(gateway)
    server = create_server(settings.lab.address, [servicer.binding()])
    server.server.start()
    if drive:
        gateway.start()
    return LabRuntime(gateway=gateway, servicer=servicer, server=server, bus=bus)


def main() -> None:
    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runtime = start_lab(settings)
    host = settings.lab.address.rsplit(":", 1)[0]
    # The line spawn_service waits for.
    print(f"fillpath-lab listening on {host}:{runtime.port}", flush=True)
    try:
        wait_for_signal()
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
