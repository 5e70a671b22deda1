"""Fixed-point prices and money (ARCHITECTURE.md §4).

A price is an integer number of 1e-9 units of the instrument's currency: 102.35 is stored as
102_350_000_000 nanos. Notional and fees are plain ints of currency nanos (Python ints do not
overflow, so quantity × price is exact). No float ever takes part in order bookkeeping; the one
place a price is divided (the average fill price) rounds half-even, explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

NANOS_PER_UNIT: Final = 1_000_000_000
_NANO: Final = Decimal(1).scaleb(-9)


@dataclass(frozen=True, slots=True, order=True)
class Price:
    """A price in 1e-9 units. Comparable, hashable, and exact."""

    nanos: int

    def __post_init__(self) -> None:
        if type(self.nanos) is not int:
            raise TypeError(f"Price nanos must be int, got {type(self.nanos).__name__}")

    @classmethod
    def parse(cls, text: str | int | Decimal) -> Price:
        """Parses a decimal price such as ``"102.35"`` exactly.

        Raises:
            ValueError: the text is not a number or has more than nine decimal places.
        """
        try:
            value = Decimal(str(text).strip()) if not isinstance(text, Decimal) else text
        except InvalidOperation as err:
            raise ValueError(f"not a price: {text!r}") from err
        if not value.is_finite():
            raise ValueError(f"not a price: {text!r}")
        nanos = value.scaleb(9)
        if nanos != nanos.to_integral_value():
            raise ValueError(f"price {text!r} has more than 9 decimal places")
        return cls(int(nanos))

    def to_decimal(self) -> Decimal:
        return Decimal(self.nanos) * _NANO

    def is_multiple_of(self, tick: Price) -> bool:
        return tick.nanos > 0 and self.nanos % tick.nanos == 0

    def notional(self, quantity: int) -> int:
        """Currency nanos of `quantity` units at this price."""
        return self.nanos * quantity

    def __add__(self, other: Price) -> Price:
        return Price(self.nanos + other.nanos)

    def __sub__(self, other: Price) -> Price:
        return Price(self.nanos - other.nanos)

    def __str__(self) -> str:
        return format_nanos(self.nanos)


def format_nanos(nanos: int, min_places: int = 2) -> str:
    """Renders currency or price nanos as a decimal with at least `min_places` places."""
    sign = "-" if nanos < 0 else ""
    units, frac = divmod(abs(nanos), NANOS_PER_UNIT)
    digits = f"{frac:09d}".rstrip("0").ljust(min_places, "0")
    return f"{sign}{units}.{digits}" if digits else f"{sign}{units}"


def parse_money(text: str | int | Decimal) -> int:
    """Parses a currency amount such as ``"5000000.00"`` into nanos."""
    return Price.parse(text).nanos


def average_price(notional_nanos: int, quantity: int) -> Price:
    """Quantity-weighted average price, rounded half-even to the nano.

    Args:
        notional_nanos: sum of quantity × price nanos over the fills.
        quantity: sum of the fill quantities; must be positive.
    """
    if quantity <= 0:
        raise ValueError(f"average price of quantity {quantity}")
    whole, rest = divmod(notional_nanos, quantity)
    if 2 * rest > quantity or (2 * rest == quantity and whole % 2 == 1):
        whole += 1
    return Price(whole)
