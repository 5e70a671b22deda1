"""`make demo`: a scripted trading session against the embedded platform.

It starts everything (embedded Postgres and Redis, the OMS), then plays a trading system and the
venues: submits parent orders (one retried, two refused by pre-trade checks), places child
orders on venues, feeds back acks, fills and a cancel as the venues would report them, and ends
with the order book, one order's audit trail and `verify` over everything recorded.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import common_pb2, oms_pb2, oms_pb2_grpc
from fillpath.core.price import Price
from fillpath.embedded import EmbeddedPlatform, start_platform
from fillpath.infra.settings import OmsSettings, Settings
from fillpath.infra.telemetry import ACTOR_KEY
from fillpath.oms.cli import history_table, orders_table
from fillpath.oms.verify import verify

C = common_pb2


def _px(text: str) -> int:
    return Price.parse(text).nanos


@dataclass(frozen=True, slots=True)
class _Venue:
    """Plays a venue: turns what it 'did' into execution reports for the OMS."""

    name: str
    stub: oms_pb2_grpc.OrderManagementServiceStub

    def report(self, child_id: str, exec_id: str, exec_type: int, **fields: object) -> None:
        report = oms_pb2.ExecutionReport(
            order_id=child_id,
            exec_id=f"{self.name}-{exec_id}",
            exec_type=exec_type,  # type: ignore[arg-type]
            venue=self.name,
            **fields,  # type: ignore[arg-type]
        )
        self.stub.ApplyExecutionReport(
            oms_pb2.ApplyExecutionReportRequest(report=report),
            metadata=((ACTOR_KEY, f"venue:{self.name}"),),
        )

    def ack(self, child_id: str) -> None:
        self.report(
            child_id, f"{child_id}-ack", C.EXEC_TYPE_NEW, venue_order_id=f"{self.name}:{child_id}"
        )

    def fill(self, child_id: str, n: int, qty: int, price: str, maker: bool, fee: str) -> None:
        self.report(
            child_id,
            f"{child_id}-fill-{n}",
            C.EXEC_TYPE_TRADE,
            last_quantity=qty,
            last_price_nanos=_px(price),
            liquidity=C.LIQUIDITY_FLAG_MAKER if maker else C.LIQUIDITY_FLAG_TAKER,
            fee_nanos=_px(fee) if not fee.startswith("-") else -_px(fee[1:]),
        )


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


def _play(console: Console, platform: EmbeddedPlatform) -> str:
    with grpc.insecure_channel(platform.oms_address) as channel:
        stub = oms_pb2_grpc.OrderManagementServiceStub(channel)
        console.rule("A trading system submits parent orders")
        acme = _submit(
            stub, "demo-acme-1", account="DESK-EQ", portfolio="ALPHA", symbol="ACME",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=12_000, limit_price_nanos=_px("102.40"), decision_price_nanos=_px("102.35"),
        ).order  # fmt: skip
        retry = _submit(
            stub, "demo-acme-1", account="DESK-EQ", portfolio="ALPHA", symbol="ACME",
            side=C.SIDE_BUY, order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
            quantity=12_000, limit_price_nanos=_px("102.40"), decision_price_nanos=_px("102.35"),
        )  # fmt: skip
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

        console.rule("An algorithm places child orders; the venues report back")
        lit, arca, dark = (_Venue(v, stub) for v in ("XNAS", "ARCX", "DARK-X"))
        acme_id = acme.terms.order_id
        nasdaq_child, arca_child, dark_child = _children(
            stub, acme_id,
            oms_pb2.ChildOrderRequest(client_order_id="acme-s1", venue="XNAS", quantity=5_000,
                order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
                limit_price_nanos=_px("102.38"), post_only=True),
            oms_pb2.ChildOrderRequest(client_order_id="acme-s2", venue="ARCX", quantity=4_000,
                order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_IOC,
                limit_price_nanos=_px("102.39")),
            oms_pb2.ChildOrderRequest(client_order_id="acme-s3", venue="DARK-X", quantity=3_000,
                order_type=C.ORDER_TYPE_LIMIT, time_in_force=C.TIME_IN_FORCE_DAY,
                limit_price_nanos=_px("102.40"), min_quantity=500),
        )  # fmt: skip
        for venue, child in ((lit, nasdaq_child), (arca, arca_child), (dark, dark_child)):
            venue.ack(child)
        lit.fill(nasdaq_child, 1, 2_000, "102.36", maker=True, fee="-0.40")
        arca.fill(arca_child, 1, 4_000, "102.37", maker=False, fee="1.20")
        dark.fill(dark_child, 1, 1_200, "102.365", maker=True, fee="0.12")
        lit.fill(nasdaq_child, 2, 3_000, "102.38", maker=True, fee="-0.60")
        console.print("ACME: 10,200 of 12,000 done; the trader cancels the rest")
        stub.CancelOrder(
            oms_pb2.CancelOrderRequest(order_id=acme_id, reason="enough for today"),
            metadata=((ACTOR_KEY, "demo-trader"),),
        )
        dark.report(dark_child, f"{dark_child}-cxl", C.EXEC_TYPE_CANCELED, text="canceled by user")

        globex_children = _children(
            stub, globex.terms.order_id,
            oms_pb2.ChildOrderRequest(client_order_id="glbx-s1", venue="XNAS", quantity=3_000,
                order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_IOC),
            oms_pb2.ChildOrderRequest(client_order_id="glbx-s2", venue="BATS", quantity=2_000,
                order_type=C.ORDER_TYPE_MARKET, time_in_force=C.TIME_IN_FORCE_IOC),
        )  # fmt: skip
        bats = _Venue("BATS", stub)
        lit.ack(globex_children[0])
        lit.fill(globex_children[0], 1, 3_000, "48.10", maker=False, fee="0.90")
        bats.ack(globex_children[1])
        bats.fill(globex_children[1], 1, 2_000, "48.11", maker=False, fee="0.50")

        listing = stub.ListOrders(oms_pb2.ListOrdersRequest(sort=oms_pb2.ORDER_SORT_CREATED_ASC))
        console.print(orders_table(list(listing.orders), "Parent orders"))
        acme_now = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=acme_id)).order
        console.print(orders_table(list(acme_now.children), f"Child orders of {acme_id} (ACME)"))
        trail = stub.GetOrderHistory(oms_pb2.GetOrderHistoryRequest(order_id=acme_id))
        console.print(history_table(list(trail.entries), f"Audit trail of {acme_id} (ACME)"))
        return acme_id


def run_demo(console: Console, data_dir: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="fillpath-demo-") as scratch:
        root = data_dir or Path(scratch)
        settings = Settings(data_dir=root, oms=OmsSettings(address="127.0.0.1:0"))
        with console.status("starting embedded Postgres, Redis and the OMS…"):
            platform = start_platform(settings)
        try:
            table = Table(title="fillpath (embedded)", title_justify="left", header_style="bold")
            for column in ("part", "where", "what"):
                table.add_column(column)
            for row in platform.endpoints():
                table.add_row(*row)
            console.print(table)
            _play(console, platform)
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
