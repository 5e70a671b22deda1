"""The execution state machine against a scripted market: slices filled (or not) as the test
says, so every rule of the engine can be seen on its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest

from fillpath.algo.execution import FINAL, FINAL_ATTEMPTS, Execution, ExecutionState
from fillpath.core.enums import AlgorithmKind, Side, Urgency
from fillpath.core.errors import FailedPrecondition, InvalidArgument
from fillpath.core.executions import AlgoEvent, ExecutionSpec, SliceCancelRequested, SliceSent
from fillpath.core.market import Calendar, MarketSnapshot
from fillpath.core.price import Price
from fillpath.core.profiles import AlgoProfile, resolve
from fillpath.infra.resources import load_resources

OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
MID = 100_000_000_000  # 100.00
TICK = 10_000_000


def profiles() -> dict[str, AlgoProfile]:
    found = load_resources(None, "AlgoProfile", default="algoprofiles.yaml")
    return {r.name: AlgoProfile.from_spec(r.name, r.spec) for r in found}


def spec(profile: str = "twap-standard", **changes: object) -> ExecutionSpec:
    base = ExecutionSpec(
        execution_id="X1", order_id="P1", symbol="ACME", side=Side.BUY, quantity=10_000,
        lot=100, tick_nanos=TICK, limit_price=None, start=OPEN, end=OPEN + timedelta(minutes=20),
        params=resolve(profiles()[profile]), adv=4_500_000, daily_volatility=0.02,
        eta=2e-8, gamma=4e-9,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


CALENDAR = Calendar.from_shares(OPEN.timestamp(), 23_400.0, np.ones(13))


def market(at: datetime, volume: int = 0, window: int = 0, mid: int = MID) -> MarketSnapshot:
    return MarketSnapshot(
        at=at.timestamp(), bid=mid - TICK // 2, ask=mid + TICK // 2, volume=volume,
        window_volume=window, lasting_volume=window * 5 // 6, spread_ratio=1.0,
        sigma=float("nan"),
    )  # fmt: skip


Fills = Callable[[Execution, SliceSent, datetime], list[AlgoEvent]]


def fill_at_once(execution: Execution, sent: SliceSent, at: datetime) -> list[AlgoEvent]:
    events = execution.on_fill(sent.slice, f"E{sent.slice}", sent.quantity, Price(MID), at)
    return events + execution.on_slice_closed(sent.slice, at)


def run(
    execution: Execution,
    *,
    seconds: int,
    fills: Fills = fill_at_once,
    volume_per_second: int = 0,
) -> list[AlgoEvent]:
    """Steps the execution second by second; every slice sent is handed to `fills`."""
    log: list[AlgoEvent] = []
    for second in range(seconds + 1):
        at = OPEN + timedelta(seconds=second)
        snapshot = market(at, volume_per_second * second, volume_per_second * min(second, 60))
        for event in execution.decide(at, snapshot):
            log.append(event)
            if isinstance(event, SliceSent):
                log.extend(fills(execution, event, at))
        if execution.state is ExecutionState.COMPLETED:
            break
    return log


def test_twap_fills_the_order_in_even_slices_and_a_replay_rebuilds_it() -> None:
    execution, created = Execution.create(spec(), CALENDAR, OPEN)

    log = created + run(execution, seconds=1_300)

    sent = [e for e in log if isinstance(e, SliceSent)]
    assert execution.state is ExecutionState.COMPLETED
    assert execution.executed == 10_000
    assert sum(s.quantity for s in sent) == 10_000  # nothing sent twice
    # 20 one-minute slices of 500 on the straight line, sizes and times varied by 20 %: never
    # more than a slice away from the line.
    for s in sent:
        line = (s.occurred_at - OPEN).total_seconds() / 1_200 * 10_000
        assert abs(s.executed - line) <= 500
        assert s.quantity <= 500 * 1.2 + 100
    replayed = Execution.from_events(log, CALENDAR)
    assert replayed.state is execution.state
    assert replayed.executed == execution.executed
    assert replayed.slices == execution.slices
    assert replayed.notional == execution.notional


def test_what_a_final_slice_leaves_goes_again_then_the_rest_is_named() -> None:
    def half(execution: Execution, sent: SliceSent, at: datetime) -> list[AlgoEvent]:
        """A thin book: every slice fills half of itself (to the lot), then its children end."""
        filled = sent.quantity // 200 * 100
        events = execution.on_fill(sent.slice, f"E{sent.slice}", filled, Price(MID), at)
        return events + execution.on_slice_closed(sent.slice, at)

    # A one-second window: one slice, then the window closes with most of the order to do.
    execution, _ = Execution.create(spec(end=OPEN + timedelta(seconds=1)), CALENDAR, OPEN)

    log = run(execution, seconds=30, fills=half)

    finals = [e for e in log if isinstance(e, SliceSent) and e.reason == FINAL]
    assert len(finals) == FINAL_ATTEMPTS
    for before, after in pairwise(finals):
        assert after.quantity == before.quantity - before.quantity // 200 * 100
    left = finals[-1].quantity - finals[-1].quantity // 200 * 100
    assert execution.state is ExecutionState.COMPLETED
    assert execution.executed == 10_000 - left
    assert execution.reason == f"the window closed with {left:,} unfilled"


def test_implementation_shortfall_follows_its_trajectory_when_slices_fill_at_once() -> None:
    # A slice that fills at once is decided again at once: the new decision works to the same
    # period's target, so the order goes at the trajectory's pace (at a small λ, nearly
    # TWAP's), not a period's worth every second.
    params = replace(resolve(profiles()["is-balanced"]), risk_aversion=1e-6)
    execution, _ = Execution.create(spec("is-balanced", params=params), CALENDAR, OPEN)

    # The market trades its average pace (no surge to hurry the order), the cap leaves room.
    log = run(execution, seconds=1_300, volume_per_second=4_500_000 // 23_400)

    sent = [e for e in log if isinstance(e, SliceSent)]
    halfway = max(s.executed for s in sent if s.occurred_at <= OPEN + timedelta(minutes=10))
    assert 4_000 <= halfway <= 6_500  # about half, a little ahead (the trajectory is convex)
    assert len(sent) >= 19  # a slice a minute, not a burst
    assert execution.executed == 10_000


def test_no_slice_exceeds_the_leaves_or_the_limit_price() -> None:
    limit = Price(MID + 2 * TICK)
    params = replace(resolve(profiles()["is-balanced"]), price_limit_bps=1.0)
    execution, _ = Execution.create(
        spec("is-balanced", limit_price=limit, params=params), CALENDAR, OPEN
    )

    def never_fill(execution: Execution, sent: SliceSent, at: datetime) -> list[AlgoEvent]:
        return []

    log = run(execution, seconds=600, fills=never_fill, volume_per_second=1_000)

    sent = [e for e in log if isinstance(e, SliceSent)]
    assert sent
    assert sum(s.quantity for s in sent) <= 10_000  # unfilled slices are never doubled up
    band = MID + MID // 10_000  # 1 bp above the arrival mid
    assert all(s.limit_price is not None and s.limit_price.nanos <= band for s in sent)
    assert all(s.limit_price is not None and s.limit_price.nanos % TICK == 0 for s in sent)
    # Unfilled after the timeout: pulled, to be re-sent.
    assert any(isinstance(e, SliceCancelRequested) for e in log)


def test_pov_keeps_its_share_of_the_volume_under_the_cap() -> None:
    execution, _ = Execution.create(spec("pov-10"), CALENDAR, OPEN)

    run(execution, seconds=600, volume_per_second=200)

    # 600 s × 200 shares: 120,000 traded, 10 % of it is 12,000 > 10,000: it completes early,
    # but the cap of 15 % (aimed at 12 %) of each minute's 12,000 shares holds throughout.
    assert execution.state is ExecutionState.COMPLETED
    for t, _ in execution.fills:
        window = sum(q for at, q in execution.fills if t - 60 < at <= t)
        assert window <= 0.15 * 12_000


def test_iceberg_shows_one_slice_at_a_time_within_its_display_bounds() -> None:
    execution, _ = Execution.create(spec("iceberg-passive"), CALENDAR, OPEN)
    open_at_send: list[int] = []

    def fill_later(execution: Execution, sent: SliceSent, at: datetime) -> list[AlgoEvent]:
        open_at_send.append(len(execution.open_slices()))
        return fill_at_once(execution, sent, at)

    log = run(execution, seconds=600, fills=fill_later)

    sizes = [e.quantity for e in log if isinstance(e, SliceSent)]
    assert execution.executed == 10_000
    assert all(n == 1 for n in open_at_send)  # the one just sent, nothing else showing
    assert all(size <= 2_000 * 1.25 for size in sizes)
    assert len(set(sizes[:-1])) > 1  # display sizes vary


def test_pause_pulls_the_slices_and_sends_nothing_until_resumed() -> None:
    execution, _ = Execution.create(spec(), CALENDAR, OPEN)

    def never_fill(execution: Execution, sent: SliceSent, at: datetime) -> list[AlgoEvent]:
        return []

    run(execution, seconds=10, fills=never_fill)
    working = execution.open_slices()
    assert working

    paused = execution.pause(OPEN + timedelta(seconds=11), "desk asked")

    assert {e.slice for e in paused if isinstance(e, SliceCancelRequested)} == {
        s.number for s in working
    }
    for s in working:
        execution.on_slice_closed(s.number, OPEN + timedelta(seconds=12))
    later = OPEN + timedelta(seconds=300)
    assert execution.decide(later, market(later)) == []
    execution.resume(later)
    assert any(isinstance(e, SliceSent) for e in execution.decide(later, market(later)))
    execution.cancel(later)
    with pytest.raises(FailedPrecondition, match="canceled: cannot resume"):
        execution.resume(later)


def test_adjustments_outside_the_profile_are_refused_with_the_field_and_change_nothing() -> None:
    profile = profiles()["pov-10"]
    execution, _ = Execution.create(spec("pov-10"), CALENDAR, OPEN)

    with pytest.raises(InvalidArgument) as raised:
        execution.adjust(profile, OPEN, max_participation=0.5, end=OPEN - timedelta(minutes=1))

    fields = {v.field: v.value for v in raised.value.violations}
    assert fields["max_participation_bps"] == 5_000
    assert "end_time" in fields
    assert execution.max_participation == 0.15
    execution.adjust(profile, OPEN, max_participation=0.12, urgency=Urgency.HIGH)
    assert (execution.max_participation, execution.urgency) == (0.12, Urgency.HIGH)


def test_order_overrides_are_checked_against_the_profile_bounds() -> None:
    found = profiles()

    with pytest.raises(InvalidArgument) as raised:
        resolve(
            found["is-balanced"], algorithm=AlgorithmKind.TWAP, max_participation_bps=4_000,
            params={"risk_aversion": 1.0, "speed": 2.0},
        )  # fmt: skip

    fields = {v.field for v in raised.value.violations}
    assert fields == {
        "algorithm", "max_participation_bps", "params.risk_aversion", "params.speed"
    }  # fmt: skip
    params = resolve(found["is-balanced"], params={"risk_aversion": 1e-4})
    assert params.risk_aversion == 1e-4
    with pytest.raises(InvalidArgument, match="urgency"):
        resolve(found["arrival-urgent"], urgency=Urgency.LOW)
