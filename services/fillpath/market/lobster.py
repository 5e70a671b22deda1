"""Replay of recorded market data in the LOBSTER format (lobsterdata.com), so a desk with real
data can look at it through the same records the simulator writes.

A LOBSTER day is two CSV files without headers:
- ``*_message_*.csv``: time (seconds after midnight), type (1 new limit order, 2 partial cancel,
  3 delete, 4 execution of a visible order, 5 execution of a hidden order, 6 cross trade,
  7 trading halt), order id, size, price (dollars × 10,000), direction (1 buy, -1 sell: the
  side of the order in the book);
- ``*_orderbook_*.csv``: the book *after* each message, level by level: ask price, ask size,
  bid price, bid size, … (empty levels: price ±9,999,999,999 and size 0).

`LobsterReplay` rebuilds the book with the lab's numba book (one venue), seeded from the first
orderbook row, and writes the lab's OUT records — a quote when the top of book changes, a print
per execution — timed in seconds after the 09:30 open. Orders that were resting before the file
starts have ids the messages never introduced; their cancels and executions come off the seeded
quantity at their price. What rested deeper than the file's levels at the start is unknown, so
levels below the file's depth fill in only as orders arrive there (request more levels from
LOBSTER than you need). `levels_after` exposes the rebuilt book for checks against the
orderbook file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fillpath.core.errors import InvalidArgument
from fillpath.core.price import Price
from fillpath.core.session import US_EQUITY_PROFILE
from fillpath.market import book
from fillpath.market.lab import MarketData
from fillpath.market.layout import BACKGROUND, BUY, NO_LEVEL, OUT, OUT_QUOTE, OUT_TRADE, SELL
from fillpath.market.plot import DayRecorder, plot_day

OPEN_SECONDS = 9.5 * 3600
EMPTY_PRICE = 9_999_999_999
NANOS_PER_LOBSTER_UNIT = 100_000  # LOBSTER prices are dollars × 10,000
_SEEDED = -2  # owner of the orders seeded from the first orderbook row


@dataclass(frozen=True, slots=True)
class LobsterDay:
    messages: np.ndarray  # float64[n, 6]: time, type, id, size, price, direction
    orderbook: np.ndarray | None  # int64[n, 4 × levels]


def read_lobster(message_file: Path, orderbook_file: Path | None = None) -> LobsterDay:
    """Reads a LOBSTER message file (and its orderbook file).

    Raises:
        InvalidArgument: a file that is not LOBSTER-shaped, named with the row that is not.
    """
    try:
        messages = np.loadtxt(message_file, delimiter=",", ndmin=2, usecols=range(6))
    except ValueError as err:
        raise InvalidArgument.single(
            str(message_file), "", f"not a LOBSTER message file: {err}"
        ) from err
    types = messages[:, 1]
    bad = np.flatnonzero(~np.isin(types, [1, 2, 3, 4, 5, 6, 7]))
    if len(bad):
        raise InvalidArgument.single(
            f"{message_file}: row {bad[0] + 1} type", types[bad[0]], "LOBSTER event types are 1–7"
        )
    orderbook = None
    if orderbook_file is not None:
        orderbook = np.loadtxt(orderbook_file, delimiter=",", ndmin=2, dtype=np.int64)
        if orderbook.shape[0] != messages.shape[0] or orderbook.shape[1] % 4:
            raise InvalidArgument.single(
                str(orderbook_file),
                orderbook.shape,
                f"needs one row per message ({messages.shape[0]}) of 4 columns per level",
            )
    return LobsterDay(messages=messages, orderbook=orderbook)


class LobsterReplay:
    """Replays a LOBSTER day into a book, message by message, writing OUT records."""

    def __init__(self, day: LobsterDay, *, tick_nanos: int = 10_000_000) -> None:
        if day.orderbook is None:
            raise InvalidArgument.single("orderbook_file", None, "needed to seed the opening book")
        if tick_nanos <= 0 or tick_nanos % NANOS_PER_LOBSTER_UNIT:
            raise InvalidArgument.single(
                "tick", tick_nanos / 1e9, "a positive multiple of LOBSTER's $0.0001"
            )
        self._day = day
        self._tick = tick_nanos
        self._per_tick = tick_nanos // NANOS_PER_LOBSTER_UNIT  # LOBSTER price units per tick
        book_prices = np.abs(day.orderbook[:, 0::2].ravel())
        visible = day.messages[day.messages[:, 1] != 5, 4].astype(np.int64)  # hidden: any price
        prices = np.concatenate([visible, book_prices[book_prices != EMPTY_PRICE]])
        prices = prices[prices > 0]
        off_grid = prices[prices % self._per_tick != 0]
        if len(off_grid):
            raise InvalidArgument.single(
                "tick", tick_nanos / 1e9, f"price {off_grid[0] / 1e4} is not on this tick grid"
            )
        # A grid that holds every price of the file, with room around it.
        low, high = int(prices.min()) // self._per_tick, int(prices.max()) // self._per_tick
        self._base = low - 16
        self._books = book.new_books(1, high - low + 33, 1 << 20)
        first = day.orderbook[0]
        self._slots: dict[int, int] = {}
        self._seeded: dict[tuple[int, int], int] = {}  # (side, level) → slot of the seed order
        for i in range(0, len(first), 4):
            for price, size, side in (
                (first[i], first[i + 1], SELL),
                (first[i + 2], first[i + 3], BUY),
            ):
                if size > 0 and abs(price) != EMPTY_PRICE:
                    level = self._level(price)
                    self._seeded[(side, level)] = book.add(
                        self._books, 0, side, level, int(size), _SEEDED, np.inf
                    )
        self._next = 1  # row 0's message is already in the seeded book
        self._top = (NO_LEVEL, 0, NO_LEVEL, 0)

    @property
    def rows(self) -> int:
        return len(self._day.messages)

    def replay(self, until_row: int | None = None) -> np.ndarray:
        """Applies the messages up to `until_row` (exclusive; all by default); their records."""
        end = self.rows if until_row is None else min(until_row, self.rows)
        out = np.zeros(2 * max(0, end - self._next), dtype=OUT)
        n = 0
        for row in range(self._next, end):
            time, kind, order_id, size, price, direction = self._day.messages[row]
            t = float(time) - OPEN_SECONDS
            side = BUY if direction > 0 else SELL
            kind, order_id, size = int(kind), int(order_id), int(size)
            level = self._level(int(price))
            if kind == 1:
                self._slots[order_id] = book.add(
                    self._books, 0, side, level, size, BACKGROUND, np.inf
                )
            elif kind in (2, 3, 4):
                self._reduce(order_id, side, level, size, kind == 3)
            if kind in (4, 5):
                r = out[n]
                r["t"], r["kind"], r["venue"], r["qty"] = t, OUT_TRADE, 0, size
                r["price"] = int(price) * NANOS_PER_LOBSTER_UNIT  # hidden ones may be mid-tick
                r["side"] = SELL if side == BUY else BUY  # the aggressor hit the resting side
                r["handle"] = BACKGROUND
                n += 1
            top = self._top_of_book()
            if top != self._top:
                self._top = top
                r = out[n]
                r["t"], r["kind"], r["venue"], r["handle"] = t, OUT_QUOTE, 0, BACKGROUND
                r["price"] = self._nanos(top[0])
                r["qty"], r["price2"], r["qty2"] = top[1], self._nanos(top[2]), top[3]
                n += 1
        self._next = max(self._next, end)
        return out[:n]

    def levels_after(self, depth: int) -> np.ndarray:
        """The book now, in the orderbook file's layout (ask px, ask size, bid px, bid size, …)."""
        row = np.zeros(4 * depth, dtype=np.int64)
        b = self._books
        for side, offset, step, empty in ((SELL, 0, 1, EMPTY_PRICE), (BUY, 2, -1, -EMPTY_PRICE)):
            level = int(b.best[0, side])
            for i in range(depth):
                while (
                    level != NO_LEVEL
                    and 0 <= level < b.depth.shape[2]
                    and b.depth[0, side, level] == 0
                ):
                    level += step
                if level == NO_LEVEL or not 0 <= level < b.depth.shape[2]:
                    row[4 * i + offset], row[4 * i + offset + 1] = empty, 0
                    continue
                row[4 * i + offset] = (self._base + level) * self._per_tick
                row[4 * i + offset + 1] = b.depth[0, side, level]
                level += step
        return row

    def _reduce(self, order_id: int, side: int, level: int, size: int, delete: bool) -> None:
        slot = self._slots.get(order_id)
        if slot is None:
            # An order from before the file: it is part of the seeded quantity at its price.
            slot = self._seeded.get((side, level))
            if slot is None or self._books.pool[slot]["qty"] == 0:
                return
            delete = size >= self._books.pool[slot]["qty"]
        elif delete or size >= self._books.pool[slot]["qty"]:
            delete = True
        if delete:
            book.remove(self._books, slot)
            self._slots.pop(order_id, None)
            if self._seeded.get((side, level)) == slot:
                del self._seeded[(side, level)]
        else:
            book.reduce(self._books, slot, size)

    def _top_of_book(self) -> tuple[int, int, int, int]:
        b = self._books
        bid, ask = int(b.best[0, BUY]), int(b.best[0, SELL])
        return (
            bid,
            int(b.depth[0, BUY, bid]) if bid != NO_LEVEL else 0,
            ask,
            int(b.depth[0, SELL, ask]) if ask != NO_LEVEL else 0,
        )

    def _level(self, lobster_price: int) -> int:
        return abs(lobster_price) // self._per_tick - self._base

    def _nanos(self, level: int) -> int:
        return 0 if level == NO_LEVEL else (self._base + level) * self._tick


def replay_lobster(
    message_file: Path,
    orderbook_file: Path,
    *,
    symbol: str = "LOBSTER",
    tick: str = "0.01",
    plot_path: Path | None = None,
) -> dict[str, str]:
    """Replays a LOBSTER day; its figures as text (and a PNG of it at `plot_path`)."""
    tick_nanos = Price.parse(tick).nanos
    replay = LobsterReplay(read_lobster(message_file, orderbook_file), tick_nanos=tick_nanos)
    records = replay.replay()
    trades = records[records["kind"] == OUT_TRADE]
    quotes = records[records["kind"] == OUT_QUOTE]
    both = (quotes["price"] > 0) & (quotes["price2"] > 0)
    spreads = (quotes["price2"][both] - quotes["price"][both]) / tick_nanos
    summary = {
        "messages": f"{replay.rows:,}",
        "prints": f"{len(trades):,}",
        "volume": f"{int(trades['qty'].sum()):,}",
        "quote changes": f"{len(quotes):,}",
        "median spread, ticks": f"{np.median(spreads):g}" if len(spreads) else "-",
        "first / last message": f"{records['t'][0] / 3600 + 9.5:.4f} h / "
        f"{records['t'][-1] / 3600 + 9.5:.4f} h"
        if len(records)
        else "-",
    }
    if plot_path is not None:
        recorder = DayRecorder(symbol=symbol, venues=1)
        recorder(MarketData(symbol=symbol, records=records, received=records["t"]))
        plot_day(
            recorder,
            tick_nanos=tick_nanos,
            session_seconds=6.5 * 3600,
            profile=US_EQUITY_PROFILE,
            path=plot_path,
            title=f"{symbol}: LOBSTER replay of {message_file.name}",
        )
        summary["plot"] = str(plot_path)
    return summary
