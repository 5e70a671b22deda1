"""Schedules as cumulative target curves, and the next-slice decision that follows one.

Every scheduled algorithm says the same kind of thing: by time t, this fraction of the order
should be done. TWAP's curve is a straight line; VWAP's follows the historical intraday volume
profile over the order's window; implementation shortfall's is 1 − x(t)/X of its Almgren–Chriss
trajectory (fillpath.algo.trajectory). The engine then asks one question, again and again: how
much to send now? `next_slice` answers it for any curve:

    behind = target(t) · quantity − executed − working, rounded down to whole lots,

sent when it reaches the minimum slice (a small remainder waits for the next decision rather
than going out as dust), capped by the leaves (what is neither executed nor working) and by a
per-slice maximum; at the end of the window (`final`) whatever is left goes, lot or not. A slice
is never negative: an order ahead of schedule sends nothing (it never buys back).

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
        wanted = (due - executed - working) // lot * lot
        if wanted < max(min_slice, lot):
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
        if send > 0:
            send -= send % lot  # whole lots only
        if send < lot or send < min_slice:
            return 0  # on or ahead of schedule, or too little to bother
        send = min(send, leaves)
    if max_slice and send > max_slice:
        send = max(max_slice - max_slice % lot, lot)
    return min(send, leaves)
