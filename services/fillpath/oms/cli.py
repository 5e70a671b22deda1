"""`fillpath orders …`: the OMS from a terminal, over gRPC, with readable tables.

Prices are typed as decimals (``--limit 102.35``) and shown as decimals; everything travels as
fixed-point nanos. A refused call prints the status and every bad field, and exits 1.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
import grpc
from rich.console import Console
from rich.table import Table

from fillpath.api.v1 import common_pb2, oms_pb2, oms_pb2_grpc
from fillpath.core.enums import (
    AlgorithmKind,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
    Urgency,
)
from fillpath.core.price import Price, format_nanos
from fillpath.infra.grpc_errors import describe
from fillpath.infra.telemetry import ACTOR_KEY

# Piped output (make demo in CI, a log file) gets room for the order tables instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 180)

_STATUS_STYLE = {
    OrderStatus.FILLED: "green",
    OrderStatus.PARTIALLY_FILLED: "cyan",
    OrderStatus.NEW: "white",
    OrderStatus.REJECTED: "red",
    OrderStatus.CANCELED: "yellow",
    OrderStatus.EXPIRED: "yellow",
    OrderStatus.PENDING_CANCEL: "magenta",
    OrderStatus.PENDING_REPLACE: "magenta",
}


def _choice(enum: type[Any]) -> click.Choice[str]:
    return click.Choice([m.name.lower().replace("_", "-") for m in enum], case_sensitive=False)


def _enum_value(enum: type[Any], text: str | None) -> int:
    return 0 if text is None else int(enum[text.upper().replace("-", "_")])


def _price(_ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return Price.parse(value).nanos
    except ValueError as err:
        raise click.BadParameter(str(err), param=param) from err


def _time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param=param) from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def price_text(message: Any, field: str) -> str:
    return format_nanos(getattr(message, field)) if message.HasField(field) else ""


@contextmanager
def _client(ctx: click.Context) -> Iterator[oms_pb2_grpc.OrderManagementServiceStub]:
    address = ctx.obj["oms_address"]
    with grpc.insecure_channel(address) as channel:
        try:
            yield oms_pb2_grpc.OrderManagementServiceStub(channel)
        except grpc.RpcError as err:
            raise click.ClickException(f"{address}: {describe(err)}") from err


def _metadata(ctx: click.Context) -> tuple[tuple[str, str], ...]:
    return ((ACTOR_KEY, ctx.obj["actor"]),)


def orders_table(orders: list[oms_pb2.Order], title: str = "Orders") -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column, justify in (
        ("order", "left"),
        ("account/portfolio", "left"),
        ("symbol", "left"),
        ("side", "left"),
        ("type", "left"),
        ("qty", "right"),
        ("limit", "right"),
        ("status", "left"),
        ("filled", "right"),
        ("avg px", "right"),
        ("leaves", "right"),
        ("working", "right"),
        ("venue", "left"),
        ("note", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    # A reject code is never folded mid-word, however narrow the terminal.
    table.columns[-1].min_width = max(len(code.name) for code in RejectCode) + 1
    for order in orders:
        terms = order.terms
        status = OrderStatus(order.status)
        note = order.reject_reason
        if order.reject_code:
            note = f"{RejectCode(order.reject_code).name}: {note}"
        table.add_row(
            terms.order_id,
            f"{terms.account}/{terms.portfolio}",
            terms.symbol,
            Side(terms.side).name,
            f"{OrderType(terms.order_type).name} {TimeInForce(terms.time_in_force).name}",
            f"{order.quantity:,}",
            price_text(order, "limit_price_nanos"),
            f"[{_STATUS_STYLE.get(status, 'white')}]{status.name}[/]",
            f"{order.filled_quantity:,}",
            price_text(order, "avg_price_nanos"),
            f"{order.leaves_quantity:,}",
            f"{order.working_quantity:,}" if not terms.HasField("parent_order_id") else "",
            terms.venue if terms.HasField("venue") else "",
            note,
        )
    return table


def history_table(entries: list[oms_pb2.HistoryEntry], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("pos", "ver", "recorded (UTC)", "order", "event", "what", "who"):
        table.add_column(column, justify="right" if column in ("pos", "ver") else "left")
    for entry in entries:
        event = entry.event
        payload = getattr(event, event.WhichOneof("payload") or "")
        order_id: str = getattr(payload, "order_id", "")
        table.add_row(
            str(event.position),
            str(event.stream_version),
            event.recorded_at.ToDatetime().strftime("%H:%M:%S.%f")[:-3],
            # Within one stream, the parent and its children are told apart by their suffix.
            "parent" if order_id == event.stream_id else order_id.removeprefix(event.stream_id),
            event.event_type,
            entry.summary,
            event.metadata.actor,
        )
    return table


@click.group()
@click.option(
    "--oms",
    "oms_address",
    default="127.0.0.1:50051",
    envvar="FILLPATH_OMS_ADDRESS",
    show_default=True,
    help="Address of the OMS gRPC service.",
)
@click.option("--actor", default="cli", envvar="USER", help="Who you are, for the audit trail.")
@click.pass_context
def orders(ctx: click.Context, oms_address: str, actor: str) -> None:
    """Submit, amend, cancel and inspect orders."""
    ctx.ensure_object(dict)
    ctx.obj["oms_address"] = oms_address
    ctx.obj["actor"] = actor


@orders.command()
@click.option("--account", required=True)
@click.option("--portfolio", required=True)
@click.option("--symbol", required=True)
@click.option("--side", type=_choice(Side), required=True)
@click.option("--qty", "quantity", type=int, required=True, help="Quantity in shares.")
@click.option("--type", "order_type", type=_choice(OrderType), default="limit", show_default=True)
@click.option("--limit", "limit_price", callback=_price, help="Limit price, e.g. 102.35.")
@click.option("--stop", "stop_price", callback=_price, help="Stop price.")
@click.option("--tif", type=_choice(TimeInForce), default="day", show_default=True)
@click.option("--expire", callback=_time, help="Expiry (ISO 8601) for GTD orders.")
@click.option("--client-order-id", default=None, help="Default: a new unique id.")
@click.option("--algo", type=_choice(AlgorithmKind), help="Algorithm to execute with.")
@click.option("--profile", "algo_profile", default="", help="AlgoProfile name.")
@click.option("--urgency", type=_choice(Urgency))
@click.option("--decision-price", callback=_price, help="Decision price for TCA.")
@click.pass_context
def submit(ctx: click.Context, /, **options: Any) -> None:
    """Submit a parent order."""
    request = oms_pb2.SubmitOrderRequest(
        client_order_id=options["client_order_id"] or f"cli-{uuid.uuid4().hex[:12]}",
        account=options["account"],
        portfolio=options["portfolio"],
        symbol=options["symbol"],
        side=_enum_value(Side, options["side"]),  # type: ignore[arg-type]
        order_type=_enum_value(OrderType, options["order_type"]),  # type: ignore[arg-type]
        time_in_force=_enum_value(TimeInForce, options["tif"]),  # type: ignore[arg-type]
        quantity=options["quantity"],
    )
    for field, key in (
        ("limit_price_nanos", "limit_price"),
        ("stop_price_nanos", "stop_price"),
        ("decision_price_nanos", "decision_price"),
    ):
        if options[key] is not None:
            setattr(request, field, options[key])
    if options["expire"] is not None:
        request.expire_time.FromDatetime(options["expire"])
    if options["algo"] or options["algo_profile"] or options["urgency"]:
        request.instructions.CopyFrom(
            common_pb2.ExecutionInstructions(
                algo_profile=options["algo_profile"],
                algorithm=_enum_value(AlgorithmKind, options["algo"]),  # type: ignore[arg-type]
                urgency=_enum_value(Urgency, options["urgency"]),  # type: ignore[arg-type]
            )
        )
    with _client(ctx) as stub:
        response = stub.SubmitOrder(request, metadata=_metadata(ctx))
    title = "Order (already submitted: this is the original)" if response.duplicate else "Order"
    console.print(orders_table([response.order], title))


@orders.command(name="list")
@click.option("--account", default="")
@click.option("--portfolio", default="")
@click.option("--symbol", default="")
@click.option("--status", "statuses", type=_choice(OrderStatus), multiple=True)
@click.option("--from", "created_from", callback=_time, help="Created at or after (ISO 8601).")
@click.option("--to", "created_to", callback=_time, help="Created before (ISO 8601).")
@click.option("--children", is_flag=True, help="Include child orders.")
@click.option("--oldest-first", is_flag=True)
@click.option("--limit", "page_size", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--page-token", default="")
@click.pass_context
def list_orders(ctx: click.Context, /, **options: Any) -> None:
    """List orders, newest first."""
    request = oms_pb2.ListOrdersRequest(
        account=options["account"],
        portfolio=options["portfolio"],
        symbol=options["symbol"],
        statuses=[_enum_value(OrderStatus, s) for s in options["statuses"]],  # type: ignore[misc]
        include_children=options["children"],
        sort=oms_pb2.ORDER_SORT_CREATED_ASC
        if options["oldest_first"]
        else oms_pb2.ORDER_SORT_CREATED_DESC,
        page=common_pb2.PageRequest(
            page_size=options["page_size"], page_token=options["page_token"]
        ),
    )
    for field in ("created_from", "created_to"):
        if options[field] is not None:
            getattr(request, field).FromDatetime(options[field])
    with _client(ctx) as stub:
        response = stub.ListOrders(request, metadata=_metadata(ctx))
    console.print(orders_table(list(response.orders)))
    if response.next_page_token:
        console.print(f"more: --page-token {response.next_page_token}")


@orders.command()
@click.argument("order_id")
@click.pass_context
def show(ctx: click.Context, order_id: str) -> None:
    """Show one order and its child orders."""
    with _client(ctx) as stub:
        order = stub.GetOrder(oms_pb2.GetOrderRequest(order_id=order_id), metadata=_metadata(ctx))
    console.print(orders_table([order.order], f"Order {order_id}"))
    if order.order.children:
        console.print(orders_table(list(order.order.children), "Child orders"))


@orders.command()
@click.argument("order_id")
@click.option("--qty", "quantity", type=int, help="New quantity (≥ filled).")
@click.option("--limit", "limit_price", callback=_price, help="New limit price.")
@click.option("--reason", default="")
@click.pass_context
def amend(
    ctx: click.Context, order_id: str, quantity: int | None, limit_price: int | None, reason: str
) -> None:
    """Change an order's quantity and/or limit price."""
    request = oms_pb2.AmendOrderRequest(order_id=order_id, reason=reason)
    if quantity is not None:
        request.quantity = quantity
    if limit_price is not None:
        request.limit_price_nanos = limit_price
    with _client(ctx) as stub:
        response = stub.AmendOrder(request, metadata=_metadata(ctx))
    console.print(orders_table([response.order], f"Order {order_id}"))
    if not response.accepted:
        code = RejectCode(response.reject_code).name if response.reject_code else ""
        raise click.ClickException(f"amendment rejected ({code}): {response.reject_reason}")


@orders.command()
@click.argument("order_id")
@click.option("--reason", default="")
@click.pass_context
def cancel(ctx: click.Context, order_id: str, reason: str) -> None:
    """Cancel an order (a parent: with its working child orders)."""
    with _client(ctx) as stub:
        response = stub.CancelOrder(
            oms_pb2.CancelOrderRequest(order_id=order_id, reason=reason), metadata=_metadata(ctx)
        )
    console.print(orders_table([response.order], f"Order {order_id}"))


@orders.command()
@click.argument("order_id")
@click.pass_context
def history(ctx: click.Context, order_id: str) -> None:
    """The audit trail of an order: every event, with who, when and what."""
    with _client(ctx) as stub:
        response = stub.GetOrderHistory(
            oms_pb2.GetOrderHistoryRequest(order_id=order_id), metadata=_metadata(ctx)
        )
    console.print(history_table(list(response.entries), f"History of {order_id}"))
