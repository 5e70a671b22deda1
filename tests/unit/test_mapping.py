"""Requests to commands: every malformed field is reported at once, by name and value."""

from __future__ import annotations

import pytest

from fillpath.api.v1 import common_pb2, oms_pb2
from fillpath.core.enums import OrderType, Side
from fillpath.core.errors import InvalidArgument
from fillpath.oms import mapping


def _fields(err: InvalidArgument) -> dict[str, object]:
    return {v.field: v.value for v in err.violations}


def test_valid_submit_becomes_a_command_with_exact_prices() -> None:
    command = mapping.submit_command(
        oms_pb2.SubmitOrderRequest(
            client_order_id="c1",
            account="A",
            portfolio="P",
            symbol="ACME",
            side=common_pb2.SIDE_SELL,
            order_type=common_pb2.ORDER_TYPE_LIMIT,
            time_in_force=common_pb2.TIME_IN_FORCE_DAY,
            quantity=100,
            limit_price_nanos=100_250_000_000,
        )
    )
    assert (command.side, command.order_type, str(command.limit_price)) == (
        Side.SELL,
        OrderType.LIMIT,
        "100.25",
    )


def test_submit_reports_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as raised:
        mapping.submit_command(
            oms_pb2.SubmitOrderRequest(
                client_order_id="has space\t",
                account="",
                portfolio="P",
                symbol="ACME",
                side=9,  # type: ignore[arg-type]
                order_type=common_pb2.ORDER_TYPE_LIMIT,
                quantity=5,
                limit_price_nanos=-1,
            )
        )
    fields = _fields(raised.value)
    assert fields == {
        "client_order_id": "has space\t",
        "account": "",
        "side": 9,
        "time_in_force": 0,
        "limit_price_nanos": -1,
    }


def test_amend_needs_something_to_change() -> None:
    with pytest.raises(InvalidArgument, match="give a new quantity"):
        mapping.amend_command(oms_pb2.AmendOrderRequest(order_id="P1"))


def test_trade_report_needs_quantity_and_price() -> None:
    request = oms_pb2.ApplyExecutionReportRequest(
        report=oms_pb2.ExecutionReport(
            order_id="P1.1", exec_id="e", exec_type=common_pb2.EXEC_TYPE_TRADE
        )
    )
    with pytest.raises(InvalidArgument) as raised:
        mapping.report_command(request)
    assert set(_fields(raised.value)) == {"report.last_quantity", "report.last_price_nanos"}


def test_page_size_is_bounded() -> None:
    with pytest.raises(InvalidArgument, match=r"page\.page_size"):
        mapping.order_query(oms_pb2.ListOrdersRequest(page=common_pb2.PageRequest(page_size=5000)))


def test_non_finite_params_and_nul_characters_are_refused() -> None:
    request = oms_pb2.SubmitOrderRequest(
        client_order_id="c1",
        account="A",
        portfolio="P",
        symbol="ACME",
        side=common_pb2.SIDE_BUY,
        order_type=common_pb2.ORDER_TYPE_MARKET,
        time_in_force=common_pb2.TIME_IN_FORCE_DAY,
        quantity=1,
        instructions=common_pb2.ExecutionInstructions(params={"urgency": float("nan")}),
    )
    with pytest.raises(InvalidArgument, match=r"instructions\.params\[urgency\]"):
        mapping.submit_command(request)
    with pytest.raises(InvalidArgument, match="NUL"):
        mapping.cancel_command(oms_pb2.CancelOrderRequest(order_id="P1", reason="x\x00y"))
