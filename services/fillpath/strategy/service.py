"""StrategyService's use cases: how an order is to be executed, chosen and recorded.

`Strategies.choose` has the `Chooser` (fillpath.strategy.choice) choose for the order in the
market the bus has shown (a `MarketView` per instrument), and records the choice as a
`StrategySelected` event in stream `strategy-<order id>` with a `strategy_selections` row in
the same transaction, before anyone is answered; choosing again for the same order answers
with what was recorded.

The service hears the order events on the bus: a parent order that names no algorithm or
profile gets its strategy chosen when it is submitted (the OMS records its acceptance in the
same append), and the algorithm engine starts executing it from the `StrategySelected` event;
the parent's fills and its end are kept for performance tracking (fillpath.strategy.
performance).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fillpath.api.v1 import events_pb2
from fillpath.core.enums import Urgency
from fillpath.core.errors import (
    ConcurrencyConflict,
    FailedPrecondition,
    InvalidArgument,
)
from fillpath.core.market import MarketView
from fillpath.core.session import SESSION_SECONDS
from fillpath.core.strategy import StrategyRecommended, StrategySelected
from fillpath.infra.bus import MARKET_DATA_TOPIC, ORDERS_TOPIC, Bus, BusMessage
from fillpath.infra.event_store import CommandContext, EventStore, RecordedEvent
from fillpath.infra.market_views import fold
from fillpath.infra.postgres.schema import MigrationSet
from fillpath.strategy.choice import Chooser, SelectionRequest, recommend, request_of
from fillpath.strategy.features import Features, Regime, regime
from fillpath.strategy.model import CostModel
from fillpath.strategy.performance import ENDS, FILLS, Tracker

log = logging.getLogger("fillpath.strategy")

STRATEGY_MIGRATIONS = MigrationSet("strategy", "fillpath.strategy")
SYSTEM = CommandContext(actor="fillpath-strategy")


RECHECK = 30.0
"""Seconds of market time between looks at the regime of an order being worked."""


def stream_of(order_id: str) -> str:
    return f"strategy-{order_id}"


@dataclass(slots=True)
class _Live:
    """An order the strategy chose for, while it is worked (from its first fill to its end):
    the regime last seen for it."""

    symbol: str
    profile: str
    chosen: Urgency | None
    urgency: Urgency | None
    regime: Regime
    version: int
    checked: float = -math.inf


def _live(symbol: str, events: list[RecordedEvent]) -> _Live:
    """An order's watch, from its strategy stream (the choice, then the recommendations)."""
    selected: StrategySelected = events[0].event
    live = _Live(
        symbol=symbol, profile=selected.algo_profile, chosen=selected.urgency,
        urgency=selected.urgency, regime=Regime.of(dict(selected.features)),
        version=events[-1].version,
    )  # fmt: skip
    for recorded in events[1:]:
        recommended: StrategyRecommended = recorded.event
        live.urgency, live.regime = recommended.urgency, Regime.named(recommended.regime_now)
    return live


_SELECTION_INSERT = """
INSERT INTO strategy_selections (order_id, selected_at, symbol, side, quantity, strategy, rule,
    algo_profile, algorithm, model_version, regime, arrival_mid_nanos, predicted_cost_bps,
    predicted_risk_bps)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


class Strategies:
    def __init__(
        self,
        store: EventStore,
        chooser: Chooser,
        now: Callable[[], datetime],
        tracker: Tracker | None = None,
    ) -> None:
        self._store = store
        self.chooser = chooser
        self._tracker = tracker
        self.now = now
        self._views = {symbol: MarketView(SESSION_SECONDS) for symbol in chooser.instruments}
        self._lock = threading.RLock()
        self._closed = False
        self._live: dict[str, _Live] = {}
        """Order id → its watch, for the orders chosen for and not ended."""

    def close(self) -> None:
        """Stops choosing for the orders on the bus (requests are still answered)."""
        self._closed = True

    @property
    def model(self) -> CostModel | None:
        return self.chooser.model

    def use_model(self, model: CostModel | None) -> None:
        """Ranks with `model` from the next choice on (None: the rules alone)."""
        self.chooser.model = model

    # ---- choosing ----------------------------------------------------------------------------

    def choose(self, request: SelectionRequest, context: CommandContext) -> StrategySelected:
        """Chooses how to execute the order and records it (idempotent: an order's strategy
        is chosen once; asking again answers with the recorded choice).

        Raises InvalidArgument (the field named) or FailedPrecondition (no rule takes the
        order and the policy has no default profile). The append finds out whether the order
        already has one (its stream exists): one round trip to Postgres, not two."""
        selected, mid = self.select(request)
        row = (
            request.order_id, selected.occurred_at, request.symbol, request.side.name,
            request.quantity, selected.strategy, selected.rule, selected.algo_profile,
            selected.algorithm.name, selected.model_version,
            Features(dict(selected.features)).regime, mid, selected.predicted_cost_bps,
            selected.predicted_risk_bps,
        )  # fmt: skip
        try:
            self._store.append(
                stream_of(request.order_id), 0, [selected], context,
                also=[(_SELECTION_INSERT, row)],
            )  # fmt: skip
        except ConcurrencyConflict:
            recorded = self.recorded(request.order_id)
            if recorded is None:
                raise
            return recorded
        return selected

    def select(self, request: SelectionRequest) -> tuple[StrategySelected, int]:
        """The choice for `request` in the market the bus has shown, not recorded, and the
        arrival mid (nanos) it was made at."""
        instrument = self.chooser.instrument(request)
        now = self.now()
        with self._lock:
            market = self._views[request.symbol].snapshot(now.timestamp())
        chosen = self.chooser.choice(request, market, now)
        return chosen, market.mid or instrument.reference_price.nanos

    def recover(self, orders: list[tuple[str, str]]) -> None:
        """Watches the regime again for the (order id, symbol) still worked (after a
        restart), from their streams."""
        for order_id, symbol in orders:
            self._watch(order_id, symbol)

    def watching(self, order_id: str) -> bool:
        """The order is being worked and its regime watched."""
        return order_id in self._live

    def _watch(self, order_id: str, symbol: str) -> None:
        events = self._store.read_stream(stream_of(order_id))
        if events:
            with self._lock:
                self._live[order_id] = _live(symbol, events)

    def _check(self, symbol: str, at: float) -> None:
        """Recommends new parameters for the orders in `symbol` whose regime changed
        materially since they were chosen for (or last recommended for)."""
        for order_id, live in list(self._live.items()):
            if live.symbol != symbol or at - live.checked < RECHECK:
                continue
            live.checked = at
            moment = datetime.fromtimestamp(at, UTC)
            instrument = self.chooser.instruments[symbol]
            market = self._views[symbol].snapshot(at)
            now = regime(instrument, market, self.chooser.calendar_of(moment), moment)
            change = recommend(
                self.chooser.profiles[live.profile], live.chosen, live.urgency, live.regime, now
            )
            if change is None:
                live.regime = now
                continue
            urgency, why = change
            event = StrategyRecommended(
                order_id=order_id, occurred_at=moment, regime_before=live.regime.name,
                regime_now=now.name, urgency=urgency, reason=why,
            )  # fmt: skip
            try:
                self._store.append(stream_of(order_id), live.version, [event], SYSTEM)
            except ConcurrencyConflict:  # another replica recommended first: take its view
                self._watch(order_id, symbol)
                continue
            live.version += 1
            live.urgency, live.regime = urgency, now
            log.info("order %s: %s → %s, urgency %s", order_id, event.regime_before,
                     event.regime_now, urgency.name)  # fmt: skip

    def recommended(self, order_id: str) -> list[StrategyRecommended]:
        """The recommendations recorded for the order while it was worked, oldest first."""
        return [e.event for e in self._store.read_stream(stream_of(order_id))[1:]]

    def recorded(self, order_id: str) -> StrategySelected | None:
        """The choice recorded for the order, if one was."""
        events = self._store.read_stream(stream_of(order_id))
        return events[0].event if events else None

    # ---- the bus -----------------------------------------------------------------------------

    def subscribe(self, bus: Bus, subscription: str = "strategy") -> None:
        bus.subscribe(ORDERS_TOPIC, subscription, self._on_message)
        bus.subscribe(MARKET_DATA_TOPIC, subscription, self._on_message)

    def _on_message(self, message: BusMessage) -> None:
        if self._closed:
            return
        envelope = events_pb2.EventEnvelope.FromString(message.payload)
        kind = envelope.WhichOneof("payload")
        if message.topic.endswith(MARKET_DATA_TOPIC):
            self.on_market_data(envelope)
        elif kind == "order_submitted":
            self.on_submitted(envelope.order_submitted)
        elif self._tracker is not None and kind in FILLS + ENDS:
            payload = getattr(envelope, kind)
            if kind in FILLS:
                symbol = self._tracker.on_fill(
                    payload.order_id, payload.exec_id, payload.quantity, payload.price_nanos
                )
                if symbol is not None and payload.order_id not in self._live:
                    self._watch(payload.order_id, symbol)
            if kind in ENDS:
                self._tracker.on_end(payload.order_id, payload.occurred_at.ToDatetime(tzinfo=UTC))
                with self._lock:
                    self._live.pop(payload.order_id, None)

    def on_market_data(self, envelope: events_pb2.EventEnvelope) -> None:
        with self._lock:
            at = fold(self._views, envelope)
            if at is not None:
                self._check(envelope.consolidated_quote_updated.symbol, at)

    def on_submitted(self, submitted: events_pb2.OrderSubmitted) -> None:
        """Chooses the strategy of a parent order that names no algorithm or profile; an order
        that cannot be given one is logged and left alone (a retried delivery finds the
        choice already recorded)."""
        terms = submitted.terms
        i = terms.instructions
        if terms.HasField("parent_order_id") or i.algorithm or i.algo_profile:
            return
        try:
            request = request_of(
                submitted.order_id, terms.account, terms.symbol, terms.side, terms.quantity,
                i.urgency, i,
            )  # fmt: skip
            self.choose(request, SYSTEM)
        except (InvalidArgument, FailedPrecondition) as err:
            log.warning("order %s gets no strategy: %s", submitted.order_id, err)
