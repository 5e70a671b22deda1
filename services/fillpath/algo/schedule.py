"""Schedules as cumulative target curves, and the next-slice decision that follows one.

Every scheduled algorithm says the same kind of thing: by time t, this fraction of the order
should be done. TWAP's curve is a straight line; VWAP's follows the historical intraday volume
profile over the order's window; implementation shortfall's is 1 − x(t)/X of its Almgren–Chriss
trajectory (fillpath.algo.trajectory). The engine then asks one question, again and again: how
much to send now? `next_slice` answers it for any curve:

    behind = target(t) · quantity − executed − working, rounded down to whole lots,

sent when it reaches the minimum slice (a small remainder waits for the next decision rather
than going out as dust, unless it is all that is left and due), capped by the leaves (what is
neither executed nor working) and by a per-slice maximum; at the end of the window (`final`)
whatever is left goes, lot or not. A slice is never negative: an order ahead of schedule sends
nothing (it never buys back).

`next_slice` is the numba kernel; `next_slice_reference` states the same rules in plain Python,
and tests hold the two to the same answer.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def twap_curve(periods: int) -> np.ndarray:
    """Cumulative targets at the end of each of `periods` equal periods (periods + 1 values,
    from 0 to 1)."""
    return np.linspace(0.0, 1.0, periods + 1)


def vwap_curve(volumes: np.ndarray) -> np.ndarray:
    """Cumulative targets over the window's bins, in proportion to the historical volume of
    each (len(volumes) + 1 values, from 0 to 1); a window with no history is traded evenly."""
    total = float(volumes.sum())
    if total <= 0:
        return twap_curve(len(volumes))
    return np.concatenate(([0.0], np.cumsum(volumes, dtype=np.float64) / total))


@njit(cache=True, nogil=True)
def next_slice(
    target: float,
    quantity: int,
    executed: int,
    working: int,
    lot: int,
    min_slice: int,
    max_slice: int,
    final: bool,
) -> int:
    """Shares to send now so that executed + working reaches `target` (a fraction of
    `quantity`); `max_slice` 0 means no cap."""
    leaves = quantity - executed - working
    if leaves <= 0:
        return 0
    if final:
        wanted = leaves
    else:
        due = int(min(max(target, 0.0), 1.0) * quantity)
        if due - executed - working >= leaves:
            wanted = leaves  # all that is left is due (an odd lot included)
        else:
            wanted = (due - executed - working) // lot * lot
        if wanted < max(min_slice, lot) and wanted < leaves:
            return 0
        wanted = min(wanted, leaves)
    if max_slice > 0 and wanted > max_slice:
        wanted = max(max_slice // lot * lot, lot)
    return min(wanted, leaves)


def next_slice_reference(
    target: float,
    quantity: int,
    executed: int,
    working: int,
    lot: int,
    min_slice: int,
    max_slice: int,
    final: bool,
) -> int:
    """The same decision, written for reading rather than speed."""
    leaves = quantity - executed - working
    if leaves <= 0:
        return 0
    if final:
        send = leaves  # the window closes: everything left goes
    else:
        clamped = min(max(target, 0.0), 1.0)
        due = int(clamped * quantity)
        send = due - executed - working
        if send >= leaves:
            send = leaves  # all that is left is due, an odd lot included
        else:
            if send > 0:
                send -= send % lot  # whole lots only
            if send < lot or send < min_slice:
                return 0  # on or ahead of schedule, or too little to bother
    if max_slice and send > max_slice:
        send = max(max_slice - max_slice % lot, lot)
    return min(send, leaves)


@njit(cache=True, nogil=True)
def vwap_target(elapsed: float, observed: float, expected: float) -> float:
    """VWAP's target corrected by the volume seen so far.

    `elapsed` is the share of the window's volume the historical profile expects by now,
    `observed` the market volume seen in the window so far, `expected` the window's volume the
    profile predicts for the day (from the average daily volume). The window's total is
    estimated as a blend of what the observed volume implies (observed / elapsed) and the
    prediction, trusting the observation more as the window goes on; the target is the share
    of that total already traded: observed / (observed + the estimated rest).
    """
    if elapsed <= 0.0:
        return 0.0
    if elapsed >= 1.0:
        return 1.0
    implied = observed / elapsed
    total = elapsed * implied + (1.0 - elapsed) * expected
    rest = total * (1.0 - elapsed)
    if observed + rest <= 0.0:
        return elapsed
    return observed / (observed + rest)


def vwap_target_reference(elapsed: float, observed: float, expected: float) -> float:
    if elapsed <= 0:
        return 0.0
    if elapsed >= 1:
        return 1.0
    weight = elapsed  # how far the window has gone: how much to trust what was seen
    estimated_total = weight * (observed / elapsed) + (1 - weight) * expected
    still_to_come = estimated_total * (1 - elapsed)
    if observed + still_to_come <= 0:
        return elapsed  # no volume seen nor expected: follow the profile
    return observed / (observed + still_to_come)


SPREAD_WIDE = 1.5
"""A spread this many times its typical level slows a schedule down."""
VOLUME_SURGE = 1.5
"""Volume this many times what the profile expects speeds a schedule up."""


@njit(cache=True, nogil=True)
def adapt(
    target: float, done: float, spread_ratio: float, volume_ratio: float, step: float
) -> float:
    """A schedule's target adapted to the market: when the spread is wide (`spread_ratio` ≥
    SPREAD_WIDE) only 1/spread_ratio of the shortfall to the target is made up now; when volume
    surges (`volume_ratio` ≥ VOLUME_SURGE) the target moves ahead by up to one `step` (a
    slice's share of the order), in proportion to the surge. `done` is the share executed or
    working; the result never falls below it nor exceeds 1."""
    adapted = target
    if volume_ratio >= VOLUME_SURGE:
        adapted += min(volume_ratio - 1.0, 1.0) * step
    if spread_ratio >= SPREAD_WIDE and adapted > done:
        adapted = done + (adapted - done) / spread_ratio
    return min(max(adapted, done), 1.0)


def adapt_reference(
    target: float, done: float, spread_ratio: float, volume_ratio: float, step: float
) -> float:
    if volume_ratio >= VOLUME_SURGE:
        surge = min(volume_ratio - 1, 1)  # at most one step ahead
        target = target + surge * step
    if spread_ratio >= SPREAD_WIDE and target > done:
        shortfall = target - done
        target = done + shortfall / spread_ratio
    return min(max(target, done), 1.0)
