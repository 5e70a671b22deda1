"""`fillpath bench sor`: how long the router takes to decide, in the kernel and through gRPC.

In-kernel decision time: the routing kernel (fillpath.sor.kernel) on a market of 24 venues (20
lit with five levels a side, 4 dark pools), for a seeded stream of slices of 100 to 20,000
shares, buys and sells, with and without a limit, urgencies from patient to urgent, every
call timed on its own. The baseline, in the same run: the plain-Python reference
(fillpath.sor.reference) deciding the first few hundred of the same slices — what the kernel
buys.

Through gRPC: RoutingService as it is deployed (`python -m fillpath.sor.main`'s `start_sor`, via
fillpath.bench.sor_server, on the same market of 24 venues), every Route a new decision that is
appended to embedded Postgres (synchronous commit) before it is answered, at a fixed offered
rate from ghz. Beside it, in the same run and driven the same way, the bare gRPC echo
(fillpath.bench.echo, one process per core: the router runs in one). For each, the CPU the server
spent per call (its process and descendants) and, for Route, what Postgres spent recording the
decisions: how many routes a core serves, whatever the latency says.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import diagnostics_pb2, routing_pb2
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
from fillpath.bench.stats import Samples
from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.redis.embedded import start_embedded_redis
from fillpath.infra.service_process import spawn_service
from fillpath.sor import reference
from fillpath.sor.kernel import Request, decide
from fillpath.sor.state import DARK, DEPTH, empty_state

_TICK = 10_000_000
_MID = 100_000_000_000
_LOT = 100


def market(venues: int, dark: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible market of `venues` (the last `dark` of them dark pools) around 100.00."""
    state = empty_state(venues)
    for v in range(venues):
        row = state[v]
        if v >= venues - dark:
            row["kind"] = DARK
            row["min_qty"] = rng.choice([100, 500, 2_000])
            row["dark_fill_prob"] = rng.uniform(0.1, 0.6)
            row["dark_fill_size"] = rng.uniform(300, 5_000)
            row["midpoint_fee"] = rng.uniform(0.0005, 0.0015)
        else:
            half = int(rng.integers(1, 3))
            row["bid_px"] = [_MID - (half + k) * _TICK for k in range(DEPTH)]
            row["ask_px"] = [_MID + (half + k) * _TICK for k in range(DEPTH)]
            row["bid_qty"] = rng.integers(1, 40, DEPTH) * 100
            row["ask_qty"] = rng.integers(1, 40, DEPTH) * 100
            row["maker_fee"] = rng.uniform(-0.003, 0.001)
            row["taker_fee"] = rng.uniform(-0.001, 0.003)
            row["passive_volume"] = rng.uniform(500, 20_000)
        row["latency_us"] = rng.uniform(100, 1_500)
        row["markout_bps"] = rng.uniform(-1, 3)
        row["reject_rate"] = rng.uniform(0, 0.05)
    return state


def requests(count: int, rng: np.random.Generator) -> list[Request]:
    out = []
    for _ in range(count):
        side = int(rng.choice([1, -1]))
        limited = rng.random() < 0.5
        out.append(
            Request(
                side=side,
                quantity=int(rng.integers(1, 201)) * _LOT,
                limit=_MID + side * int(rng.integers(0, 4)) * _TICK if limited else 0,
                tick=_TICK,
                lot=_LOT,
                max_venues=int(rng.choice([0, 0, 3, 6])),
                allow_rest=bool(rng.random() < 0.8),
                w_fee=1.0,
                w_latency=0.1,
                w_markout=1.0,
                miss_bps=float(rng.uniform(2, 30)),
            )
        )
    return out


_ROUTE = json.dumps(
    {
        "order_id": "bench-{{.RequestNumber}}",
        "symbol": "ACME",
        "side": "SIDE_BUY",
        "quantity": 5_000,
        "urgency": "URGENCY_MEDIUM",
        "allow_dark": True,
    }
)


def _grpc_latency(
    console: Console, *, venues: int, seed: int, rate: int, duration: float
) -> dict[str, Any]:
    """Route and echo latency at `rate` calls/s for `duration` s each, after a warm-up."""
    with console.status(f"building the load generator (ghz {GHZ_VERSION}, first run only)…"):
        ghz_binary()
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-sor-") as scratch:
        root = Path(scratch)
        config = root / "config"
        config.mkdir()
        for name in ("instruments.yaml", "accounts.yaml"):
            shutil.copy(str(files("fillpath") / "defaults" / name), config / name)
        with console.status("starting embedded Postgres, Redis, the router and the echo…"):
            postgres = start_embedded_postgres(root / "postgres")
            redis = start_embedded_redis(root / "redis")
            env = {
                "FILLPATH_PG_DSN": postgres.dsn,
                "FILLPATH_REDIS_URL": redis.url,
                "FILLPATH_SOR_ADDRESS": "127.0.0.1:0",
                "FILLPATH_CONFIG_DIR": str(config),
                "FILLPATH_BENCH_VENUES": str(venues),
                "FILLPATH_BENCH_SEED": str(seed),
            }
            router = spawn_service("fillpath.bench.sor_server", env, log_file=root / "sor.log")
            echo = spawn_service("fillpath.bench.echo", {}, log_file=root / "echo.log")
        try:
            with protoset_file([routing_pb2.DESCRIPTOR, diagnostics_pb2.DESCRIPTOR]) as protoset:
                results: dict[str, Any] = against_echo(
                    protoset,
                    [
                        Target("echo", echo.process.pid, echo.address,
                               "fillpath.v1.EchoService.Echo", ECHO),
                        Target("route", router.process.pid, router.address,
                               "fillpath.v1.RoutingService.Route", _ROUTE),
                    ],
                    rate=rate, duration=duration, postgres_pid=postgres_pid(postgres.data_dir),
                    status=console.status,
                )  # fmt: skip
        finally:
            echo.stop()
            router.stop()
            redis.stop()
            postgres.stop()
    results["ratio_p50"] = results["route"]["p50_ms"] / results["echo"]["p50_ms"]
    results["ratio_p99"] = results["route"]["p99_ms"] / results["echo"]["p99_ms"]
    return results


def run_sor_bench(
    console: Console,
    *,
    venues: int,
    decisions: int,
    seed: int,
    rate: int,
    duration: float,
    as_json: bool,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    dark = max(1, venues // 6)
    state = market(venues, dark, rng)
    stream = requests(decisions, rng)
    eligible = np.ones(venues, dtype=np.bool_)
    adjust = np.zeros(venues)
    out = np.zeros(2 * venues, dtype=np.int64)
    spend = np.zeros(2 * venues)
    with console.status("compiling the routing kernel (cached after the first run)…"):
        t0 = time.perf_counter()
        decide(state, eligible, adjust, stream[0], out, spend)
        compile_s = time.perf_counter() - t0
    kernel, python = Samples(), Samples()
    routed = 0
    with console.status(f"{decisions:,} decisions in the kernel…"):
        for r in stream:
            t0 = time.perf_counter_ns()
            decide(state, eligible, adjust, r, out, spend)
            kernel.add((time.perf_counter_ns() - t0) / 1e9)
            routed += int(out.sum())
    baseline = stream[: min(300, decisions)]
    with console.status(f"{len(baseline):,} decisions in the pure-Python reference…"):
        for r in baseline:
            t0 = time.perf_counter_ns()
            reference.allocate(state, eligible.tolist(), adjust.tolist(), r)
            python.add((time.perf_counter_ns() - t0) / 1e9)
    k, p = kernel.summary_ms(), python.summary_ms()

    def in_us(summary: dict[str, float], *quantiles: str) -> dict[str, float]:
        return {f"{q}_us": summary[f"{q}_ms"] * 1000 for q in quantiles} | {
            "count": summary["count"]
        }

    figures: dict[str, Any] = {
        "kernel_decision": in_us(k, "p50", "p99", "max"),
        "python_reference_decision": in_us(p, "p50", "p99"),
        "ratio_p50": p["p50_ms"] / k["p50_ms"],
        "compile_or_load_s": compile_s,
        "grpc": _grpc_latency(console, venues=venues, seed=seed, rate=rate, duration=duration)
        if duration > 0
        else None,
        "setup": {"venues": venues, "dark_pools": dark, "seed": seed, "shares_routed": routed},
    }
    if as_json:
        print(json.dumps(figures, indent=2))
        return figures
    table = Table(
        title=f"Routing decision time, {venues} venues ({dark} dark), in process",
        title_justify="left",
        header_style="bold",
    )
    for column in ("", "p50 µs", "p99 µs", "max µs", "decisions"):
        table.add_column(column, justify="left" if not column else "right")
    kd, pd = figures["kernel_decision"], figures["python_reference_decision"]
    table.add_row("numba kernel", f"{kd['p50_us']:.1f}", f"{kd['p99_us']:.1f}",
                  f"{kd['max_us']:.1f}", f"{kd['count']:,}")  # fmt: skip
    table.add_row("pure-Python reference (baseline)", f"{pd['p50_us']:.1f}", f"{pd['p99_us']:.1f}",
                  "", f"{pd['count']:,}")  # fmt: skip
    table.add_row("ratio Python / numba (p50)", f"{figures['ratio_p50']:.0f}×", "", "", "")
    console.print(table)
    console.print(f"compile or load the kernel (once): {compile_s:.2f} s")
    if figures["grpc"] is not None:
        _print_grpc(console, figures["grpc"], venues)
    return figures


def _print_grpc(console: Console, grpc: dict[str, Any], venues: int) -> None:
    title = (
        f"RoutingService.Route vs bare gRPC echo at {grpc['route']['rate_per_s']:,}/s, same run "
        f"({venues} venues; each decision durable in Postgres before the answer)"
    )
    console.print(against_echo_table(title, grpc, "route", "Route"))
