"""What the router knows of one instrument on every venue: a numpy structured array, one row per
venue, that the routing kernel reads as it is.

Prices are fixed-point nanos (int64) as everywhere in fillpath; the kernel turns them into
basis points of the mid. Depth is `DEPTH` levels a side, best first; an empty level has
quantity 0. The learned figures (passive volume, dark fill probability and size, markouts,
reject rate) come from our own executions (fillpath.sor.quality); fees, latency and the minimum
quantity from the `Venue` resources.
"""

from __future__ import annotations

import numpy as np

DEPTH = 5
LIT = 0
DARK = 1

VENUE_STATE = np.dtype(
    [
        ("kind", np.int8),  # LIT or DARK
        ("bid_px", np.int64, (DEPTH,)),  # nanos, best first
        ("bid_qty", np.int64, (DEPTH,)),
        ("ask_px", np.int64, (DEPTH,)),
        ("ask_qty", np.int64, (DEPTH,)),
        ("maker_fee", np.float64),  # currency per share; negative: a rebate
        ("taker_fee", np.float64),
        ("midpoint_fee", np.float64),  # a dark cross
        ("latency_us", np.float64),  # order entry to acknowledgement
        ("min_qty", np.int64),  # the venue's minimum order (dark pools: minimum fill)
        ("passive_volume", np.float64),  # mean shares traded at our touch per horizon
        ("dark_fill_prob", np.float64),  # chance a ping finds any contra
        ("dark_fill_size", np.float64),  # mean contra size when it does
        ("markout_bps", np.float64),  # adverse move after our fills (+ = against us)
        ("reject_rate", np.float64),
    ]
)


def empty_state(venues: int) -> np.ndarray:
    """A state with `venues` rows, all zero (lit, no quotes)."""
    return np.zeros(venues, dtype=VENUE_STATE)
