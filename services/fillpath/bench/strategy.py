"""`fillpath strategy train` and `fillpath bench strategy --quality`: the cost model learned on
market-lab scenarios, and judged on scenarios it never saw (fillpath.bench.strategy_lab).

Training executes every candidate profile in `count` randomised scenarios, fits the model
(fillpath.strategy.model, seeded) and stores it in the registry with its metrics.

Quality, on held-out scenarios (lab seeds from `HELD_OUT_SEEDS`, which no training run
reaches): every candidate executes every scenario; then the shipped policy chooses for each
scenario's order twice — by its rules alone, and with the model — and the figures are the mean
costs of those choices beside the best single fixed profile (the one cheapest on average over
these very scenarios, known only after the fact), and how often each choice was the cheapest of
the candidates its rule allowed. Both costs are reported: the execution cost (against the same
session without the order: what the choice of profile makes) and the implementation shortfall
(what a desk measures, most of it the market's own move); ± is one standard error.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import diagnostics_pb2, strategy_pb2
from fillpath.bench.cpu import postgres_pid
from fillpath.bench.loadgen import (
    ECHO,
    GHZ_VERSION,
    Target,
    against_echo,
    against_echo_table,
    ghz_binary,
    protoset_file,
)
from fillpath.bench.strategy_lab import (
    CANDIDATES,
    HELD_OUT_SEEDS,
    TRAINING_SEEDS,
    Executed,
    arrival,
    execute_all,
    samples,
    scenarios,
)
from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles
from fillpath.infra.service_process import spawn_service
from fillpath.strategy.choice import Chooser
from fillpath.strategy.main import load_policy
from fillpath.strategy.model import CostModel, LearnedModel, fit
from fillpath.strategy.registry import ModelInfo, Registry
from fillpath.strategy.service import STRATEGY_MIGRATIONS


def run_training(
    console: Console, *, count: int, seed: int, dsn: str, promote: bool, as_json: bool
) -> dict[str, Any]:
    """Executes the candidates in `count` scenarios drawn from `seed`, fits the model and
    stores it (promoted if `promote`); its version and metrics."""
    chosen = scenarios(count, seed, first_lab_seed=TRAINING_SEEDS)
    executed = execute_all(console, chosen, quiet=as_json)
    trained_at = datetime.now(UTC).replace(microsecond=0)
    version = f"m{trained_at:%Y%m%d-%H%M%S}-s{seed}-n{count}"
    model = fit(samples(executed), seed=seed, version=version, trained_at=trained_at)
    model.metrics["lab_seed_first"] = TRAINING_SEEDS
    model.metrics["lab_seed_last"] = TRAINING_SEEDS + count - 1
    migrate(dsn, [STRATEGY_MIGRATIONS])
    pool = open_pool(dsn, 1, name="strategy-train")
    try:
        registry = Registry(pool)
        info = registry.save(model)
        if promote:
            info = registry.promote(version)
    finally:
        pool.close()
    results = {"version": version, "promoted": info.promoted, "metrics": info.metrics}
    if as_json:
        print(json.dumps(results, sort_keys=True))
    else:
        console.print(models_table([info], f"Cost model {version} ({count} scenarios)"))
    return results


def models_table(models: Sequence[ModelInfo], title: str = "Cost models") -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("version", "trained", "promoted", "scenarios", "OOF MAE bps", "OOF R²",
                   "best pick", "chosen bps", "best fixed bps"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("version", "trained") else "right")
    for m in models:
        x = m.metrics
        table.add_row(
            m.version, f"{m.trained_at:%Y-%m-%d %H:%M}", "yes" if m.promoted else "",
            f"{x.get('scenarios', 0):,.0f}", f"{x.get('oof_mae_bps', 0):.2f}",
            f"{x.get('oof_r2', 0):.3f}", f"{x.get('oof_best_pick_rate', 0):.0%}",
            f"{x.get('oof_chosen_cost_bps', 0):.2f}", f"{x.get('oof_best_fixed_cost_bps', 0):.2f}",
        )  # fmt: skip
    return table


# ---- quality on held-out scenarios -------------------------------------------------------------


def run_quality(
    console: Console, *, count: int, seed: int, model: LearnedModel, as_json: bool
) -> dict[str, Any]:
    last = model.metrics.get("lab_seed_last", HELD_OUT_SEEDS)
    if last >= HELD_OUT_SEEDS:
        raise ValueError(f"model {model.version} was trained on lab seeds up to {last:.0f}")
    chosen = scenarios(count, seed, first_lab_seed=HELD_OUT_SEEDS)
    executed = execute_all(console, chosen, quiet=as_json)
    results = quality_figures(executed, model)
    if as_json:
        print(json.dumps(results, sort_keys=True))
    else:
        _print_quality(console, results)
    return results


def quality_figures(executed: Sequence[Executed], model: CostModel) -> dict[str, Any]:
    reference = load_reference_data()
    profiles = load_algo_profiles(None)
    policy, _ = load_policy(None, profiles, reference.instruments)
    rules_only = Chooser(policy, profiles, reference.instruments)
    learned = Chooser(policy, profiles, reference.instruments, model=model)
    rows: list[dict[str, Any]] = []
    for e in executed:
        request, now = arrival(e)
        by_rules = rules_only.choice(request, e.market, now)
        by_model = learned.choice(request, e.market, now)
        (rule,) = [r for r in (*policy.rules, policy.default) if r and r.name == by_rules.rule]
        allowed = [c.name for c in rule.choices]
        cheapest = min(allowed, key=lambda p: e.cost_bps[p])
        rows.append(
            {
                "rules": by_rules.algo_profile, "learned": by_model.algo_profile,
                "sure": bool(by_model.model_version), "cheapest": cheapest,
                "cost": e.cost_bps, "shortfall": e.shortfall_bps,
            }
        )  # fmt: skip
    fixed = {p: _mean([r["cost"][p] for r in rows]) for p in CANDIDATES}
    best_fixed = min(fixed, key=lambda p: fixed[p]["mean"])

    def figures(pick: str) -> dict[str, Any]:
        return {
            "cost_bps": _mean([r["cost"][r[pick]] for r in rows]),
            "shortfall_bps": _mean([r["shortfall"][r[pick]] for r in rows]),
            "cheapest_rate": float(np.mean([r[pick] == r["cheapest"] for r in rows])),
            "picks": {p: sum(r[pick] == p for r in rows) for p in CANDIDATES},
        }

    for r in rows:
        r["best_fixed"] = best_fixed
    return {
        "scenarios": len(rows),
        "model": model.version,
        "model_sure": sum(r["sure"] for r in rows),
        "learned": figures("learned"),
        "rules": figures("rules"),
        "best_fixed": {"profile": best_fixed, **figures("best_fixed")},
        "fixed_cost_bps": fixed,
        "learned_minus_rules_bps": _mean(
            [r["cost"][r["learned"]] - r["cost"][r["rules"]] for r in rows]
        ),
        "learned_minus_best_fixed_bps": _mean(
            [r["cost"][r["learned"]] - r["cost"][best_fixed] for r in rows]
        ),
    }


def _mean(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    error = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else float("nan")
    return {"mean": float(array.mean()), "stderr": error}


def _print_quality(console: Console, results: dict[str, Any]) -> None:
    table = Table(
        title=f"Strategy selection on {results['scenarios']} held-out lab scenarios "
        f"(model {results['model']}, sure on {results['model_sure']})",
        title_justify="left", header_style="bold",
    )  # fmt: skip
    for column in ("selection", "execution cost bps", "impl. shortfall bps",
                   "ex-post cheapest", "picks"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("selection", "picks") else "right")
    for key, label in (
        ("learned", "learned (rules + cost model)"),
        ("rules", "rules only"),
        ("best_fixed", f"best single profile ({results['best_fixed']['profile']}, ex post)"),
    ):
        f = results[key]
        picks = ", ".join(f"{p} {n}" for p, n in f["picks"].items() if n)
        table.add_row(
            label, _pm(f["cost_bps"]), _pm(f["shortfall_bps"]), f"{f['cheapest_rate']:.0%}", picks
        )
    console.print(table)
    console.print(
        f"learned − rules: {_pm(results['learned_minus_rules_bps'])} bps; learned − best single "
        f"profile: {_pm(results['learned_minus_best_fixed_bps'])} bps (execution cost, paired "
        "by scenario)"
    )


def _pm(figure: dict[str, float]) -> str:
    return f"{figure['mean']:.2f} ± {figure['stderr']:.2f}"


# ---- selection latency through gRPC ------------------------------------------------------------

_SELECT = json.dumps(
    {
        "order_id": "bench-{{.RequestNumber}}-{{.TimestampUnixNano}}",
        "account": "DESK-EQ",
        "symbol": "ACME",
        "side": "SIDE_BUY",
        "quantity": 20_000,
    }
)


def run_strategy_bench(
    console: Console, *, model: LearnedModel, rate: int, duration: float, as_json: bool
) -> dict[str, Any]:
    """SelectStrategy and the bare echo at `rate` calls/s for `duration` s each, the strategy
    service ranking with `model` (copied into the benchmark's own Postgres)."""
    with console.status(f"building the load generator (ghz {GHZ_VERSION}, first run only)…"):
        ghz_binary()
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-strategy-") as scratch:
        root = Path(scratch)
        with console.status("starting embedded Postgres, the strategy service and the echo…"):
            postgres = start_embedded_postgres(root / "postgres")
            migrate(postgres.dsn, [EVENT_STORE_MIGRATIONS, STRATEGY_MIGRATIONS])
            pool = open_pool(postgres.dsn, 1, name="bench-strategy")
            try:
                registry = Registry(pool)
                registry.save(model)
                registry.promote(model.version)
            finally:
                pool.close()
            env = {
                "FILLPATH_PG_DSN": postgres.dsn,
                "FILLPATH_STRATEGY_ADDRESS": "127.0.0.1:0",
                "FILLPATH_STRATEGY_MODEL_POLL_INTERVAL": "0",
            }
            server = spawn_service(
                "fillpath.bench.strategy_server", env, log_file=root / "strategy.log"
            )
            echo = spawn_service("fillpath.bench.echo", {}, log_file=root / "echo.log")
        try:
            with protoset_file([strategy_pb2.DESCRIPTOR, diagnostics_pb2.DESCRIPTOR]) as protoset:
                results: dict[str, Any] = against_echo(
                    protoset,
                    [
                        Target("echo", echo.process.pid, echo.address,
                               "fillpath.v1.EchoService.Echo", ECHO),
                        Target("select", server.process.pid, server.address,
                               "fillpath.v1.StrategyService.SelectStrategy", _SELECT),
                    ],
                    rate=rate, duration=duration, postgres_pid=postgres_pid(postgres.data_dir),
                    status=console.status,
                )  # fmt: skip
        finally:
            echo.stop()
            server.stop()
            postgres.stop()
    results["model"] = model.version
    results["ratio_p50"] = results["select"]["p50_ms"] / results["echo"]["p50_ms"]
    results["ratio_p99"] = results["select"]["p99_ms"] / results["echo"]["p99_ms"]
    if as_json:
        print(json.dumps(results, sort_keys=True))
        return results
    title = (
        f"StrategyService.SelectStrategy vs bare gRPC echo at {rate:,}/s, same run (model "
        f"{model.version}; each choice durable in Postgres before the answer)"
    )
    console.print(against_echo_table(title, results, "select", "SelectStrategy"))
    console.print(f"SelectStrategy p99 {results['select']['p99_ms']:.2f} ms (aim ≤ 5 ms)")
    return results
