"""`fillpath bench sor --quality`: how well the router routes, on the market lab.

The same parent orders (mixed size and urgency, both sides, spread over one simulated session)
are executed three times on the same lab session (same seed), each time by a different router:

- **smart**: the Router of `fillpath.sor`, with the dark leakage guard, learning venue quality
  from its own executions as the service does (the Learner, counters in Redis);
- **smart, no guard**: the same with `leakage_guard` off;
- **naive**: everything to the lit venue showing the best price, as one IOC limit deep enough
  to fill it there — ignoring fees, fill rates and dark pools.

An execution works in rounds: route what is left, place the allocations (child orders kept by
the OMS's own domain model, `ParentOrder`), wait the urgency's horizon or until every child is
done, cancel what still works, and route the rest again at high urgency — up to `MAX_ROUNDS`.

Figures, each parent measured by the TCA library (fillpath.monitor.tca) against its arrival
mid:
- **all-in cost**: implementation shortfall in bps — price, fees and rebates, and any
  unfilled remainder at the end mid (notional-weighted mean over the parents);
- **cheapest-set share**: for each routing round, the ex-post cheapest all-in set is the set of
  venues that offered the cheapest shares for the round's quantity, with hindsight: every lit
  venue's true book when the round was decided (price plus taker fee), and the passive and
  dark fills the round actually got (price plus maker or midpoint fee). Ranking those shares
  by all-in cost, the round's quantity is reached at a marginal cost c*; the set is every
  venue with a share at or below c*. The share is the routed quantity that went to a venue in
  the set — a dark ping that found nothing, or a rest that did not fill, counts against it;
- **dark adverse selection**: the quantity-weighted 10 s markout of the dark fills (TCA's
  per-fill markout, positive = the price moved against us after the fill).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fillpath.bench.desk import LIQUIDITY, Fill, LabDesk
from fillpath.core.enums import ExecType, OrderType, Side, TimeInForce, Urgency
from fillpath.core.errors import FailedPrecondition
from fillpath.core.parent_order import ParentOrder
from fillpath.core.price import Price
from fillpath.core.routing import TAKE, RouteAllocation
from fillpath.infra.redis.embedded import start_embedded_redis
from fillpath.infra.reference_data import load_reference_data
from fillpath.market.config import LabConfig
from fillpath.market.layout import BUY, NO_LEVEL, SELL
from fillpath.monitor.tca import Quotes, Tape
from fillpath.sor.market import NANOS
from fillpath.sor.router import HORIZONS, RouteOrder
from fillpath.sor.state import LIT

ARMS = ("smart", "smart, no leakage guard", "naive")
MAX_ROUNDS = 8
ACTIVE_STEP = 0.25  # seconds of market time per step while an execution works
IDLE_STEP = 5.0
WARM_UP = 300.0  # seconds after the open before the first parent
MARKOUT = 10.0
_BPS = 1e4


@dataclass(frozen=True, slots=True)
class Parent:
    order_id: str
    side: Side
    quantity: int
    urgency: Urgency
    arrival: float  # seconds since the open


def parents(count: int, seed: int, session: float, lot: int) -> list[Parent]:
    """`count` parents spread evenly over the session: 1 to 100 lots (log-uniform), either
    side, any urgency."""
    rng = np.random.default_rng(seed)
    spacing = (session - 2 * WARM_UP) / count
    out = []
    for i in range(count):
        lots = round(math.exp(rng.uniform(0.0, math.log(100.0))))
        out.append(
            Parent(
                order_id=f"Q{i:04d}",
                side=Side.BUY if rng.random() < 0.5 else Side.SELL,
                quantity=lots * lot,
                urgency=(Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH)[int(rng.integers(3))],
                arrival=WARM_UP + i * spacing + rng.uniform(0, 0.2 * spacing),
            )
        )
    return out


@dataclass(slots=True)
class Round:
    quantity: int  # what was left to route
    mid: float  # nanos, when it was routed
    routed: dict[str, int]  # venue → quantity routed
    units: list[tuple[float, int, str]]  # (all-in bps, shares, venue): the true lit books
    deadline: float


@dataclass(slots=True)
class _Execution:
    parent: Parent
    order: ParentOrder
    mid: float  # arrival mid, nanos
    bid: int
    ask: int
    rounds: list[Round] = field(default_factory=list)
    fills: list[tuple[float, int, int, str, int, str, int]] = field(default_factory=list)
    # (seconds, quantity, price nanos, liquidity, fee nanos, venue, round)
    round_of: dict[str, int] = field(default_factory=dict)  # child order id → round
    canceling: bool = False
    ended: float | None = None


class _Session:
    """One arm: a lab session, the router (or the naive one) and the executions."""

    def __init__(
        self, arm: str, symbol: str, seed: int, redis_url: str, progress: Progress
    ) -> None:
        self.desk = LabDesk(symbol, seed, redis_url, leakage_guard=arm == ARMS[0])
        self.symbol = symbol
        self.arm = arm
        self.lab = self.desk.lab
        self.book = self.desk.book
        self.executions: dict[str, _Execution] = {}
        self._progress = progress

    # ---- the run -----------------------------------------------------------------------------

    def run(self, orders: Sequence[Parent]) -> None:
        task = self._progress.add_task(self.arm, total=len(orders))
        pending = sorted(orders, key=lambda p: p.arrival)
        active: list[_Execution] = []
        end = self.lab.config.session_seconds
        now = 0.0
        while now < end and (pending or active):
            step = ACTIVE_STEP if active else IDLE_STEP
            target = min(now + step, end)
            if pending and not active:
                target = min(target, max(pending[0].arrival, now + ACTIVE_STEP))
            self._advance(target)
            now = target
            self.desk.refresh_router()
            while pending and pending[0].arrival <= now:
                execution = self._start(pending.pop(0))
                if execution is not None:
                    active.append(execution)
            for execution in list(active):
                if self._work(execution, now):
                    active.remove(execution)
                    self._progress.advance(task)
        for execution in active:
            execution.ended = now
        self._progress.update(task, completed=len(orders))

    def _advance(self, until: float) -> None:
        for report in self.desk.advance(until):
            execution = report.owner
            assert isinstance(execution, _Execution)
            self.desk.apply(execution.order, report)
            r = report.report
            if r.exec_type is ExecType.TRADE and r.last_price is not None:
                assert r.transact_time is not None
                execution.fills.append(
                    (
                        self.desk.seconds(r.transact_time), r.last_quantity, r.last_price.nanos,
                        LIQUIDITY[r.liquidity], r.fee_nanos, r.venue,
                        execution.round_of[r.order_id],
                    )
                )  # fmt: skip

    def _start(self, parent: Parent) -> _Execution | None:
        market = self.book.get(self.symbol)
        if market is None or market.mid <= 0:
            return None
        order = self.desk.submit(parent.order_id, parent.side, parent.quantity)
        execution = _Execution(
            parent=parent, order=order, mid=market.mid, bid=market.bid, ask=market.ask
        )
        self.executions[parent.order_id] = execution
        self._route(execution)
        return execution

    def _work(self, execution: _Execution, now: float) -> bool:
        """Moves an execution on; True when it has ended."""
        order = execution.order
        live = order.live_children()
        current = execution.rounds[-1] if execution.rounds else None
        if live:
            if current is not None and now >= current.deadline and not execution.canceling:
                for child in live:
                    self.desk.cancel(order, child.order_id)
                execution.canceling = True
            return False
        execution.canceling = False
        if order.parent.leaves_quantity == 0 or len(execution.rounds) >= MAX_ROUNDS:
            execution.ended = now
            return True
        self._route(execution)
        return False

    # ---- routing -----------------------------------------------------------------------------

    def _route(self, execution: _Execution) -> None:
        parent = execution.parent
        leaves = execution.order.parent.leaves_quantity
        urgency = parent.urgency if not execution.rounds else Urgency.HIGH
        allocations: Sequence[RouteAllocation]
        if self.arm == ARMS[2]:
            allocation = self._naive(parent.side, leaves)
            allocations = () if allocation is None else (allocation,)
        else:
            try:
                decision = self.desk.router.route(
                    RouteOrder(
                        order_id=parent.order_id, symbol=self.symbol, side=parent.side,
                        quantity=leaves, urgency=urgency, allow_dark=True,
                    )
                )  # fmt: skip
            except FailedPrecondition:
                return  # no market now: the next step tries again
            allocations = decision.allocations
        if not allocations:
            return
        market = self.book.get(self.symbol)
        mid = market.mid if market is not None else execution.mid
        execution.rounds.append(
            Round(
                quantity=leaves,
                mid=mid,
                routed={},
                units=self._true_book(parent.side, leaves, mid),
                deadline=self.lab.now + (HORIZONS[urgency] if self.arm != ARMS[2] else 0.0),
            )
        )
        for a in allocations:
            routed = execution.rounds[-1].routed
            routed[a.venue] = routed.get(a.venue, 0) + a.quantity
        self._place(execution, allocations)

    def _place(self, execution: _Execution, allocations: Sequence[RouteAllocation]) -> None:
        order = execution.order
        n = len(order.children)
        ids = [f"{order.order_id}-{n + i}" for i in range(len(allocations))]
        for event in self.desk.place(order, allocations, ids, execution):
            execution.round_of[event.order_id] = len(execution.rounds) - 1

    def _naive(self, side: Side, quantity: int) -> RouteAllocation | None:
        """Everything to the lit venue with the best displayed price (the larger size breaks
        a tie), as an IOC limit at the price its own book reaches for the whole quantity."""
        state = self.book.snapshot(self.symbol, 1.0)
        if state is None:
            return None
        far = "ask" if side is Side.BUY else "bid"
        s = 1 if side is Side.BUY else -1
        quoting = [
            (s * int(row[f"{far}_px"][0]), -int(row[f"{far}_qty"][0]), v)
            for v, row in enumerate(state)
            if row["kind"] == LIT and row[f"{far}_qty"][0] > 0
        ]
        if not quoting:
            return None
        chosen = min(quoting)[2]
        row = state[chosen]
        reached, price = 0, 0
        for px, qty in zip(row[f"{far}_px"], row[f"{far}_qty"], strict=True):
            if qty <= 0:
                break
            reached, price = reached + int(qty), int(px)
            if reached >= quantity:
                break
        return RouteAllocation(
            venue=self.book.venues[chosen].name, quantity=quantity, order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.IOC, limit_price=Price(price), source=TAKE,
        )  # fmt: skip

    def _true_book(self, side: Side, quantity: int, mid: float) -> list[tuple[float, int, str]]:
        """The far side of every lit venue as it truly stands (the engine's books), priced all
        in: (bps against `mid`, shares, venue), enough of each for `quantity`."""
        engine, model = self.lab.engine(self.symbol), self.lab.model(self.symbol)
        books = engine.books
        far, step = (SELL, 1) if side is Side.BUY else (BUY, -1)
        s = 1 if side is Side.BUY else -1
        units = []
        for v, venue in enumerate(self.lab.venues):
            if venue.kind != "lit":
                continue
            level, found = int(books.best[v, far]), 0
            while level != NO_LEVEL and 0 <= level < books.depth.shape[2] and found < quantity:
                size = int(books.depth[v, far, level])
                if size:
                    price = (model.base_ticks + level) * model.tick_nanos
                    bps = s * (price - mid) / mid * _BPS + venue.taker_fee_nanos / price * _BPS
                    units.append((bps, size, venue.name))
                    found += size
                level += step
        return units

    # ---- figures -----------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        record = self.desk.market_record()
        costs, notionals, filled, wanted = [], [], 0, 0
        dark: dict[str, list[float]] = {}  # pool → [Σ markout bps × shares, shares]
        liquidity: dict[str, int] = {}
        in_set = routed = 0
        for execution in self.executions.values():
            tca = self._tca(execution, record)
            costs.append(tca["implementation_shortfall"]["bps"]["total"])
            notionals.append(execution.parent.quantity * execution.mid / NANOS)
            filled += int(tca["filled_quantity"])
            wanted += execution.parent.quantity
            for fill, (*_, venue, _) in zip(tca["fills"], execution.fills, strict=True):
                quantity = int(fill["quantity"])
                liquidity[fill["liquidity"]] = liquidity.get(fill["liquidity"], 0) + quantity
                markout = fill["markouts_bps"][f"{MARKOUT:g}s"]
                if fill["liquidity"] == "midpoint" and markout is not None:
                    pool = dark.setdefault(venue, [0.0, 0.0])
                    pool[0] += markout * quantity
                    pool[1] += quantity
            hits, total = routed_to_cheapest(
                execution.parent.side, execution.rounds, execution.fills
            )
            in_set += hits
            routed += total
        cost = np.asarray(costs)
        weights = np.asarray(notionals)
        dark_sum, dark_qty = (sum(x) for x in zip(*dark.values(), strict=True)) if dark else (0, 0)
        all_fills = max(sum(liquidity.values()), 1)
        return {
            "parents": len(costs),
            "fill_rate": filled / wanted if wanted else 0.0,
            "cost_bps": float((cost * weights).sum() / weights.sum()),
            "cost_bps_mean": float(cost.mean()),
            "cost_bps_stdev": float(cost.std(ddof=1)),
            "cheapest_set_share": in_set / routed if routed else math.nan,
            "fill_mix": {k: v / all_fills for k, v in sorted(liquidity.items())},
            "dark_filled": int(dark_qty),
            "dark_markout_bps": dark_sum / dark_qty if dark_qty else None,
            "dark_by_pool": {
                v: {"filled": int(q), "markout_bps": b / q} for v, (b, q) in sorted(dark.items())
            },
            "rounds_mean": float(np.mean([len(e.rounds) for e in self.executions.values()])),
        }

    def _tca(self, execution: _Execution, record: tuple[Tape, Quotes]) -> dict[str, Any]:
        parent = execution.parent
        end = execution.ended if execution.ended is not None else self.lab.now
        fills = [Fill(*f[:6]) for f in execution.fills]
        arrival = (parent.arrival, execution.bid, execution.ask)
        return self.desk.tca(
            parent.side, parent.quantity, arrival, end, fills, record, markouts=(MARKOUT,)
        )


def routed_to_cheapest(
    side: Side, rounds: Sequence[Round], fills: Sequence[tuple[float, int, int, str, int, str, int]]
) -> tuple[int, int]:
    """(routed quantity that went to the ex-post cheapest all-in set, routed quantity), over
    `rounds` and their `fills` (see the module docstring)."""
    s = 1 if side is Side.BUY else -1
    hits = total = 0
    for k, r in enumerate(rounds):
        units = list(r.units)
        for _, qty, price, liquidity, fee, venue, round_ in fills:
            if round_ == k and liquidity in ("maker", "midpoint"):
                bps = s * (price - r.mid) / r.mid * _BPS + fee / qty / price * _BPS
                units.append((bps, qty, venue))
        units.sort()
        reached, marginal = 0, math.inf
        for bps, qty, _ in units:
            reached += qty
            if reached >= r.quantity:
                marginal = bps
                break
        cheapest = {v for bps, _, v in units if bps <= marginal + 1e-9}
        hits += sum(q for v, q in r.routed.items() if v in cheapest)
        total += sum(r.routed.values())
    return hits, total


def run_sor_quality(
    console: Console, *, symbol: str, orders: int, seed: int, as_json: bool
) -> dict[str, Any]:
    reference = load_reference_data()
    lot = 100 * reference.instruments[symbol].lot_size
    book_of_orders = parents(orders, seed, LabConfig(seed=seed).session_seconds, lot)
    results: dict[str, Any] = {"setup": {"symbol": symbol, "orders": orders, "seed": seed}}
    with tempfile.TemporaryDirectory(prefix="fillpath-quality-") as scratch:
        server = start_embedded_redis(Path(scratch) / "redis")
        try:
            with Progress(
                TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("parents"), TimeElapsedColumn(), console=console, transient=True,
                disable=as_json,
            ) as progress:  # fmt: skip
                for arm in ARMS:
                    session = _Session(arm, symbol, seed, server.url, progress)
                    session.run(book_of_orders)
                    results[arm] = session.figures()
        finally:
            server.stop()
    smart, naive = results[ARMS[0]], results[ARMS[2]]
    results["aims"] = {
        "cheapest_set_share": smart["cheapest_set_share"],
        "cost_reduction_vs_naive": 1 - smart["cost_bps"] / naive["cost_bps"]
        if naive["cost_bps"] > 0
        else None,
        "dark_markout_guard_on_bps": smart["dark_markout_bps"],
        "dark_markout_guard_off_bps": results[ARMS[1]]["dark_markout_bps"],
    }
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print(console, results)
    return results


def _print(console: Console, results: dict[str, Any]) -> None:
    setup = results["setup"]
    table = Table(
        title=f"Routing quality on the market lab: {setup['orders']} parents of "
        f"{setup['symbol']} (seed {setup['seed']}), TCA against the arrival mid",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("")
    for arm in ARMS:
        table.add_column(arm, justify="right")

    def row(name: str, cell: Any) -> None:
        table.add_row(name, *(cell(results[arm]) for arm in ARMS))

    def number(value: float | None, spec: str) -> str:
        return "—" if value is None or math.isnan(value) else format(value, spec)

    row("all-in cost, bps (notional-weighted)", lambda f: number(f["cost_bps"], ".2f"))
    row("  mean ± stdev per parent", lambda f: f"{f['cost_bps_mean']:.2f} ± "
        f"{f['cost_bps_stdev']:.2f}")  # fmt: skip
    row("routed to the ex-post cheapest set", lambda f: number(100 * f["cheapest_set_share"],
        ".1f") + " %")  # fmt: skip
    row("filled", lambda f: f"{100 * f['fill_rate']:.1f} %")
    for kind in ("taker", "maker", "midpoint"):
        row(f"  of fills: {kind}", lambda f, k=kind: f"{100 * f['fill_mix'].get(k, 0):.1f} %")
    row("dark fills, shares", lambda f: f"{f['dark_filled']:,}")
    row(f"dark fills' {MARKOUT:g} s markout, bps", lambda f: number(f["dark_markout_bps"], ".2f"))
    pools = sorted({v for arm in ARMS for v in results[arm]["dark_by_pool"]})

    def pool_cell(figures: dict[str, Any], pool: str) -> str:
        found = figures["dark_by_pool"].get(pool)
        return "—" if found is None else f"{found['filled']:,}, {found['markout_bps']:.2f}"

    for pool in pools:
        row(f"  {pool}: shares, markout bps", lambda f, v=pool: pool_cell(f, v))
    row("routing rounds per parent", lambda f: f"{f['rounds_mean']:.2f}")
    console.print(table)
    aims = results["aims"]
    reduction = aims["cost_reduction_vs_naive"]
    console.print(
        f"(a) cheapest-set share {100 * aims['cheapest_set_share']:.1f} % (aim ≥ 92 %)\n"
        f"(b) all-in cost {'—' if reduction is None else f'{100 * reduction:.1f} %'} lower "
        "than the naive router's (aim ≥ 20 %)\n"
        f"(c) dark fills' markout, guard on vs off: "
        f"{number(aims['dark_markout_guard_on_bps'], '.2f')} vs "
        f"{number(aims['dark_markout_guard_off_bps'], '.2f')} bps (lower is better)"
    )
