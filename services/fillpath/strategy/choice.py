"""How an order is to be executed, chosen: the pure core of the strategy service.

`Chooser.choice` reads the order and the market at its arrival into features
(fillpath.strategy.features), finds the first rule of the policy that holds
(fillpath.strategy.rules) and — when the policy lets the cost model choose and a model is
loaded and sure enough — takes the candidate with the least predicted cost + risk aversion ×
risk, else the rule's own profile. The order's own instructions are kept over the rule's
(urgency, params, its participation cap and window); candidates they do not fit are dropped,
and if none fits the order is refused with the field named. Nothing here records or reads
anything: the service (fillpath.strategy.service) and the market lab's benchmark both ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fillpath.api.v1 import common_pb2
from fillpath.core.enums import Side, Urgency
from fillpath.core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.market import Calendar, MarketSnapshot, us_equity_calendar
from fillpath.core.profiles import AlgoProfile, resolve
from fillpath.core.strategy import StrategySelected
from fillpath.strategy.features import (
    Features,
    OrderAtArrival,
    Regime,
    features,
    minutes_since_open,
    notional,
)
from fillpath.strategy.model import CostModel, Ranking
from fillpath.strategy.rules import OrderFacts, Policy, ProfileRef, Rule

MAX_REMEMBERED_FITS = 4096
"""Instructions a Chooser remembers a profile taking (orders' own params make them
unbounded)."""


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


class Chooser:
    def __init__(
        self,
        policy: Policy,
        profiles: Mapping[str, AlgoProfile],
        instruments: Mapping[str, Instrument],
        *,
        model: CostModel | None = None,
        calendar_of: Callable[[datetime], Calendar] = us_equity_calendar,
    ) -> None:
        self.policy = policy
        self.profiles = profiles
        self.instruments = instruments
        self.model = model
        self.calendar_of = calendar_of
        self._fits: set[tuple[object, ...]] = set()
        """(profile, urgency, params, participation cap) the profile was seen to take."""

    def choice(
        self, request: SelectionRequest, market: MarketSnapshot, now: datetime
    ) -> StrategySelected:
        """The choice for `request` arriving at `now` into `market` (what the market lab's
        strategy benchmark asks, with the lab session's market)."""
        instrument = self.instrument(request)
        calendar = self.calendar_of(now)
        order = order_at_arrival(request)
        found = features(order, instrument, market, calendar, now)
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
        return self._decide(request, rule, found, now)

    def instrument(self, request: SelectionRequest) -> Instrument:
        """The order's instrument. Raises InvalidArgument for an unknown symbol or a quantity
        that is not positive."""
        instrument = self.instruments.get(request.symbol)
        if instrument is None:
            raise InvalidArgument.single("symbol", request.symbol, "unknown instrument")
        if request.quantity <= 0:
            raise InvalidArgument.single("quantity", request.quantity, "must be positive")
        return instrument

    def _decide(
        self, request: SelectionRequest, rule: Rule, found: Features, now: datetime
    ) -> StrategySelected:
        urgency = request.urgency or rule.urgency
        params = {**dict(rule.params), **request.params}
        objections = {c: self._objection(c, request, urgency, params) for c in rule.choices}
        allowed = [c for c, objection in objections.items() if objection is None]
        if not allowed:
            refused = objections[rule.profile]
            assert refused is not None
            raise refused
        chosen, ranking, decided = allowed[0], None, False
        model = self.model
        settings = self.policy.model
        if model is not None and settings.enabled and not request.algo_profile:
            ranking = model.rank(found, allowed)
            decided = ranking.confidence >= settings.min_confidence
            if decided:
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
            # The model that chose (not one that was asked and was unsure).
            model_version=ranking.version if ranking is not None and decided else "",
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

    def _objection(
        self,
        ref: ProfileRef,
        request: SelectionRequest,
        urgency: Urgency | None,
        params: Mapping[str, float],
    ) -> InvalidArgument | None:
        """What the profile says against the order's instructions (fields named as the request
        names them), or None when it takes them."""
        seen = (ref.name, urgency, *sorted(params.items()), request.max_participation_bps)
        if seen in self._fits:  # most orders bring the same few instructions
            return None
        try:
            resolve(
                self.profiles[ref.name], urgency=urgency, params=params,
                max_participation_bps=request.max_participation_bps,
            )  # fmt: skip
        except InvalidArgument as err:
            return InvalidArgument(
                [
                    FieldViolation(f"instructions.{v.field}", v.value, f"{v.reason} ({ref.name})")
                    for v in err.violations
                ]
            )
        if len(self._fits) < MAX_REMEMBERED_FITS:
            self._fits.add(seen)
        return None

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


def order_at_arrival(request: SelectionRequest) -> OrderAtArrival:
    return OrderAtArrival(
        symbol=request.symbol, side=request.side, quantity=request.quantity,
        account=request.account, urgency=request.urgency, start=request.start_time,
        end=request.end_time,
    )  # fmt: skip


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


URGENCIES = (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH)


def recommend(
    profile: AlgoProfile,
    chosen: Urgency | None,
    current: Urgency | None,
    before: Regime,
    now: Regime,
) -> tuple[Urgency, str] | None:
    """What an order worked under `profile` (its urgency `chosen` at the choice, `current` now)
    should change to when the regime goes from `before` to `now`, and why; None when nothing
    material changed. Volatility turning stormy: finish sooner (HIGH: the timing risk grew);
    liquidity turning thin: trade more patiently (LOW: impact grew); either back from its
    extreme: the urgency chosen. Kept within the profile's allowed urgencies."""
    if now.volatility == 1 and before.volatility != 1:
        wanted, why = Urgency.HIGH, "volatility turned stormy: finish sooner (timing risk)"
    elif now.liquidity == 1 and before.liquidity != 1:
        wanted, why = Urgency.LOW, "liquidity turned thin: trade more patiently (impact)"
    elif (before.volatility == 1 and now.volatility != 1) or (
        before.liquidity == 1 and now.liquidity != 1
    ):
        wanted, why = chosen or profile.urgency, "the regime is back: the urgency chosen"
    else:
        return None
    allowed = sorted(profile.allowed_urgencies, key=URGENCIES.index)
    fitted = min(allowed, key=lambda u: abs(URGENCIES.index(u) - URGENCIES.index(wanted)))
    if fitted == (current or profile.urgency):
        return None
    return fitted, why
