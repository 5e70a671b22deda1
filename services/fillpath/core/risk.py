"""Accounts and pre-trade checks.

Limits are configured per account and checked before an order (or an amendment) is accepted.
A refusal is not an error: it becomes an `OrderRejected` (or `OrderReplaceRejected`) event that
says which limit, its value and the order's value. The order-rate limit needs shared state and
is checked by the OMS through its rate-limiter port; everything else here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fillpath.core.enums import RejectCode
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.price import Price, format_nanos, parse_money

BPS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Pre-trade limits of one account; None means no limit."""

    max_order_quantity: int | None = None
    # Largest notional of one order, in currency nanos.
    max_notional_nanos: int | None = None
    # Largest distance of a limit price from the reference price, in basis points.
    price_collar_bps: int | None = None
    restricted_symbols: frozenset[str] = frozenset()
    max_orders_per_second: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    account_id: str
    name: str = ""
    portfolios: frozenset[str]
    limits: RiskLimits


@dataclass(frozen=True, slots=True)
class RiskRejection:
    code: RejectCode
    reason: str


def check_order(
    limits: RiskLimits,
    instrument: Instrument,
    quantity: int,
    limit_price: Price | None,
    reference_price: Price,
) -> RiskRejection | None:
    """The first limit the order breaks, or None when it passes.

    Args:
        limits: the account's limits.
        instrument: the instrument traded.
        quantity: the order quantity (after an amendment, the new one).
        limit_price: the limit price, if any; market orders are valued at `reference_price`.
        reference_price: the price collars and market notional are measured against.
    """
    if instrument.symbol in limits.restricted_symbols:
        return RiskRejection(
            RejectCode.RESTRICTED_SYMBOL, f"{instrument.symbol} is restricted for this account"
        )
    if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
        return RiskRejection(
            RejectCode.MAX_ORDER_QUANTITY,
            f"quantity {quantity:,} exceeds the max order quantity {limits.max_order_quantity:,}",
        )
    notional = (limit_price or reference_price).notional(quantity)
    if limits.max_notional_nanos is not None and notional > limits.max_notional_nanos:
        return RiskRejection(
            RejectCode.MAX_NOTIONAL,
            f"notional {format_nanos(notional)} exceeds the max notional "
            f"{format_nanos(limits.max_notional_nanos)}",
        )
    if limit_price is not None and limits.price_collar_bps is not None:
        distance = abs(limit_price.nanos - reference_price.nanos)
        if distance * BPS > reference_price.nanos * limits.price_collar_bps:
            return RiskRejection(
                RejectCode.PRICE_COLLAR,
                f"limit price {limit_price} is more than {limits.price_collar_bps} bps "
                f"from the reference price {reference_price}",
            )
    return None


def rate_limit_rejection(limit: int) -> RiskRejection:
    return RiskRejection(
        RejectCode.RATE_LIMIT, f"more than {limit} orders per second for this account"
    )


def accounts_from_mapping(data: Mapping[str, Any]) -> dict[str, Account]:
    """Builds the account table from ``{"accounts": [ {...}, ... ]}``.

    Raises:
        InvalidArgument: every bad entry, with its path and value.
    """
    entries = data.get("accounts")
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise InvalidArgument.single("accounts", entries, "must be a list")
    violations: list[FieldViolation] = []
    table: dict[str, Account] = {}
    for i, entry in enumerate(entries):
        path = f"accounts[{i}]"
        if not isinstance(entry, Mapping):
            violations.append(FieldViolation(path, entry, "must be a mapping"))
            continue
        account_id = entry.get("id")
        if not isinstance(account_id, str) or not account_id.strip():
            violations.append(
                FieldViolation(f"{path}.id", account_id, "must be a non-empty string")
            )
            continue
        portfolios = entry.get("portfolios")
        if (
            not isinstance(portfolios, Sequence)
            or isinstance(portfolios, str)
            or not portfolios
            or not all(isinstance(p, str) and p for p in portfolios)
        ):
            violations.append(
                FieldViolation(f"{path}.portfolios", portfolios, "must be a list of names")
            )
            continue
        limits = _limits(entry.get("limits", {}), f"{path}.limits", violations)
        if limits is not None:
            table[account_id] = Account(
                account_id=account_id,
                name=str(entry.get("name", "")),
                portfolios=frozenset(portfolios),
                limits=limits,
            )
    if violations:
        raise InvalidArgument(violations)
    return table


def _limits(raw: Any, path: str, violations: list[FieldViolation]) -> RiskLimits | None:
    if not isinstance(raw, Mapping):
        violations.append(FieldViolation(path, raw, "must be a mapping"))
        return None
    before = len(violations)

    def positive_int(key: str) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if type(value) is not int or value <= 0:
            violations.append(FieldViolation(f"{path}.{key}", value, "must be a positive integer"))
            return None
        return value

    notional: int | None = None
    if raw.get("max_notional") is not None:
        try:
            notional = parse_money(raw["max_notional"])
        except ValueError:
            violations.append(
                FieldViolation(f"{path}.max_notional", raw["max_notional"], "must be an amount")
            )
    restricted = raw.get("restricted_symbols", [])
    if not isinstance(restricted, Sequence) or isinstance(restricted, str):
        violations.append(
            FieldViolation(f"{path}.restricted_symbols", restricted, "must be a list")
        )
        restricted = []
    limits = RiskLimits(
        max_order_quantity=positive_int("max_order_quantity"),
        max_notional_nanos=notional,
        price_collar_bps=positive_int("price_collar_bps"),
        restricted_symbols=frozenset(str(s) for s in restricted),
        max_orders_per_second=positive_int("max_orders_per_second"),
    )
    return limits if len(violations) == before else None
