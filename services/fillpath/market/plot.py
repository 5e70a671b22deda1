"""A picture of a simulated day: price, spread and the volume profile of one instrument.

Built from the market data the lab published (`DayRecorder` collects it as the session runs), so
the plot shows what a subscriber saw, not the engine's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
import numpy as np

from fillpath.market.lab import MarketData
from fillpath.market.layout import OUT, OUT_QUOTE, OUT_TRADE
from fillpath.market.marketdata import QuoteBoard


@dataclass(slots=True)
class DayRecorder:
    """Samples the NBBO every `every` seconds and keeps every print, for one symbol."""

    symbol: str
    venues: int
    every: float = 10.0
    board: QuoteBoard = field(init=False)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, bid, ask
    trades: list[np.ndarray] = field(default_factory=list)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self.board = QuoteBoard(venues=self.venues)

    def __call__(self, data: MarketData) -> None:
        if data.symbol != self.symbol:
            return
        records = data.records
        self.trades.append(records[records["kind"] == OUT_TRADE])
        quotes = records[records["kind"] == OUT_QUOTE]
        # Sample on the grid: fold the quotes up to each sample time, then read the NBBO.
        while len(quotes) and self._next <= float(quotes["t"][-1]):
            upto = int(np.searchsorted(quotes["t"], self._next, side="right"))
            self.board.update(self.symbol, quotes[:upto])
            quotes = quotes[upto:]
            nbbo = self.board.nbbo(self.symbol)
            if nbbo.two_sided:
                self.samples.append((self._next, nbbo.bid, nbbo.ask))
            self._next += self.every
        self.board.update(self.symbol, quotes)


def plot_day(
    recorder: DayRecorder,
    *,
    tick_nanos: int,
    session_seconds: float,
    profile: tuple[float, ...],
    path: Path,
    title: str,
) -> Path:
    """Writes a three-panel PNG (mid and prints, spread in ticks, volume per bucket) to `path`."""
    samples = np.asarray(recorder.samples, dtype=np.float64).reshape(-1, 3)
    trades: np.ndarray = (
        np.concatenate(recorder.trades) if recorder.trades else np.zeros(0, dtype=OUT)
    )
    hours = samples[:, 0] / 3600 + 9.5
    fig, (price_ax, spread_ax, volume_ax) = plt.subplots(
        3, 1, figsize=(11, 9), gridspec_kw={"height_ratios": [3, 1.3, 2]}
    )
    fig.suptitle(title)
    mid = (samples[:, 1] + samples[:, 2]) / 2e9
    price_ax.plot(hours, mid, lw=0.8, label="NBBO midpoint")
    if len(trades):
        price_ax.scatter(
            trades["t"] / 3600 + 9.5, trades["price"] / 1e9, s=0.3, alpha=0.25, color="tab:orange",
            label="prints",
        )  # fmt: skip
    price_ax.set_ylabel("price")
    price_ax.legend(loc="upper left", markerscale=10)
    spread_ax.plot(hours, (samples[:, 2] - samples[:, 1]) / tick_nanos, lw=0.6, color="tab:green")
    spread_ax.set_ylabel("spread, ticks")
    buckets = len(profile)
    width = session_seconds / buckets
    index = np.minimum((trades["t"] // width).astype(int), buckets - 1)
    volume = np.bincount(index, weights=trades["qty"], minlength=buckets).astype(np.float64)
    starts = 9.5 + np.arange(buckets) * width / 3600
    volume_ax.bar(starts, volume, width=width / 3600 * 0.9, align="edge", label="simulated volume")
    expected = np.asarray(profile) / sum(profile) * volume.sum()
    volume_ax.step(starts, expected, where="post", color="black", lw=1, label="configured profile")
    volume_ax.set_ylabel("shares per half hour")
    volume_ax.set_xlabel("hour of the session (exchange time)")
    volume_ax.legend(loc="upper center")
    for ax in (price_ax, spread_ax, volume_ax):
        ax.set_xlim(9.5, 9.5 + session_seconds / 3600)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
