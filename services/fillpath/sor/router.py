"""The router: a Route request in, a routing decision out.

Checks the request (naming the bad field), turns the mode and urgency into the kernel's prices,
decides which venues may be used and why not the others, runs the routing kernel on a copy of
the instrument's state and turns its shares per source into child-order instructions.

Modes (what the kernel's cost counts):
- best execution (the default): price, fees and rebates, latency, adverse selection, rejects
  and the cost of not being filled now, which the urgency sets;
- best price: the price alone;
- fastest: take displayed liquidity only, latency weighs heavily, nothing rests;
- lowest cost: as best execution, but patient: a missed share costs little more than crossing
  the spread later.

Urgency sets the horizon a resting order has to fill (`HORIZONS`) and the premium a share left
unfilled costs beyond crossing later (`MISS_PREMIUM_BPS`).

Leakage guard (dark pools, when on): ping sizes are randomised (each pool's typical fill size
is jittered by ±40 % per decision, so the kernel's sizes do not repeat), a pool pinged for an
order rests for `dark_cooldown` seconds for that order, a pool whose fills are followed by
adverse moves beyond `adverse_markout_bps` is left out, and every ping asks for a minimum
fill of a quarter of its size (at least the pool's minimum).
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from fillpath.core.enums import OrderType, Side, TimeInForce, Urgency
from fillpath.core.errors import FailedPrecondition, FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.price import NANOS_PER_UNIT, Price
from fillpath.core.routing import PING, REST, TAKE, RouteAllocation, RoutingDecision
from fillpath.infra.settings import SorSettings
from fillpath.sor.kernel import BPS, Request, decide
from fillpath.sor.market import MarketBook
from fillpath.sor.quality import Breaker
from fillpath.sor.state import DARK, DEPTH, empty_state

BEST_EXECUTION = "best_execution"
BEST_PRICE = "best_price"
FASTEST = "fastest"
LOWEST_COST = "lowest_cost"
MODES = (BEST_EXECUTION, BEST_PRICE, FASTEST, LOWEST_COST)

HORIZONS = {Urgency.LOW: 120.0, Urgency.MEDIUM: 30.0, Urgency.HIGH: 5.0}
"""Seconds a resting or dark order is given to fill, by urgency."""

MISS_PREMIUM_BPS = {Urgency.LOW: 0.5, Urgency.MEDIUM: 2.0, Urgency.HIGH: 8.0}
"""What a share left unfilled costs beyond crossing the spread later (drift, risk), bps."""

FASTEST_MISS_BPS = 1_000.0
LATENCY_BPS_PER_MS = 0.05
"""Best execution's price of a millisecond of order-entry latency (fastest: 20 times more)."""

PING_JITTER = 0.4


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteOrder:
    """A Route request, as the servicer read it."""

    order_id: str
    symbol: str
    side: Side | None
    quantity: int
    limit_price: Price | None = None
    urgency: Urgency = Urgency.MEDIUM
    mode: str = BEST_EXECUTION
    preferred: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    max_venues: int = 0
    allow_dark: bool = True


@dataclass(slots=True)
class _Cooldowns:
    """(order, pool) → when the pool may be pinged for the order again (seconds since the epoch,
    by the router's clock)."""

    until: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resting(self, order_id: str, venue: str, now: float) -> bool:
        return self.until.get((order_id, venue), 0.0) > now

    def start(self, order_id: str, venues: Sequence[str], now: float, seconds: float) -> None:
        with self.lock:
            if len(self.until) > 10_000:
                self.until = {k: t for k, t in self.until.items() if t > now}
            for venue in venues:
                self.until[(order_id, venue)] = now + seconds


class Router:
    def __init__(
        self,
        book: MarketBook,
        instruments: dict[str, Instrument],
        settings: SorSettings,
        *,
        claim_probe: Callable[[str, float], bool] = lambda venue, ttl: True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        seed: int | None = None,
    ) -> None:
        """`claim_probe(venue, ttl)` says whether this decision may send the one probe to a
        half-open venue. `breakers` is the circuit breakers as last read (by the service).
        `clock` is the time of decisions, cool-downs and breakers: the wall clock in the
        service, the market lab's in `fillpath bench sor --quality`."""
        self._book = book
        self._instruments = instruments
        self._settings = settings
        self.breakers: dict[str, Breaker] = {}
        self._claim_probe = claim_probe
        self._clock = clock
        self._random = random.Random(seed)  # noqa: S311 - jitter, not secrecy
        self._cooldowns = _Cooldowns()
        self._local = threading.local()

    def _buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's output arrays of this thread."""
        local = self._local
        if not hasattr(local, "out"):
            local.out = np.zeros(2 * len(self._book.venues), dtype=np.int64)
            local.spend = np.zeros(2 * len(self._book.venues))
        return local.out, local.spend

    def warm_up(self) -> None:
        """Compiles (or loads) the kernel now, not on the first live request."""
        state = empty_state(1)
        state["bid_px"][0, 0], state["bid_qty"][0, 0] = 99, 1
        state["ask_px"][0, 0], state["ask_qty"][0, 0] = 101, 1
        out, spend = np.zeros(2, dtype=np.int64), np.zeros(2)
        decide(state, np.ones(1, dtype=np.bool_), np.zeros(1), Request(side=1, quantity=1),
               out, spend)  # fmt: skip

    def unit_costs(self, symbol: str) -> np.ndarray | None:
        """The expected cost (bps) of one lot (or the venue's minimum) bought on each venue
        alone, best execution at medium urgency: the router's own price of the venue. NaN
        where it would route nothing; None without a two-sided market."""
        instrument = self._instruments.get(symbol)
        market = self._book.get(symbol)
        state = self._book.snapshot(symbol, HORIZONS[Urgency.MEDIUM])
        if instrument is None or market is None or state is None or market.mid <= 0:
            return None
        lot = instrument.lot_size
        order = RouteOrder(order_id="", symbol=symbol, side=Side.BUY, quantity=lot)
        everywhere = np.ones(len(state), dtype=np.bool_)
        request = self._request(order, instrument, 1, market.bid, market.ask, state, everywhere)
        out, spend = self._buffers()
        costs = np.full(len(state), math.nan)
        for v, spec in enumerate(self._book.venues):
            alone = np.zeros(len(state), dtype=np.bool_)
            alone[v] = True
            smallest = max(lot, -(-spec.min_qty // lot) * lot)  # a dark pool's minimum
            unit = dataclasses.replace(request, quantity=smallest)
            decide(state, alone, np.zeros(len(state)), unit, out, spend)
            if out.sum() > 0:
                costs[v] = spend.sum() / out.sum()
        return costs

    # ---- checks ----------------------------------------------------------------------------

    def _check(self, order: RouteOrder) -> Instrument:
        violations: list[FieldViolation] = []
        if not order.order_id:
            violations.append(FieldViolation("order_id", order.order_id, "required"))
        instrument = self._instruments.get(order.symbol)
        if instrument is None:
            violations.append(FieldViolation("symbol", order.symbol, "unknown instrument"))
        if order.side is None:
            violations.append(FieldViolation("side", 0, "BUY, SELL or SELL_SHORT"))
        if instrument is not None:
            reason = instrument.quantity_violation(order.quantity)
            if reason:
                violations.append(FieldViolation("quantity", order.quantity, reason))
            if order.limit_price is not None:
                reason = instrument.price_violation(order.limit_price)
                if reason:
                    violations.append(
                        FieldViolation("limit_price_nanos", order.limit_price.nanos, reason)
                    )
        if order.mode not in MODES:
            violations.append(FieldViolation("mode", order.mode, f"one of {', '.join(MODES)}"))
        if order.max_venues < 0:
            violations.append(FieldViolation("max_venues", order.max_venues, "0 (any) or more"))
        named = (("preferred_venues", order.preferred), ("excluded_venues", order.excluded))
        violations.extend(
            FieldViolation(field, venue, "unknown venue")
            for field, venues in named
            for venue in venues
            if venue not in self._book.index
        )
        if violations:
            raise InvalidArgument(violations)
        assert instrument is not None
        return instrument

    def _check_collar(self, order: RouteOrder, instrument: Instrument, mid: float) -> None:
        if order.limit_price is None:
            return
        reference = mid if mid > 0 else instrument.reference_price.nanos
        distance_bps = abs(order.limit_price.nanos - reference) / reference * BPS
        if distance_bps > self._settings.collar_bps:
            raise InvalidArgument.single(
                "limit_price_nanos",
                order.limit_price.nanos,
                f"{distance_bps:.0f} bps from the mid {Price(round(reference))}: outside the "
                f"collar of {self._settings.collar_bps} bps",
            )

    # ---- eligibility -------------------------------------------------------------------------

    def _eligibility(
        self, order: RouteOrder, state: np.ndarray, now: float
    ) -> tuple[np.ndarray, dict[str, str], set[str]]:
        """(eligible per venue, why each other venue is out, the half-open venues probed)."""
        eligible = np.ones(len(state), dtype=np.bool_)
        why: dict[str, str] = {}
        probes: set[str] = set()
        breakers = self.breakers
        guard = self._settings.leakage_guard
        for i, spec in enumerate(self._book.venues):
            name = spec.name
            dark = spec.kind == DARK
            breaker = breakers.get(name, Breaker())
            circuit = breaker.state(now, self._settings.breaker_failures)
            if not spec.enabled:
                why[name] = "disabled"
            elif name in order.excluded:
                why[name] = "excluded by the request"
            elif dark and not order.allow_dark:
                why[name] = "dark pools not allowed"
            elif dark and order.mode == FASTEST:
                why[name] = "dark pools do not fill at once (fastest)"
            elif circuit == "open":
                why[name] = f"circuit open ({breaker.failures} failures)"
            elif dark and guard and self._cooldowns.resting(order.order_id, name, now):
                why[name] = "cool-down after a ping for this order"
            elif dark and guard and state[i]["markout_bps"] > self._settings.adverse_markout_bps:
                why[name] = f"adverse markouts ({state[i]['markout_bps']:.1f} bps)"
            elif circuit == "half-open":
                if self._claim_probe(name, self._settings.breaker_cooldown):
                    probes.add(name)
                else:
                    why[name] = "circuit half-open, probe in flight"
            if name in why:
                eligible[i] = False
        return eligible, why, probes

    # ---- the decision ------------------------------------------------------------------------

    def route(self, order: RouteOrder) -> RoutingDecision:
        """Decides; raises InvalidArgument or FailedPrecondition, naming the problem."""
        instrument = self._check(order)
        urgency = order.urgency
        state = self._book.snapshot(order.symbol, HORIZONS[urgency])
        market = self._book.get(order.symbol)
        mid = market.mid if market is not None else 0.0
        self._check_collar(order, instrument, mid)
        if state is None or mid <= 0:
            raise FailedPrecondition(
                "NO_MARKET", f"no two-sided market for {order.symbol} yet", symbol=order.symbol
            )
        at = self._clock()
        now = at.timestamp()
        eligible, why, probes = self._eligibility(order, state, now)
        if not eligible.any():
            reasons = "; ".join(f"{v}: {r}" for v, r in why.items())
            raise FailedPrecondition(
                "NO_VENUE", f"every venue is out of routing ({reasons})", symbol=order.symbol
            )
        assert market is not None
        side = 1 if order.side == Side.BUY else -1
        if self._settings.leakage_guard:
            dark = state["kind"] == DARK
            jitter = [1.0 + self._random.uniform(-PING_JITTER, PING_JITTER) for _ in state]
            state["dark_fill_size"] = np.where(dark, state["dark_fill_size"] * jitter,
                                               state["dark_fill_size"])  # fmt: skip
        request = self._request(order, instrument, side, market.bid, market.ask, state, eligible)
        adjust = np.array(
            [v.adjust_bps - (0.5 if v.name in order.preferred else 0.0) for v in self._book.venues]
        )
        out, spend = self._buffers()
        if math.isnan(decide(state, eligible, adjust, request, out, spend)):
            raise FailedPrecondition(
                "NO_MARKET", f"no lit venue quotes {order.symbol} both sides", symbol=order.symbol
            )
        allocations = self._allocations(order, instrument, state, request, out, spend, probes)
        pinged = [a.venue for a in allocations if a.source == PING]
        if pinged and self._settings.leakage_guard:
            self._cooldowns.start(order.order_id, pinged, now, self._settings.dark_cooldown)
        allocated = sum(a.quantity for a in allocations)
        expected = (
            sum(a.expected_cost_bps * a.quantity for a in allocations) / allocated
            if allocated
            else 0.0
        )
        return RoutingDecision(
            decision_id=uuid.uuid4().hex,
            order_id=order.order_id,
            occurred_at=at,
            symbol=order.symbol,
            side=order.side or Side.BUY,
            quantity=order.quantity,
            mode=order.mode,
            urgency=urgency,
            limit_price=order.limit_price,
            bid_price=Price(market.bid),
            ask_price=Price(market.ask),
            allocations=tuple(allocations),
            expected_cost_bps=expected,
            miss_cost_bps=request.miss_bps,
            excluded=tuple(sorted(why.items())),
            rationale=_rationale(allocations, order.quantity, request.miss_bps, probes),
        )

    def _request(
        self,
        order: RouteOrder,
        instrument: Instrument,
        side: int,
        bid: int,
        ask: int,
        state: np.ndarray,
        eligible: np.ndarray,
    ) -> Request:
        """The kernel's parameters: the mode's weights, and what a missed share costs — crossing
        the spread later at the cheapest eligible taker fee, plus the urgency's premium."""
        mid = (bid + ask) / 2.0
        spread_bps = (ask - bid) / mid * BPS
        taker_bps = float(np.min(np.where(eligible, state["taker_fee"], np.inf)))
        taker_bps = taker_bps * NANOS_PER_UNIT / mid * BPS if math.isfinite(taker_bps) else 0.0
        crossing_later = spread_bps / 2.0 + max(taker_bps, 0.0)
        premium = MISS_PREMIUM_BPS[order.urgency]
        weights = {"w_fee": 1.0, "w_latency": LATENCY_BPS_PER_MS, "w_markout": 1.0}
        allow_rest = True
        miss = crossing_later + premium
        if order.mode == BEST_PRICE:
            weights = {"w_fee": 0.0, "w_latency": 0.0, "w_markout": 0.0}
        elif order.mode == FASTEST:
            weights["w_latency"] = 20 * LATENCY_BPS_PER_MS
            allow_rest = False
            miss = FASTEST_MISS_BPS
        elif order.mode == LOWEST_COST:
            weights["w_latency"] = 0.0
            miss = crossing_later + MISS_PREMIUM_BPS[Urgency.LOW]
        return Request(
            side=side,
            quantity=order.quantity,
            limit=order.limit_price.nanos if order.limit_price is not None else 0,
            tick=instrument.tick_size.nanos,
            lot=instrument.lot_size,
            max_venues=order.max_venues,
            allow_rest=allow_rest,
            miss_bps=miss,
            **weights,
        )

    def _allocations(
        self,
        order: RouteOrder,
        instrument: Instrument,
        state: np.ndarray,
        request: Request,
        out: np.ndarray,
        spend: np.ndarray,
        probes: set[str],
    ) -> list[RouteAllocation]:
        side = request.side
        lot = instrument.lot_size
        bids, asks = state["bid_px"][:, 0], state["ask_px"][:, 0]
        lit = state["kind"] != DARK
        best_bid = int(bids[lit & (state["bid_qty"][:, 0] > 0)].max())
        best_ask = int(asks[lit & (state["ask_qty"][:, 0] > 0)].min())
        near = best_bid if side > 0 else best_ask
        far = best_ask if side > 0 else best_bid
        limit = order.limit_price
        if limit is not None and side * (near - limit.nanos) > 0:
            near = limit.nanos - limit.nanos % request.tick if side > 0 else limit.nanos
        allocations = []
        for v, spec in enumerate(self._book.venues):
            for source in (2 * v, 2 * v + 1):
                shares = int(out[source])
                if shares <= 0:
                    continue
                if spec.name in probes:  # one small order to see whether the venue answers
                    shares = min(shares, -(-max(spec.min_qty, lot) // lot) * lot)
                cost = float(spend[source] / out[source])
                if source % 2 == 0:
                    price = _deepest_price(state[v], side, shares)
                    allocations.append(
                        RouteAllocation(
                            venue=spec.name, quantity=shares, order_type=OrderType.LIMIT,
                            time_in_force=TimeInForce.IOC, limit_price=Price(price),
                            expected_cost_bps=cost, source=TAKE,
                        )
                    )  # fmt: skip
                elif spec.kind == DARK:
                    minimum = spec.min_qty
                    if self._settings.leakage_guard:
                        minimum = max(minimum, (shares // 4) // lot * lot)
                    allocations.append(
                        RouteAllocation(
                            venue=spec.name, quantity=shares, order_type=OrderType.LIMIT,
                            time_in_force=TimeInForce.DAY,
                            limit_price=limit if limit is not None else Price(far),
                            min_quantity=min(minimum, shares), expected_cost_bps=cost,
                            source=PING,
                        )
                    )  # fmt: skip
                else:
                    allocations.append(
                        RouteAllocation(
                            venue=spec.name, quantity=shares, order_type=OrderType.LIMIT,
                            time_in_force=TimeInForce.DAY, limit_price=Price(near),
                            post_only=True, expected_cost_bps=cost, source=REST,
                        )
                    )  # fmt: skip
        return allocations


def _deepest_price(row: np.void, side: int, shares: int) -> int:
    """The price of the far-side level that `shares` taken from the top reach."""
    prices, sizes = (row["ask_px"], row["ask_qty"]) if side > 0 else (row["bid_px"], row["bid_qty"])
    total = 0
    for k in range(DEPTH):
        total += int(sizes[k])
        if total >= shares:
            return int(prices[k])
    return int(prices[DEPTH - 1])


def _rationale(
    allocations: Sequence[RouteAllocation], quantity: int, miss_bps: float, probes: set[str]
) -> str:
    if not allocations:
        return f"nothing routed: no source cheaper than leaving the shares ({miss_bps:.2f} bps)"
    words = {TAKE: "take", REST: "rest", PING: "ping"}
    parts = [
        f"{words[a.source]} {a.quantity} on {a.venue} ({a.expected_cost_bps:+.2f} bps)"
        for a in sorted(allocations, key=lambda a: a.expected_cost_bps)
    ]
    left = quantity - sum(a.quantity for a in allocations)
    text = "; ".join(parts)
    if left:
        text += f"; {left} left: dearer than a miss ({miss_bps:.2f} bps) everywhere"
    if probes:
        text += f"; probing {', '.join(sorted(probes))} after its circuit opened"
    return text
