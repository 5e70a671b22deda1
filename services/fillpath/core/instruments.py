"""Instrument reference data: what can be traded and in which increments.

Loaded from YAML by the adapters; parsed and checked here, so a bad file is refused with the
path of the bad entry (``instruments[3].tick_size``) and the value found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.price import Price


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    symbol: str
    name: str = ""
    # Instrument class for strategy rules (e.g. "equity", "etf").
    asset_class: str = "equity"
    currency: str = "USD"
    tick_size: Price
    lot_size: int = 1
    # Average daily volume, in units.
    adv: int
    # Previous close: the reference for price collars and for the notional of market orders.
    reference_price: Price

    def price_violation(self, price: Price) -> str | None:
        """Why `price` cannot be used for this instrument, or None."""
        if price.nanos <= 0:
            return "must be positive"
        if not price.is_multiple_of(self.tick_size):
            return f"must be a multiple of the tick size {self.tick_size}"
        return None

    def quantity_violation(self, quantity: int) -> str | None:
        if quantity <= 0:
            return "must be positive"
        if quantity % self.lot_size:
            return f"must be a multiple of the lot size {self.lot_size}"
        return None


def instruments_from_mapping(data: Mapping[str, Any]) -> dict[str, Instrument]:
    """Builds the instrument table from ``{"instruments": [ {...}, ... ]}``.

    Raises:
        InvalidArgument: every bad entry, with its path and value.
    """
    entries = data.get("instruments")
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise InvalidArgument.single("instruments", entries, "must be a list")
    violations: list[FieldViolation] = []
    table: dict[str, Instrument] = {}
    for i, entry in enumerate(entries):
        path = f"instruments[{i}]"
        if not isinstance(entry, Mapping):
            violations.append(FieldViolation(path, entry, "must be a mapping"))
            continue
        before = len(violations)
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol.strip():
            violations.append(
                FieldViolation(f"{path}.symbol", symbol, "must be a non-empty string")
            )
        elif symbol in table:
            violations.append(FieldViolation(f"{path}.symbol", symbol, "appears twice"))
        tick = _price(entry, "tick_size", path, violations)
        reference = _price(entry, "reference_price", path, violations)
        lot = _positive_int(entry, "lot_size", path, violations, default=1)
        adv = _positive_int(entry, "adv", path, violations, default=None)
        if tick and reference and not reference.is_multiple_of(tick):
            violations.append(
                FieldViolation(f"{path}.reference_price", str(reference), "not on the tick grid")
            )
        if len(violations) == before:
            assert isinstance(symbol, str)
            assert tick is not None
            assert reference is not None
            assert lot is not None
            assert adv is not None
            table[symbol] = Instrument(
                symbol=symbol,
                name=str(entry.get("name", "")),
                asset_class=str(entry.get("asset_class", "equity")),
                currency=str(entry.get("currency", "USD")),
                tick_size=tick,
                lot_size=lot,
                adv=adv,
                reference_price=reference,
            )
    if violations:
        raise InvalidArgument(violations)
    return table


def _price(
    entry: Mapping[str, Any], key: str, path: str, violations: list[FieldViolation]
) -> Price | None:
    raw: Any = entry.get(key)
    try:
        price = Price.parse(raw)
    except (ValueError, TypeError):
        violations.append(FieldViolation(f"{path}.{key}", raw, "must be a decimal price"))
        return None
    if price.nanos <= 0:
        violations.append(FieldViolation(f"{path}.{key}", raw, "must be positive"))
        return None
    return price


def _positive_int(
    entry: Mapping[str, Any],
    key: str,
    path: str,
    violations: list[FieldViolation],
    default: int | None,
) -> int | None:
    raw = entry.get(key, default)
    if type(raw) is not int or raw <= 0:
        violations.append(FieldViolation(f"{path}.{key}", raw, "must be a positive integer"))
        return None
    return raw
