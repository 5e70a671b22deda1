"""The measures behind routing quality, on hand-made cases: what the router learns as a venue's
adverse selection, and the ex-post cheapest set `fillpath bench sor --quality` reports."""

from __future__ import annotations

import numpy as np
import pytest

from fillpath.bench.sor_quality import Round, routed_to_cheapest
from fillpath.core.enums import Side
from fillpath.sor.quality import COUNTERS, PRIOR_MARKOUT_QTY, figures
from fillpath.sor.state import DARK, LIT
from fillpath.sor.venues import VenueSpec

MID = 100_000_000_000  # 100.00 in nanos


def _specs() -> list[VenueSpec]:
    return [
        VenueSpec(
            name=name,
            kind=kind,
            maker_fee=0.0,
            taker_fee=0.003,
            midpoint_fee=0.001,
            latency_us=200.0,
            budget_us=50_000.0,
            min_qty=100,
        )
        for name, kind in (("lumen", LIT), ("orbit", LIT), ("shade", DARK))
    ]


def _counters(markout_bps: list[float], quantity: list[float]) -> dict[str, np.ndarray]:
    counters = {name: np.zeros(3) for name in COUNTERS}
    counters["markout_qty"] = np.asarray(quantity)
    counters["markout_sum"] = np.asarray(markout_bps) * counters["markout_qty"]
    return counters


def test_a_markout_common_to_every_venue_is_not_held_against_any() -> None:
    # Our own impact moves the price our way after every fill alike: no venue is to blame.
    learned = figures(_specs(), _counters([-5.0, -5.0, -5.0], [4_000, 2_000, 1_000]), 1)
    assert learned["markout_bps"] == pytest.approx([0.0, 0.0, 0.0])


def test_a_pool_whose_fills_are_followed_by_adverse_moves_stands_out() -> None:
    quantity = [4_000.0, 4_000.0, 2_000.0]
    learned = figures(_specs(), _counters([-5.0, -5.0, -1.0], quantity), 1)
    overall = (-5.0 * 8_000 - 1.0 * 2_000) / 10_000
    excess = (-1.0 - overall) * 2_000 / (2_000 + PRIOR_MARKOUT_QTY)  # shrunk towards 0
    assert learned["markout_bps"][2] == pytest.approx(excess)
    assert learned["markout_bps"][2] > 0 > learned["markout_bps"][0]


def _round(routed: dict[str, int]) -> Round:
    # A buy of 500: the true books offered lumen 300 at 1.0 bps all in, orbit 300 at 1.3 bps,
    # quarry 500 at 2.0 bps.
    units = [(1.0, 300, "lumen"), (1.3, 300, "orbit"), (2.0, 500, "quarry")]
    return Round(quantity=500, mid=MID, routed=routed, units=units, deadline=0.0)


def test_the_cheapest_set_is_what_the_quantity_needed_of_the_cheapest_shares() -> None:
    assert routed_to_cheapest(Side.BUY, [_round({"lumen": 300, "orbit": 200})], []) == (500, 500)
    assert routed_to_cheapest(Side.BUY, [_round({"lumen": 300, "quarry": 200})], []) == (300, 500)


def test_a_dark_ping_counts_only_if_it_found_cheap_shares_in_its_round() -> None:
    pinged = [_round({"shade": 200, "lumen": 300}), _round({"shade": 200, "lumen": 300})]
    # 200 crossed at the mid in round 0 (0.1 bps of fee); round 1's ping found nothing.
    fee_nanos = 200 * 1_000_000  # 0.001 a share
    fills = [(1.0, 200, MID, "midpoint", fee_nanos, "shade", 0)]
    hits, total = routed_to_cheapest(Side.BUY, pinged, fills)
    assert total == 1_000
    assert hits == 500 + 300  # round 0: shade and lumen; round 1: lumen only
