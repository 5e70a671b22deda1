"""A trading desk on the market lab, in one process: the lab's session for one instrument, the
smart order router of `fillpath.sor` fed by the lab's market data (book, venue-quality
learner with its counters in Redis), and the OMS's own domain model (`ParentOrder`) keeping
every parent and child order. What the quality benchmarks execute on: the same parts as the
services, without the gRPC hops and the event store between them, so a whole simulated day
runs in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import redis

from fillpath.api.v1 import events_pb2
from fillpath.core.commands import (
    ApplyExecutionReport,
    CancelOrder,
    ChildOrderRequest,
    PlaceChildOrders,
    SubmitOrder,
)
from fillpath.core.enums import LiquidityFlag, OrderType, Side, TimeInForce
from fillpath.core.events import OrderEvent
from fillpath.core.ids import stream_id_of
from fillpath.core.parent_order import ParentOrder
from fillpath.core.price import Price
from fillpath.core.routing import RouteAllocation
from fillpath.core.venues import VenueOrder
from fillpath.infra.bus import BusMessage
from fillpath.infra.event_proto import envelope_of
from fillpath.infra.event_store import EventMetadata, RecordedEvent
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import SorSettings
from fillpath.market.config import LabConfig, lab_parameters
from fillpath.market.lab import MarketLab, lab_for
from fillpath.market.marketdata import MarketDataPublisher
from fillpath.monitor.tca import Fills, Quotes, Tape, TcaOrder, order_tca
from fillpath.sor.market import NANOS, MarketBook
from fillpath.sor.quality import Learner, QualityStore
from fillpath.sor.router import Router
from fillpath.sor.service import load_learned
from fillpath.sor.venues import load_venue_specs

LIQUIDITY = {
    LiquidityFlag.MAKER: "maker",
    LiquidityFlag.TAKER: "taker",
    LiquidityFlag.MIDPOINT: "midpoint",
    None: "taker",
}


class Feed:
    """The lab's market data, folded as RoutingService folds it (book and learner), and kept
    in seconds since the open for TCA and the algorithms: quotes (bid, ask in currency) and
    prints."""

    def __init__(self, lab: MarketLab, book: MarketBook, learner: Learner) -> None:
        self._open = lab.time_of(0.0).timestamp()
        self._book = book
        self._learner = learner
        self.quotes: list[tuple[float, float, float]] = []  # seconds, bid, ask (currency)
        self.sizes: list[tuple[int, int]] = []  # each quote's bid and ask size
        self.trades: list[tuple[float, int, float]] = []  # seconds, quantity, price

    def publish(self, messages: Sequence[BusMessage]) -> None:
        for message in messages:
            envelope = events_pb2.EventEnvelope.FromString(message.payload)
            self._book.apply(envelope)
            self._learner.on_market_data(envelope)
            kind = envelope.WhichOneof("payload")
            if kind == "consolidated_quote_updated":
                q = envelope.consolidated_quote_updated
                if q.bid_price_nanos > 0 and q.ask_price_nanos > 0:
                    at = q.exchange_time_unix_nanos / NANOS - self._open
                    self.quotes.append((at, q.bid_price_nanos / NANOS, q.ask_price_nanos / NANOS))
                    self.sizes.append((q.bid_size, q.ask_size))
            elif kind == "trade_printed":
                t = envelope.trade_printed
                at = t.exchange_time_unix_nanos / NANOS - self._open
                self.trades.append((at, t.quantity, t.price_nanos / NANOS))


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our fills, for TCA."""

    time: float
    """Seconds since the open."""
    quantity: int
    price_nanos: int
    liquidity: str
    fee_nanos: int
    venue: str


@dataclass(frozen=True, slots=True)
class Report:
    """An execution report as it reached the desk, for the child order of `owner`."""

    owner: object
    report: ApplyExecutionReport
    received: datetime


class LabDesk:
    """One lab session of one instrument, with the router and the OMS model around it."""

    def __init__(
        self,
        symbol: str,
        seed: int,
        redis_url: str,
        *,
        leakage_guard: bool = True,
        volatility: float = 1.0,
        liquidity: float = 1.0,
    ) -> None:
        """`volatility` and `liquidity` scale the lab's daily volatility and volume of the
        instrument (a market regime) away from its reference data, which the router and the
        algorithms go on reading."""
        reference = load_reference_data()
        self.symbol = symbol
        self.config = LabConfig(seed=seed)
        instrument = reference.instruments[symbol]
        simulated = replace(
            instrument,
            daily_volatility=instrument.daily_volatility * volatility,
            adv=round(instrument.adv * liquidity),
        )
        self.lab = lab_for(self.config, {symbol: simulated}, lab_parameters(), [symbol])
        self.instrument = reference.instruments[symbol]
        self.instruments = reference.instruments
        specs = load_venue_specs(None)
        self.book = MarketBook(specs)
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        self.quality = QualityStore(client, specs)
        settings = replace(SorSettings(), leakage_guard=leakage_guard)
        self.learner = Learner(
            self.quality, self.book, breaker_failures=settings.breaker_failures,
            breaker_cooldown=settings.breaker_cooldown, clock=self.unix_now,
        )  # fmt: skip
        self.router = Router(
            self.book, reference.instruments, settings, clock=self.time_now, seed=seed
        )
        self.feed = Feed(self.lab, self.book, self.learner)
        self.publisher = MarketDataPublisher(self.lab, self.feed)
        self.venues = {v.name: v for v in self.lab.venues}
        self.owner_of: dict[str, object] = {}
        self._seq = 0

    # ---- clocks ------------------------------------------------------------------------------

    def time_now(self) -> datetime:
        return self.lab.time_of(self.lab.now)

    def unix_now(self) -> float:
        return self.time_now().timestamp()

    def seconds(self, at: datetime) -> float:
        """`at` in seconds since the open."""
        return (at - self.lab.time_of(0.0)).total_seconds()

    # ---- the session -------------------------------------------------------------------------

    def advance(self, until: float) -> list[Report]:
        """Runs the lab to `until` (seconds since the open): market data to the router's book
        and the learner, execution reports to the orders (and the learner); returns the
        reports of the children the desk placed, stamped when they reached it (the venue's
        time plus the way back)."""
        step = self.lab.advance(until)
        for data in step.market_data:
            self.publisher(data)
        reports = []
        for report in step.reports:
            owner = self.owner_of.get(report.order_id)
            if owner is None:
                continue
            venue = self.venues[report.venue]
            assert report.transact_time is not None
            received = report.transact_time + timedelta(seconds=venue.order_entry_latency)
            reports.append(Report(owner, report, received))
        return reports

    def refresh_router(self) -> None:
        """What the router service does between requests: breakers and learned quality."""
        self.router.breakers = self.quality.breakers()
        load_learned(self.book, self.quality, {self.symbol: self.instrument})

    def learn(self, events: Sequence[OrderEvent], at: datetime) -> None:
        """Order events to the venue-quality learner, as the bus would bring them."""
        for event in events:
            self._seq += 1
            recorded = RecordedEvent(
                position=self._seq, stream_id=stream_id_of(event.order_id), version=self._seq,
                event_type=type(event).__name__, schema_version=1, event=event,
                metadata=EventMetadata(event_id=f"desk-{self._seq}"), recorded_at=at, hash=b"",
            )  # fmt: skip
            self.learner.on_order_event(envelope_of(recorded))

    def apply(self, order: ParentOrder, report: Report) -> list[OrderEvent]:
        events = order.apply_report(report.report, report.received)
        self.learn(events, report.received)
        return events

    # ---- orders ------------------------------------------------------------------------------

    def submit(
        self, order_id: str, side: Side, quantity: int, limit_price: Price | None = None
    ) -> ParentOrder:
        at = self.time_now()
        terms = SubmitOrder(
            client_order_id=order_id, account="DESK-EQ", portfolio="ALPHA", symbol=self.symbol,
            side=side, order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            time_in_force=TimeInForce.DAY, quantity=quantity, limit_price=limit_price,
        ).terms(order_id)  # fmt: skip
        order, events = ParentOrder.submit(terms, at, None)
        self.learn(events, at)
        return order

    def place(
        self,
        order: ParentOrder,
        allocations: Sequence[RouteAllocation],
        client_ids: Sequence[str],
        owner: object,
    ) -> list[OrderEvent]:
        """Records the child orders (write-ahead, as the OMS does), then sends them."""
        command = PlaceChildOrders(
            parent_order_id=order.order_id,
            children=tuple(
                ChildOrderRequest(
                    client_order_id=cid, venue=a.venue, quantity=a.quantity,
                    order_type=a.order_type, time_in_force=a.time_in_force,
                    limit_price=a.limit_price, post_only=a.post_only, min_quantity=a.min_quantity,
                )
                for cid, a in zip(client_ids, allocations, strict=True)
            ),
        )  # fmt: skip
        at = self.time_now()
        events = order.place_children(command, at)
        self.learn(events, at)
        for event in events:
            terms = event.terms  # type: ignore[attr-defined]
            self.owner_of[terms.order_id] = owner
            self.lab.submit(
                VenueOrder(
                    order_id=terms.order_id, symbol=terms.symbol, venue=terms.venue,
                    side=terms.side, quantity=terms.quantity, order_type=terms.order_type,
                    limit_price=terms.limit_price, time_in_force=terms.time_in_force,
                    post_only=terms.post_only, min_quantity=terms.min_quantity,
                )
            )  # fmt: skip
        return events

    def cancel(self, order: ParentOrder, child_id: str) -> None:
        at = self.time_now()
        self.learn(order.cancel(CancelOrder(order_id=child_id), at), at)
        self.lab.cancel(child_id)

    # ---- TCA ---------------------------------------------------------------------------------

    def market_record(self) -> tuple[Tape, Quotes]:
        """The session's prints and consolidated quotes so far, for TCA."""
        quotes = np.array(self.feed.quotes or [(0.0, math.nan, math.nan)])
        trades = np.array(self.feed.trades or [(0.0, 0, math.nan)])
        tape = Tape(
            time=trades[:, 0], quantity=trades[:, 1], price=trades[:, 2],
            own=np.zeros(len(trades), dtype=bool),
        )  # fmt: skip
        return tape, Quotes(time=quotes[:, 0], bid=quotes[:, 1], ask=quotes[:, 2])

    def tca(
        self,
        side: Side,
        quantity: int,
        arrival: tuple[float, int, int],
        end: float,
        fills: Sequence[Fill],
        record: tuple[Tape, Quotes],
        *,
        markouts: Sequence[float] = (10.0,),
    ) -> dict[str, Any]:
        """fillpath.monitor.tca's figures for one parent: `arrival` is (seconds since the
        open, bid, ask in nanos) when it arrived, `end` when it ended; the decision price is
        the arrival mid."""
        tape, quotes = record
        at, bid, ask = arrival
        times = np.array([f.time for f in fills])
        i = np.clip(np.searchsorted(quotes.time, times, side="right") - 1, 0, len(quotes.time) - 1)
        j = max(int(np.searchsorted(quotes.time, end, side="right")) - 1, 0)
        end_mid = float((quotes.bid[j] + quotes.ask[j]) / 2)
        order = TcaOrder(
            side=1 if side is Side.BUY else -1, quantity=quantity,
            decision_price=(bid + ask) / 2 / NANOS, arrival_time=at, end_time=end,
            arrival_bid=bid / NANOS, arrival_ask=ask / NANOS, end_mid=end_mid,
            post_trade_mid=end_mid,
        )  # fmt: skip
        done = Fills(
            time=times, quantity=np.array([f.quantity for f in fills], dtype=np.float64),
            price=np.array([f.price_nanos for f in fills]) / NANOS, bid=quotes.bid[i],
            ask=quotes.ask[i], liquidity=np.array([f.liquidity for f in fills], dtype=str),
            venue_fee=np.array([f.fee_nanos for f in fills]) / NANOS,
        )  # fmt: skip
        return order_tca(order, done, tape, quotes, markout_horizons=markouts)
