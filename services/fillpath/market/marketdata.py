"""Market data out of the lab: the consolidated view a trader keeps.

`QuoteBoard` folds the lab's per-venue quotes into each venue's top of book and the consolidated
best bid and offer (NBBO).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fillpath.market.layout import OUT_QUOTE


@dataclass(frozen=True, slots=True)
class Nbbo:
    bid: int  # nanos; 0 when no venue bids
    bid_size: int
    ask: int
    ask_size: int

    @property
    def two_sided(self) -> bool:
        return self.bid > 0 and self.ask > 0

    @property
    def mid(self) -> int:
        """The midpoint in nanos (rounded down to a nano)."""
        return (self.bid + self.ask) // 2


@dataclass(slots=True)
class QuoteBoard:
    """The latest top of book of each lit venue, per symbol."""

    venues: int
    tops: dict[str, np.ndarray] = field(default_factory=dict)  # symbol → int64[venue, 4]

    def update(self, symbol: str, records: np.ndarray) -> None:
        quotes = records[records["kind"] == OUT_QUOTE]
        if not len(quotes):
            return
        top = self.tops.setdefault(symbol, np.zeros((self.venues, 4), dtype=np.int64))
        # The last quote of each venue in the batch is its top now.
        venues = quotes["venue"]
        last = len(venues) - 1 - np.unique(venues[::-1], return_index=True)[1]
        for i in last:
            q = quotes[i]
            top[int(q["venue"])] = (q["price"], q["qty"], q["price2"], q["qty2"])

    def top(self, symbol: str, venue: int) -> tuple[int, int, int, int]:
        """(bid, bid size, ask, ask size) of one venue; prices 0 where a side is empty."""
        top = self.tops.get(symbol)
        if top is None:
            return (0, 0, 0, 0)
        bid, bid_size, ask, ask_size = (int(x) for x in top[venue])
        return bid, bid_size, ask, ask_size

    def nbbo(self, symbol: str) -> Nbbo:
        top = self.tops.get(symbol)
        if top is None:
            return Nbbo(0, 0, 0, 0)
        bids, asks = top[:, 0], top[:, 2]
        bid = int(bids.max())
        live_asks = asks[asks > 0]
        ask = int(live_asks.min()) if len(live_asks) else 0
        bid_size = int(top[bids == bid, 1].sum()) if bid else 0
        ask_size = int(top[asks == ask, 3].sum()) if ask else 0
        return Nbbo(bid, bid_size, ask, ask_size)
