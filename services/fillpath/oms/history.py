"""What each order event means, in words: the `summary` of the audit trail's entries."""

from __future__ import annotations

from fillpath.core.events import (
    ChildOrderFilled,
    ChildOrderPlaced,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDoneForDay,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderSubmitted,
)
from fillpath.core.price import Price, format_nanos
from fillpath.core.terms import OrderTerms


def _terms(t: OrderTerms) -> str:
    price = f" @ {t.limit_price}" if t.limit_price is not None else ""
    return (
        f"{t.side.name} {t.quantity:,} {t.symbol} {t.order_type.name}{price} {t.time_in_force.name}"
    )


def _px(price: Price | None) -> str:
    return f" @ {price}" if price is not None else ""


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def summarize(event: OrderEvent) -> str:
    match event:
        case OrderSubmitted(terms=terms):
            return f"submitted {_terms(terms)} ({terms.account}/{terms.portfolio})"
        case ChildOrderPlaced(terms=terms):
            return f"child {terms.order_id} placed on {terms.venue}: {_terms(terms)}"
        case OrderAccepted(venue_order_id=venue_id):
            return f"accepted by the venue as {venue_id}" if venue_id else "accepted"
        case OrderRejected(code=code, reason=reason):
            return f"rejected ({code.name}){_because(reason)}"
        case OrderCancelRequested(reason=reason):
            return f"cancel requested{_because(reason)}"
        case OrderCanceled(reason=reason):
            return f"canceled{_because(reason)}"
        case OrderCancelRejected(reason=reason):
            return f"cancel rejected{_because(reason)}"
        case OrderReplaceRequested(quantity=quantity, limit_price=price, reason=reason):
            return f"amend requested to {quantity:,}{_px(price)}{_because(reason)}"
        case OrderReplaced(quantity=quantity, limit_price=price):
            return f"amended to {quantity:,}{_px(price)}"
        case OrderReplaceRejected(reason=reason):
            return f"amend rejected{_because(reason)}"
        case OrderExpired(reason=reason):
            return f"expired{_because(reason)}"
        case OrderDoneForDay():
            return "done for the day"
        case ChildOrderFilled(quantity=q, price=p, venue=venue, liquidity=liquidity, fee_nanos=fee):
            flag = f" {liquidity.name}" if liquidity is not None else ""
            return f"filled {q:,} @ {p} on {venue}{flag}, fee {format_nanos(fee)}"
        case OrderPartiallyFilled(quantity=q, price=p, child_order_id=child):
            return f"partially filled {q:,} @ {p} (from {child})"
        case OrderFilled(quantity=q, price=p, child_order_id=child):
            return f"filled {q:,} @ {p} (from {child}): complete"
    return type(event).__name__
