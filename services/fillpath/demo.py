"""`make demo`: a trading session against the market lab on the embedded platform.

It starts everything (embedded Postgres and Redis, the OMS, the market lab's simulated venues),
then plays a trading system and an algorithm: submits parent orders (one retried, two refused by
pre-trade checks), places child orders straight on the lab's venues — a market IOC, a passive
limit, a post-only order, a dark midpoint order — and lets the session run while acks, fills and
cancels flow back into the OMS. It ends with the orders, one order's audit trail, `verify` over
everything recorded, a TCA table of the orders with an HTML report, and a plot of the simulated
day (price, spread, volume profile) as a PNG.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import (
    common_pb2,
    events_pb2,
    monitor_pb2,
    monitor_pb2_grpc,
    oms_pb2,
    oms_pb2_grpc,
)
from fillpath.core.price import Price
from fillpath.embedded import EmbeddedPlatform, start_platform
from fillpath.infra.cache import cache_dir
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import (
    AlgoSettings,
    MonitorSettings,
    OmsSettings,
    Settings,
    SorSettings,
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


def _children(
    stub: oms_pb2_grpc.OrderManagementServiceStub,
    parent_id: str,
    *children: oms_pb2.ChildOrderRequest,
) -> list[str]:
    response = stub.PlaceChildOrders(
        oms_pb2.PlaceChildOrdersRequest(parent_order_id=parent_id, children=children),
        metadata=((ACTOR_KEY, "demo-algo"),),
    )
    return [c.terms.order_id for c in response.children]


def _child(
    client_id: str, venue: str, quantity: int, **fields: object
) -> oms_pb2.ChildOrderRequest:
    return oms_pb2.ChildOrderRequest(
        client_order_id=client_id,
        venue=venue,
        quantity=quantity,
        **fields,  # type: ignore[arg-type]
    )


def _play(
    console: Console, platform: EmbeddedPlatform, gateway: SimulatedGateway
) -> dict[str, str]:
    """Plays the session; the parent orders that traded, by symbol."""
    lab = gateway.lab
    board = QuoteBoard(venues=len(lab.venues))
    with grpc.insecure_channel(platform.oms_address) as channel:
        stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
        for data in gateway.advance_to(START).market_data:
            board.update(data.symbol, data.records)
        acme_nbbo = board.nbbo("ACME")
        console.rule(
            f"10:00 in the lab: ACME {acme_nbbo.bid / 1e9:.2f} × {acme_nbbo.ask / 1e9:.2f}; "
            "a trading system submits parent orders"
        )
        order: dict[str, object] = {
            "account": "DESK-EQ", "portfolio": "ALPHA", "symbol": "ACME", "side": C.SIDE_BUY,
            "order_type": C.ORDER_TYPE_LIMIT, "time_in_force": C.TIME_IN_FORCE_DAY,
            "quantity": 12_000, "limit_price_nanos": acme_nbbo.ask + _px("0.10"),
            "decision_price_nanos": acme_nbbo.mid,
        }  # fmt: skip
        acme = _submit(stub, "demo-acme-1", **order).order
        retry = _submit(stub, "demo-acme-1", **order)
        console.print(
            f"retried submit of demo-acme-1 → duplicate={retry.duplicate}, "
            f"same order {retry.order.terms.order_id == acme.terms.order_id}"
        )
        globex = _submit(
            stub, "demo-glbx-1", account="DESK-EQ", portfolio="BETA", symbol="GLBX",
            side=C.SIDE_SELL, order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=5_000,
        ).order  # fmt: skip
        _submit(
            stub, "demo-umbr-1", account="DESK-QUANT", portfolio="STATARB", symbol="UMBR",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=1_000, limit_price_nanos=_px("312.00"),
        )  # fmt: skip
        _submit(
            stub, "demo-init-1", account="DESK-EQ", portfolio="ALPHA", symbol="INIT",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_GTC,
            quantity=20_000, limit_price_nanos=_px("21.50"),
        )  # fmt: skip

        console.rule("An algorithm places child orders on the lab's venues")
        acme_id = acme.terms.order_id
        _children(
            stub, acme_id,
            _child("acme-take", "lumen", 3_000, order_type=C.ORDER_TYPE_LIMIT,
                   time_in_force=C.TIME_IN_FORCE_IOC,
                   limit_price_nanos=acme_nbbo.ask + _px("0.03")),
            _child("acme-join", "orbit", 4_000, order_type=C.ORDER_TYPE_LIMIT,
                   time_in_force=C.TIME_IN_FORCE_DAY, limit_price_nanos=acme_nbbo.bid),
            _child("acme-post", "vertex", 2_000, order_type=C.ORDER_TYPE_LIMIT,
                   time_in_force=C.TIME_IN_FORCE_DAY, limit_price_nanos=acme_nbbo.bid,
                   post_only=True),
            _child("acme-dark", "shade", 3_000, order_type=C.ORDER_TYPE_LIMIT,
                   time_in_force=C.TIME_IN_FORCE_DAY, limit_price_nanos=acme_nbbo.ask,
                   min_quantity=200),
        )  # fmt: skip
        _children(
            stub, globex.terms.order_id,
            _child("glbx-s1", "lumen", 3_000, order_type=C.ORDER_TYPE_MARKET,
                   time_in_force=C.TIME_IN_FORCE_IOC),
            _child("glbx-s2", "quarry", 2_000, order_type=C.ORDER_TYPE_MARKET,
                   time_in_force=C.TIME_IN_FORCE_IOC),
        )  # fmt: skip
        gateway.advance_to(START + 300.0)
        console.print("five simulated minutes later, the trader cancels what is left of ACME")
        stub.CancelOrder(
            oms_pb2.CancelOrderRequest(order_id=acme_id, reason="enough for today"),
            metadata=((ACTOR_KEY, "demo-trader"),),
        )
        gateway.advance_to(START + 301.0)

        listing = stub.ListOrders(oms_pb2.ListOrdersRequest(sort=oms_pb2.ORDER_SORT_CREATED_ASC))
        console.print(orders_table(list(listing.orders), "Parent orders"))
        acme_now = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=acme_id)).order
        console.print(orders_table(list(acme_now.children), f"Child orders of {acme_id} (ACME)"))
        console.print(_fills_table(stub, acme_now))
        trail = stub.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=acme_id))
        console.print(history_table(list(trail.entries), f"Audit trail of {acme_id} (ACME)"))
        return {"ACME": acme_id, "GLBX": globex.terms.order_id}


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
    table = Table(
        title="ACME fills as the venues reported them", title_justify="left", header_style="bold"
    )
    for column in ("child", "venue", "liquidity", "qty", "price", "fee"):
        table.add_column(column, justify="right" if column in ("qty", "price", "fee") else "left")
    total_qty = total_fee = 0
    for child, fill in _child_fills(stub, parent):
        total_qty += fill.quantity
        total_fee += fill.fee_nanos
        table.add_row(
            child.terms.client_order_id,
            child.terms.venue,
            _liquidity(fill.liquidity),
            f"{fill.quantity:,}",
            f"{fill.price_nanos / 1e9:.4f}",
            f"{fill.fee_nanos / 1e9:+.2f}",
        )
    table.add_row("total", "", "", f"{total_qty:,}", "", f"{total_fee / 1e9:+.2f}")
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
    end = START + 301.0
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


def _monitor_table(platform: EmbeddedPlatform, parents: dict[str, str]) -> Table:
    """What the monitor saw live, read back through MonitorService."""
    table = Table(
        title=f"Live monitor (MonitorService {platform.monitor_address}, dashboard "
        f"{platform.dashboard_url})",
        title_justify="left",
        header_style="bold",
    )
    for column in ("order", "filled", "vs arrival bps", "participation", "child orders", "alerts"):
        table.add_column(column, justify="left" if column in ("order", "child orders") else "right")
    with grpc.insecure_channel(platform.monitor_address) as channel:
        api = monitor_pb2_grpc.MonitorServiceStub(channel)
        alerts = api.ListAlerts(monitor_pb2.ListAlertsRequest()).alerts
        for symbol, order_id in parents.items():
            live = api.GetLiveExecution(monitor_pb2.GetLiveExecutionRequest(order_id=order_id))
            table.add_row(
                f"{symbol} {order_id}",
                f"{live.filled_quantity:,} / {live.quantity:,}",
                f"{live.slippage_vs_arrival_bps:+.2f}",
                f"{live.participation:.1%}",
                ", ".join(f"{v} {n}" for v, n in sorted(live.child_orders_by_venue.items())),
                str(sum(a.order_id == order_id for a in alerts)),
            )
    return table


def _tca_table(documents: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Transaction cost analysis (bps, positive = cost; arrival = the mid at 10:00)",
        title_justify="left",
        header_style="bold",
    )
    columns = ("order", "filled", "avg px", "vs arrival", "with fees", "vs VWAP",
               "shortfall", "fees", "participation", "perm. impact")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "order" else "right")

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
        symbol: DayRecorder(symbol=symbol, venues=len(lab.venues), every=1.0)
        for symbol in ("ACME", "GLBX")
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
            algo=AlgoSettings(address="127.0.0.1:0"),
        )
        with console.status("starting embedded Postgres, Redis, the OMS and the market lab…"):
            platform = start_platform(settings, gateway=gateway)
        if platform.bus is not None:
            publishers.append(MarketDataPublisher(lab, platform.bus))
        try:
            table = Table(title="fillpath (embedded)", title_justify="left", header_style="bold")
            for column in ("part", "where", "what"):
                table.add_column(column)
            for row in platform.endpoints():
                table.add_row(*row)
            table.add_row(
                "Market lab",
                f"{len(config.lit)} lit venues, {len(config.dark)} dark pools",
                f"simulated session of {config.session_date}, seed {config.seed}",
            )
            console.print(table)
            parents = _play(console, platform, gateway)
            with console.status("running the lab to the close…"):
                gateway.run_to_close()
            with grpc.insecure_channel(platform.oms_address) as channel:
                stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
                documents = [
                    _tca_document(stub, order_id, recorders[symbol], lab)
                    for symbol, order_id in parents.items()
                ]
            console.print(_tca_table(documents))
            console.print(_monitor_table(platform, parents))
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
