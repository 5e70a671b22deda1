"""`fillpath bench algos`: how long a decision takes, and (`--quality`) how well the
algorithms execute on the market lab.

Decision time: every algorithm's `Execution.decide` — the whole next-slice decision, target,
adaptation, urgency, cap and sizing — stepped once a (simulated) second through a one-hour
order on a scripted market, timed call by call; beside it, in the same run, the sizing kernel
alone and an empty Python call (the floor of any in-process decision).

Quality (each execution alone on its own lab session, so none moves another's market;
sessions spread over two worker processes, figures from fillpath.monitor.tca):
- **VWAP**: a full-day buy of 5 % of ADV, slippage to the interval VWAP (bps, + = worse),
  mean and standard deviation over `seeds` sessions;
- **POV**: 2 % of ADV at the pov-10 profile (10 % target, 15 % cap) over three hours: the
  realised participation, and the highest share of any trailing minute;
- **TWAP**: the most it was ever off its straight line, in slices (from the TWAP runs below);
- **implementation shortfall vs TWAP**: the same one-hour buy executed by TWAP and by the
  Almgren–Chriss trajectory at each risk aversion λ, on the same `frontier_seeds` sessions;
  cost is the implementation shortfall in dollars. The frontier: mean cost and variance per
  λ; the aim: at the profile's λ, IS has the lower mean + λ·variance. Over a few dozen
  sessions the mean is mostly the market's own move in them (a buyer who waits gains when it
  fell), so each run is also priced against the same session without the order (`still`):
  the impact it paid, the part of the cost that is the execution's doing; the comparison is
  made both ways.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fillpath.algo.execution import Execution
from fillpath.algo.schedule import next_slice
from fillpath.bench.algo_lab import (
    AlgoOrder,
    AlgoSession,
    off_schedule,
    participation_windows,
    undisturbed,
)
from fillpath.bench.desk import LabDesk
from fillpath.core.enums import AlgorithmKind, Side
from fillpath.core.executions import ExecutionSpec, SliceSent
from fillpath.core.market import Calendar, MarketSnapshot
from fillpath.core.price import Price
from fillpath.core.profiles import AlgoProfile, resolve
from fillpath.infra.redis.embedded import EmbeddedRedis, start_embedded_redis
from fillpath.infra.resources import load_algo_profiles

T = TypeVar("T")
SYMBOL = "ACME"
FRONTIER_START, FRONTIER_END = 3_600.0, 7_200.0  # 10:30 to 11:30
FRONTIER_QUANTITY = 50_000
"""The order of the frontier and TWAP runs: about 12 % of the hour's volume, so the trajectory
of every λ below stays within the profile's 30 % participation cap (at 100,000 the cap, not λ,
set the pace of them all)."""
LAMBDAS = (1e-6, 2e-6, 5e-6, 1e-5)
"""Risk aversions of the frontier, $⁻¹, from the is-balanced profile's least to its default
(the λ it is tuned for); above that this order's trajectory reaches the cap in its first
minutes and the frontier stops moving."""


def algo_profiles() -> dict[str, AlgoProfile]:
    return load_algo_profiles(None)


# ---- decision time ---------------------------------------------------------------------------


def run_algos_bench(console: Console, *, steps: int, as_json: bool) -> dict[str, Any]:
    profiles = algo_profiles()
    open_ = 1_790_000_000.0
    calendar = Calendar.from_shares(open_, 23_400.0, np.ones(13))
    rng = np.random.default_rng(7)
    results: dict[str, Any] = {"setup": {"steps": steps}}

    def timed(call: Callable[[int], object]) -> dict[str, float]:
        call(0)  # compiles the kernels, as a service does at start-up
        samples = np.empty(steps)
        for i in range(steps):
            started = time.perf_counter_ns()
            call(i)
            samples[i] = time.perf_counter_ns() - started
        return {
            "p50_us": float(np.percentile(samples, 50)) / 1e3,
            "p99_us": float(np.percentile(samples, 99)) / 1e3,
            "max_us": float(samples.max()) / 1e3,
        }

    results["empty Python call"] = timed(lambda i: None)
    results["sizing kernel (next_slice)"] = timed(
        lambda i: next_slice(0.5, 100_000, i, 0, 100, 100, 0, False)
    )
    for name in ("twap-standard", "vwap-standard", "pov-10", "is-balanced", "arrival-urgent",
                 "iceberg-passive"):  # fmt: skip
        kind = profiles[name].algorithm.name
        results[f"decide: {kind} ({name})"] = timed(_decider(profiles[name], calendar, rng, steps))
    if as_json:
        print(json.dumps(results, indent=2))
        return results
    floor = results["empty Python call"]["p99_us"]
    table = Table(
        title=f"Next-slice decision time, in process ({steps:,} decisions each)",
        title_justify="left", header_style="bold",
    )  # fmt: skip
    for column in ("", "p50 µs", "p99 µs", "max µs", "p99 × empty call"):
        table.add_column(column, justify="left" if not column else "right")
    for key, figures in results.items():
        if key == "setup":
            continue
        table.add_row(
            key, f"{figures['p50_us']:.2f}", f"{figures['p99_us']:.2f}",
            f"{figures['max_us']:.1f}", f"{figures['p99_us'] / floor:,.0f}",
        )  # fmt: skip
    console.print(table)
    worst = max(v["p99_us"] for k, v in results.items() if k.startswith("decide"))
    console.print(f"slowest decision p99: {worst / 1e3:.3f} ms (aim ≤ 1 ms)")
    return results


def _decider(
    profile: AlgoProfile, calendar: Calendar, rng: np.random.Generator, steps: int
) -> Callable[[int], None]:
    """Decision i of a six-hour order of `profile` on a random-walk market in which every
    slice fills at once (so every decision has work to do)."""
    begin = datetime.fromtimestamp(calendar.open + 3_600, UTC)
    spec = ExecutionSpec(
        execution_id=f"B-{profile.name}", order_id="B", symbol=SYMBOL, side=Side.BUY,
        quantity=10_000_000, lot=100, tick_nanos=10_000_000, limit_price=None, start=begin,
        end=begin + timedelta(hours=6), params=resolve(profile), adv=50_000_000,
        daily_volatility=0.02, eta=2e-8, gamma=4e-9,
    )  # fmt: skip
    execution, _ = Execution.create(spec, calendar, begin)
    mids = 100_000_000_000 + np.cumsum(rng.integers(-1, 2, steps)) * 10_000_000
    volume = np.cumsum(rng.integers(0, 2_000, steps))

    def decide(i: int) -> None:
        at = begin + timedelta(seconds=i)
        market = MarketSnapshot(
            at=at.timestamp(), bid=int(mids[i]) - 5_000_000, ask=int(mids[i]) + 5_000_000,
            volume=int(volume[i]), window_volume=60_000, lasting_volume=50_000,
            spread_ratio=1.0, sigma=0.02,
        )  # fmt: skip
        for event in execution.decide(at, market):
            if isinstance(event, SliceSent):
                n = event.slice
                execution.on_fill(n, f"E{n}", event.quantity, Price(int(mids[i])), at)
                execution.on_slice_closed(n, at)

    return decide


# ---- quality on the market lab ---------------------------------------------------------------

_redis: EmbeddedRedis | None = None


def worker_start() -> None:
    """A lab worker process's own Redis (the router's learned venue quality lives there),
    stopped when the worker exits (a pool's workers leave by multiprocessing's exit hooks, not
    atexit's)."""
    global _redis
    _redis = start_embedded_redis(Path(tempfile.mkdtemp(prefix="fillpath-algos-")) / "redis")
    Finalize(None, _redis.stop, exitpriority=10)


def worker_redis_url() -> str:
    assert _redis is not None, "worker_start runs first, in each worker"
    return _redis.url


def in_lab_workers(
    console: Console, job: Callable[..., T], jobs: Sequence[tuple[Any, ...]], *, quiet: bool
) -> list[T]:
    """`job(*args)` for every args of `jobs`, over two worker processes (each with its own
    Redis), with a progress bar unless `quiet`; results in the order they finish."""
    found: list[T] = []
    with (
        Progress(
            TextColumn("lab sessions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=quiet,
        ) as progress,
        ProcessPoolExecutor(max_workers=2, initializer=worker_start) as pool,
    ):  # fmt: skip
        task = progress.add_task("sessions", total=len(jobs))
        for future in as_completed([pool.submit(job, *args) for args in jobs]):
            found.append(future.result())
            progress.advance(task)
    return found


def _job(kind: str, seed: int, risk: float) -> dict[str, Any]:
    """One execution on its own lab session; its figures. `still`: the frontier's session
    with no order, for the market's own move."""
    if kind == "still":
        path = undisturbed(SYMBOL, seed, worker_redis_url(), FRONTIER_START, FRONTIER_END)
        return {"kind": kind, "seed": seed, "risk_aversion": 0.0, "path": path}
    profiles = algo_profiles()
    desk = LabDesk(SYMBOL, seed, worker_redis_url())
    session = AlgoSession(desk)
    adv = desk.instrument.adv
    close = desk.config.session_seconds
    if kind == "vwap":
        order = AlgoOrder(
            order_id="VWAP", side=Side.BUY, quantity=int(round(0.05 * adv, -2)),
            params=resolve(profiles["vwap-standard"]), start=0.0, end=close - 120.0,
        )  # fmt: skip
    elif kind == "pov":
        order = AlgoOrder(
            order_id="POV", side=Side.BUY, quantity=int(round(0.02 * adv, -2)),
            params=resolve(profiles["pov-10"]), start=1_800.0, end=1_800.0 + 3 * 3_600,
        )  # fmt: skip
    else:
        params = (
            resolve(profiles["twap-standard"])
            if kind == "twap"
            else resolve(profiles["is-balanced"], params={"risk_aversion": risk})
        )
        order = AlgoOrder(
            order_id=kind.upper(), side=Side.BUY, quantity=FRONTIER_QUANTITY, params=params,
            start=FRONTIER_START, end=FRONTIER_END,
        )  # fmt: skip
    (run,) = session.run([order])
    tca = session.tca(run)
    tape, _ = desk.market_record()
    participation, worst = participation_windows(run, tape.time, tape.quantity)
    return {
        "kind": kind, "seed": seed, "risk_aversion": risk,
        "filled": run.execution.executed / order.quantity,
        "vwap_slippage_bps": tca["slippage_bps"]["vwap"],
        "cost_usd": tca["implementation_shortfall"]["currency"]["total"],
        "cost_bps": tca["implementation_shortfall"]["bps"]["total"],
        "participation": participation, "worst_minute": worst,
        "fills": [(f.time, f.quantity, f.price_nanos / 1e9) for f in run.fills],
        "off_schedule_slices": off_schedule(run)
        if run.execution.spec.params.algorithm is AlgorithmKind.TWAP
        else None,
    }  # fmt: skip


def run_algos_quality(
    console: Console, *, seeds: int, frontier_seeds: int, pov_seeds: int, as_json: bool
) -> dict[str, Any]:
    jobs = [("vwap", s, 0.0) for s in range(1, seeds + 1)]
    jobs += [("pov", s, 0.0) for s in range(1, pov_seeds + 1)]
    for s in range(1, frontier_seeds + 1):
        jobs += [("still", s, 0.0), ("twap", s, 0.0)]
        jobs += [("is", s, risk) for risk in LAMBDAS]
    found = in_lab_workers(console, _job, jobs, quiet=as_json)
    results = quality_figures(found, seeds=seeds, frontier_seeds=frontier_seeds)
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print_quality(console, results)
    return results


def quality_figures(
    found: list[dict[str, Any]], *, seeds: int, frontier_seeds: int
) -> dict[str, Any]:
    def of(kind: str, risk: float = 0.0) -> list[dict[str, Any]]:
        return sorted(
            (f for f in found if f["kind"] == kind and f["risk_aversion"] == risk),
            key=lambda f: f["seed"],
        )

    vwap = np.array([f["vwap_slippage_bps"] for f in of("vwap")])
    pov = of("pov")
    twap = of("twap")
    twap_cost = np.array([f["cost_usd"] for f in twap])
    still = {f["seed"]: f["path"] for f in of("still")}

    def impact(runs: list[dict[str, Any]]) -> np.ndarray:
        """What each run paid against the mid of its session without it (a buy)."""
        return np.array(
            [sum(q * (p - still[r["seed"]].at(t)) for t, q, p in r["fills"]) for r in runs]
        )

    twap_impact = impact(twap)
    frontier = []
    for risk in LAMBDAS:
        runs = of("is", risk)
        cost = np.array([f["cost_usd"] for f in runs])
        paid = impact(runs)
        frontier.append(
            {
                "risk_aversion": risk,
                "mean_cost_usd": float(cost.mean()),
                "variance_usd2": float(cost.var(ddof=1)),
                "mean_impact_usd": float(paid.mean()),
                "objective": float(cost.mean() + risk * cost.var(ddof=1)),
                "twap_objective": float(twap_cost.mean() + risk * twap_cost.var(ddof=1)),
                "impact_objective": float(paid.mean() + risk * cost.var(ddof=1)),
                "twap_impact_objective": float(twap_impact.mean() + risk * twap_cost.var(ddof=1)),
            }
        )
    tuned = resolve(algo_profiles()["is-balanced"]).risk_aversion
    at_tuned = next(f for f in frontier if f["risk_aversion"] == tuned)
    return {
        "setup": {"symbol": SYMBOL, "vwap_seeds": seeds, "frontier_seeds": frontier_seeds},
        "vwap": {
            "slippage_bps_mean": float(vwap.mean()),
            "slippage_bps_stdev": float(vwap.std(ddof=1)),
            "filled_min": min(f["filled"] for f in of("vwap")),
        },
        "pov": {
            "target": 0.10,
            "cap": 0.15,
            "participation": [f["participation"] for f in pov],
            "worst_minute": max(f["worst_minute"] for f in pov),
        },
        "twap": {
            "off_schedule_slices_max": max(f["off_schedule_slices"] for f in twap),
            "mean_cost_usd": float(twap_cost.mean()),
            "variance_usd2": float(twap_cost.var(ddof=1)),
            "mean_impact_usd": float(twap_impact.mean()),
        },
        "frontier": frontier,
        "aims": {
            "is_beats_twap_at_tuned_lambda": at_tuned["objective"] < at_tuned["twap_objective"],
            "is_beats_twap_at_tuned_lambda_by_impact": at_tuned["impact_objective"]
            < at_tuned["twap_impact_objective"],
            "tuned_lambda": tuned,
            "frontier_cost_falls_as_lambda_falls": all(
                a["mean_cost_usd"] <= b["mean_cost_usd"] for a, b in pairwise(frontier)
            ),
            "frontier_variance_rises_as_lambda_falls": all(
                a["variance_usd2"] >= b["variance_usd2"] for a, b in pairwise(frontier)
            ),
        },
    }


def _print_quality(console: Console, results: dict[str, Any]) -> None:
    setup = results["setup"]
    vwap, pov, twap = results["vwap"], results["pov"], results["twap"]
    console.print(
        f"[bold]Algorithms on the market lab[/] ({setup['symbol']}; each execution alone on "
        "its own session)\n"
        f"VWAP, full day, 5 % ADV, {setup['vwap_seeds']} seeds: slippage to interval VWAP "
        f"{vwap['slippage_bps_mean']:+.2f} ± {vwap['slippage_bps_stdev']:.2f} bps "
        f"(+ = worse; least filled {100 * vwap['filled_min']:.1f} %)\n"
        f"POV 10 % (cap 15 %), 2 % ADV over 3 h: realised "
        + ", ".join(f"{100 * p:.1f}" for p in pov["participation"])
        + f" %; busiest trailing minute {100 * pov['worst_minute']:.1f} %\n"
        f"TWAP, {FRONTIER_QUANTITY:,} over 1 h: at most "
        f"{twap['off_schedule_slices_max']:.2f} slices off its straight line"
    )
    table = Table(
        title=f"Implementation shortfall vs TWAP, {FRONTIER_QUANTITY:,} {setup['symbol']} over "
        f"one hour, {setup['frontier_seeds']} seeds (cost: implementation shortfall in $; "
        "impact: paid against the same session without the order)",
        title_justify="left", header_style="bold",
    )  # fmt: skip
    columns = ("λ ($⁻¹)", "mean cost $", "stdev $", "mean + λ·var", "TWAP's",
               "mean impact $", "impact + λ·var", "TWAP's")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for f in results["frontier"]:
        table.add_row(
            f"{f['risk_aversion']:g}", f"{f['mean_cost_usd']:,.0f}",
            f"{math.sqrt(f['variance_usd2']):,.0f}", f"{f['objective']:,.0f}",
            f"{f['twap_objective']:,.0f}", f"{f['mean_impact_usd']:,.0f}",
            f"{f['impact_objective']:,.0f}", f"{f['twap_impact_objective']:,.0f}",
        )  # fmt: skip
    table.add_row(
        "TWAP", f"{twap['mean_cost_usd']:,.0f}", f"{math.sqrt(twap['variance_usd2']):,.0f}", "",
        "", f"{twap['mean_impact_usd']:,.0f}", "", "",
    )  # fmt: skip
    console.print(table)
    aims = results["aims"]
    console.print(
        f"at the tuned λ = {aims['tuned_lambda']:g}, IS beats TWAP on mean + λ·variance: "
        f"{aims['is_beats_twap_at_tuned_lambda']}; on mean impact + λ·variance (the market's "
        f"own move, zero on average, left out of the mean): "
        f"{aims['is_beats_twap_at_tuned_lambda_by_impact']}\n"
        f"frontier: mean cost falls as λ falls: {aims['frontier_cost_falls_as_lambda_falls']}, "
        f"variance rises as λ falls: {aims['frontier_variance_rises_as_lambda_falls']}"
    )
