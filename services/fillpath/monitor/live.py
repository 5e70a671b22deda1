"""Live executions: what every parent order has done so far, folded from the events.

The monitor sees two kinds of input. Market data (quotes and trades) moves a `MarketState` per
symbol: the consolidated quote, the session's cumulative volume and notional, the last time a
venue quoted. Execution facts (order, fill, routing, strategy and algorithm events) move the
`Execution` of their parent order. When an execution fact is applied, the market as the monitor
saw it at that moment — a `Mark` — goes with it: the arrival mid is the mark of the acceptance,
the mid at a fill the mark of the fill, participation the volume between two marks.

The fold is pure: `LiveBook.apply(envelope, mark)` depends on nothing else. The monitor journals
each fact with its mark before it acknowledges it, so replaying the journal through a new
`LiveBook` gives exactly the executions the live monitor had (tests/integration/test_monitor.py
holds the two equal).

Costs follow fillpath.monitor.tca: basis points, positive = cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fillpath.api.v1 import common_pb2, events_pb2

BPS = 1e4
NANOS = 1_000_000_000

_TERMINAL = frozenset(
    {
        common_pb2.ORDER_STATUS_FILLED,
        common_pb2.ORDER_STATUS_CANCELED,
        common_pb2.ORDER_STATUS_REJECTED,
        common_pb2.ORDER_STATUS_EXPIRED,
        common_pb2.ORDER_STATUS_DONE_FOR_DAY,
    }
)
# What a parent-order event says about the parent's status. Fills are handled apart: a partial
# fill of an order whose cancel is in flight is still a partial fill.
_STATUS_OF_EVENT = {
    "OrderSubmitted": common_pb2.ORDER_STATUS_PENDING_NEW,
    "OrderAccepted": common_pb2.ORDER_STATUS_NEW,
    "OrderRejected": common_pb2.ORDER_STATUS_REJECTED,
    "OrderCanceled": common_pb2.ORDER_STATUS_CANCELED,
    "OrderExpired": common_pb2.ORDER_STATUS_EXPIRED,
    "OrderDoneForDay": common_pb2.ORDER_STATUS_DONE_FOR_DAY,
    "OrderPartiallyFilled": common_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    "OrderFilled": common_pb2.ORDER_STATUS_FILLED,
}
_LIQUIDITY = {
    common_pb2.LIQUIDITY_FLAG_MAKER: "maker",
    common_pb2.LIQUIDITY_FLAG_TAKER: "taker",
    common_pb2.LIQUIDITY_FLAG_MIDPOINT: "midpoint",
}


def unix_seconds(nanos: int) -> float:
    return nanos / NANOS


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """The market of one symbol as the monitor last saw it."""

    time: float = 0.0
    """Exchange time of the latest market data, unix seconds (0: none yet)."""
    bid_nanos: int = 0
    ask_nanos: int = 0
    volume: int = 0
    """Shares traded in the session so far, ours included."""
    notional_nanos: int = 0

    @property
    def mid(self) -> float | None:
        """The consolidated mid in currency, when both sides are quoted."""
        if self.bid_nanos <= 0 or self.ask_nanos <= 0:
            return None
        return (self.bid_nanos + self.ask_nanos) / 2 / NANOS

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time, "bid_nanos": self.bid_nanos, "ask_nanos": self.ask_nanos,
            "volume": self.volume, "notional_nanos": self.notional_nanos,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Mark:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass(slots=True)
class MarketState:
    """One symbol's market, moved by its market data events."""

    symbol: str
    time: float = 0.0
    bid_nanos: int = 0
    ask_nanos: int = 0
    volume: int = 0
    notional_nanos: int = 0
    venue_quoted_at: dict[str, float] = field(default_factory=dict)
    """When each venue last quoted (exchange time): a venue that stops quoting is down."""

    def apply(self, envelope: events_pb2.EventEnvelope) -> bool:
        """Applies one market data event; False if it is not one this state keeps."""
        kind = envelope.WhichOneof("payload")
        if kind == "trade_printed":
            trade = envelope.trade_printed
            self.volume += trade.quantity
            self.notional_nanos += trade.quantity * trade.price_nanos
            self._at(trade.exchange_time_unix_nanos)
        elif kind == "consolidated_quote_updated":
            quote = envelope.consolidated_quote_updated
            self.bid_nanos, self.ask_nanos = quote.bid_price_nanos, quote.ask_price_nanos
            self._at(quote.exchange_time_unix_nanos)
        elif kind == "quote_updated":
            quote_ = envelope.quote_updated
            self._at(quote_.exchange_time_unix_nanos)
            self.venue_quoted_at[quote_.venue] = unix_seconds(quote_.exchange_time_unix_nanos)
        else:
            return False
        return True

    def _at(self, nanos: int) -> None:
        self.time = max(self.time, unix_seconds(nanos))

    def mark(self) -> Mark:
        return Mark(
            time=self.time,
            bid_nanos=self.bid_nanos,
            ask_nanos=self.ask_nanos,
            volume=self.volume,
            notional_nanos=self.notional_nanos,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MarketState:
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One child fill, with the consolidated quote the monitor saw when it arrived."""

    time: float
    """When the venue executed it, unix seconds."""
    child_order_id: str
    venue: str
    quantity: int
    price_nanos: int
    fee_nanos: int
    liquidity: str
    bid_nanos: int
    ask_nanos: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """A parent order's execution so far. Each fact applied gives a new one."""

    order_id: str
    account: str
    symbol: str
    side: int
    """+1 buy, −1 sell (sell short included)."""
    quantity: int
    decision_price_nanos: int | None = None
    status: int = common_pb2.ORDER_STATUS_PENDING_NEW
    filled_quantity: int = 0
    filled_notional_nanos: int = 0
    fees_nanos: int = 0
    scheduled_quantity: int = 0
    """Where the algorithm's schedule says the order should be by now (0: no schedule)."""
    algorithm: str = ""
    strategy: str = ""
    """The algorithm profile the strategy chose, when one did."""
    child_orders: int = 0
    child_orders_by_venue: tuple[tuple[str, int], ...] = ()
    routed_by_venue: tuple[tuple[str, int], ...] = ()
    rejects: int = 0
    fills: tuple[Fill, ...] = ()
    arrival: Mark | None = None
    last: Mark | None = None
    """The mark of the latest fact."""
    end: Mark | None = None
    """The mark when the order reached a final status."""
    created_at: float = 0.0
    updated_at: float = 0.0
    """When the latest fact was recorded, unix seconds."""
    last_fill_time: float | None = None

    @property
    def active(self) -> bool:
        return self.status not in _TERMINAL

    @property
    def average_price(self) -> float | None:
        if not self.filled_quantity:
            return None
        return self.filled_notional_nanos / self.filled_quantity / NANOS

    @property
    def arrival_mid(self) -> float | None:
        return None if self.arrival is None else self.arrival.mid

    @property
    def slippage_vs_arrival_bps(self) -> float | None:
        """s · (average price − arrival mid) / arrival mid · 10⁴: positive is a cost."""
        average, arrival = self.average_price, self.arrival_mid
        if average is None or arrival is None:
            return None
        return self.side * (average - arrival) / arrival * BPS

    @property
    def market_volume(self) -> int:
        """Shares the market traded since the order arrived, ours included."""
        if self.arrival is None or self.last is None:
            return 0
        return max(0, self.last.volume - self.arrival.volume)

    @property
    def participation(self) -> float | None:
        """Our filled quantity / the market's volume since arrival."""
        volume = self.market_volume
        return self.filled_quantity / volume if volume else None

    def to_document(self, *, fills: bool = False) -> dict[str, Any]:
        """As JSON: the projection's row, and with `fills` the dashboard's record."""
        document: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("fills", "arrival", "last", "end")
        }
        for name in ("arrival", "last", "end"):
            mark = getattr(self, name)
            document[name] = None if mark is None else mark.to_json()
        document["child_orders_by_venue"] = dict(self.child_orders_by_venue)
        document["routed_by_venue"] = dict(self.routed_by_venue)
        document["fill_count"] = len(self.fills)
        if fills:
            document["fills"] = [
                {f.name: getattr(fill, f.name) for f in dataclasses.fields(Fill)}
                for fill in self.fills
            ]
        document.update(
            active=self.active,
            average_price=self.average_price,
            arrival_mid=self.arrival_mid,
            slippage_vs_arrival_bps=self.slippage_vs_arrival_bps,
            market_volume=self.market_volume,
            participation=self.participation,
        )
        return document


def _bump(pairs: tuple[tuple[str, int], ...], key: str, by: int) -> tuple[tuple[str, int], ...]:
    counts = dict(pairs)
    counts[key] = counts.get(key, 0) + by
    return tuple(sorted(counts.items()))


def _algorithm(kind: int) -> str:
    return common_pb2.AlgorithmKind.Name(kind).removeprefix("ALGORITHM_KIND_")  # type: ignore[arg-type]


def _side(side: int) -> int:
    return 1 if side == common_pb2.SIDE_BUY else -1


class LiveBook:
    """Every parent order's `Execution`, folded from execution facts and their marks."""

    def __init__(self) -> None:
        self.executions: dict[str, Execution] = {}
        self._parent_of: dict[str, str] = {}
        self._child_venue: dict[str, str] = {}

    def symbol_of(self, envelope: events_pb2.EventEnvelope) -> str | None:
        """The symbol an execution fact is about (None: not one of ours, or not yet known)."""
        kind = envelope.WhichOneof("payload")
        if kind == "order_submitted":
            return envelope.order_submitted.terms.symbol
        if kind == "routing_decision":
            return envelope.routing_decision.symbol
        execution = self.executions.get(self._order_of(envelope))
        return None if execution is None else execution.symbol

    def _order_of(self, envelope: events_pb2.EventEnvelope) -> str:
        kind = envelope.WhichOneof("payload")
        if kind in ("strategy_selected", "algorithm_execution", "routing_decision"):
            order_id: str = getattr(envelope, kind).order_id
            return self._parent_of.get(order_id, order_id)
        return envelope.stream_id  # an order event's stream is its parent order's

    def apply(self, envelope: events_pb2.EventEnvelope, mark: Mark) -> Execution | None:
        """Applies one fact seen when the market stood at `mark`; the execution it changed."""
        kind = envelope.WhichOneof("payload")
        if kind is None:
            return None
        payload = getattr(envelope, kind)
        recorded = envelope.recorded_at.ToNanoseconds() / NANOS
        if kind == "order_submitted":
            terms = payload.terms
            if terms.HasField("parent_order_id") or terms.order_id in self.executions:
                return None
            execution = Execution(
                order_id=terms.order_id,
                account=terms.account,
                symbol=terms.symbol,
                side=_side(terms.side),
                quantity=terms.quantity,
                decision_price_nanos=terms.decision_price_nanos
                if terms.HasField("decision_price_nanos")
                else None,
                created_at=recorded,
            )
        else:
            parent_id = self._order_of(envelope)
            current = self.executions.get(parent_id)
            if current is None:
                return None
            execution = self._fold(current, kind, payload, parent_id, mark)
        execution = dataclasses.replace(execution, last=mark, updated_at=recorded)
        if execution.arrival is not None and execution.arrival.mid is None and mark.mid:
            # Accepted before the monitor had a quote of the symbol: the first quote it has.
            execution = dataclasses.replace(execution, arrival=mark)
        if not execution.active and execution.end is None:
            execution = dataclasses.replace(execution, end=mark)
        self.executions[execution.order_id] = execution
        return execution

    def _fold(
        self, execution: Execution, kind: str, payload: Any, parent_id: str, mark: Mark
    ) -> Execution:
        replace = dataclasses.replace
        event_type = type(payload).__name__
        is_parent = getattr(payload, "order_id", parent_id) == parent_id
        if kind == "child_order_placed":
            terms = payload.terms
            venue = terms.venue or "?"
            self._parent_of[terms.order_id] = parent_id
            self._child_venue[terms.order_id] = venue
            return replace(
                execution,
                child_orders=execution.child_orders + 1,
                child_orders_by_venue=_bump(execution.child_orders_by_venue, venue, 1),
            )
        if kind == "child_order_filled":
            fill = Fill(
                time=payload.executed_at.ToNanoseconds() / NANOS,
                child_order_id=payload.order_id,
                venue=payload.venue,
                quantity=payload.quantity,
                price_nanos=payload.price_nanos,
                fee_nanos=payload.fee_nanos,
                liquidity=_LIQUIDITY.get(payload.liquidity, "taker"),
                bid_nanos=mark.bid_nanos,
                ask_nanos=mark.ask_nanos,
            )
            return replace(
                execution,
                fills=(*execution.fills, fill),
                fees_nanos=execution.fees_nanos + payload.fee_nanos,
                last_fill_time=fill.time,
            )
        if kind in ("order_partially_filled", "order_filled"):
            return replace(
                execution,
                status=_STATUS_OF_EVENT[event_type],
                filled_quantity=execution.filled_quantity + payload.quantity,
                filled_notional_nanos=execution.filled_notional_nanos
                + payload.quantity * payload.price_nanos,
            )
        if kind == "order_rejected" and not is_parent:
            return replace(execution, rejects=execution.rejects + 1)
        if kind == "order_replaced" and is_parent:
            return replace(execution, quantity=payload.quantity)
        if kind == "strategy_selected":
            return replace(
                execution, strategy=payload.algo_profile, algorithm=_algorithm(payload.algorithm)
            )
        if kind == "algorithm_execution":
            # Each kind of algorithm event carries its own fields: the algorithm comes with
            # CREATED, the schedule's position with SLICE_SENT and DEVIATION.
            if payload.kind == events_pb2.ALGO_EVENT_KIND_CREATED:
                execution = replace(execution, algorithm=_algorithm(payload.algorithm))
            if payload.kind in (
                events_pb2.ALGO_EVENT_KIND_SLICE_SENT,
                events_pb2.ALGO_EVENT_KIND_DEVIATION,
            ):
                execution = replace(execution, scheduled_quantity=payload.scheduled_quantity)
            return execution
        if kind == "routing_decision":
            routed = execution.routed_by_venue
            for allocation in payload.allocations:
                routed = _bump(routed, allocation.venue, allocation.quantity)
            return replace(execution, routed_by_venue=routed)
        if is_parent and event_type in _STATUS_OF_EVENT:
            execution = replace(execution, status=_STATUS_OF_EVENT[event_type])
            if kind == "order_accepted":
                execution = replace(execution, arrival=mark)
        return execution
