"""Venue quality learned from our own orders, kept in Redis, and the circuit breaker.

What is learned, per instrument × venue, from the order events (the orders topic):
- order-entry latency: from a child order's `ChildOrderPlaced` to its `OrderAccepted`, as
  recorded by the OMS;
- reject rate: rejected children over children placed;
- dark fill probability and size: of the pings that ended (filled, canceled, expired), the
  share that found any contra, and the mean quantity they found;
- passive fill rate: resting shares filled over resting shares placed;
- adverse selection: the markout of each fill, the move of the mid `MARKOUT_HORIZON` seconds
  of market time later, against us in bps (+ = adverse), weighted by quantity — as the excess
  over the mean markout of all our fills in the instrument. What is common to every venue (our
  own impact as we keep trading, the market's drift) is not the venue's doing; what a pool's
  fills show beyond it is who trades there.

Counts and sums live in Redis hashes (one per symbol) and grow by HINCRBYFLOAT, so every
replica adds to the same figures, and a restart keeps them. Each figure is shrunk towards a
prior (the Venue resource's latency, 1 % rejects, a 30 % dark hit rate…) by the weight of a few
observations, so a venue with little history is neither trusted nor condemned on one order.
Losing Redis loses no fact: the figures are statistics of facts that stay in the event log.

The breaker: a child order not acknowledged within the venue's latency budget, or rejected by
the venue, is a failure; `breaker_failures` in a row open the circuit (the venue leaves
routing) for `breaker_cooldown` seconds; then one probe order may go (whichever replica claims
it first); its acknowledgement closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import redis

from fillpath.api.v1 import common_pb2, events_pb2
from fillpath.core.ids import is_child_id
from fillpath.sor.market import NANOS, MarketBook
from fillpath.sor.state import DARK
from fillpath.sor.venues import VenueSpec

MARKOUT_HORIZON = 10.0
"""Seconds of market time after a fill at which its markout is measured."""

_PREFIX = "fillpath:sor"
COUNTERS = (
    "placed", "acks", "ack_us", "rejects", "pings", "hits", "ping_qty", "rest_qty",
    "rest_filled", "markout_qty", "markout_sum",
)  # fmt: skip

# Priors: (value, weight in observations).
PRIOR_REJECT = (0.01, 20.0)
PRIOR_LATENCY_WEIGHT = 5.0
PRIOR_DARK_HIT = (0.3, 5.0)
PRIOR_DARK_SIZE_LOTS = 5.0
PRIOR_DARK_SIZE_WEIGHT = 3.0
PRIOR_MARKOUT_QTY = 1_000.0

_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', ARGV[2])
end
return failures
"""


def figures(
    specs: Sequence[VenueSpec], counters: dict[str, np.ndarray], lot: int
) -> dict[str, np.ndarray]:
    """The learned columns of the state array (fillpath.sor.market.LEARNED) and the passive
    fill rate, from the counters (one array per name in `COUNTERS`, a value per venue)."""
    c = counters
    latency = np.array([v.latency_us for v in specs])
    min_qty = np.array([max(v.min_qty, lot) for v in specs], dtype=np.float64)
    size_prior = np.maximum(min_qty, PRIOR_DARK_SIZE_LOTS * lot)
    overall = c["markout_sum"].sum() / max(c["markout_qty"].sum(), 1.0)
    return {
        "latency_us": (c["ack_us"] + PRIOR_LATENCY_WEIGHT * latency)
        / (c["acks"] + PRIOR_LATENCY_WEIGHT),
        "reject_rate": (c["rejects"] + PRIOR_REJECT[0] * PRIOR_REJECT[1])
        / (c["placed"] + PRIOR_REJECT[1]),
        "dark_fill_prob": (c["hits"] + PRIOR_DARK_HIT[0] * PRIOR_DARK_HIT[1])
        / (c["pings"] + PRIOR_DARK_HIT[1]),
        "dark_fill_size": (c["ping_qty"] + PRIOR_DARK_SIZE_WEIGHT * size_prior)
        / (c["hits"] + PRIOR_DARK_SIZE_WEIGHT),
        "markout_bps": (c["markout_sum"] - overall * c["markout_qty"])
        / (c["markout_qty"] + PRIOR_MARKOUT_QTY),
        "passive_fill_rate": np.divide(
            c["rest_filled"], c["rest_qty"], out=np.full(len(specs), math.nan),
            where=c["rest_qty"] > 0,
        ),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Breaker:
    failures: int = 0
    open_until: float = 0.0  # seconds since the epoch

    def state(self, now: float, threshold: int) -> str:
        if self.failures < threshold:
            return "closed"
        return "open" if now < self.open_until else "half-open"


class QualityStore:
    """The counters and breakers in Redis."""

    def __init__(self, client: redis.Redis, specs: Sequence[VenueSpec]) -> None:
        self._redis = client
        self._specs = tuple(specs)
        self._failure = client.register_script(_FAILURE)

    def add(self, symbol: str, venue: str, **amounts: float) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for name, amount in amounts.items():
            pipe.hincrbyfloat(f"{_PREFIX}:stats:{symbol}", f"{venue}|{name}", amount)
        pipe.execute()

    def counters(self, symbols: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        pipe = self._redis.pipeline(transaction=False)
        for symbol in symbols:
            pipe.hgetall(f"{_PREFIX}:stats:{symbol}")
        index = {v.name: i for i, v in enumerate(self._specs)}
        out = {}
        for symbol, raw in zip(symbols, pipe.execute(), strict=True):
            arrays = {name: np.zeros(len(self._specs)) for name in COUNTERS}
            for key, value in raw.items():
                venue, _, name = key.decode().partition("|")
                if venue in index and name in arrays:
                    arrays[name][index[venue]] = float(value)
            out[symbol] = arrays
        return out

    def symbols(self) -> list[str]:
        return sorted(
            key.decode().rsplit(":", 1)[1] for key in self._redis.scan_iter(f"{_PREFIX}:stats:*")
        )

    def failure(self, venue: str, threshold: int, cooldown: float, now: float) -> int:
        """Counts a failure; at `threshold` the circuit opens until `now` + `cooldown`."""
        key = f"{_PREFIX}:breaker:{venue}"
        return int(self._failure(keys=[key], args=[threshold, now + cooldown]))

    def success(self, venue: str) -> None:
        self._redis.hset(f"{_PREFIX}:breaker:{venue}", mapping={"failures": 0, "open_until": 0})

    def breakers(self) -> dict[str, Breaker]:
        pipe = self._redis.pipeline(transaction=False)
        for v in self._specs:
            pipe.hgetall(f"{_PREFIX}:breaker:{v.name}")
        return {
            v.name: Breaker(
                failures=int(raw.get(b"failures", 0)),
                open_until=float(raw.get(b"open_until", 0.0)),
            )
            for v, raw in zip(self._specs, pipe.execute(), strict=True)
        }

    def claim_probe(self, venue: str, ttl: float) -> bool:
        """Whether this caller may send the one probe to a half-open venue."""
        key = f"{_PREFIX}:probe:{venue}"
        return bool(self._redis.set(key, "1", nx=True, px=max(1, int(ttl * 1000))))


@dataclass(slots=True)
class _Child:
    symbol: str
    venue: str
    side: int  # +1 buy, −1 sell
    quantity: int
    dark: bool
    resting: bool
    placed_at: float  # recorded_at, seconds
    budget: float  # seconds
    acked: bool = False
    timed_out: bool = False
    filled: int = 0


@dataclass(slots=True)
class _Markout:
    due: float  # market time, seconds
    venue: str
    side: int
    quantity: int
    mid: float  # at the fill, nanos


_TERMINAL = ("order_canceled", "order_expired", "order_done_for_day", "order_rejected")


class Learner:
    """Folds order events and market data into the `QualityStore`, and trips the breakers."""

    def __init__(
        self,
        store: QualityStore,
        book: MarketBook,
        *,
        breaker_failures: int,
        breaker_cooldown: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._book = book
        self._specs = {v.name: v for v in book.venues}
        self._threshold = breaker_failures
        self._cooldown = breaker_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._children: dict[str, _Child] = {}
        self._markouts: dict[str, list[_Markout]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _first_time(self, event_id: str) -> bool:
        """False for an event already learned from (the bus delivers at least once)."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > 100_000:
            self._seen.popitem(last=False)
        return True

    def on_order_event(self, envelope: events_pb2.EventEnvelope) -> None:
        kind = envelope.WhichOneof("payload")
        payload = getattr(envelope, kind) if kind else None
        order_id = getattr(payload, "order_id", "")
        if not order_id or not is_child_id(order_id):
            return
        with self._lock:
            if not self._first_time(envelope.metadata.event_id):
                return
            at = envelope.recorded_at.ToNanoseconds() / NANOS
            if kind == "child_order_placed":
                self._placed(order_id, envelope.child_order_placed.terms, at)
                return
            child = self._children.get(order_id)
            if child is None:
                return
            if kind == "order_accepted":
                self._accepted(child, at)
            elif kind == "child_order_filled":
                self._filled(child, envelope.child_order_filled)
            done = kind == "child_order_filled" and child.filled >= child.quantity
            if kind in _TERMINAL or done:
                self._ended(order_id, child, rejected=kind == "order_rejected")

    def _placed(self, order_id: str, terms: events_pb2.OrderTerms, at: float) -> None:
        spec = self._specs.get(terms.venue)
        if spec is None:
            return
        self._children[order_id] = _Child(
            symbol=terms.symbol,
            venue=terms.venue,
            side=1 if terms.side == common_pb2.SIDE_BUY else -1,
            quantity=terms.quantity,
            dark=spec.kind == DARK,
            resting=terms.post_only,
            placed_at=at,
            budget=spec.budget_us / 1e6,
        )
        self._store.add(terms.symbol, terms.venue, placed=1)

    def _accepted(self, child: _Child, at: float) -> None:
        if child.acked:
            return
        child.acked = True
        latency_us = max(at - child.placed_at, 0.0) * 1e6
        self._store.add(child.symbol, child.venue, acks=1, ack_us=latency_us)
        self._store.success(child.venue)

    def _filled(self, child: _Child, fill: events_pb2.ChildOrderFilled) -> None:
        child.filled += fill.quantity
        if child.resting and not child.dark:
            self._store.add(child.symbol, child.venue, rest_filled=fill.quantity)
        market = self._book.get(child.symbol)
        if market is not None and market.mid > 0:
            self._markouts.setdefault(child.symbol, []).append(
                _Markout(
                    due=fill.executed_at.ToNanoseconds() / NANOS + MARKOUT_HORIZON,
                    venue=child.venue,
                    side=child.side,
                    quantity=fill.quantity,
                    mid=market.mid,
                )
            )

    def _ended(self, order_id: str, child: _Child, *, rejected: bool) -> None:
        del self._children[order_id]
        if rejected:
            self._store.add(child.symbol, child.venue, rejects=1)
            self._store.failure(child.venue, self._threshold, self._cooldown, self._clock())
            return
        if child.dark:
            hit = 1 if child.filled > 0 else 0
            self._store.add(child.symbol, child.venue, pings=1, hits=hit, ping_qty=child.filled)
        elif child.resting:
            self._store.add(child.symbol, child.venue, rest_qty=child.quantity)

    def on_market_data(self, envelope: events_pb2.EventEnvelope) -> None:
        """Measures the markouts that have come due by this consolidated quote."""
        if envelope.WhichOneof("payload") != "consolidated_quote_updated":
            return
        nbbo = envelope.consolidated_quote_updated
        if nbbo.bid_price_nanos <= 0 or nbbo.ask_price_nanos <= 0:
            return
        now = nbbo.exchange_time_unix_nanos / NANOS
        mid = (nbbo.bid_price_nanos + nbbo.ask_price_nanos) / 2.0
        with self._lock:
            pending = self._markouts.get(nbbo.symbol)
            if not pending:
                return
            due = [m for m in pending if m.due <= now]
            if not due:
                return
            self._markouts[nbbo.symbol] = [m for m in pending if m.due > now]
        for m in due:
            adverse_bps = m.side * (m.mid - mid) / m.mid * 1e4
            self._store.add(
                nbbo.symbol, m.venue, markout_qty=m.quantity, markout_sum=adverse_bps * m.quantity
            )

    def check_timeouts(self) -> list[str]:
        """Counts a failure for every child not acknowledged within its venue's budget; the
        venues that failed."""
        now = self._clock()
        with self._lock:
            late = [
                c for c in self._children.values()
                if not c.acked and not c.timed_out and now - c.placed_at > c.budget
            ]  # fmt: skip
            for child in late:
                child.timed_out = True
        for child in late:
            self._store.failure(child.venue, self._threshold, self._cooldown, now)
        return [c.venue for c in late]
