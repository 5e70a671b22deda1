"""Market data out of the lab: the consolidated view a trader keeps, and the bus events.

`QuoteBoard` folds the lab's per-venue quotes into each venue's top of book and the consolidated
best bid and offer (NBBO). `MarketDataPublisher` turns what the lab releases each step into
events on the market-data topic, keyed by symbol, so algo, SOR, strategy and monitor can
subscribe: every print (`TradePrinted`), each venue's top of book and depth as they stand at the
end of the step (`QuoteUpdated`, `BookDepth` — conflated: a consumer wants the state, not every
flicker), the NBBO when it changed (`ConsolidatedQuoteUpdated`), and one-minute `VolumeBar`s.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
from google.protobuf.message import Message

from fillpath.api.v1 import common_pb2, events_pb2
from fillpath.infra.bus import MARKET_DATA_TOPIC, BusMessage, Publisher
from fillpath.market.lab import MarketData, MarketLab
from fillpath.market.layout import BUY, NO_LEVEL, OUT_QUOTE, OUT_TRADE, SELL


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


@dataclass(slots=True)
class _Bar:
    start: int  # index of the bar: seconds since the open // bar seconds
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0
    notional: int = 0
    trades: int = 0


class MarketDataPublisher:
    """Publishes the lab's market data on `bus` (call it with each `MarketData` released)."""

    def __init__(
        self,
        lab: MarketLab,
        bus: Publisher,
        *,
        depth_levels: int = 5,
        bar_seconds: float = 60.0,
    ) -> None:
        self._lab = lab
        self._bus = bus
        self._depth = depth_levels
        self._bar_seconds = bar_seconds
        self._board = QuoteBoard(venues=len(lab.venues))
        self._nbbo: dict[str, Nbbo] = {}
        self._bars: dict[str, _Bar] = {}
        self._next_bar: dict[str, int] = {}  # the first bar not yet published, per symbol
        self._run = uuid.uuid4().hex[:12]
        self._seq = 0

    def __call__(self, data: MarketData) -> None:
        symbol, records = data.symbol, data.records
        now = float(data.received[-1])
        out: list[tuple[float, str, Message]] = []
        venues = self._lab.venues
        for r in records[records["kind"] == OUT_TRADE]:
            out.append(
                (
                    float(r["t"]),
                    "trade_printed",
                    events_pb2.TradePrinted(
                        symbol=symbol,
                        venue=venues[int(r["venue"])].name,
                        exchange_time_unix_nanos=self._unix_nanos(float(r["t"])),
                        price_nanos=int(r["price"]),
                        quantity=int(r["qty"]),
                        aggressor=common_pb2.SIDE_BUY if r["side"] == BUY else common_pb2.SIDE_SELL,
                    ),
                )
            )
            out.extend(self._bar(symbol, r))
        quotes = records[records["kind"] == OUT_QUOTE]
        if len(quotes):
            self._board.update(symbol, quotes)
            at = self._unix_nanos(float(quotes["t"][-1]))
            for venue in sorted({int(v) for v in quotes["venue"]}):
                bid, bid_size, ask, ask_size = self._board.top(symbol, venue)
                out.append(
                    (
                        now,
                        "quote_updated",
                        events_pb2.QuoteUpdated(
                            symbol=symbol, venue=venues[venue].name, exchange_time_unix_nanos=at,
                            bid_price_nanos=bid, bid_size=bid_size, ask_price_nanos=ask,
                            ask_size=ask_size,
                        ),
                    )
                )  # fmt: skip
                out.append((now, "book_depth", self._book_depth(symbol, venue, at)))
            nbbo = self._board.nbbo(symbol)
            if nbbo != self._nbbo.get(symbol):
                self._nbbo[symbol] = nbbo
                out.append(
                    (
                        now,
                        "consolidated_quote_updated",
                        events_pb2.ConsolidatedQuoteUpdated(
                            symbol=symbol, exchange_time_unix_nanos=at, bid_price_nanos=nbbo.bid,
                            bid_size=nbbo.bid_size, ask_price_nanos=nbbo.ask,
                            ask_size=nbbo.ask_size,
                        ),
                    )
                )  # fmt: skip
        bar = self._bars.get(symbol)
        if bar is not None and (bar.start + 1) * self._bar_seconds <= now:
            out.append((now, "volume_bar", self._close_bar(symbol, bar)))
            del self._bars[symbol]
        self._bus.publish([self._message(symbol, t, name, m) for t, name, m in out])

    def _bar(self, symbol: str, trade: np.void) -> list[tuple[float, str, Message]]:
        # A print that reaches us after its minute's bar was published (a slower venue's, at
        # the boundary) counts in the open bar: a published bar is never revised.
        index = max(int(float(trade["t"]) // self._bar_seconds), self._next_bar.get(symbol, 0))
        closed: list[tuple[float, str, Message]] = []
        bar = self._bars.get(symbol)
        if bar is not None:
            index = max(index, bar.start)
        if bar is not None and bar.start != index:
            closed.append((float(trade["t"]), "volume_bar", self._close_bar(symbol, bar)))
            bar = None
        if bar is None:
            price = int(trade["price"])
            bar = self._bars[symbol] = _Bar(start=index, open=price, high=price, low=price)
        price, qty = int(trade["price"]), int(trade["qty"])
        bar.high, bar.low, bar.close = max(bar.high, price), min(bar.low, price), price
        bar.volume += qty
        bar.notional += price * qty
        bar.trades += 1
        return closed

    def _close_bar(self, symbol: str, bar: _Bar) -> events_pb2.VolumeBar:
        self._next_bar[symbol] = bar.start + 1
        vwap = Decimal(bar.notional) / Decimal(bar.volume) if bar.volume else Decimal(0)
        return events_pb2.VolumeBar(
            symbol=symbol,
            start_unix_nanos=self._unix_nanos(bar.start * self._bar_seconds),
            end_unix_nanos=self._unix_nanos((bar.start + 1) * self._bar_seconds),
            open_price_nanos=bar.open, high_price_nanos=bar.high, low_price_nanos=bar.low,
            close_price_nanos=bar.close, volume=bar.volume,
            vwap_price_nanos=int(vwap.to_integral_value(rounding=ROUND_HALF_EVEN)),
            trades=bar.trades,
        )  # fmt: skip

    def _book_depth(self, symbol: str, venue: int, at: int) -> events_pb2.BookDepth:
        books = self._lab.engine(symbol).books
        model = self._lab.model(symbol)
        depth = events_pb2.BookDepth(
            symbol=symbol, venue=self._lab.venues[venue].name, exchange_time_unix_nanos=at
        )
        for side, levels, step in ((BUY, depth.bids, -1), (SELL, depth.asks, 1)):
            level = int(books.best[venue, side])
            while (
                level != NO_LEVEL
                and 0 <= level < books.depth.shape[2]
                and len(levels) < self._depth
            ):
                size = int(books.depth[venue, side, level])
                if size:
                    levels.add(price_nanos=(model.base_ticks + level) * model.tick_nanos, size=size)
                level += step
        return depth

    def _unix_nanos(self, seconds: float) -> int:
        moment: datetime = self._lab.time_of(seconds)
        return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000

    def _message(self, symbol: str, t: float, name: str, payload: Message) -> BusMessage:
        self._seq += 1
        envelope = events_pb2.EventEnvelope(
            position=self._seq,
            stream_id=f"market-data-{symbol}",
            event_type=type(payload).__name__,
            schema_version=1,
        )
        envelope.recorded_at.FromDatetime(self._lab.time_of(t))
        envelope.metadata.event_id = f"md-{self._run}-{self._seq}"
        getattr(envelope, name).CopyFrom(payload)
        return BusMessage(
            topic=MARKET_DATA_TOPIC,
            key=symbol,
            event_id=envelope.metadata.event_id,
            position=self._seq,
            event_type=envelope.event_type,
            payload=envelope.SerializeToString(),
        )
