"""Market data from the bus into the `MarketView`s a service keeps (fillpath.core.market): the
consolidated quote and every print of an instrument it watches; other events and other
instruments pass by."""

from __future__ import annotations

from collections.abc import Mapping

from fillpath.api.v1 import events_pb2
from fillpath.core.market import MarketView

NANOS = 1_000_000_000


def fold(views: Mapping[str, MarketView], envelope: events_pb2.EventEnvelope) -> float | None:
    """Applies a quote or a print to its instrument's view; the exchange time (seconds) of a
    quote applied, else None."""
    kind = envelope.WhichOneof("payload")
    if kind == "consolidated_quote_updated":
        q = envelope.consolidated_quote_updated
        view = views.get(q.symbol)
        if view is not None:
            at = q.exchange_time_unix_nanos / NANOS
            view.on_quote(at, q.bid_price_nanos, q.ask_price_nanos, q.bid_size, q.ask_size)
            return at
    elif kind == "trade_printed":
        trade = envelope.trade_printed
        view = views.get(trade.symbol)
        if view is not None:
            view.on_trade(trade.exchange_time_unix_nanos / NANOS, trade.quantity)
    return None
