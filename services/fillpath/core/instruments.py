"""Instrument reference data: what can be traded and in which increments.

Loaded from YAML by the adapters; parsed and checked here, so a bad file is refused with the
path of the bad entry (``instruments[3].tick_size``) and the value found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    # Standard deviation of daily returns (0.02 = 2 %): the market lab's volatility, and the
    # strategy's and algorithms' prior before they have estimated it from market data.
    daily_volatility: float = 0.02
    # Market impact of the Almgren–Chriss model, in units of the daily σ (in currency) over the
    # ADV: η = temporary·σ/ADV per (share per day), γ = permanent·σ/ADV per share. Fitted on the
    # market lab by `fillpath algos calibrate` (and later on our own fills); the defaults are a
    # rule of thumb (trading at 10 % of the day's volume costs 0.05 σ a share; a day's volume
    # moves the price 0.1 σ for good).
    impact_temporary: float = 0.5
    impact_permanent: float = 0.1
    # When the regular session closes, in the exchange's time zone: DAY orders expire then.
    session_close: time = time(16, 0)
    timezone: str = "America/New_York"

    def session_close_after(self, moment: datetime) -> datetime:
        """The first session close at or after `moment` (UTC), as UTC.

        No holiday calendar yet: every day has a session.
        """
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        close = datetime.combine(local.date(), self.session_close, tzinfo=zone)
        if close < local:
            close = datetime.combine(
                local.date() + timedelta(days=1), self.session_close, tzinfo=zone
            )
        return close.astimezone(UTC)

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
        volatility = entry.get("daily_volatility", 0.02)
        if type(volatility) not in (int, float) or not 0 < volatility < 1:
            violations.append(
                FieldViolation(f"{path}.daily_volatility", volatility, "must be between 0 and 1")
            )
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
                daily_volatility=float(volatility),
                **_session(entry, path, violations),
                **_impact(entry, path, violations),
            )
    if violations:
        raise InvalidArgument(violations)
    return table


def _session(
    entry: Mapping[str, Any], path: str, violations: list[FieldViolation]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "session_close" in entry:
        try:
            found["session_close"] = time.fromisoformat(str(entry["session_close"]))
        except ValueError:
            violations.append(
                FieldViolation(f"{path}.session_close", entry["session_close"], "must be HH:MM")
            )
    if "timezone" in entry:
        try:
            ZoneInfo(str(entry["timezone"]))
            found["timezone"] = str(entry["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            violations.append(
                FieldViolation(f"{path}.timezone", entry["timezone"], "not an IANA time zone")
            )
    return found


def _impact(
    entry: Mapping[str, Any], path: str, violations: list[FieldViolation]
) -> dict[str, Any]:
    """`impact: {temporary: …, permanent: …}`, each a non-negative number (absent: the rule of
    thumb)."""
    impact = entry.get("impact", {})
    if not isinstance(impact, Mapping):
        violations.append(FieldViolation(f"{path}.impact", impact, "must be a mapping"))
        return {}
    found: dict[str, Any] = {}
    for key, value in impact.items():
        if key not in ("temporary", "permanent"):
            violations.append(FieldViolation(f"{path}.impact.{key}", value, "unknown field"))
        elif type(value) not in (int, float) or not 0 <= value < 100:
            violations.append(
                FieldViolation(f"{path}.impact.{key}", value, "must be a number in [0, 100)")
            )
        else:
            found[f"impact_{key}"] = float(value)
    return found


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
