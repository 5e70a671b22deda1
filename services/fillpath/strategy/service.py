"""StrategyService's use cases: how an order is to be executed, chosen and recorded.

`Strategies.choose` reads the order and the market at arrival into features, finds the first
rule of the policy that holds (fillpath.strategy.rules), and — when the policy lets the cost
model choose and a model is loaded and sure enough — takes the candidate with the least
predicted cost + risk aversion × risk, else the rule's own profile. The choice is recorded as a
`StrategySelected` event in stream `strategy-<order id>` with a `strategy_selections` row in
the same transaction, before anyone is answered; choosing again for the same order answers
with what was recorded.

The service hears the order events on the bus: a parent order that names no algorithm or
profile gets its strategy chosen when it is submitted (the OMS records its acceptance in the
same append), and the algorithm engine starts executing it from the `StrategySelected` event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fillpath.api.v1 import common_pb2, events_pb2
from fillpath.core.enums import Side, Urgency
from fillpath.core.errors import (
    ConcurrencyConflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from fillpath.core.instruments import Instrument
from fillpath.core.market import Calendar, MarketSnapshot, MarketView, us_equity_calendar
from fillpath.core.profiles import AlgoProfile, resolve
from fillpath.core.session import SESSION_SECONDS
from fillpath.core.strategy import StrategySelected
from fillpath.infra.bus import MARKET_DATA_TOPIC, ORDERS_TOPIC, Bus, BusMessage
from fillpath.infra.event_store import CommandContext, EventStore
from fillpath.infra.postgres.schema import MigrationSet
from fillpath.strategy.features import (
    Features,
    OrderAtArrival,
    features,
    minutes_since_open,
    notional,
)
from fillpath.strategy.rules import OrderFacts, Policy, ProfileRef, Rule

log = logging.getLogger("fillpath.strategy")

STRATEGY_MIGRATIONS = MigrationSet("strategy", "fillpath.strategy")
NANOS = 1_000_000_000
SYSTEM = CommandContext(actor="fillpath-strategy")


def stream_of(order_id: str) -> str:
    return f"strategy-{order_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    cost_bps: float
    risk_bps: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranking:
    """A cost model's predictions for the candidate profiles of one order."""

    version: str
    predictions: Mapping[str, Prediction]
    """Profile name → its prediction."""
    confidence: float
    """0..1: how far the model trusts itself on these features (near its training data)."""


class CostModel(Protocol):
    version: str

    def rank(self, features: Features, candidates: Sequence[ProfileRef]) -> Ranking: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionRequest:
    order_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    urgency: Urgency | None = None
    """The order's own urgency (kept)."""
    algo_profile: str = ""
    """A profile the order names itself (kept: the rules are not asked)."""
    max_participation_bps: int = 0
    params: Mapping[str, float] = field(default_factory=dict)
    """The order's own parameter overrides (kept, over the rule's)."""
    start_time: datetime | None = None
    end_time: datetime | None = None


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
        policy: Policy,
        profiles: Mapping[str, AlgoProfile],
        instruments: Mapping[str, Instrument],
        now: Callable[[], datetime],
        *,
        model: CostModel | None = None,
        calendar_of: Callable[[datetime], Calendar] = us_equity_calendar,
    ) -> None:
        self._store = store
        self.policy = policy
        self.profiles = profiles
        self._instruments = instruments
        self.now = now
        self.model = model
        self.calendar_of = calendar_of
        self._views = {symbol: MarketView(SESSION_SECONDS) for symbol in instruments}
        self._lock = threading.RLock()
        self._closed = False

    def close(self) -> None:
        """Stops choosing for the orders on the bus (requests are still answered)."""
        self._closed = True

    # ---- choosing ----------------------------------------------------------------------------

    def choose(self, request: SelectionRequest, context: CommandContext) -> StrategySelected:
        """Chooses how to execute the order and records it (idempotent: an order's strategy
        is chosen once; asking again answers with the recorded choice).

        Raises InvalidArgument (the field named) or FailedPrecondition (no rule takes the
        order and the policy has no default profile)."""
        recorded = self.recorded(request.order_id)
        if recorded is not None:
            return recorded
        selected, mid = self.select(request)
        regime = dict(selected.features)
        row = (
            request.order_id, selected.occurred_at, request.symbol, request.side.name,
            request.quantity, selected.strategy, selected.rule, selected.algo_profile,
            selected.algorithm.name, selected.model_version,
            _regime_name(regime), mid, selected.predicted_cost_bps, selected.predicted_risk_bps,
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
        """The choice for `request`, not recorded, and the arrival mid (nanos) it was made at."""
        instrument = self._instruments.get(request.symbol)
        if instrument is None:
            raise InvalidArgument.single("symbol", request.symbol, "unknown instrument")
        if request.quantity <= 0:
            raise InvalidArgument.single("quantity", request.quantity, "must be positive")
        now = self.now()
        calendar = self.calendar_of(now)
        order = OrderAtArrival(
            symbol=request.symbol, side=request.side, quantity=request.quantity,
            account=request.account, urgency=request.urgency,
        )  # fmt: skip
        with self._lock:
            market = self._views[request.symbol].snapshot(now.timestamp())
        found = features(order, instrument, market, calendar, now)
        mid = market.mid or instrument.reference_price.nanos
        if request.algo_profile:
            rule: Rule | None = self._named(request)
        else:
            rule = self.policy.match(self._facts(order, instrument, found, market, calendar, now))
        if rule is None:
            raise FailedPrecondition(
                "NO_STRATEGY",
                f"no rule takes order {request.order_id} and no ExecutionStrategy names a "
                "defaultProfile",
                order_id=request.order_id,
            )
        return self._decide(request, rule, found, now), mid

    def _decide(
        self, request: SelectionRequest, rule: Rule, found: Features, now: datetime
    ) -> StrategySelected:
        urgency = request.urgency or rule.urgency
        params = {**dict(rule.params), **request.params}
        allowed = [c for c in rule.choices if self._accepts(c, urgency, params)]
        if not allowed:
            self._refuse(rule.profile, request, urgency, params)
        chosen, ranking = allowed[0], None
        model = self.model
        settings = self.policy.model
        if model is not None and settings.enabled and not request.algo_profile:
            ranking = model.rank(found, allowed)
            if ranking.confidence >= settings.min_confidence:
                chosen = min(
                    allowed,
                    key=lambda c: (
                        ranking.predictions[c.name].cost_bps
                        + settings.risk_aversion * ranking.predictions[c.name].risk_bps
                    ),
                )
        predicted = ranking.predictions.get(chosen.name) if ranking else None
        return StrategySelected(
            order_id=request.order_id,
            occurred_at=now,
            algo_profile=chosen.name,
            algorithm=chosen.algorithm,
            urgency=urgency,
            params=tuple(sorted(params.items())),
            venue_preferences=rule.prefer,
            excluded_venues=rule.exclude,
            allow_dark=rule.allow_dark,
            strategy=rule.strategy,
            rule=rule.name,
            model_version=ranking.version if ranking else "",
            predicted_cost_bps=predicted.cost_bps if predicted else 0.0,
            predicted_risk_bps=predicted.risk_bps if predicted else 0.0,
            features=tuple(sorted(found.values.items())),
            candidate_costs=tuple(
                sorted((name, p.cost_bps) for name, p in ranking.predictions.items())
            )
            if ranking
            else (),
            explanation=_explain(request, rule, chosen, ranking, found, settings.min_confidence),
            max_participation_bps=request.max_participation_bps,
            start_time=request.start_time,
            end_time=request.end_time,
        )

    def _named(self, request: SelectionRequest) -> Rule:
        profile = self.profiles.get(request.algo_profile)
        if profile is None:
            known = ", ".join(sorted(self.profiles))
            raise InvalidArgument.single(
                "instructions.algo_profile", request.algo_profile, f"no such AlgoProfile ({known})"
            )
        return Rule(
            strategy="", name="", profile=ProfileRef(name=profile.name, algorithm=profile.algorithm)
        )

    def _accepts(
        self, ref: ProfileRef, urgency: Urgency | None, params: Mapping[str, float]
    ) -> bool:
        try:
            resolve(self.profiles[ref.name], urgency=urgency, params=params)
        except InvalidArgument:
            return False
        return True

    def _refuse(
        self,
        ref: ProfileRef,
        request: SelectionRequest,
        urgency: Urgency | None,
        params: Mapping[str, float],
    ) -> None:
        """Raises the profile's own objection to the order's instructions, fields renamed as
        the request names them."""
        try:
            resolve(self.profiles[ref.name], urgency=urgency, params=params)
        except InvalidArgument as err:
            raise InvalidArgument(
                [
                    FieldViolation(f"instructions.{v.field}", v.value, f"{v.reason} ({ref.name})")
                    for v in err.violations
                ]
            ) from err

    def _facts(
        self,
        order: OrderAtArrival,
        instrument: Instrument,
        found: Features,
        market: MarketSnapshot,
        calendar: Calendar,
        now: datetime,
    ) -> OrderFacts:
        values = found.values
        return OrderFacts(
            symbol=order.symbol, instrument_class=instrument.asset_class, side=order.side,
            urgency=order.urgency, account=order.account, size_pct_adv=values["size_pct_adv"],
            notional=notional(order, instrument, market), spread_bps=values["spread_bps"],
            volatility_pct=values["volatility_pct"],
            minutes_to_close=values["minutes_to_close"],
            minutes_since_open=minutes_since_open(calendar, now),
        )  # fmt: skip

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
        if message.topic.endswith(MARKET_DATA_TOPIC):
            self.on_market_data(envelope)
        elif envelope.WhichOneof("payload") == "order_submitted":
            self.on_submitted(envelope.order_submitted)

    def on_market_data(self, envelope: events_pb2.EventEnvelope) -> None:
        kind = envelope.WhichOneof("payload")
        with self._lock:
            if kind == "consolidated_quote_updated":
                q = envelope.consolidated_quote_updated
                view = self._views.get(q.symbol)
                if view is not None:
                    view.on_quote(
                        q.exchange_time_unix_nanos / NANOS, q.bid_price_nanos, q.ask_price_nanos,
                        q.bid_size, q.ask_size,
                    )  # fmt: skip
            elif kind == "trade_printed":
                trade = envelope.trade_printed
                view = self._views.get(trade.symbol)
                if view is not None:
                    view.on_trade(trade.exchange_time_unix_nanos / NANOS, trade.quantity)

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


def request_of(
    order_id: str,
    account: str,
    symbol: str,
    side: int,
    quantity: int,
    urgency: int,
    instructions: common_pb2.ExecutionInstructions,
) -> SelectionRequest:
    """The request for an order as the protos carry it (its own instructions kept).

    Raises InvalidArgument naming a side or urgency out of range."""
    if side not in Side._value2member_map_:
        raise InvalidArgument.single("side", side, "BUY, SELL or SELL_SHORT")
    if urgency and urgency not in Urgency._value2member_map_:
        raise InvalidArgument.single("urgency", urgency, "LOW, MEDIUM or HIGH")
    i = instructions
    return SelectionRequest(
        order_id=order_id, account=account, symbol=symbol, side=Side(side), quantity=quantity,
        urgency=Urgency(urgency) if urgency else None, algo_profile=i.algo_profile,
        max_participation_bps=i.max_participation_bps, params=dict(i.params),
        start_time=i.start_time.ToDatetime(tzinfo=UTC) if i.HasField("start_time") else None,
        end_time=i.end_time.ToDatetime(tzinfo=UTC) if i.HasField("end_time") else None,
    )  # fmt: skip


def _regime_name(values: Mapping[str, float]) -> str:
    return Features(dict(values)).regime


def _explain(
    request: SelectionRequest,
    rule: Rule,
    chosen: ProfileRef,
    ranking: Ranking | None,
    found: Features,
    min_confidence: float,
) -> str:
    if request.algo_profile:
        return f"the order names {chosen.name}"
    values = found.values
    why = (
        (f"rule {rule.name}" if rule.name else f"no rule matched: {rule.strategy}'s default")
        + f" ({values['size_pct_adv']:.2f}% ADV, spread {values['spread_bps']:.1f} bps, "
        f"regime {found.regime})"
    )
    if ranking is None:
        return f"{why} → {chosen.name}"
    costs = ", ".join(
        f"{name} {p.cost_bps:.1f}±{p.risk_bps:.1f}" for name, p in ranking.predictions.items()
    )
    if ranking.confidence < min_confidence:
        return (
            f"{why} → {chosen.name}; model {ranking.version} unsure "
            f"({ranking.confidence:.2f} < {min_confidence:.2f}): {costs} bps"
        )
    return f"{why}; model {ranking.version}: {costs} bps → {chosen.name}"
