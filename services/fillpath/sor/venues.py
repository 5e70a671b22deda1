"""The venues the router may use, from the `Venue` resources (crds/venues.fillpath.io.yaml).

What a resource says is the router's starting point: fees, the order-entry latency it expects
(until acknowledgements measure it), the latency budget after which a silent venue counts as
failing, the minimum quantity, whether the venue is enabled, and the desk's preference (0–100,
50 neutral). Every symbol is routed over the same venues, in the order of the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fillpath.core.price import NANOS_PER_UNIT, Price
from fillpath.infra.resources import Resource, load_resources
from fillpath.sor.state import DARK, LIT

PREFERENCE_BPS = 0.02
"""The cost, in bps, of one point of preference below neutral (50): preference 0 adds 1 bps
to every share routed to the venue, 100 takes 1 bps off."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueSpec:
    name: str
    kind: int  # LIT or DARK
    maker_fee: float  # currency per share; negative: a rebate
    taker_fee: float
    midpoint_fee: float
    latency_us: float  # order entry, as configured
    budget_us: float  # no acknowledgement within this counts as a failure
    min_qty: int
    enabled: bool = True
    preference: int = 50

    @property
    def adjust_bps(self) -> float:
        return (50 - self.preference) * PREFERENCE_BPS


def _per_share(text: str) -> float:
    return Price.parse(text).nanos / NANOS_PER_UNIT


def venue_specs(resources: Sequence[Resource]) -> tuple[VenueSpec, ...]:
    specs = []
    for r in resources:
        spec = r.spec
        fees, latency = spec["fees"], spec["latency"]
        specs.append(
            VenueSpec(
                name=r.name,
                kind=DARK if spec["kind"] == "dark" else LIT,
                maker_fee=_per_share(fees["makerFee"]),
                taker_fee=_per_share(fees["takerFee"]),
                midpoint_fee=_per_share(fees["midpointFee"]),
                latency_us=float(latency["orderEntryMicros"]),
                budget_us=float(latency["budgetMicros"]),
                min_qty=spec["minQuantity"],
                enabled=spec["enabled"],
                preference=spec["preference"],
            )
        )
    return tuple(specs)


def load_venue_specs(path: Path | None = None) -> tuple[VenueSpec, ...]:
    """The venues of the YAML file `path` (None: the shipped fillpath/defaults/venues.yaml)."""
    return venue_specs(load_resources(path, "Venue", default="venues.yaml"))
