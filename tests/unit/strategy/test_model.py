"""The cost model learns which profile costs what from samples, reproducibly from its seed,
says how sure it is, survives the registry's round trip, and is served by flattened trees that
answer exactly what scikit-learn answers. The samples here are synthetic
(a known cost structure plus noise), so what it should learn is known."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from fillpath.core.enums import AlgorithmKind
from fillpath.strategy.features import FEATURES, Features
from fillpath.strategy.model import Ensemble, LearnedModel, Sample, fit
from fillpath.strategy.rules import ProfileRef

URGENT = ProfileRef(name="arrival-urgent", algorithm=AlgorithmKind.ARRIVAL)
PATIENT = ProfileRef(name="twap-standard", algorithm=AlgorithmKind.TWAP)
WHEN = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def features(rng: np.random.Generator) -> dict[str, float]:
    values = {name: float(rng.uniform(0, 1)) for name in FEATURES}
    values["size_pct_adv"] = float(rng.uniform(0.1, 3.0))
    return values


def synthetic(scenarios: int, seed: int = 0) -> list[Sample]:
    """Urgent costs 1 bps + 4 bps per % of ADV; patient 3 bps + 1 bps per %: urgent is the
    cheaper below 2/3 % of ADV, patient above."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(scenarios):
        values = features(rng)
        size = values["size_pct_adv"]
        for profile, cost in (("arrival-urgent", 1 + 4 * size), ("twap-standard", 3 + size)):
            found.append(
                Sample(scenario=i, features=values, profile=profile,
                       cost_bps=cost + float(rng.normal(0, 0.5)))
            )  # fmt: skip
    return found


def at(size: float, **more: float) -> Features:
    values = dict.fromkeys(FEATURES, 0.5)
    return Features({**values, "size_pct_adv": size, **more})


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    return fit(synthetic(400), seed=7, version="m-test", trained_at=WHEN)


def test_it_ranks_the_cheaper_profile_first_on_either_side_of_the_crossover(
    model: LearnedModel,
) -> None:
    small = model.rank(at(0.2), [URGENT, PATIENT]).predictions
    large = model.rank(at(2.5), [URGENT, PATIENT]).predictions
    assert small["arrival-urgent"].cost_bps < small["twap-standard"].cost_bps
    assert large["twap-standard"].cost_bps < large["arrival-urgent"].cost_bps
    assert large["arrival-urgent"].cost_bps == pytest.approx(11.0, abs=1.0)
    assert 0 < large["twap-standard"].risk_bps < 2  # the noise is 0.5 bps


def test_the_metrics_are_out_of_fold_and_the_picks_mostly_right(model: LearnedModel) -> None:
    m = model.metrics
    assert (m["samples"], m["scenarios"]) == (800, 400)
    assert m["oof_mae_bps"] < 1.0
    assert m["oof_best_pick_rate"] > 0.85
    assert m["oof_chosen_cost_bps"] < m["oof_best_fixed_cost_bps"]


def test_it_is_unsure_outside_what_it_was_trained_on(model: LearnedModel) -> None:
    assert model.rank(at(1.0), [URGENT, PATIENT]).confidence == 1.0
    far = model.rank(at(40.0, spread_bps=80.0, vol_ratio=9.0), [URGENT, PATIENT]).confidence
    assert far < 0.8
    never_seen = ProfileRef(name="pov-10", algorithm=AlgorithmKind.POV)
    assert model.rank(at(1.0), [URGENT, never_seen]).confidence == 0.0


def test_the_same_samples_and_seed_give_the_same_model(model: LearnedModel) -> None:
    again = fit(synthetic(400), seed=7, version="m-again", trained_at=WHEN)
    for size in (0.3, 1.1, 2.9):
        first = model.rank(at(size), [URGENT, PATIENT]).predictions
        assert again.rank(at(size), [URGENT, PATIENT]).predictions == first
    assert again.metrics == model.metrics


def test_it_comes_back_from_its_bytes_and_refuses_another_schema(model: LearnedModel) -> None:
    back = LearnedModel.from_bytes(model.to_bytes())
    assert back.rank(at(1.7), [URGENT, PATIENT]) == model.rank(at(1.7), [URGENT, PATIENT])
    back.features = (*FEATURES, "something_new")
    with pytest.raises(ValueError, match="feature schema"):
        LearnedModel.from_bytes(back.to_bytes())


def test_too_few_scenarios_to_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 scenarios"):
        fit(synthetic(4), seed=1, version="m", trained_at=WHEN)


def test_the_flattened_trees_answer_what_scikit_learn_answers() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(600, 6))
    y = 3 * x[:, 0] - np.abs(x[:, 1]) + rng.normal(0, 0.3, 600)
    x[rng.random((600, 6)) < 0.05] = np.nan  # missing values take the side the fit chose
    fitted = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(x, y)
    probe = rng.normal(0, 2, size=(1_000, 6))
    probe[rng.random((1_000, 6)) < 0.1] = np.nan
    assert np.array_equal(Ensemble.of(fitted).predict(probe), fitted.predict(probe))
