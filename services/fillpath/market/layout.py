"""Record layouts and codes shared by the lab's numba kernels and the Python around them.

Declared once, as aligned structured dtypes (the hftbacktest habit): the kernels see only numpy
arrays of these records, the driver reads the same arrays with numpy.
"""

from __future__ import annotations

from typing import Final

import numpy as np

BUY: Final = 0
SELL: Final = 1
NO_LEVEL: Final = -1
"""A book side with no orders has best level NO_LEVEL; a market order has limit NO_LEVEL."""

BACKGROUND: Final = -1
"""The owner of an order that is not ours (the simulated crowd)."""

# One resting order in a lit book (an entry in the order pool).
ORDER = np.dtype(
    [
        ("qty", np.int64),
        ("cancel_at", np.float64),  # when a background order leaves the book unless traded
        ("owner", np.int64),  # our order's handle, or BACKGROUND
        ("level", np.int32),
        ("prev", np.int32),
        ("next", np.int32),
        ("heap_pos", np.int32),  # where in the cancel heap (background orders), else -1
        ("venue", np.int16),
        ("side", np.int8),
    ],
    align=True,
)

# Our order, by handle: what the venue knows of it.
OURS = np.dtype(
    [
        ("qty", np.int64),  # current order quantity (after replaces)
        ("cum", np.int64),  # filled so far
        ("min_qty", np.int64),
        ("level", np.int64),  # limit, as a level of the price grid; NO_LEVEL for market
        ("slot", np.int32),  # its entry in the order pool while it rests on a lit book
        ("venue", np.int16),  # lit venues first, then dark pools
        ("side", np.int8),
        ("tif", np.int8),
        ("post_only", np.int8),
        ("state", np.int8),
    ],
    align=True,
)
OUR_UNKNOWN: Final = 0
OUR_LIVE: Final = 1
OUR_DONE: Final = 2

TIF_DAY: Final = 1
TIF_GTC: Final = 2
TIF_IOC: Final = 3
TIF_FOK: Final = 4
"""The numbers of core.enums.TimeInForce."""

# Something we asked a venue to do, as it arrives there (after the order-entry latency).
ACTION = np.dtype(
    [
        ("t", np.float64),
        ("qty", np.int64),
        ("min_qty", np.int64),
        ("level", np.int64),
        ("handle", np.int64),
        ("kind", np.int8),
        ("side", np.int8),
        ("tif", np.int8),
        ("post_only", np.int8),
        ("venue", np.int16),
    ],
    align=True,
)
ACT_NEW: Final = 1
ACT_CANCEL: Final = 2
ACT_REPLACE: Final = 3

# What the market did: the lab's event log. Market data and our execution reports alike.
OUT = np.dtype(
    [
        ("t", np.float64),  # seconds since the open, at the venue
        ("price", np.int64),  # nanos; a quote's bid
        ("qty", np.int64),  # a quote's bid size
        ("price2", np.int64),  # a quote's ask
        ("qty2", np.int64),  # a quote's ask size; a reject's reason code
        ("handle", np.int64),  # our order, or BACKGROUND
        ("kind", np.int8),
        ("side", np.int8),  # a trade's aggressor side
        ("liquidity", np.int8),
        ("venue", np.int16),
    ],
    align=True,
)
OUT_QUOTE: Final = 1
OUT_TRADE: Final = 2
OUT_ACK: Final = 3
OUT_FILL: Final = 4
OUT_CANCELED: Final = 5
OUT_REJECTED: Final = 6
OUT_REPLACED: Final = 7
OUT_CANCEL_REJECTED: Final = 8
OUT_REPLACE_REJECTED: Final = 9
OUT_EXPIRED: Final = 10

LIQ_MAKER: Final = 1
LIQ_TAKER: Final = 2
LIQ_MIDPOINT: Final = 3
"""The numbers of core.enums.LiquidityFlag."""

# Why a venue refused: OUT.qty2 of a reject.
REASONS: Final = {
    1: "price outside the venue's price band",
    2: "post-only order would take liquidity",
    3: "below the venue's minimum quantity",
    4: "unknown order or already done (too late to cancel)",
    5: "new quantity at or below the filled quantity",
    6: "fill-or-kill order could not be filled in full",
    7: "duplicate client order id",
    8: "the market is closed",
    9: "unknown venue",
    10: "the venue is at capacity for resting orders",
    11: "would trade through another venue's protected quote",
}
R_PRICE_BAND: Final = 1
R_POST_ONLY: Final = 2
R_MIN_QTY: Final = 3
R_TOO_LATE: Final = 4
R_BELOW_FILLED: Final = 5
R_FOK: Final = 6
R_CLOSED: Final = 8
R_CAPACITY: Final = 10
