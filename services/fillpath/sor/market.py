"""What the router knows of every instrument: each venue's book, folded from the market-data
topic into the state arrays the routing kernel reads (fillpath.sor.state).

`BookDepth` and `QuoteUpdated` set a venue's levels; `TradePrinted` feeds the rate at which
each venue trades (shares per second of market time, an exponentially weighted mean), which is
how fast a queue at its touch is worked off; `ConsolidatedQuoteUpdated` gives the mid that
markouts are measured against. Every replica of the router subscribes to the feed itself, so
they all hold the same books. The figures learned from our own orders (fillpath.sor.quality)
are written into the same arrays by `set_learned`; `snapshot` hands the router a consistent
copy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fillpath.api.v1 import events_pb2
from fillpath.sor.state import DEPTH, empty_state
from fillpath.sor.venues import VenueSpec

NANOS = 1e9
RATE_HALF_LIFE = 120.0
"""Seconds of market time over which a venue's trading rate forgets half of what it saw."""

LEARNED = ("latency_us", "dark_fill_prob", "dark_fill_size", "markout_bps", "reject_rate")


@dataclass(slots=True)
class _Rate:
    """Shares per second, exponentially weighted over market time."""

    value: float = 0.0
    at: float = math.nan  # seconds

    def add(self, quantity: float, at: float) -> None:
        if math.isnan(self.at):
            self.at = at
            return
        elapsed = max(at - self.at, 0.0)
        decay = math.exp(-elapsed * math.log(2) / RATE_HALF_LIFE)
        # Mean of the rate over the elapsed time, folded in with the weight it has earned.
        self.value = self.value * decay + quantity * (1 - decay) / max(elapsed, 1e-3)
        self.at = at


class Market:
    """One instrument's state, with the lock that keeps its rows whole."""

    def __init__(self, template: np.ndarray) -> None:
        self.lock = threading.Lock()
        self.state = template.copy()
        self.rates = [_Rate() for _ in range(len(template))]
        self.mid = 0.0  # nanos, the consolidated mid
        self.bid = 0
        self.ask = 0
        self.time = 0.0  # seconds since the epoch, market time


class MarketBook:
    def __init__(self, venues: Sequence[VenueSpec]) -> None:
        self.venues = tuple(venues)
        self.index = {v.name: i for i, v in enumerate(venues)}
        template = empty_state(len(venues))
        for i, v in enumerate(venues):
            row = template[i]
            row["kind"] = v.kind
            row["maker_fee"] = v.maker_fee
            row["taker_fee"] = v.taker_fee
            row["midpoint_fee"] = v.midpoint_fee
            row["latency_us"] = v.latency_us
            row["min_qty"] = v.min_qty
        self._template = template
        self._markets: dict[str, Market] = {}
        self._lock = threading.Lock()

    def market(self, symbol: str) -> Market:
        market = self._markets.get(symbol)
        if market is None:
            with self._lock:
                market = self._markets.setdefault(symbol, Market(self._template))
        return market

    def symbols(self) -> list[str]:
        return list(self._markets)

    def get(self, symbol: str) -> Market | None:
        return self._markets.get(symbol)

    def apply(self, envelope: events_pb2.EventEnvelope) -> None:
        """Folds one market-data event in; others are ignored."""
        kind = envelope.WhichOneof("payload")
        if kind == "book_depth":
            depth = envelope.book_depth
            venue = self.index.get(depth.venue)
            if venue is None:
                return
            market = self.market(depth.symbol)
            with market.lock:
                row = market.state[venue]
                for name, levels in (("bid", depth.bids), ("ask", depth.asks)):
                    px, qty = row[f"{name}_px"], row[f"{name}_qty"]
                    for k in range(DEPTH):
                        px[k], qty[k] = (
                            (levels[k].price_nanos, levels[k].size) if k < len(levels) else (0, 0)
                        )
        elif kind == "quote_updated":
            quote = envelope.quote_updated
            venue = self.index.get(quote.venue)
            if venue is None:
                return
            market = self.market(quote.symbol)
            with market.lock:
                row = market.state[venue]
                # A new top: levels behind it are stale until the next depth snapshot.
                _set_top(row, "bid", quote.bid_price_nanos, quote.bid_size)
                _set_top(row, "ask", quote.ask_price_nanos, quote.ask_size)
        elif kind == "trade_printed":
            trade = envelope.trade_printed
            venue = self.index.get(trade.venue)
            if venue is None:
                return
            market = self.market(trade.symbol)
            with market.lock:
                market.rates[venue].add(trade.quantity, trade.exchange_time_unix_nanos / NANOS)
        elif kind == "consolidated_quote_updated":
            nbbo = envelope.consolidated_quote_updated
            market = self.market(nbbo.symbol)
            with market.lock:
                market.bid, market.ask = nbbo.bid_price_nanos, nbbo.ask_price_nanos
                if market.bid > 0 and market.ask > 0:
                    market.mid = (market.bid + market.ask) / 2.0
                market.time = nbbo.exchange_time_unix_nanos / NANOS

    def set_learned(self, symbol: str, figures: dict[str, np.ndarray]) -> None:
        """Writes the learned columns (`LEARNED`, one value per venue) of `symbol`."""
        market = self.market(symbol)
        with market.lock:
            for name in LEARNED:
                market.state[name] = figures[name]

    def snapshot(self, symbol: str, horizon: float) -> np.ndarray | None:
        """A copy of `symbol`'s state, with `passive_volume` the shares expected to trade at
        our touch of each venue within `horizon` seconds (half its trading rate: one side)."""
        market = self._markets.get(symbol)
        if market is None:
            return None
        with market.lock:
            state = market.state.copy()
            rates = [r.value for r in market.rates]
        state["passive_volume"] = np.asarray(rates) * 0.5 * horizon
        return state


def _set_top(row: np.void, side: str, price: int, size: int) -> None:
    px, qty = row[f"{side}_px"], row[f"{side}_qty"]
    if px[0] != price:
        px[1:] = 0
        qty[1:] = 0
    px[0], qty[0] = price, size
