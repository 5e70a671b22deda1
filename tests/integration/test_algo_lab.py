"""Algorithm executions on the market lab: the engine deciding, the real router routing every
slice (venue quality in a real Redis), the OMS's order model keeping the child orders, the lab
filling them."""

from __future__ import annotations

import io

from rich.console import Console

from fillpath.algo.execution import Execution, ExecutionState
from fillpath.bench.algo_lab import AlgoOrder, AlgoSession, participation_windows
from fillpath.bench.algos import algo_profiles
from fillpath.bench.calibrate import run_calibration
from fillpath.bench.desk import LabDesk
from fillpath.core.enums import Side
from fillpath.core.executions import SliceSent
from fillpath.core.profiles import resolve


def test_executions_fill_their_orders_within_their_limits_and_replay_from_events(
    redis_url: str,
) -> None:
    profiles = algo_profiles()
    desk = LabDesk("ACME", 3, redis_url)
    session = AlgoSession(desk)
    orders = [
        AlgoOrder(order_id="POV", side=Side.BUY, quantity=20_000,
                  params=resolve(profiles["pov-10"]), start=1_800.0, end=3_600.0),
        AlgoOrder(order_id="ICE", side=Side.SELL, quantity=8_000,
                  params=resolve(profiles["iceberg-passive"]), start=1_800.0, end=3_600.0),
    ]  # fmt: skip

    runs = session.run(orders)

    tape, _ = desk.market_record()
    for run in runs:
        execution = run.execution
        assert execution.state is ExecutionState.COMPLETED, execution.reason
        assert execution.executed == run.order.quantity
        # The OMS's view agrees, and no child order took the parent beyond its quantity.
        assert run.parent.parent.filled_quantity == run.order.quantity
        sent = [e for e in run.events if isinstance(e, SliceSent)]
        assert sum(f.quantity for f in run.fills) == run.order.quantity
        assert all(s.quantity <= run.order.quantity - s.executed for s in sent)
        replayed = Execution.from_events(run.events, session.calendar)
        assert (replayed.state, replayed.executed, replayed.slices) == (
            execution.state, execution.executed, execution.slices,
        )  # fmt: skip
    pov = runs[0]
    participation, busiest = participation_windows(pov, tape.time, tape.quantity)
    assert 0.08 <= participation <= 0.12  # the target is 10 %
    assert busiest <= 0.15  # the profile's cap, over every trailing minute


def test_impact_calibration_on_the_lab_finds_costs_that_grow_with_size() -> None:
    console = Console(file=io.StringIO())

    results = run_calibration(console, symbol="INIT", seeds=2, as_json=False)

    costs = [row["cost_bps_mean"] for row in results["by_size"]]
    moves = [row["move_bps_mean"] for row in results["by_size"]]
    assert costs == sorted(costs)
    assert moves == sorted(moves)
    assert costs[0] > 0  # buying pushes the price up: the order pays for it
    fit = results["fit"]
    assert fit["eta"] > 0
    assert fit["gamma"] > 0
    assert fit["cost_r2"] > 0.9
    assert "impact: {temporary:" in console.file.getvalue()  # type: ignore[attr-defined]
