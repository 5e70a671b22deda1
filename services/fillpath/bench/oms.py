"""`fillpath bench oms`: submit latency and sustained throughput of the OMS through gRPC.

The OMS runs as its own process on embedded Postgres (synchronous commits: every acknowledged
submit is on disk) and Redis (the order-rate check), exactly as `fillpath up` runs it; a bare
gRPC echo server built the same way runs beside it. The client (this process) measures both in
the same run:

- latency at a fixed offered rate (open loop: request i is due at t0 + i/rate and its latency is
  counted from then, so a stalled server cannot hide its queue — no coordinated omission);
- throughput with a fixed number of requests in flight (closed loop).

Figures are printed as a table, or one JSON object with ``--json``, with the OMS/echo ratios.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import grpc
import psycopg
import yaml
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from fillpath.api.v1 import common_pb2, diagnostics_pb2, diagnostics_pb2_grpc, oms_pb2, oms_pb2_grpc
from fillpath.bench.stats import Samples
from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.redis.embedded import start_embedded_redis
from fillpath.infra.service_process import spawn_service

BENCH_ACCOUNT = "BENCH"
_SYMBOLS = ("ACME", "GLBX", "INIT", "SPYX")


def _bench_config(folder: Path) -> Path:
    """Reference data for the run: the shipped instruments and an account whose limits pass
    every order (the rate check still runs: its Redis round trip is part of the path)."""
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


class _Requests:
    """Unique submits: a fresh client order id every time."""

    def __init__(self, run: str) -> None:
        self._run = run
        self._count = 0
        self._lock = threading.Lock()

    def next(self) -> oms_pb2.SubmitOrderRequest:
        with self._lock:
            self._count += 1
            n = self._count
        return oms_pb2.SubmitOrderRequest(
            client_order_id=f"{self._run}-{n}",
            account=BENCH_ACCOUNT,
            portfolio="BENCH",
            symbol=_SYMBOLS[n % len(_SYMBOLS)],
            side=common_pb2.SIDE_BUY if n % 2 else common_pb2.SIDE_SELL,
            order_type=common_pb2.ORDER_TYPE_MARKET,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY,
            quantity=100 * (1 + n % 50),
        )


Call = Callable[[], "grpc.Future[Any]"]


def open_loop(call: Call, rate: int, duration: float, tick: Callable[[], None]) -> Samples:
    """Issues `rate` calls per second for `duration` seconds; latency counts from when each
    call was due."""
    samples = Samples()
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    pending: list[grpc.Future[Any]] = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        future = call()

        def done(f: grpc.Future[Any], due: float = due) -> None:
            if f.exception() is None:
                samples.add(time.perf_counter() - due)
            else:
                samples.fail()
            tick()

        future.add_done_callback(done)
        pending.append(future)
    for future in pending:
        future.exception()  # wait for the stragglers
    return samples


def closed_loop(call: Call, concurrency: int, duration: float) -> tuple[float, Samples]:
    """Keeps `concurrency` calls in flight for `duration` seconds; returns calls/s."""
    samples = Samples()
    stop_at = time.perf_counter() + duration
    finished = threading.Semaphore(0)

    def launch() -> None:
        sent = time.perf_counter()

        def done(f: grpc.Future[Any]) -> None:
            if f.exception() is None:
                samples.add(time.perf_counter() - sent)
            else:
                samples.fail()
            if time.perf_counter() < stop_at:
                launch()
            else:
                finished.release()

        call().add_done_callback(done)

    began = time.perf_counter()
    for _ in range(concurrency):
        launch()
    for _ in range(concurrency):
        finished.acquire()
    elapsed = time.perf_counter() - began
    return len(samples.values) / elapsed, samples


def run_oms_bench(
    console: Console, *, rate: int, duration: float, concurrency: int, as_json: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-") as scratch:
        root = Path(scratch)
        status = console.status("starting embedded Postgres, Redis, the OMS and the echo server…")
        status.start()
        postgres = start_embedded_postgres(root / "postgres")
        redis = start_embedded_redis(root / "redis")
        env = {
            "FILLPATH_PG_DSN": postgres.dsn,
            "FILLPATH_REDIS_URL": redis.url,
            "FILLPATH_OMS_ADDRESS": "127.0.0.1:0",
            "FILLPATH_CONFIG_DIR": str(_bench_config(root / "config")),
        }
        oms = spawn_service("fillpath.oms.main", env, log_file=root / "oms.log")
        echo = spawn_service("fillpath.bench.echo", {})
        status.stop()
        try:
            figures = _measure(console, oms.address, echo.address, rate, duration, concurrency)
            with psycopg.connect(postgres.dsn) as conn:
                durability = {
                    name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                    for name in ("fsync", "synchronous_commit")
                }
                orders = conn.execute("SELECT count(*) FROM order_view").fetchone()[0]  # type: ignore[index]
            figures["postgres"] = durability
            figures["orders_recorded"] = orders
        finally:
            echo.stop()
            oms.stop()
            redis.stop()
            postgres.stop()
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        _print(console, figures)
    return figures


def _measure(
    console: Console,
    oms_address: str,
    echo_address: str,
    rate: int,
    duration: float,
    concurrency: int,
) -> dict[str, Any]:
    requests = _Requests(f"bench-{int(time.time())}")
    payload = requests.next().SerializeToString()
    with (
        grpc.insecure_channel(oms_address) as oms_channel,
        grpc.insecure_channel(echo_address) as echo_channel,
    ):
        oms = oms_pb2_grpc.OrderManagementServiceStub(oms_channel)
        echo = diagnostics_pb2_grpc.EchoServiceStub(echo_channel)

        def submit() -> grpc.Future[Any]:
            return oms.SubmitOrder.future(requests.next(), timeout=10)

        def bounce() -> grpc.Future[Any]:
            message = diagnostics_pb2.EchoMessage(payload=payload)
            return echo.Echo.future(message, timeout=10)

        with Progress(console=console, transient=True) as progress:
            results: dict[str, Any] = {}
            for name, call in (("echo", bounce), ("oms_submit", submit)):
                warm = progress.add_task(f"warming up {name}", total=None)
                for _ in range(300):
                    call().result()
                progress.remove_task(warm)
                task = progress.add_task(
                    f"{name}: {rate}/s for {duration:g}s", total=int(rate * duration)
                )
                latency = open_loop(call, rate, duration, _advance(progress, task))
                progress.remove_task(task)
                task = progress.add_task(
                    f"{name}: {concurrency} in flight for {duration:g}s", total=None
                )
                throughput, closed = closed_loop(call, concurrency, duration)
                progress.remove_task(task)
                results[name] = {
                    "latency_at_rate": {"rate_per_s": rate, **latency.summary_ms()},
                    "throughput": {
                        "concurrency": concurrency,
                        "per_s": throughput,
                        "errors": closed.errors,
                        "p99_ms": closed.summary_ms()["p99_ms"],
                    },
                }
    oms_lat = results["oms_submit"]["latency_at_rate"]
    echo_lat = results["echo"]["latency_at_rate"]
    results["ratios"] = {
        "p50": oms_lat["p50_ms"] / echo_lat["p50_ms"],
        "p99": oms_lat["p99_ms"] / echo_lat["p99_ms"],
        "throughput": results["oms_submit"]["throughput"]["per_s"]
        / results["echo"]["throughput"]["per_s"],
    }
    results["duration_s"] = duration
    return results


def _advance(progress: Progress, task: TaskID) -> Callable[[], None]:
    return lambda: progress.advance(task)


def _print(console: Console, figures: dict[str, Any]) -> None:
    table = Table(
        title=f"OMS submit vs bare gRPC echo (same run, {figures['duration_s']:g}s each)",
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
    console.print(
        f"durable commits: fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}; "
        f"{figures['orders_recorded']:,} orders recorded; throughput with "
        f"{figures['oms_submit']['throughput']['concurrency']} requests in flight"
    )
