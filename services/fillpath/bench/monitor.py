"""`fillpath bench monitor`: from a fill's commit to its figures readable through MonitorService.

The embedded platform as `fillpath up` runs it (OMS, outbox relay, in-process bus and monitor in
one process, Postgres with synchronous commits). A venue reports fills of one child order
through the OMS's ApplyExecutionReport at a sustained rate; a StreamLiveExecutions client reads
the monitor's figures. The latency of a fill runs from the moment its report leaves for the OMS
to the moment the client holds a filled quantity that includes it: the OMS's handling and
commit, the relay, the bus, the monitor's journal commit and the stream — an upper bound on
commit-to-readable. Beside it, in the same run: a bare gRPC echo round trip at the same rate,
the baseline of what one gRPC call costs here.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
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
from fillpath.embedded import start_platform
from fillpath.infra.service_process import spawn_service
from fillpath.infra.settings import MonitorSettings, OmsSettings, Settings

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


def _fill_to_metrics(platform_oms: str, monitor: str, rate: int, count: int) -> Samples:
    samples = Samples()
    with (
        grpc.insecure_channel(platform_oms) as oms_channel,
        grpc.insecure_channel(monitor) as monitor_channel,
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
    # A fill's figures are readable once an update shows its cumulative quantity or more (the
    # monitor sends one update per order per commit, so a burst of fills may share one).
    updates_seen = iter(seen)
    filled, at = 0, 0.0
    for quantity in range(1, total + 1):
        while filled < quantity:
            try:
                filled, at = next(updates_seen)
            except StopIteration:
                filled, at = total + 1, float("nan")
        if quantity > count:
            if at == at:
                samples.add(at - sent[quantity - 1])
            else:
                samples.fail()
    return samples


def run_monitor_bench(console: Console, *, rate: int, fills: int, as_json: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-") as scratch:
        root = Path(scratch)
        settings = Settings(
            data_dir=root,
            oms=OmsSettings(address="127.0.0.1:0"),
            monitor=MonitorSettings(address="127.0.0.1:0", http_address="127.0.0.1:0"),
        )
        with console.status("starting embedded Postgres, Redis, the OMS, the monitor, echo…"):
            platform = start_platform(settings)
            echo = spawn_service("fillpath.bench.echo", {}, log_file=root / "echo.log")
        try:
            with console.status(f"bare gRPC echo at {rate}/s…"):
                echo_samples = _echo_latency(echo.address, rate, fills)
            with console.status(f"{fills:,} fills at {rate}/s (after as many to warm up)…"):
                monitor_samples = _fill_to_metrics(
                    platform.oms_address, platform.monitor_address, rate, fills
                )
        finally:
            echo.stop()
            platform.stop()
    figures: dict[str, Any] = {
        "echo_round_trip": echo_samples.summary_ms(),
        "fill_report_to_metrics": monitor_samples.summary_ms(),
        "setup": {
            "rate_per_s": rate,
            "fills": fills,
            "read_through": "StreamLiveExecutions",
            "from": "fill report sent to the OMS",
        },
    }
    echo_ms, monitor_ms = figures["echo_round_trip"], figures["fill_report_to_metrics"]
    figures["ratios"] = {
        "p50": monitor_ms["p50_ms"] / echo_ms["p50_ms"],
        "p99": monitor_ms["p99_ms"] / echo_ms["p99_ms"],
    }
    if as_json:
        print(json.dumps(figures, indent=2))
        return figures
    table = Table(
        title=f"Fill report → live metrics through MonitorService, {fills:,} fills at {rate}/s, "
        "beside a bare gRPC echo in the same run",
        title_justify="left",
        header_style="bold",
    )
    for column in ("", "p50 ms", "p99 ms", "max ms", "samples", "missing"):
        table.add_column(column, justify="left" if not column else "right")
    for label, row in (("bare gRPC echo", echo_ms), ("fill report → metrics", monitor_ms)):
        table.add_row(
            label, f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", f"{row['max_ms']:.2f}",
            f"{row['count']:,}", str(row["errors"]),
        )  # fmt: skip
    ratios = figures["ratios"]
    table.add_row("ratio", f"{ratios['p50']:.1f}×", f"{ratios['p99']:.1f}×", "", "", "")
    console.print(table)
    return figures
