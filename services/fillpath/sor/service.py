"""The router as a service: the book and the learner fed from the bus, the figures refreshed
from Redis, decisions recorded in the event log, and the quality report.

`Routing.refresh` runs every `REFRESH_INTERVAL` seconds on its own thread: it counts the child
orders that outlived their venue's latency budget as failures, reads the breakers and the
learned counters from Redis (which every replica writes to), and writes the figures into the
book's state arrays. A decision therefore uses what every replica has learned up to a quarter
of a second ago, and a restarted router starts from what was learned before.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fillpath.api.v1 import events_pb2
from fillpath.core.instruments import Instrument
from fillpath.core.routing import RoutingDecision
from fillpath.infra.bus import MARKET_DATA_TOPIC, ORDERS_TOPIC, Bus, BusMessage
from fillpath.infra.event_store import CommandContext
from fillpath.sor.decisions import DecisionLog
from fillpath.sor.market import MarketBook
from fillpath.sor.quality import Breaker, Learner, QualityStore, figures
from fillpath.sor.router import RouteOrder, Router
from fillpath.sor.state import DARK

log = logging.getLogger("fillpath.sor")

REFRESH_INTERVAL = 0.25
SCORE_SCALE_BPS = 10.0
"""A venue's score is 100 · exp(−cost / SCORE_SCALE_BPS): 100 when a lot there costs nothing
or earns, 37 at 10 bps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueFigures:
    venue: str
    symbol: str
    dark: bool
    score: float
    liquidity: float  # lit: displayed shares, both sides; dark: expected shares a ping finds
    latency_us: float
    cost_bps: float  # one lot on this venue alone, all in (NaN: nothing would go there)
    fill_rate: float  # lit: passive fill rate; dark: the chance a ping finds a contra
    markout_bps: float
    available: bool
    circuit: str  # the venue's breaker: closed, open or half-open
    updated_at: datetime


def load_learned(
    book: MarketBook, quality: QualityStore, instruments: dict[str, Instrument]
) -> dict[str, np.ndarray]:
    """Writes what every replica has learned (Redis) into `book`; the passive fill rate of each
    venue, per symbol."""
    passive = {}
    symbols = sorted(set(book.symbols()) | set(quality.symbols()))
    for symbol, counters in quality.counters(symbols).items():
        instrument = instruments.get(symbol)
        lot = instrument.lot_size if instrument is not None else 1
        learned = figures(book.venues, counters, lot)
        passive[symbol] = learned["passive_fill_rate"]
        book.set_learned(symbol, learned)
    return passive


class Routing:
    def __init__(
        self,
        router: Router,
        book: MarketBook,
        learner: Learner,
        quality: QualityStore,
        decisions: DecisionLog,
        instruments: dict[str, Instrument],
        *,
        breaker_failures: int,
    ) -> None:
        self.router = router
        self.book = book
        self.learner = learner
        self.quality = quality
        self.decisions = decisions
        self._instruments = instruments
        self._breaker_failures = breaker_failures
        self._passive_fill: dict[str, np.ndarray] = {}
        self._updated = datetime.now(UTC)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sor-refresh", daemon=True)

    def start(self) -> Routing:
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def subscribe(self, bus: Bus) -> None:
        """Every replica folds the whole feed into its book; order events are shared out
        between replicas (what one learns goes to Redis for all)."""
        replica = f"sor-market-{socket.gethostname()}-{os.getpid()}"
        bus.subscribe(MARKET_DATA_TOPIC, replica, self._on_market_data)
        bus.subscribe(ORDERS_TOPIC, "sor", self._on_order_event)

    def _on_market_data(self, message: BusMessage) -> None:
        envelope = events_pb2.EventEnvelope.FromString(message.payload)
        self.book.apply(envelope)
        self.learner.on_market_data(envelope)

    def _on_order_event(self, message: BusMessage) -> None:
        self.learner.on_order_event(events_pb2.EventEnvelope.FromString(message.payload))

    def route(self, order: RouteOrder, context: CommandContext) -> RoutingDecision:
        decision = self.router.route(order)
        self.decisions.record(decision, context)
        return decision

    def refresh(self) -> None:
        self.learner.check_timeouts()
        self.router.breakers = self.quality.breakers()
        self._passive_fill = load_learned(self.book, self.quality, self._instruments)
        self._updated = datetime.now(UTC)

    def _run(self) -> None:
        while not self._stopped.wait(REFRESH_INTERVAL):
            try:
                self.refresh()
            except Exception:
                log.exception("refreshing venue quality failed; retrying")

    def venue_figures(self, symbol: str, venues: tuple[str, ...] = ()) -> list[VenueFigures]:
        """The quality of each venue (or of `venues`) for `symbol`, or for every symbol the
        router has seen when `symbol` is empty."""
        symbols = [symbol] if symbol else self.book.symbols()
        out = []
        for name in symbols:
            state = self.book.snapshot(name, 1.0)
            costs = self.router.unit_costs(name)
            if state is None:
                continue
            market = self.book.get(name)
            mid = market.mid if market is not None else 0.0
            passive = self._passive_fill.get(name, np.full(len(state), math.nan))
            for v, spec in enumerate(self.book.venues):
                if venues and spec.name not in venues:
                    continue
                row = state[v]
                dark = spec.kind == DARK
                cost = float(costs[v]) if costs is not None else math.nan
                breaker = self.router.breakers.get(spec.name, Breaker())
                circuit = breaker.state(datetime.now(UTC).timestamp(), self._breaker_failures)
                out.append(
                    VenueFigures(
                        venue=spec.name,
                        symbol=name,
                        dark=dark,
                        score=0.0
                        if math.isnan(cost)
                        else 100 * math.exp(-max(cost, 0.0) / SCORE_SCALE_BPS),
                        liquidity=float(row["dark_fill_prob"] * row["dark_fill_size"])
                        if dark
                        else float(row["bid_qty"].sum() + row["ask_qty"].sum()),
                        latency_us=float(row["latency_us"]),
                        cost_bps=cost,
                        fill_rate=float(row["dark_fill_prob"]) if dark else float(passive[v]),
                        markout_bps=float(row["markout_bps"]),
                        available=spec.enabled and circuit != "open" and mid > 0,
                        circuit=circuit,
                        updated_at=self._updated,
                    )
                )
        return out
