"""Mid-execution recommendations: a material change of the market's regime moves the urgency
of an order being worked, within its profile's bounds; anything else leaves it."""

from __future__ import annotations

import math

from fillpath.core.enums import Urgency
from fillpath.infra.resources import load_algo_profiles
from fillpath.strategy.choice import recommend
from fillpath.strategy.features import Regime

PROFILES = load_algo_profiles(None)


def regime(volatility: int, liquidity: int) -> Regime:
    return Regime(volatility, liquidity, math.nan, math.nan, math.nan, math.nan)


NORMAL, STORMY, THIN = regime(0, 0), regime(1, 0), regime(0, 1)


def test_stormy_hurries_thin_slows_and_calm_again_restores_the_choice() -> None:
    vwap = PROFILES["vwap-standard"]
    assert recommend(vwap, None, None, NORMAL, STORMY) == (
        Urgency.HIGH, "volatility turned stormy: finish sooner (timing risk)",
    )  # fmt: skip
    assert recommend(vwap, None, None, NORMAL, THIN) == (
        Urgency.LOW, "liquidity turned thin: trade more patiently (impact)",
    )  # fmt: skip
    assert recommend(vwap, Urgency.LOW, Urgency.HIGH, STORMY, NORMAL) == (
        Urgency.LOW, "the regime is back: the urgency chosen",
    )  # fmt: skip


def test_no_material_change_or_nothing_to_change_recommends_nothing() -> None:
    vwap = PROFILES["vwap-standard"]
    assert recommend(vwap, None, None, NORMAL, regime(-1, -1)) is None  # calmer, deeper
    assert recommend(vwap, None, None, STORMY, regime(1, -1)) is None  # still stormy
    assert recommend(vwap, None, Urgency.HIGH, NORMAL, STORMY) is None  # already HIGH


def test_the_profile_bounds_the_urgency() -> None:
    urgent = PROFILES["arrival-urgent"]  # MEDIUM or HIGH only
    assert recommend(urgent, None, None, NORMAL, THIN) == (
        Urgency.MEDIUM, "liquidity turned thin: trade more patiently (impact)",
    )  # fmt: skip
    iceberg = PROFILES["iceberg-passive"]  # LOW or MEDIUM only
    assert recommend(iceberg, None, None, NORMAL, STORMY) == (
        Urgency.MEDIUM, "volatility turned stormy: finish sooner (timing risk)",
    )  # fmt: skip
