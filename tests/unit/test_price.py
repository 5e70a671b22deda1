"""Fixed-point prices: exact parsing, formatting and half-even averaging."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fillpath.core.price import Price, average_price, format_nanos, parse_money


def test_parse_decimal_text_is_exact() -> None:
    assert Price.parse("102.35").nanos == 102_350_000_000
    assert Price.parse("0.000000001").nanos == 1
    assert Price.parse(" 7 ").nanos == 7_000_000_000


@pytest.mark.parametrize("text", ["1.0000000001", "abc", "nan", "inf", ""])
def test_parse_refuses_what_is_not_a_nanos_price(text: str) -> None:
    with pytest.raises(ValueError, match=text.strip() or "price"):
        Price.parse(text)


def test_float_nanos_are_refused_so_no_float_enters_bookkeeping() -> None:
    with pytest.raises(TypeError):
        Price(1.5)  # type: ignore[arg-type]


def test_format_keeps_every_significant_digit() -> None:
    assert str(Price.parse("102.3")) == "102.30"
    assert str(Price.parse("102.365")) == "102.365"
    assert format_nanos(-400_000_000) == "-0.40"
    assert parse_money("5000000") == 5_000_000 * 10**9


def test_tick_multiple() -> None:
    tick = Price.parse("0.01")
    assert Price.parse("100.25").is_multiple_of(tick)
    assert not Price.parse("100.255").is_multiple_of(tick)


@given(
    fills=st.lists(
        st.tuples(st.integers(1, 10**7), st.integers(1, 10**13)), min_size=1, max_size=30
    )
)
def test_average_price_is_the_half_even_rounded_exact_mean(fills: list[tuple[int, int]]) -> None:
    notional = sum(q * p for q, p in fills)
    quantity = sum(q for q, _ in fills)
    expected = (Decimal(notional) / Decimal(quantity)).quantize(Decimal(1), ROUND_HALF_EVEN)
    assert average_price(notional, quantity).nanos == int(expected)


def test_average_price_rounds_ties_to_even() -> None:
    assert average_price(5, 2).nanos == 2  # 2.5 → 2
    assert average_price(7, 2).nanos == 4  # 3.5 → 4
