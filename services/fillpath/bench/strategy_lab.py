"""Strategy scenarios on the market lab: what `fillpath strategy train` learns from and
`fillpath bench strategy --quality` judges on.

A scenario is one parent order arriving into one lab session: an instrument, a side, a size
(0.1–3 % of ADV, log-uniform), an arrival between 10:00 and 13:30, a window of 15 or 30
minutes, and a market regime — the lab's volatility and volume scaled away from the
instrument's reference data (×0.6, ×1 or ×1.8; ×0.5, ×1 or ×1.6), which the features see as
realised against expected. Each candidate profile executes the order alone on the same session
(the same seed, so the same market until the order moves it), and the session runs once more
without any order (`still`). Two costs, in bps of the order's value at the arrival mid:

- the implementation shortfall (fillpath.monitor.tca), unfilled shares marked at the window's
  last mid — what a desk measures, most of it over a quarter of an hour the market's own move;
- the execution cost: each fill against the undisturbed session's mid at its time, unfilled
  shares at what finishing them after the window would cost (`finishing`: half the spread and
  the calibrated impact of five minutes' trading), on top of what the order left on the mid —
  the part the choice of profile makes: the implementation shortfall less the market's move,
  with no reward for leaving shares undone. The cost model learns this one: the market's move
  is the same whichever profile works the order, and noise to a model.

Training scenarios use lab seeds from `TRAINING_SEEDS`, held-out ones from `HELD_OUT_SEEDS`:
the two never meet (a training run of a million scenarios would be needed first).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from rich.console import Console

from fillpath.algo.trajectory import impact_estimate
from fillpath.bench.algo_lab import AlgoOrder, AlgoSession, MidPath, undisturbed
from fillpath.bench.algos import in_lab_workers, worker_redis_url
from fillpath.bench.desk import LabDesk
from fillpath.core.enums import Side
from fillpath.core.market import MarketSnapshot, us_equity_calendar
from fillpath.core.profiles import resolve
from fillpath.core.session import open_of
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles
from fillpath.market.config import LabConfig
from fillpath.strategy.choice import SelectionRequest, order_at_arrival
from fillpath.strategy.features import features
from fillpath.strategy.model import Sample

SYMBOLS = ("ACME", "GLBX", "INIT", "UMBR", "SPYX")
CANDIDATES = ("twap-standard", "vwap-standard", "pov-10", "is-balanced", "arrival-urgent")
"""The profiles executed in every scenario: every rule's choices in the shipped policy."""
TRAINING_SEEDS = 1
HELD_OUT_SEEDS = 1_000_000
SIZES_PCT_ADV = (0.1, 3.0)
ARRIVALS = (1_800.0, 14_400.0)
"""Seconds since the open: 10:00 to 13:30."""
WINDOWS = (900.0, 1_800.0)
FINISH_SECONDS = 300.0
"""Unfilled shares are costed as if finished over this long after the window."""
WARM_UP = 900.0
"""Seconds of market the session's view sees, quote by quote, before the order arrives (the
realised volatility and the momentum need them)."""
VOLATILITIES = (0.6, 1.0, 1.8)
LIQUIDITIES = (0.5, 1.0, 1.6)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    index: int
    seed: int
    """The lab session's seed."""
    symbol: str
    side: Side
    size_pct_adv: float
    start: float
    window: float
    volatility: float
    liquidity: float


def scenarios(count: int, seed: int, *, first_lab_seed: int) -> list[Scenario]:
    """`count` scenarios drawn from `seed` (the same seed, the same scenarios)."""
    rng = np.random.default_rng(seed)
    low, high = (math.log(x) for x in SIZES_PCT_ADV)
    return [
        Scenario(
            index=i,
            seed=first_lab_seed + i,
            symbol=str(rng.choice(SYMBOLS)),
            side=Side.BUY if rng.random() < 0.5 else Side.SELL,
            size_pct_adv=float(math.exp(rng.uniform(low, high))),
            start=float(round(rng.uniform(*ARRIVALS))),
            window=float(rng.choice(WINDOWS)),
            volatility=float(rng.choice(VOLATILITIES)),
            liquidity=float(rng.choice(LIQUIDITIES)),
        )
        for i in range(count)
    ]


STILL = ""
"""The 'profile' of a scenario's session run without the order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One candidate's execution of one scenario."""

    scenario: int
    profile: str
    shortfall_bps: float
    """The implementation shortfall."""
    filled: float
    """Share of the order executed in its window."""
    market: MarketSnapshot
    """The market at arrival, as the session's view saw it."""
    quantity: int
    sign: int
    """+1 buy, −1 sell."""
    arrival_mid: float
    end: float
    end_mid: float
    """The mid at the window's end, this execution's session."""
    finish: float
    """What finishing the unfilled shares at the window's end would cost a share, in currency
    (see `finishing`)."""
    fills: tuple[tuple[float, int, float], ...]
    """(seconds since the open, shares, price)."""

    def cost_bps(self, still: MidPath) -> float:
        """The execution cost against the undisturbed session `still` (see the module)."""
        paid = self.sign * sum(q * (p - still.at(t)) for t, q, p in self.fills)
        unfilled = self.quantity - sum(q for _, q, _ in self.fills)
        left = unfilled * (self.sign * (self.end_mid - still.at(self.end)) + self.finish)
        return (paid + left) / (self.quantity * self.arrival_mid) * 1e4


def finishing(desk: LabDesk, at: float, shares: int) -> float:
    """What finishing `shares` from `at` (seconds since the open) would cost a share, in
    currency: half the quoted spread, the temporary impact of trading them over the next
    `FINISH_SECONDS` and half their permanent impact (the instrument's calibrated η and γ)."""
    i = max(bisect.bisect_right([q[0] for q in desk.feed.quotes], at) - 1, 0)
    _, bid, ask = desk.feed.quotes[i]
    eta, gamma = impact_estimate(desk.instrument)
    rate = shares / (FINISH_SECONDS / desk.config.session_seconds)  # shares a day
    return (ask - bid) / 2 + eta * rate + gamma * shares / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Still:
    scenario: int
    path: MidPath


def execute(scenario: Scenario, profile: str) -> Outcome | Still:
    """`profile` executing the scenario's order on its own lab session, or (`STILL`) the
    session without it (in a lab worker)."""
    end = scenario.start + scenario.window
    if profile == STILL:
        path = undisturbed(
            scenario.symbol, scenario.seed, worker_redis_url(), scenario.start, end,
            warm_up=WARM_UP, volatility=scenario.volatility, liquidity=scenario.liquidity,
        )  # fmt: skip
        return Still(scenario=scenario.index, path=path)
    desk = LabDesk(
        scenario.symbol, scenario.seed, worker_redis_url(), volatility=scenario.volatility,
        liquidity=scenario.liquidity,
    )  # fmt: skip
    session = AlgoSession(desk)
    instrument = desk.instrument
    lot = 100 * instrument.lot_size
    quantity = max(lot, round(scenario.size_pct_adv / 100 * instrument.adv / lot) * lot)
    params = resolve(load_algo_profiles(None)[profile])
    order = AlgoOrder(
        order_id=f"S{scenario.index}", side=scenario.side, quantity=quantity, params=params,
        start=scenario.start, end=end,
    )  # fmt: skip
    (run,) = session.run([order], warm_up=WARM_UP)
    assert run.market is not None
    tca = session.tca(run)
    return Outcome(
        scenario=scenario.index, profile=profile,
        shortfall_bps=float(tca["implementation_shortfall"]["bps"]["total"]),
        filled=run.execution.executed / quantity, market=run.market,
        sign=1 if scenario.side is Side.BUY else -1, quantity=quantity,
        arrival_mid=run.market.mid / 1e9, end=end, end_mid=MidPath.of(desk).at(end),
        finish=finishing(desk, end, quantity - run.execution.executed),
        fills=tuple((f.time, f.quantity, f.price_nanos / 1e9) for f in run.fills),
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Executed:
    """A scenario's candidates, each with its two costs."""

    scenario: Scenario
    market: MarketSnapshot
    quantity: int
    shortfall_bps: dict[str, float]
    cost_bps: dict[str, float]
    filled: dict[str, float]


def execute_all(
    console: Console,
    chosen: Sequence[Scenario],
    profiles: Sequence[str] = CANDIDATES,
    *,
    quiet: bool = False,
) -> list[Executed]:
    """Every profile on every scenario, and each session without the order, over the two lab
    workers (with a progress bar)."""
    jobs = [(s, p) for s in chosen for p in (STILL, *profiles)]
    found = in_lab_workers(console, execute, jobs, quiet=quiet)
    still = {f.scenario: f.path for f in found if isinstance(f, Still)}
    runs: dict[int, list[Outcome]] = {}
    for f in found:
        if isinstance(f, Outcome):
            runs.setdefault(f.scenario, []).append(f)
    return [
        Executed(
            scenario=s,
            market=runs[s.index][0].market,
            quantity=runs[s.index][0].quantity,
            shortfall_bps={o.profile: o.shortfall_bps for o in runs[s.index]},
            cost_bps={o.profile: o.cost_bps(still[s.index]) for o in runs[s.index]},
            filled={o.profile: o.filled for o in runs[s.index]},
        )
        for s in chosen
    ]


def arrival(executed: Executed) -> tuple[SelectionRequest, datetime]:
    """The scenario's order as the strategy service is asked to choose for it (its window's
    end time included), and when it arrives."""
    s = executed.scenario
    now = open_of(LabConfig().session_date) + timedelta(seconds=s.start)
    request = SelectionRequest(
        order_id=f"S{s.index}", account="DESK-EQ", symbol=s.symbol, side=s.side,
        quantity=executed.quantity, end_time=now + timedelta(seconds=s.window),
    )  # fmt: skip
    return request, now


def samples(executed: Sequence[Executed]) -> list[Sample]:
    """The cost model's training samples: one per scenario and profile, the execution cost,
    on the features the strategy service reads for the scenario's order."""
    instruments = load_reference_data().instruments
    found = []
    for e in executed:
        request, now = arrival(e)
        instrument, calendar = instruments[request.symbol], us_equity_calendar(now)
        found.append(features(order_at_arrival(request), instrument, e.market, calendar, now))
    return [
        Sample(scenario=e.scenario.index, features=f.values, profile=p, cost_bps=cost)
        for e, f in zip(executed, found, strict=True)
        for p, cost in sorted(e.cost_bps.items())
    ]
