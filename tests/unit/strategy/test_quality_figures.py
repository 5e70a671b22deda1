"""The held-out quality figures: what the rules and the model choose for each scenario, scored
by what every candidate really cost there. The scenarios' costs and the model are made up (the
arithmetic is the point); the policy is the shipped one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from fillpath.bench.strategy import quality_figures
from fillpath.bench.strategy_lab import CANDIDATES, Executed, Scenario
from fillpath.core.enums import Side
from fillpath.core.market import MarketSnapshot
from fillpath.strategy.features import Features
from fillpath.strategy.model import Prediction, Ranking
from fillpath.strategy.rules import ProfileRef


class Prefers:
    """A model that predicts 1 bps for one profile and 5 for the rest, surely."""

    def __init__(self, profile: str) -> None:
        self.version = f"prefers-{profile}"
        self._profile = profile

    def rank(self, features: Features, candidates: Sequence[ProfileRef]) -> Ranking:
        return Ranking(
            version=self.version,
            predictions={
                c.name: Prediction(cost_bps=1.0 if c.name == self._profile else 5.0, risk_bps=0.0)
                for c in candidates
            },
            confidence=1.0,
        )


def executed(index: int, costs: dict[str, float]) -> Executed:
    scenario = Scenario(
        index=index, seed=1_000_000 + index, symbol="ACME", side=Side.BUY, size_pct_adv=0.5,
        start=3_600.0, window=1_800.0, volatility=1.0, liquidity=1.0,
    )  # fmt: skip
    market = MarketSnapshot(
        at=0.0, bid=99_990_000_000, ask=100_010_000_000, bid_size=500, ask_size=500,
        volume=1_000_000, window_volume=10_000, lasting_volume=8_000, spread_ratio=1.0,
        sigma=math.nan,
    )  # fmt: skip
    full = {p: costs.get(p, 9.0) for p in CANDIDATES}
    return Executed(
        scenario=scenario, market=market, quantity=22_500, shortfall_bps=full,
        cost_bps=full, filled=dict.fromkeys(CANDIDATES, 1.0),
    )  # fmt: skip


def test_each_selection_is_scored_by_what_its_pick_cost_in_each_scenario() -> None:
    runs = [
        executed(0, {"vwap-standard": 4.0, "twap-standard": 2.0, "pov-10": 3.0}),
        executed(1, {"vwap-standard": 3.0, "twap-standard": 6.0, "pov-10": 1.0}),
    ]
    found = quality_figures(runs, Prefers("twap-standard"))
    # The shipped policy's 'standard' rule: vwap-standard, the model may pick twap instead.
    assert found["rules"]["picks"]["vwap-standard"] == 2
    assert found["learned"]["picks"]["twap-standard"] == 2
    assert found["rules"]["cost_bps"]["mean"] == pytest.approx(3.5)
    assert found["learned"]["cost_bps"]["mean"] == pytest.approx(4.0)
    # Over both: vwap 3.5, twap 4.0, pov-10 2.0, the others 9 — the best single profile, ex post.
    assert found["best_fixed"]["profile"] == "pov-10"
    assert found["best_fixed"]["cost_bps"]["mean"] == pytest.approx(2.0)
    assert found["rules"]["cheapest_rate"] == 0.0  # twap, then pov-10, were the cheapest
    assert found["learned"]["cheapest_rate"] == pytest.approx(0.5)
    assert found["learned_minus_rules_bps"]["mean"] == pytest.approx(0.5)
    assert found["model_sure"] == 2
