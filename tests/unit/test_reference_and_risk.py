"""Reference data from YAML and the pre-trade checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fillpath.core.enums import RejectCode
from fillpath.core.errors import InvalidArgument
from fillpath.core.instruments import instruments_from_mapping
from fillpath.core.risk import RiskLimits, accounts_from_mapping, check_order
from fillpath.infra.reference_data import load_reference_data
from tests.factories import instrument, px


def test_shipped_defaults_load() -> None:
    data = load_reference_data()
    assert {"ACME", "GLBX", "INIT", "UMBR", "SPYX"} <= set(data.instruments)
    assert data.accounts["DESK-QUANT"].limits.restricted_symbols == frozenset({"UMBR"})


def test_bad_instrument_entries_are_named_by_path_and_value() -> None:
    with pytest.raises(InvalidArgument) as raised:
        instruments_from_mapping(
            {
                "instruments": [
                    {"symbol": "A", "tick_size": "0.01", "adv": 10, "reference_price": "10.005"},
                    {"symbol": "B", "tick_size": "-1", "adv": 0, "reference_price": "x"},
                ]
            }
        )
    fields = {(v.field, str(v.value)) for v in raised.value.violations}
    assert ("instruments[0].reference_price", "10.005") in fields
    assert ("instruments[1].tick_size", "-1") in fields
    assert ("instruments[1].adv", "0") in fields
    assert ("instruments[1].reference_price", "x") in fields


def test_bad_account_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "instruments.yaml").write_text(
        "instruments: [{symbol: A, tick_size: '0.01', adv: 10, reference_price: '1.00'}]"
    )
    (tmp_path / "accounts.yaml").write_text(
        "accounts: [{id: X, portfolios: [P], limits: {max_order_quantity: -3}}]"
    )
    with pytest.raises(
        InvalidArgument, match=r"accounts.yaml: accounts\[0\].limits.max_order_quantity"
    ):
        load_reference_data(tmp_path)


def test_accounts_need_portfolios() -> None:
    with pytest.raises(InvalidArgument, match=r"accounts\[0\].portfolios"):
        accounts_from_mapping({"accounts": [{"id": "X", "portfolios": []}]})


LIMITS = RiskLimits(
    max_order_quantity=10_000,
    max_notional_nanos=px("500000").nanos,
    price_collar_bps=500,
    restricted_symbols=frozenset({"BAD"}),
)
REF = px("100.00")


@pytest.mark.parametrize(
    ("quantity", "limit", "symbol", "code"),
    [
        (10_001, None, "ACME", RejectCode.MAX_ORDER_QUANTITY),
        (5_001, None, "ACME", RejectCode.MAX_NOTIONAL),  # market order valued at the reference
        (4_000, "105.01", "ACME", RejectCode.PRICE_COLLAR),
        (4_000, "94.99", "ACME", RejectCode.PRICE_COLLAR),
        (1, None, "BAD", RejectCode.RESTRICTED_SYMBOL),
    ],
)
def test_each_limit_rejects_with_its_code(
    quantity: int, limit: str | None, symbol: str, code: RejectCode
) -> None:
    rejection = check_order(
        LIMITS, instrument(symbol=symbol), quantity, px(limit) if limit else None, REF
    )
    assert rejection is not None
    assert rejection.code is code


def test_order_inside_every_limit_passes() -> None:
    assert check_order(LIMITS, instrument(), 4_000, px("105.00"), REF) is None
    assert check_order(RiskLimits(), instrument(), 10**9, None, REF) is None


def test_rejection_says_the_limit_and_the_value() -> None:
    rejection = check_order(LIMITS, instrument(), 20_000, None, REF)
    assert rejection is not None
    assert "20,000" in rejection.reason
    assert "10,000" in rejection.reason


def test_day_orders_expire_at_the_next_session_close_in_exchange_time() -> None:
    acme = instrument()  # 16:00 America/New_York
    morning = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # 09:30 in New York
    evening = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # 17:00 in New York
    assert acme.session_close_after(morning) == datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    assert acme.session_close_after(evening) == datetime(2026, 11, 21, 21, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # daylight saving: close is 20:00 UTC
    assert acme.session_close_after(summer) == datetime(2026, 7, 1, 20, 0, tzinfo=UTC)


def test_bad_session_settings_are_named() -> None:
    with pytest.raises(InvalidArgument) as raised:
        instruments_from_mapping(
            {
                "instruments": [
                    {
                        "symbol": "A",
                        "tick_size": "0.01",
                        "adv": 10,
                        "reference_price": "1.00",
                        "session_close": "25:99",
                        "timezone": "Mars/Olympus",
                    }
                ]
            }
        )
    assert {v.field for v in raised.value.violations} == {
        "instruments[0].session_close",
        "instruments[0].timezone",
    }


def test_impact_coefficients_are_read_and_bad_ones_named() -> None:
    base = {"symbol": "A", "tick_size": "0.01", "adv": 10, "reference_price": "1.00"}
    fitted = instruments_from_mapping(
        {"instruments": [{**base, "impact": {"temporary": 0.2, "permanent": 5.7}}]}
    )["A"]
    assert (fitted.impact_temporary, fitted.impact_permanent) == (0.2, 5.7)
    unset = instruments_from_mapping({"instruments": [base]})["A"]
    assert (unset.impact_temporary, unset.impact_permanent) == (0.5, 0.1)  # the rule of thumb

    with pytest.raises(InvalidArgument) as raised:
        instruments_from_mapping(
            {"instruments": [{**base, "impact": {"temporary": -1, "permanent": "x", "k": 1}}]}
        )
    assert {(v.field, str(v.value)) for v in raised.value.violations} == {
        ("instruments[0].impact.temporary", "-1"),
        ("instruments[0].impact.permanent", "x"),
        ("instruments[0].impact.k", "1"),
    }
