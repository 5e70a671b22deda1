"""The next-slice decision agrees with its plain-Python reference and keeps what a desk relies
on: never more than the leaves, never past the schedule before the window closes, whole lots
(or all that is left), nothing when ahead; and the schedules' curves run from 0 to 1 without
ever going back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillpath.algo.schedule import next_slice, next_slice_reference, twap_curve, vwap_curve


@st.composite
def decisions(draw: st.DrawFn) -> tuple[float, int, int, int, int, int, int, bool]:
    lot = draw(st.sampled_from([1, 10, 100]))
    quantity = draw(st.integers(1, 1_000_000))
    executed = draw(st.integers(0, quantity))
    working = draw(st.integers(0, quantity - executed))
    target = draw(st.floats(-0.1, 1.1))
    min_slice = draw(st.integers(0, 5_000))
    max_slice = draw(st.sampled_from([0, 1, 50, 1_000, 20_000]))
    return target, quantity, executed, working, lot, min_slice, max_slice, draw(st.booleans())


@settings(max_examples=2_000, deadline=None)
@given(decisions())
def test_kernel_agrees_with_the_reference_and_keeps_its_promises(
    decision: tuple[float, int, int, int, int, int, int, bool],
) -> None:
    target, quantity, executed, working, lot, min_slice, max_slice, final = decision

    sent = next_slice(*decision)

    assert sent == next_slice_reference(*decision)
    leaves = quantity - executed - working
    assert 0 <= sent <= max(leaves, 0)
    assert sent % lot == 0 or sent == leaves
    if max_slice:
        assert sent <= max(max_slice, lot)
    if not final:
        due = int(min(max(target, 0.0), 1.0) * quantity)
        if sent:
            assert executed + working + sent <= due  # a slice never runs ahead of schedule
            floor = min(min_slice, max_slice) if max_slice else min_slice  # the cap wins
            assert sent >= floor or sent == leaves  # ... and the last of the order goes


def test_behind_schedule_sends_what_is_due_and_final_sends_the_rest() -> None:
    # 10,000 shares, 40 % due, 2,500 done and 500 working: 1,000 is due.
    assert next_slice(0.4, 10_000, 2_500, 500, 100, 200, 0, False) == 1_000
    assert next_slice(0.4, 10_000, 2_500, 500, 100, 200, 600, False) == 600  # capped
    assert next_slice(0.25, 10_000, 2_500, 500, 100, 200, 0, False) == 0  # ahead
    assert next_slice(0.32, 10_000, 3_000, 0, 100, 300, 0, False) == 0  # 200 < min slice
    assert next_slice(0.5, 10_050, 9_000, 0, 100, 300, 0, True) == 1_050  # odd lot at the end
    # 40 shares left after odd-lot fills, and all of it due: they go now, not at the end.
    assert next_slice(1.0, 10_000, 9_960, 0, 100, 300, 0, False) == 40
    assert next_slice(0.99, 10_000, 9_960, 0, 100, 300, 0, False) == 0  # not due yet


def test_curves_run_from_nothing_to_everything_and_never_go_back() -> None:
    profile = np.array([30.0, 10.0, 5.0, 5.0, 10.0, 40.0])  # a U-shaped day
    for curve in (twap_curve(7), vwap_curve(profile), vwap_curve(np.zeros(4))):
        assert curve[0] == 0
        assert curve[-1] == pytest.approx(1)
        assert (np.diff(curve) >= 0).all()
    assert vwap_curve(profile)[1] == pytest.approx(0.3)
    assert vwap_curve(np.zeros(4)).tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
