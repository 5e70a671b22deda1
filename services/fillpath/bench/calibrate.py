"""`fillpath algos calibrate`: the impact parameters of an instrument, fitted on the market lab.

Each sample is a pair of runs of one lab session (same seed): one in which a TWAP buys X shares
over half an hour from 10:30, and one in which nobody does. The lab's own flow is the same in
both, so the difference in price is the order's doing: its cost per share is measured against
the undisturbed mid at each fill, and its permanent impact is how far the mid stands from the
undisturbed mid five minutes after the order ended. Sizes run from ¼ % to 2 % of ADV (a few to
about thirty percent of the half hour's volume); `fillpath.algo.calibration.fit_impact` fits
ε, η and γ, reported as the instrument's coefficients in daily σ over ADV — what
`instruments.yaml` takes under `impact:`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fillpath.algo.calibration import ImpactSample, fit_impact
from fillpath.algo.trajectory import impact_estimate
from fillpath.bench.algo_lab import AlgoOrder, AlgoSession, MidPath, step_to, undisturbed
from fillpath.bench.algos import algo_profiles, in_lab_workers, worker_redis_url
from fillpath.bench.desk import LabDesk
from fillpath.core.enums import Side
from fillpath.core.profiles import resolve
from fillpath.core.session import SESSION_SECONDS
from fillpath.infra.reference_data import load_reference_data

START = 3_600.0  # 10:30
HORIZON = 1_800.0
AFTER = 300.0
"""Seconds after the order's end at which the move it left is measured."""
SIZES = (0.0025, 0.005, 0.01, 0.02)
"""Orders, as fractions of the instrument's ADV."""


def _job(symbol: str, seed: int, size: float) -> dict[str, Any]:
    """One lab session: the TWAP of `size` (of ADV) or, for 0, no order at all; the mid it saw
    and the fills it got."""
    if size == 0:
        path = undisturbed(symbol, seed, worker_redis_url(), START, START + HORIZON + AFTER)
        return {"seed": seed, "size": size, "path": path, "fills": []}
    desk = LabDesk(symbol, seed, worker_redis_url())
    quantity = int(round(size * desk.instrument.adv, -2))
    order = AlgoOrder(
        order_id="CAL", side=Side.BUY, quantity=quantity,
        params=resolve(algo_profiles()["twap-standard"]), start=START, end=START + HORIZON,
    )  # fmt: skip
    (run,) = AlgoSession(desk).run([order])
    step_to(desk, START + HORIZON + AFTER)
    fills = [(f.time, f.quantity, f.price_nanos / 1e9) for f in run.fills]
    return {"seed": seed, "size": size, "path": MidPath.of(desk), "fills": fills}


def run_calibration(console: Console, *, symbol: str, seeds: int, as_json: bool) -> dict[str, Any]:
    jobs = [(symbol, seed, size) for seed in range(1, seeds + 1) for size in (0.0, *SIZES)]
    runs = {(r["seed"], r["size"]): r for r in in_lab_workers(console, _job, jobs, quiet=as_json)}
    samples: list[ImpactSample] = []
    rows: dict[float, list[tuple[float, float, float]]] = {size: [] for size in SIZES}
    for (seed, size), run in sorted(runs.items()):
        if size == 0 or not run["fills"]:
            continue
        still: MidPath = runs[seed, 0.0]["path"]
        executed = sum(q for _, q, _ in run["fills"])
        paid = sum(q * (p - still.at(t)) for t, q, p in run["fills"]) / executed
        after = START + HORIZON + AFTER
        move = run["path"].at(after) - still.at(after)
        samples.append(
            ImpactSample(quantity=executed, horizon=HORIZON / SESSION_SECONDS, cost=paid, move=move)
        )
        arrival = still.at(START)
        rows[size].append((executed, paid / arrival * 1e4, move / arrival * 1e4))
    reference = load_reference_data().instruments[symbol]
    price = reference.reference_price.nanos / 1e9
    sigma = reference.daily_volatility * price
    tau = resolve(algo_profiles()["twap-standard"]).slice_seconds / SESSION_SECONDS
    fit = fit_impact(samples, sigma=sigma, adv=reference.adv, tau=tau)
    eta0, gamma0 = impact_estimate(reference)
    results = {
        "setup": {"symbol": symbol, "seeds": seeds, "horizon_seconds": HORIZON, "start": START,
                  "after_seconds": AFTER, "sizes_of_adv": list(SIZES)},
        "by_size": [
            {
                "size_of_adv": size, "executed_mean": float(np.mean([r[0] for r in found])),
                "cost_bps_mean": float(np.mean([r[1] for r in found])),
                "cost_bps_stdev": float(np.std([r[1] for r in found], ddof=1)),
                "move_bps_mean": float(np.mean([r[2] for r in found])),
                "move_bps_stdev": float(np.std([r[2] for r in found], ddof=1)),
            }
            for size, found in rows.items()
        ],
        "fit": {"eta": fit.eta, "gamma": fit.gamma, "epsilon": fit.epsilon,
                "temporary": fit.temporary, "permanent": fit.permanent,
                "cost_r2": fit.cost_r2, "samples": fit.samples},
        "in_use": {"eta": eta0, "gamma": gamma0, "temporary": reference.impact_temporary,
                   "permanent": reference.impact_permanent},
    }  # fmt: skip
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print(console, results)
    return results


def _print(console: Console, results: dict[str, Any]) -> None:
    setup = results["setup"]
    table = Table(
        title=f"{setup['symbol']}: a TWAP buy from 10:30 over {setup['horizon_seconds'] / 60:.0f} "
        f"min against the same session without it, {setup['seeds']} seeds (bps of the arrival mid)",
        title_justify="left", header_style="bold",
    )  # fmt: skip
    for column in ("of ADV", "executed", "cost vs undisturbed", "move left after 5 min"):
        table.add_column(column, justify="right")
    for row in results["by_size"]:
        table.add_row(
            f"{100 * row['size_of_adv']:.2f} %", f"{row['executed_mean']:,.0f}",
            f"{row['cost_bps_mean']:+.2f} ± {row['cost_bps_stdev']:.2f}",
            f"{row['move_bps_mean']:+.2f} ± {row['move_bps_stdev']:.2f}",
        )  # fmt: skip
    console.print(table)
    fit, in_use = results["fit"], results["in_use"]
    console.print(
        f"fit over {fit['samples']} executions: ε = {fit['epsilon']:.5f}, η = {fit['eta']:.4g}, "
        f"γ = {fit['gamma']:.4g} (currency, days); R² of the costs {fit['cost_r2']:.2f}\n"
        f"in daily σ over ADV: temporary {fit['temporary']:.3f}, permanent {fit['permanent']:.3f} "
        f"(in use: {in_use['temporary']:.3f}, {in_use['permanent']:.3f})\n"
        f"for instruments.yaml:  impact: {{temporary: {fit['temporary']:.3f}, "
        f"permanent: {fit['permanent']:.3f}}}"
    )
