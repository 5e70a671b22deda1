"""`make demo`: a trading session against the market lab on the embedded default.

It starts everything (embedded Postgres and Redis, the OMS, the strategy service, the router,
the algorithm engine, the monitor, the market lab's simulated venues), then plays a trading
system: at 10:00 it submits parent orders that say only how urgent they are and that they are to
be done by 10:20 — no algorithm, no profile (one retried, two refused by pre-trade checks). The
strategy service chooses each one's AlgoProfile from the desk's ExecutionStrategy rules, and the
engine starts it from that choice — no one calls StartExecution — and works it slice by slice on
the lab's clock: every slice routed by the SOR and placed through the OMS, fills flowing back
from the lab's venues. A progress bar per order follows the executions; at 10:10 the trader
raises one to high urgency. It ends with which profile the strategy chose for each order and
why, the orders, the executions, one order's fills by venue and the start of its audit trail,
each order's TCA (with an HTML report), what the live monitor saw, `verify` over everything
recorded, and a plot of the simulated day (price, spread, volume profile) as a PNG.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from fillpath.api.v1 import (
    algo_pb2,
    algo_pb2_grpc,
    common_pb2,
    events_pb2,
    monitor_pb2,
    monitor_pb2_grpc,
    oms_pb2,
    oms_pb2_grpc,
    strategy_pb2,
    strategy_pb2_grpc,
)
from fillpath.core.price import Price
from fillpath.core.session import TIMEZONE
from fillpath.embedded import EmbeddedPlatform, start_platform
from fillpath.infra.cache import cache_dir
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import (
    AlgoSettings,
    MonitorSettings,
    OmsSettings,
    Settings,
    SorSettings,
    StrategySettings,
)
from fillpath.infra.telemetry import ACTOR_KEY
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import MarketData, MarketLab, lab_for
from fillpath.market.marketdata import MarketDataPublisher, QuoteBoard
from fillpath.market.plot import DayRecorder, plot_day
from fillpath.monitor.report import write_report
from fillpath.monitor.tca import compute_from_document
from fillpath.oms.cli import history_table, orders_table
from fillpath.oms.verify import verify

C = common_pb2
SYMBOLS = ["ACME", "GLBX", "INIT", "UMBR"]
START = 1800.0  # 10:00, half an hour after the open
WINDOW = 1200.0  # the algorithms work the orders until 10:20
TRAIL_SHOWN = 14


def _px(text: str) -> int:
    return Price.parse(text).nanos


def _submit(
    stub: oms_pb2_grpc.OrderManagementServiceStub, client_id: str, **fields: object
) -> oms_pb2.SubmitOrderResponse:
    request = oms_pb2.SubmitOrderRequest(client_order_id=client_id, **fields)  # type: ignore[arg-type]
    response: oms_pb2.SubmitOrderResponse = stub.SubmitOrder(
        request, metadata=((ACTOR_KEY, "demo-trader"),)
    )
    return response


def _table(title: str, columns: tuple[str, ...], *, left: tuple[str, ...]) -> Table:
    """A table of the demo's: `left` columns are text, the others figures (right-aligned)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    return table


def _window(
    end: datetime, urgency: common_pb2.Urgency.ValueType = C.URGENCY_UNSPECIFIED, profile: str = ""
) -> common_pb2.ExecutionInstructions:
    """Instructions to be done by `end`, with the order's urgency (the strategy service
    chooses the rest unless a `profile` is named)."""
    instructions = common_pb2.ExecutionInstructions(urgency=urgency, algo_profile=profile)
    instructions.end_time.FromDatetime(end)
    return instructions


@dataclass(frozen=True, slots=True)
class Worked:
    """A parent order the algorithm engine worked."""

    symbol: str
    order_id: str
    label: str


def _play(console: Console, platform: EmbeddedPlatform, gateway: SimulatedGateway) -> list[Worked]:
    """Plays the session; the parent orders the algorithms worked."""
    lab = gateway.lab
    board = QuoteBoard(venues=len(lab.venues))
    with (
        grpc.insecure_channel(platform.oms_address) as channel,
        grpc.insecure_channel(platform.algo_address) as algo_channel,
    ):
        stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
        algos = algo_pb2_grpc.AlgoServiceStub(algo_channel)
        for data in gateway.advance_to(START).market_data:
            board.update(data.symbol, data.records)
        acme_nbbo = board.nbbo("ACME")
        end = lab.time_of(START + WINDOW)
        console.rule(
            f"10:00 in the lab: ACME {acme_nbbo.bid / 1e9:.2f} × {acme_nbbo.ask / 1e9:.2f}; "
            "a trading system submits parent orders to be done by 10:20, naming no algorithm"
        )
        desk = {"account": "DESK-EQ", "portfolio": "ALPHA", "time_in_force": C.TIME_IN_FORCE_DAY}
        market = {**desk, "order_type": C.ORDER_TYPE_MARKET}
        order: dict[str, object] = {
            **desk, "symbol": "ACME", "side": C.SIDE_BUY, "order_type": C.ORDER_TYPE_LIMIT,
            "quantity": 12_000, "limit_price_nanos": acme_nbbo.ask + _px("1.00"),
            "decision_price_nanos": acme_nbbo.mid, "instructions": _window(end),
        }  # fmt: skip
        acme = _submit(stub, "demo-acme-1", **order).order
        retry = _submit(stub, "demo-acme-1", **order)
        console.print(
            f"retried submit of demo-acme-1 → duplicate={retry.duplicate}, "
            f"same order {retry.order.terms.order_id == acme.terms.order_id}"
        )
        glbx = _submit(
            stub, "demo-glbx-1", **market, symbol="GLBX", side=C.SIDE_SELL, quantity=40_000,
            instructions=_window(end, C.URGENCY_LOW),
        ).order  # fmt: skip
        init = _submit(
            stub, "demo-init-1", **market, symbol="INIT", side=C.SIDE_BUY, quantity=6_000,
            instructions=_window(end, C.URGENCY_HIGH),
        ).order  # fmt: skip
        umbr = _submit(
            stub, "demo-umbr-1", **market, symbol="UMBR", side=C.SIDE_BUY, quantity=800,
            instructions=_window(end),
        ).order  # fmt: skip
        _submit(
            stub, "demo-umbr-2", account="DESK-QUANT", portfolio="STATARB", symbol="UMBR",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=1_000, limit_price_nanos=_px("312.00"), instructions=_window(end),
        )  # fmt: skip
        _submit(
            stub, "demo-init-2", **desk, symbol="INIT", side=C.SIDE_BUY,
            order_type=C.ORDER_TYPE_LIMIT, quantity=20_000, limit_price_nanos=_px("21.50"),
        )  # fmt: skip
        worked = [
            Worked(o.terms.symbol, o.terms.order_id, f"{o.terms.symbol} {label}")
            for o, label in (
                (acme, "buy 12,000"), (glbx, "sell 40,000 · low"),
                (init, "buy 6,000 · high"), (umbr, "buy 800"),
            )
        ]  # fmt: skip
        console.rule(
            "The strategy service chooses each one's profile; the algorithm engine works them: "
            "every slice routed by the SOR and placed through the OMS on the lab's venues"
        )
        _work(console, platform, gateway, algos, worked)
        console.print(_strategy_table(platform, stub, worked))

        listing = stub.ListOrders(oms_pb2.ListOrdersRequest(sort=oms_pb2.ORDER_SORT_CREATED_ASC))
        console.print(orders_table(list(listing.orders), "Parent orders"))
        console.print(_executions_table(algos, worked))
        acme_id = acme.terms.order_id
        acme_now = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=acme_id)).order
        console.print(_fills_table(stub, acme_now))
        trail = list(stub.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=acme_id)).entries)
        console.print(
            history_table(trail[:TRAIL_SHOWN], f"Audit trail of {acme_id} (ACME), the first "
                          f"{TRAIL_SHOWN} of {len(trail)} entries")
        )  # fmt: skip
        return worked


def _work(
    console: Console,
    platform: EmbeddedPlatform,
    gateway: SimulatedGateway,
    algos: algo_pb2_grpc.AlgoServiceStub,
    worked: list[Worked],
) -> None:
    """Runs the lab a second at a time, the engine's timer after each, with a progress bar per
    order, until every execution has ended; at 10:10 the trader hurries the GLBX sale."""
    assert platform.algo is not None  # the demo runs the engine in process, on the lab's clock
    engine = platform.algo.algos
    lab = gateway.lab
    label = {w.order_id: w.label for w in worked}
    deadline = time.monotonic() + 10.0
    while len(executions := _executions(algos)) < len(worked):
        if time.monotonic() > deadline:  # they start from the OMS's events, in a moment
            raise RuntimeError(f"{len(executions)} of {len(worked)} executions started")
        time.sleep(0.05)
    with Progress(
        TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[state]:<10} scheduled {task.fields[scheduled]:>7,}"),
        TextColumn("[dim]{task.fields[clock]}"), console=console,
    ) as progress:  # fmt: skip
        bars = {
            e.order_id: progress.add_task(
                label[e.order_id], total=e.target_quantity, state="", scheduled=0, clock=""
            )
            for e in executions
        }
        hurried = False
        while True:
            gateway.advance_to(lab.now + 1.0)
            engine.tick()
            if not hurried and lab.now >= START + 600:
                hurried = True
                glbx = next(e for e in executions if label[e.order_id].startswith("GLBX"))
                algos.AdjustExecution(
                    algo_pb2.AdjustExecutionRequest(
                        execution_id=glbx.execution_id, urgency=C.URGENCY_HIGH
                    ),
                    metadata=((ACTOR_KEY, "demo-trader"),),
                )
                progress.console.print("10:10: the trader raises the GLBX sale to HIGH urgency")
            if int(lab.now) % 5 and lab.now < START + WINDOW:
                continue
            executions = _executions(algos)
            clock = lab.time_of(lab.now).astimezone(ZoneInfo(TIMEZONE)).strftime("%H:%M:%S")
            for e in executions:
                progress.update(
                    bars[e.order_id], completed=e.executed_quantity, scheduled=e.scheduled_quantity,
                    state=algo_pb2.ExecutionState.Name(e.state).removeprefix("EXECUTION_STATE_"),
                    clock=clock,
                )  # fmt: skip
            if all(e.state in ENDED for e in executions) or lab.now > START + WINDOW + 600:
                break


ENDED = (
    algo_pb2.EXECUTION_STATE_COMPLETED,
    algo_pb2.EXECUTION_STATE_CANCELED,
    algo_pb2.EXECUTION_STATE_FAILED,
)


def _strategy_table(
    platform: EmbeddedPlatform, oms: oms_pb2_grpc.OrderManagementServiceStub, worked: list[Worked]
) -> Table:
    """What StrategyService chose for each order, and why (asking again for an order answers
    with the choice it recorded)."""
    table = _table(
        "Strategy choices (StrategyService)",
        ("order", "rule", "profile", "urgency", "why"),
        left=("order", "rule", "profile", "urgency", "why"),
    )
    with grpc.insecure_channel(platform.strategy_address) as channel:
        strategy = strategy_pb2_grpc.StrategyServiceStub(channel)
        for w in worked:
            terms = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=w.order_id)).order.terms
            order = strategy_pb2.SelectStrategyRequest(
                order_id=w.order_id, account=terms.account, symbol=terms.symbol,
                side=terms.side, quantity=terms.quantity, instructions=terms.instructions,
            )  # fmt: skip
            chosen = strategy.SelectStrategy(order, timeout=5)
            table.add_row(
                w.label, chosen.explanation.rule or "(default)", chosen.algo_profile,
                C.Urgency.Name(chosen.urgency).removeprefix("URGENCY_")
                if chosen.urgency
                else "profile's",
                chosen.explanation.text,
            )  # fmt: skip
    return table


def _executions(algos: algo_pb2_grpc.AlgoServiceStub) -> list[algo_pb2.Execution]:
    return list(algos.ListExecutions(algo_pb2.ListExecutionsRequest()).executions)


def _executions_table(algos: algo_pb2_grpc.AlgoServiceStub, worked: list[Worked]) -> Table:
    """What AlgoService says of each execution."""
    table = _table(
        "Algorithm executions (AlgoService)",
        ("execution", "order", "algorithm", "profile", "state", "executed"),
        left=("execution", "order", "algorithm", "profile", "state"),
    )
    label = {w.order_id: w.label for w in worked}
    for e in _executions(algos):
        table.add_row(
            e.execution_id, label.get(e.order_id, e.order_id),
            C.AlgorithmKind.Name(e.algorithm).removeprefix("ALGORITHM_KIND_"), e.algo_profile,
            algo_pb2.ExecutionState.Name(e.state).removeprefix("EXECUTION_STATE_"),
            f"{e.executed_quantity:,} / {e.target_quantity:,}",
        )  # fmt: skip
    return table


def _child_fills(
    stub: oms_pb2_grpc.OrderManagementServiceStub, parent: oms_pb2.Order
) -> Iterator[tuple[oms_pb2.Order, events_pb2.ChildOrderFilled]]:
    """Every fill of the parent's children, from their audit trails, child by child."""
    for child in parent.children:
        trail = stub.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=child.terms.order_id))
        for entry in trail.entries:
            if entry.event.event_type == "ChildOrderFilled":
                yield child, entry.event.child_order_filled


def _liquidity(flag: int) -> str:
    """maker, taker or midpoint."""
    return C.LiquidityFlag.Name(flag).removeprefix("LIQUIDITY_FLAG_").lower()  # type: ignore[arg-type]


def _fills_table(stub: oms_pb2_grpc.OrderManagementServiceStub, parent: oms_pb2.Order) -> Table:
    """The parent's fills as the venues reported them, by venue and liquidity."""
    table = _table(
        f"{parent.terms.symbol} fills by venue, as the venues reported them "
        f"({len(parent.children)} child orders)",
        ("venue", "liquidity", "fills", "qty", "avg px", "fees"),
        left=("venue", "liquidity"),
    )
    by: dict[tuple[str, str], list[int]] = {}  # (venue, liquidity) → [fills, qty, notional, fee]
    for _, fill in _child_fills(stub, parent):
        row = by.setdefault((fill.venue, _liquidity(fill.liquidity)), [0, 0, 0, 0])
        row[0] += 1
        row[1] += fill.quantity
        row[2] += fill.quantity * fill.price_nanos
        row[3] += fill.fee_nanos
    for (venue, liquidity), (fills, qty, notional, fee) in sorted(by.items()):
        table.add_row(
            venue, liquidity, f"{fills:,}", f"{qty:,}", f"{notional / qty / 1e9:.4f}",
            f"{fee / 1e9:+.2f}",
        )  # fmt: skip
    totals = [sum(row[i] for row in by.values()) for i in range(4)]
    table.add_row("total", "", f"{totals[0]:,}", f"{totals[1]:,}", "", f"{totals[3] / 1e9:+.2f}")
    return table


def _tca_document(
    stub: oms_pb2_grpc.OrderManagementServiceStub,
    order_id: str,
    recorder: DayRecorder,
    lab: MarketLab,
) -> dict[str, Any]:
    """The order as `fillpath tca compute` reads it: the OMS's order and fills, and the lab's
    tape and quotes (NBBO sampled each second) around it."""
    order = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=order_id)).order
    samples = np.asarray(recorder.samples, dtype=np.float64)

    def nbbo(t: float) -> tuple[float, float]:
        i = max(0, int(np.searchsorted(samples[:, 0], t, side="right")) - 1)
        return samples[i, 1] / 1e9, samples[i, 2] / 1e9

    fills: list[dict[str, Any]] = []
    for _, fill in _child_fills(stub, order):
        t = (fill.executed_at.ToDatetime(tzinfo=UTC) - lab.config.open_utc).total_seconds()
        bid, ask = nbbo(t)
        fills.append(
            {
                "time": t, "quantity": fill.quantity, "price": fill.price_nanos / 1e9,
                "bid": bid, "ask": ask, "venue": fill.venue, "fee": fill.fee_nanos / 1e9,
                "liquidity": _liquidity(fill.liquidity),
            }
        )  # fmt: skip
    end = START + WINDOW
    trades = np.concatenate(recorder.trades)
    window = trades[(trades["t"] >= START - 60) & (trades["t"] < end + 360)]
    ours = {(round(f["time"], 6), f["price"], f["quantity"]) for f in fills}
    arrival_bid, arrival_ask = nbbo(START)
    near = samples[(samples[:, 0] >= START - 60) & (samples[:, 0] <= end + 360)]
    terms = order.terms
    return {
        "order": {
            "id": f"{terms.symbol} {terms.client_order_id}",
            "side": "buy" if terms.side == C.SIDE_BUY else "sell",
            "quantity": terms.quantity,
            "decision_price": terms.decision_price_nanos / 1e9
            if terms.HasField("decision_price_nanos")
            else (arrival_bid + arrival_ask) / 2,
            "arrival_time": START, "end_time": end,
            "arrival_bid": arrival_bid, "arrival_ask": arrival_ask,
            "end_mid": sum(nbbo(end)) / 2, "post_trade_mid": sum(nbbo(end + 300)) / 2,
        },
        "fills": fills,
        "tape": [
            {
                "time": float(r["t"]), "quantity": int(r["qty"]), "price": r["price"] / 1e9,
                "own": (round(float(r["t"]), 6), r["price"] / 1e9, int(r["qty"])) in ours,
            }
            for r in window
        ],
        "quotes": [{"time": t, "bid": b / 1e9, "ask": a / 1e9} for t, b, a in near],
    }  # fmt: skip


def _monitor_table(platform: EmbeddedPlatform, worked: list[Worked]) -> Table:
    """What the monitor saw live, read back through MonitorService."""
    table = _table(
        f"Live monitor (MonitorService {platform.monitor_address}, dashboard "
        f"{platform.dashboard_url})",
        ("order", "filled", "vs arrival bps", "participation", "child orders", "alerts"),
        left=("order", "child orders"),
    )
    with grpc.insecure_channel(platform.monitor_address) as channel:
        api = monitor_pb2_grpc.MonitorServiceStub(channel)
        alerts = api.ListAlerts(monitor_pb2.ListAlertsRequest()).alerts
        for w in worked:
            order_id = w.order_id
            live = api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=order_id))
            table.add_row(
                w.label,
                f"{live.filled_quantity:,} / {live.quantity:,}",
                f"{live.slippage_vs_arrival_bps:+.2f}",
                f"{live.participation:.1%}",
                ", ".join(f"{v} {n}" for v, n in sorted(live.child_orders_by_venue.items())),
                str(sum(a.order_id == order_id for a in alerts)),
            )
    return table


def _tca_table(documents: list[dict[str, Any]]) -> Table:
    table = _table(
        "Transaction cost analysis (bps, positive = cost; arrival = the mid at 10:00)",
        ("order", "filled", "avg px", "vs arrival", "with fees", "vs VWAP", "shortfall", "fees",
         "participation", "perm. impact"),
        left=("order",),
    )  # fmt: skip

    def bps(value: float | None) -> str:
        return "–" if value is None else f"{value:+.2f}"

    for document in documents:
        r = compute_from_document(document)
        table.add_row(
            document["order"]["id"],
            f"{r['filled_quantity']:,.0f} / {r['quantity']:,.0f}",
            "–" if r["average_price"] is None else f"{r['average_price']:.4f}",
            bps(r["slippage_bps"]["arrival"]),
            bps(r["slippage_bps"]["arrival_with_fees"]),
            bps(r["slippage_bps"]["vwap"]),
            bps(r["implementation_shortfall"]["bps"]["total"]),
            f"{r['fees']:+.2f}",
            "–" if r["participation"] is None else f"{r['participation']:.1%}",
            bps(r["impact_bps"]["permanent"]),
        )
    return table


def run_demo(console: Console, data_dir: Path | None = None) -> None:
    reference = load_reference_data()
    config = LabConfig()
    lab = lab_for(config, reference.instruments, lab_parameters(), SYMBOLS)
    recorders = {
        symbol: DayRecorder(symbol=symbol, venues=len(lab.venues), every=1.0) for symbol in SYMBOLS
    }

    publishers: list[MarketDataPublisher] = []  # to the monitor, once the platform runs

    def record(data: MarketData) -> None:
        if data.symbol in recorders:
            recorders[data.symbol](data)
        for publisher in publishers:
            publisher(data)

    gateway = SimulatedGateway(lab, on_market_data=record)
    out = data_dir or cache_dir() / "demo"
    with tempfile.TemporaryDirectory(prefix="fillpath-demo-") as scratch:
        root = data_dir or Path(scratch)
        settings = Settings(
            data_dir=root,
            oms=OmsSettings(address="127.0.0.1:0"),
            monitor=MonitorSettings(address="127.0.0.1:0", http_address="127.0.0.1:0"),
            sor=SorSettings(address="127.0.0.1:0"),
            # The engine decides on the lab's clock, its timer stepped with the lab (`_work`).
            algo=AlgoSettings(address="127.0.0.1:0", tick_interval=0),
            strategy=StrategySettings(address="127.0.0.1:0"),
        )
        with console.status("starting embedded Postgres, Redis, the services and the market lab…"):
            platform = start_platform(settings, gateway=gateway, now=lambda: lab.time_of(lab.now))
        if platform.bus is not None:
            publishers.append(MarketDataPublisher(lab, platform.bus))
        try:
            table = _table(
                "fillpath (embedded)", ("part", "where", "what"), left=("part", "where", "what")
            )
            for row in platform.endpoints():
                table.add_row(*row)
            table.add_row(
                "Market lab",
                f"{len(config.lit)} lit venues, {len(config.dark)} dark pools",
                f"simulated session of {config.session_date}, seed {config.seed}",
            )
            console.print(table)
            worked = _play(console, platform, gateway)
            with console.status("running the lab to the close…"):
                gateway.run_to_close()
            with grpc.insecure_channel(platform.oms_address) as channel:
                stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
                documents = [
                    _tca_document(stub, w.order_id, recorders[w.symbol], lab) for w in worked
                ]
            console.print(_tca_table(documents))
            console.print(_monitor_table(platform, worked))
            html_report, fills_csv = write_report(
                documents, out / "tca.html", f"TCA of the demo session, {config.session_date}"
            )
            console.print(f"TCA report: {html_report} (fills: {fills_csv})")
            assert platform.oms is not None  # the demo runs the OMS in process
            report = verify(platform.oms.pool, platform.oms.store, platform.oms.store.codec)
            verdict = (
                "[green]OK[/]" if report.ok else f"[red]{len(report.inconsistencies)} problems[/]"
            )
            console.print(
                f"verify: {verdict}: {report.events} events in {report.streams} streams, hash "
                "chains, versions and fill invariants checked"
            )
        finally:
            platform.stop()
    plot = plot_day(
        recorders["ACME"],
        tick_nanos=lab.model("ACME").tick_nanos,
        session_seconds=config.session_seconds,
        profile=config.volume_profile,
        path=out / "lab-day-ACME.png",
        title=f"ACME in the market lab, {config.session_date} (seed {config.seed})",
    )
    console.print(f"the simulated day (price, spread, volume profile): {plot}")
