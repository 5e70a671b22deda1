"""`fillpath bench oms`: submit latency and sustained throughput of the OMS through gRPC.

The OMS runs as it is deployed: `python -m fillpath.oms.main`, one process per core on one
port, on embedded Postgres with synchronous commits (every acknowledged submit is on disk) and
embedded Redis (the order-rate check runs on every submit). Beside it runs the baseline: a bare
gRPC echo built the same way (same server, interceptors and process count). ghz drives both in
the same run, from 16 connections (several trading sessions):

- latency at a fixed offered rate (`--rate`, for `--duration` seconds);
- throughput with `--concurrency` calls in flight.

Every submit is a new order with its own client order id. Printed as a table, or with --json as
one object, with the OMS/echo ratios.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import yaml
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import diagnostics_pb2, oms_pb2
from fillpath.bench.loadgen import GHZ_VERSION, LoadResult, ghz_binary, protoset_file, run_ghz
from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.redis.embedded import start_embedded_redis
from fillpath.infra.service_process import spawn_service

BENCH_ACCOUNT = "BENCH"
CONNECTIONS = 16

_SUBMIT = json.dumps(
    {
        "client_order_id": "bench-{{.TimestampUnixNano}}-{{.RequestNumber}}",
        "account": BENCH_ACCOUNT,
        "portfolio": "BENCH",
        "symbol": "ACME",
        "side": "SIDE_BUY",
        "order_type": "ORDER_TYPE_LIMIT",
        "time_in_force": "TIME_IN_FORCE_DAY",
        "quantity": 100,
        "limit_price_nanos": 102_350_000_000,
    }
)
_ECHO = json.dumps({"payload": "Zmlsb3BhdGg="})
_OMS_SERVICE = "fillpath.v1.OrderManagementService"
_ECHO_SERVICE = "fillpath.v1.EchoService"


def _bench_config(folder: Path) -> Path:
    """Reference data for the run: the shipped instruments and an account whose limits every
    order passes (the rate check still runs: its Redis round trip is part of the path)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(
        str(files("fillpath") / "defaults" / "instruments.yaml"), folder / "instruments.yaml"
    )
    accounts = {
        "accounts": [
            {
                "id": BENCH_ACCOUNT,
                "portfolios": ["BENCH"],
                "limits": {"max_order_quantity": 10_000_000, "max_orders_per_second": 1_000_000},
            }
        ]
    }
    (folder / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    return folder


def _figures(
    latency: LoadResult, throughput: LoadResult, rate: int, concurrency: int
) -> dict[str, Any]:
    return {
        "latency_at_rate": {
            "rate_per_s": rate,
            "rate_achieved_per_s": round(latency.rate_achieved, 1),
            **latency.samples.summary_ms(),
        },
        "throughput": {
            "concurrency": concurrency,
            "per_s": round(throughput.rate_achieved, 1),
            "errors": throughput.samples.errors,
            "p99_ms": throughput.samples.summary_ms()["p99_ms"],
        },
    }


def run_oms_bench(
    console: Console, *, rate: int, duration: float, concurrency: int, as_json: bool
) -> dict[str, Any]:
    with console.status(f"building the load generator (ghz {GHZ_VERSION}, first run only)…"):
        ghz_binary()
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-") as scratch:
        root = Path(scratch)
        with console.status("starting embedded Postgres, Redis, the OMS and the echo server…"):
            postgres = start_embedded_postgres(root / "postgres")
            redis = start_embedded_redis(root / "redis")
            env = {
                "FILLPATH_PG_DSN": postgres.dsn,
                "FILLPATH_REDIS_URL": redis.url,
                "FILLPATH_OMS_ADDRESS": "127.0.0.1:0",
                "FILLPATH_CONFIG_DIR": str(_bench_config(root / "config")),
            }
            oms = spawn_service("fillpath.oms.main", env, log_file=root / "oms.log")
            echo = spawn_service("fillpath.bench.echo", {}, log_file=root / "echo.log")
        try:
            calls = int(rate * duration)
            results: dict[str, Any] = {}
            with protoset_file([oms_pb2.DESCRIPTOR, diagnostics_pb2.DESCRIPTOR]) as protoset:
                for name, address, method, data in (
                    ("echo", echo.address, f"{_ECHO_SERVICE}.Echo", _ECHO),
                    ("oms_submit", oms.address, f"{_OMS_SERVICE}.SubmitOrder", _SUBMIT),
                ):
                    with console.status(f"{name}: warming up, then {rate}/s for {duration:g}s…"):
                        run_ghz(protoset, address, method, data, rate=rate, calls=min(calls, rate))
                        latency = run_ghz(protoset, address, method, data, rate=rate, calls=calls)
                    with console.status(f"{name}: {concurrency} in flight for {duration:g}s…"):
                        throughput = run_ghz(
                            protoset, address, method, data, duration=duration, workers=concurrency
                        )
                    results[name] = _figures(latency, throughput, rate, concurrency)
            with psycopg.connect(postgres.dsn) as conn:
                results["postgres"] = {
                    name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                    for name in ("fsync", "synchronous_commit")
                }
                recorded = conn.execute("SELECT count(*) FROM order_view").fetchone()
                results["orders_recorded"] = recorded[0] if recorded else 0
        finally:
            echo.stop()
            oms.stop()
            redis.stop()
            postgres.stop()
    oms_lat, echo_lat = results["oms_submit"]["latency_at_rate"], results["echo"]["latency_at_rate"]
    results["ratios"] = {
        "p50": oms_lat["p50_ms"] / echo_lat["p50_ms"],
        "p99": oms_lat["p99_ms"] / echo_lat["p99_ms"],
        "throughput": results["oms_submit"]["throughput"]["per_s"]
        / results["echo"]["throughput"]["per_s"],
    }
    results["setup"] = {
        "duration_s": duration,
        "connections": CONNECTIONS,
        "load_generator": f"ghz {GHZ_VERSION}",
        "oms_processes": "one per core",
    }
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print(console, results)
    return results


def _print(console: Console, figures: dict[str, Any]) -> None:
    setup = figures["setup"]
    table = Table(
        title=f"OMS SubmitOrder vs bare gRPC echo, same run ({setup['duration_s']:g}s each, "
        f"{setup['connections']} connections, {setup['load_generator']})",
        title_justify="left",
        header_style="bold",
    )
    for column in ("", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "throughput /s"):
        table.add_column(column, justify="left" if not column else "right")
    for label, key in (("bare gRPC echo", "echo"), ("OMS SubmitOrder", "oms_submit")):
        lat = figures[key]["latency_at_rate"]
        table.add_row(
            f"{label} @ {lat['rate_per_s']}/s",
            f"{lat['p50_ms']:.2f}",
            f"{lat['p99_ms']:.2f}",
            f"{lat['p999_ms']:.2f}",
            f"{lat['max_ms']:.2f}",
            str(lat["errors"] + figures[key]["throughput"]["errors"]),
            f"{figures[key]['throughput']['per_s']:,.0f}",
        )
    ratios = figures["ratios"]
    table.add_row(
        "ratio OMS / echo",
        f"{ratios['p50']:.1f}×",
        f"{ratios['p99']:.1f}×",
        "",
        "",
        "",
        f"{ratios['throughput']:.2f}×",
    )
    console.print(table)
    pg = figures["postgres"]
    latency, throughput = (
        figures["oms_submit"]["latency_at_rate"],
        figures["oms_submit"]["throughput"],
    )
    console.print(
        f"durable commits: fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}; "
        f"{figures['orders_recorded']:,} orders recorded; offered {latency['rate_per_s']}/s, "
        f"achieved {latency['rate_achieved_per_s']:,.0f}/s; throughput with "
        f"{throughput['concurrency']} calls in flight"
    )
