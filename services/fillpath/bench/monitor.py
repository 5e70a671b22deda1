"""`fillpath bench monitor`: from a fill's commit to its figures readable through MonitorService.

The embedded platform as `fillpath up` runs it (OMS, outbox relay, in-process bus and monitor in
one process, Postgres with synchronous commits). A venue reports fills of one child order
through the OMS's ApplyExecutionReport at a sustained rate; a StreamLiveExecutions client reads
the monitor's figures. A fill is readable when the client holds a filled quantity that includes
it. Two latencies per fill:

- from its commit: from the moment the OMS's append of the fill has committed (the OMS's
  `on_recorded`, right after) — the relay, the bus, the monitor and the stream;
- from its report: from the moment the report leaves for the OMS — adds the OMS's handling
  and its commit.

Beside them, in the same run: a bare gRPC echo round trip at the same rate, the baseline of
what one gRPC call costs here.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import (
    common_pb2,
    diagnostics_pb2,
    diagnostics_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    oms_pb2,
    oms_pb2_grpc,
)
from fillpath.bench.stats import Samples
from fillpath.core.events import ChildOrderFilled
from fillpath.embedded import EmbeddedPlatform, start_platform
from fillpath.infra.service_process import spawn_service
from fillpath.infra.settings import (
    AlgoSettings,
    MonitorSettings,
    OmsSettings,
    Settings,
    SorSettings,
    StrategySettings,
)
from fillpath.oms.service import Outcome

_PRICE = 102_350_000_000


def _paced(rate: int, count: int, call: Any) -> None:
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        call(i)


def _echo_latency(address: str, rate: int, count: int) -> Samples:
    samples = Samples()
    with grpc.insecure_channel(address) as channel:
        stub = diagnostics_pb2_grpc.EchoServiceStub(channel)
        message = diagnostics_pb2.EchoMessage(payload=b"fillpath")

        def call(_: int) -> None:
            t0 = time.perf_counter()
            stub.Echo(message)
            samples.add(time.perf_counter() - t0)

        _paced(rate, min(count, rate), call)  # warm-up
        samples.values.clear()
        _paced(rate, count, call)
    return samples


def _trade(
    oms_address: str, monitor_address: str, rate: int, count: int
) -> tuple[list[float], list[tuple[int, float]]]:
    """The venue and the desk, in a process of their own: sends 2 × `count` fills (the first
    half warms up) and reads the stream. Returns when each report left and each
    (filled quantity, when the client had it), on the system-wide monotonic clock."""
    with (
        grpc.insecure_channel(oms_address) as oms_channel,
        grpc.insecure_channel(monitor_address) as monitor_channel,
    ):
        oms = oms_pb2_grpc.OrderManagementServiceStub(oms_channel)
        api = monitor_pb2_grpc.MonitorServiceStub(monitor_channel)
        total = 2 * count  # warm-up fills, then measured ones
        parent = oms.SubmitOrder(
            oms_pb2.SubmitOrderRequest(
                client_order_id=f"bench-{time.time_ns()}", account="DESK-EQ", portfolio="ALPHA",
                symbol="ACME", side=common_pb2.SIDE_BUY, order_type=common_pb2.ORDER_TYPE_LIMIT,
                time_in_force=common_pb2.TIME_IN_FORCE_DAY, quantity=total,
                limit_price_nanos=_PRICE,
            )
        ).order.terms.order_id  # fmt: skip
        child = (
            oms.PlaceChildOrders(
                oms_pb2.PlaceChildOrdersRequest(
                    parent_order_id=parent,
                    children=[
                        oms_pb2.ChildOrderRequest(
                            client_order_id="c", venue="lumen", quantity=total,
                            order_type=common_pb2.ORDER_TYPE_LIMIT,
                            time_in_force=common_pb2.TIME_IN_FORCE_DAY, limit_price_nanos=_PRICE,
                        )
                    ],
                )
            )
            .children[0]
            .terms.order_id
        )  # fmt: skip
        seen: list[tuple[int, float]] = []  # (filled quantity, when the client had it)
        sent: list[float] = []  # when each fill report left for the OMS
        updates = api.StreamLiveExecutions(monitor_pb2.StreamLiveExecutionsRequest())

        def read() -> None:
            try:
                seen.extend(
                    (live.filled_quantity, time.perf_counter())
                    for live in updates
                    if live.order_id == parent
                )
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.CANCELLED:  # the end of the run: ours
                    raise

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def fill(i: int) -> None:
            sent.append(time.perf_counter())
            oms.ApplyExecutionReport(
                oms_pb2.ApplyExecutionReportRequest(
                    report=oms_pb2.ExecutionReport(
                        order_id=child, exec_id=f"x{i}", exec_type=common_pb2.EXEC_TYPE_TRADE,
                        venue="lumen", last_quantity=1, last_price_nanos=_PRICE,
                        liquidity=common_pb2.LIQUIDITY_FLAG_MAKER,
                    )
                )
            )  # fmt: skip

        oms.ApplyExecutionReport(
            oms_pb2.ApplyExecutionReportRequest(
                report=oms_pb2.ExecutionReport(
                    order_id=child, exec_id="ack", exec_type=common_pb2.EXEC_TYPE_NEW, venue="lumen"
                )
            )
        )
        _paced(rate, total, fill)
        deadline = time.monotonic() + 30
        while not (seen and seen[-1][0] >= total) and time.monotonic() < deadline:
            time.sleep(0.01)
        updates.cancel()  # type: ignore[no-untyped-call]
    return sent, seen


def _fill_to_metrics(platform: EmbeddedPlatform, rate: int, count: int) -> tuple[Samples, Samples]:
    """(from each fill's commit, from its report) to its figures in the client's hands."""
    assert platform.oms is not None, "the embedded platform runs the OMS in process"
    committed: dict[str, float] = {}  # exec id → when the OMS's append of its fill committed

    def recorded(outcome: Outcome) -> None:
        now = time.perf_counter()
        for event in outcome.events:
            if isinstance(event, ChildOrderFilled):
                committed[event.exec_id] = now

    platform.oms.oms.on_recorded = recorded
    # The clients run in another process, as a venue and a desk would: their threads do not
    # compete with the platform's for this interpreter. perf_counter is CLOCK_MONOTONIC,
    # one clock for both processes.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        sent, seen = pool.submit(
            _trade, platform.oms_address, platform.monitor_address, rate, count
        ).result()
    total = 2 * count
    # A fill's figures are readable once an update shows its cumulative quantity or more (the
    # monitor sends one update per order per commit, so a burst of fills may share one).
    from_commit, from_report = Samples(), Samples()
    updates_seen = iter(seen)
    filled, at = 0, 0.0
    for quantity in range(1, total + 1):
        while filled < quantity:
            try:
                filled, at = next(updates_seen)
            except StopIteration:
                filled, at = total + 1, float("nan")
        if quantity <= count:
            continue
        if at != at:
            from_commit.fail()
            from_report.fail()
            continue
        from_commit.add(at - committed[f"x{quantity - 1}"])
        from_report.add(at - sent[quantity - 1])
    return from_commit, from_report


def run_monitor_bench(console: Console, *, rate: int, fills: int, as_json: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-") as scratch:
        root = Path(scratch)
        settings = Settings(
            data_dir=root,
            oms=OmsSettings(address="127.0.0.1:0"),
            monitor=MonitorSettings(address="127.0.0.1:0", http_address="127.0.0.1:0"),
            sor=SorSettings(address="127.0.0.1:0"),
            algo=AlgoSettings(address="127.0.0.1:0"),
            strategy=StrategySettings(address="127.0.0.1:0"),
        )
        with console.status("starting embedded Postgres, Redis, the OMS, the monitor, echo…"):
            platform = start_platform(settings)
            echo = spawn_service("fillpath.bench.echo", {}, log_file=root / "echo.log")
        try:
            with console.status(f"bare gRPC echo at {rate}/s…"):
                echo_samples = _echo_latency(echo.address, rate, fills)
            with console.status(f"{fills:,} fills at {rate}/s (after as many to warm up)…"):
                from_commit, from_report = _fill_to_metrics(platform, rate, fills)
        finally:
            echo.stop()
            platform.stop()
    echo_ms = echo_samples.summary_ms()
    rows = {
        "fill_commit_to_metrics": from_commit.summary_ms(),
        "fill_report_to_metrics": from_report.summary_ms(),
    }
    figures: dict[str, Any] = {
        "echo_round_trip": echo_ms,
        **rows,
        "ratios_to_echo": {
            name: {q: row[f"{q}_ms"] / echo_ms[f"{q}_ms"] for q in ("p50", "p99")}
            for name, row in rows.items()
        },
        "setup": {"rate_per_s": rate, "fills": fills, "read_through": "StreamLiveExecutions"},
    }
    if as_json:
        print(json.dumps(figures, indent=2))
        return figures
    table = Table(
        title=f"A fill → its live metrics through MonitorService, {fills:,} fills at {rate}/s, "
        "beside a bare gRPC echo in the same run",
        title_justify="left",
        header_style="bold",
    )
    for column in (
        "",
        "p50 ms",
        "p99 ms",
        "max ms",
        "samples",
        "missing",
        "p50 / echo",
        "p99 / echo",
    ):
        table.add_column(column, justify="left" if not column else "right")
    labelled = (
        ("bare gRPC echo", "echo_round_trip", echo_ms),
        ("fill committed → metrics", "fill_commit_to_metrics", rows["fill_commit_to_metrics"]),
        ("fill report sent → metrics", "fill_report_to_metrics", rows["fill_report_to_metrics"]),
    )
    for label, name, row in labelled:
        ratios = figures["ratios_to_echo"].get(name)
        table.add_row(
            label, f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", f"{row['max_ms']:.2f}",
            f"{row['count']:,}", str(row["errors"]),
            f"{ratios['p50']:.1f}×" if ratios else "", f"{ratios['p99']:.1f}×" if ratios else "",
        )  # fmt: skip
    console.print(table)
    return figures
