"""The implementation-shortfall trajectory (Almgren & Chriss 2000): the kernel's expected cost
and variance agree with the paper's closed form; the trajectory is the minimum of E + λV (no
other path with the same start and end does better); risk aversion trades earlier, paying
expected cost for less variance; TWAP is its λ = 0 limit; bad parameters are refused by name."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fillpath.algo.trajectory import ImpactModel, closed_form, trajectory
from fillpath.cli import main
from fillpath.core.errors import InvalidArgument

PAPER = ImpactModel(
    shares=1e6, horizon=5.0, periods=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625,
    risk_aversion=1e-6,
)  # fmt: skip


def _cost(model: ImpactModel, holdings: np.ndarray) -> tuple[float, float]:
    """E and V of any trajectory, straight from their definitions."""
    trades = -np.diff(holdings)
    expected = (
        0.5 * model.gamma * model.shares**2
        + model.epsilon * np.abs(trades).sum()
        + model.eta_tilde / model.tau * (trades**2).sum()
    )
    variance = model.sigma**2 * model.tau * (holdings[1:] ** 2).sum()
    return float(expected), float(variance)


models = st.builds(
    ImpactModel,
    shares=st.floats(1e2, 1e8),
    horizon=st.floats(0.1, 50.0),
    periods=st.integers(1, 200),
    sigma=st.floats(0.01, 5.0),
    eta=st.floats(1e-7, 1e-4),
    gamma=st.just(0.0),
    epsilon=st.floats(0.0, 0.1),
    risk_aversion=st.one_of(st.just(0.0), st.floats(1e-9, 1e-4)),
)


@settings(max_examples=300, deadline=None)
@given(models)
def test_kernel_cost_and_variance_equal_the_papers_closed_form(model: ImpactModel) -> None:
    plan = trajectory(model)
    assume(plan.kappa * model.horizon < 300)  # the closed form, as written, overflows beyond

    expected, variance = closed_form(model)

    assert plan.holdings[0] == pytest.approx(model.shares, rel=1e-12)
    assert plan.holdings[-1] == 0
    assert plan.expected_cost == pytest.approx(expected, rel=1e-9)
    assert plan.variance == pytest.approx(variance, rel=1e-9, abs=1e-9 * model.shares**2)
    assert (plan.expected_cost, plan.variance) == pytest.approx(_cost(model, plan.holdings))


@settings(max_examples=100, deadline=None)
@given(models.filter(lambda m: m.periods > 1), st.integers(0, 2**32 - 1))
def test_no_other_trajectory_has_a_lower_expected_cost_plus_lambda_variance(
    model: ImpactModel, seed: int
) -> None:
    plan = trajectory(model)
    best = plan.expected_cost + model.risk_aversion * plan.variance
    rng = np.random.default_rng(seed)

    for _ in range(20):
        other = plan.holdings.copy()
        other[1:-1] *= 1 + rng.uniform(-0.05, 0.05, model.periods - 1)
        expected, variance = _cost(model, other)
        assert expected + model.risk_aversion * variance >= best * (1 - 1e-12)


def test_risk_aversion_trades_earlier_paying_cost_for_less_variance() -> None:
    plans = [
        trajectory(dataclasses.replace(PAPER, risk_aversion=lam)) for lam in (0, 1e-7, 1e-6, 1e-5)
    ]

    for slower, faster in itertools.pairwise(plans):
        assert (faster.holdings[1:-1] < slower.holdings[1:-1]).all()
        assert faster.expected_cost > slower.expected_cost
        assert faster.variance < slower.variance
    assert plans[0].holdings.tolist() == pytest.approx([1e6, 8e5, 6e5, 4e5, 2e5, 0])  # TWAP
    assert plans[0].half_life == float("inf")


def test_bad_parameters_are_refused_naming_each_field() -> None:
    with pytest.raises(InvalidArgument) as refused:
        dataclasses.replace(PAPER, shares=0, periods=0, sigma=-1.0)
    assert {v.field for v in refused.value.violations} == {"shares", "periods", "sigma"}

    with pytest.raises(InvalidArgument, match="eta=1e-08: must exceed γτ/2"):
        dataclasses.replace(PAPER, eta=1e-8)


def test_a_very_urgent_trader_trades_almost_everything_at_once_without_overflow() -> None:
    model = dataclasses.replace(PAPER, periods=100, risk_aversion=1e3)

    plan = trajectory(model)

    assert plan.kappa * model.horizon > 1_000
    assert np.isfinite(plan.holdings).all()
    assert (np.diff(plan.holdings) <= 0).all()
    assert plan.trades[0] == pytest.approx(model.shares, rel=1e-5)  # 1 − e^(−κτ) of it


def test_the_papers_example_is_reproduced() -> None:
    """Almgren & Chriss (2000), Table 1's stock and Figures 1–2's trajectory A (λ = 2×10⁻⁶).

    The paper plots this trajectory and prints no figures for it; the figures here are those an
    independent implementation prints for the same parameters (the `almgren-chriss` package on
    PyPI, its README), to 1e-6 relative. From the paper itself: κ ≈ 0.6/day and κT ≈ 3 at
    λ = 10⁻⁶ (§3.4, by its continuous approximation), and the naive (λ = 0) and minimum-variance
    strategies' E and V, its equations (10), (11) and (13).
    """
    a = trajectory(dataclasses.replace(PAPER, risk_aversion=2e-6))
    holdings = [1e6, 428598.84574702, 182932.81426177, 76295.72161546, 27643.37739691, 0.0]
    assert a.holdings.tolist() == pytest.approx(holdings, rel=1e-6)
    assert a.expected_cost == pytest.approx(1140715.1670497851, rel=1e-6)
    assert a.variance**0.5 == pytest.approx(449367.65254135116, rel=1e-6)

    b = trajectory(PAPER)
    assert b.kappa == pytest.approx(0.6, abs=0.01)
    assert b.kappa * PAPER.horizon == pytest.approx(3, abs=0.05)

    x, t, n, eta, gamma, sigma = 1e6, 5.0, 5, 2.5e-6, 2.5e-7, 0.95
    naive = trajectory(dataclasses.replace(PAPER, risk_aversion=0))
    assert naive.expected_cost == pytest.approx(
        0.5 * gamma * x * x + 0.0625 * x + (eta - 0.5 * gamma * t / n) * x * x / t, rel=1e-12
    )
    assert naive.variance == pytest.approx(
        sigma**2 * x * x * t * (1 - 1 / n) * (1 - 1 / (2 * n)) / 3, rel=1e-12
    )
    # As λ grows the trajectory approaches minimum variance: all in the first period.
    urgent = trajectory(dataclasses.replace(PAPER, risk_aversion=1e3))
    assert urgent.expected_cost == pytest.approx(0.0625 * x + eta * x * x / (t / n), rel=1e-3)


def test_plan_command_prints_the_schedule_and_refuses_bad_parameters_by_name() -> None:
    result = CliRunner().invoke(main, ["algos", "plan", "--lambda", "2e-6", "--json"])

    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert [p["holdings"] for p in plan["periods"]][1] == pytest.approx(428598.84574702)
    assert sum(p["trade"] for p in plan["periods"]) == pytest.approx(1e6)
    assert plan["std_dev"] == pytest.approx(449367.65254135116)

    twap_run = CliRunner().invoke(main, ["algos", "plan", "--algorithm", "twap", "--json"])
    twap = json.loads(twap_run.output)
    assert [p["trade"] for p in twap["periods"][1:]] == pytest.approx([2e5] * 5)

    refused = CliRunner().invoke(main, ["algos", "plan", "-N", "0", "--eta", "-1"])
    assert refused.exit_code != 0
    assert "periods=0" in refused.output
    assert "eta=-1.0" in refused.output
