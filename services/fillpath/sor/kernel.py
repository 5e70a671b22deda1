"""The routing kernel: splits one slice across the venues at the least expected all-in cost.

The allocation follows Cont & Kukanov (2017), "Optimal order placement in limit order markets"
(Quantitative Finance 17(1)): an order is split between market orders and limit orders on
several venues; a limit order of size L behind a queue Q on venue k fills if the venue's
outflow ξ_k exceeds Q, and shares left unfilled are bought later at a penalty (their λ_u).
Their cost is separable across venues and convex in each venue's size, so the optimal split
equalises marginal costs — which a greedy allocation, one block at a time to the venue whose
next block is cheapest, attains. Here ξ_k is exponential with the mean learned from our own
passive fills (`passive_volume`), so the j-th share resting on venue k fills with probability
exp(−(Q_k + j)/μ_k); a dark pool's j-th share with probability p_k · exp(−j/s_k) (the pool's
learned fill probability and size).

Marginal cost of the next block on each source, in bps of the mid, positive = cost (the TCA
convention, fillpath.monitor.tca):
- **take** on lit venue v: s · (level price − mid)/mid of the depth level the block reaches,
  plus the taker fee, latency (w_latency per ms) and the reject rate × the cost of a miss;
  never a level beyond the limit, never more than displayed.
- **rest** on lit venue v at the near touch (capped by the limit): f · c_fill + (1 − f) · miss,
  with f the fill probability above and c_fill the passive price, maker fee and adverse
  selection (w_markout · markout). Only where c_fill < miss: a resting order must be worth it.
- **ping** dark pool v at the mid (within the limit): the same with the pool's fill
  probability and size, the midpoint fee and the pool's markout.

`miss` is the caller's price of leaving a share unfilled now (urgency: the spread crossed later
plus drift). Blocks are whole lots; the first block on a venue is at least its minimum quantity;
at most `max_venues` venues (0: any); the kernel allocates no more than asked and leaves what
no eligible source can take. A pure-Python statement of the same rules, without the caching,
is fillpath.sor.reference; tests hold the two to the same allocation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from fillpath.sor.state import DARK, DEPTH

NANOS = 1e9
BPS = 1e4
MAX_BLOCKS = 64
"""Blocks per decision at most: a larger slice is allocated in blocks of several lots."""

# Sources of venue v: 2v takes liquidity (lit), 2v + 1 rests (lit) or pings (dark).
TAKE = 0
REST = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One decision's parameters (prices and tick in nanos; `limit` 0 = none)."""

    side: int
    quantity: int
    limit: int = 0
    tick: int = 1
    lot: int = 1
    max_venues: int = 0
    allow_rest: bool = True
    w_fee: float = 1.0
    w_latency: float = 0.0
    w_markout: float = 1.0
    miss_bps: float = 10.0


class Pricing(NamedTuple):
    """What prices a block, for one decision."""

    side: int  # +1 buy, −1 sell
    mid: float  # nanos
    near: int  # where we rest: the near touch, capped by the limit (nanos)
    w_fee: float
    w_latency: float  # bps per millisecond of order-entry latency
    w_markout: float
    miss_bps: float  # the price of a share left unfilled now


@njit(cache=True, nogil=True)
def block_size(quantity: int, lot: int) -> int:
    lots = quantity // lot
    return lot * max(1, -(-lots // MAX_BLOCKS))


@njit(cache=True, nogil=True)
def touches(state: np.ndarray) -> tuple[int, int]:
    """(best bid, best ask) over the lit venues, nanos; 0 where a side is empty."""
    bid, ask = 0, 0
    for v in range(len(state)):
        if state[v].kind == DARK:
            continue
        if state[v].bid_qty[0] > 0 and state[v].bid_px[0] > bid:
            bid = state[v].bid_px[0]
        if state[v].ask_qty[0] > 0 and (ask == 0 or state[v].ask_px[0] < ask):
            ask = state[v].ask_px[0]
    return bid, ask


@njit(cache=True, nogil=True)
def _take_capacity(row: Any, side: int, limit: int, lot: int) -> int:
    """Displayed shares within the limit on the far side, in whole lots."""
    total = 0
    for k in range(DEPTH):
        px = row.ask_px[k] if side > 0 else row.bid_px[k]
        qty = row.ask_qty[k] if side > 0 else row.bid_qty[k]
        if qty <= 0 or (limit > 0 and side * (px - limit) > 0):
            break
        total += qty
    return total - total % lot


@njit(cache=True, nogil=True)
def _level_price(row: Any, side: int, at: float) -> int:
    """The far-side price of the level holding share number `at` (0-based, fractional)."""
    cum = 0
    for k in range(DEPTH):
        qty = row.ask_qty[k] if side > 0 else row.bid_qty[k]
        cum += qty
        if at < cum:
            return row.ask_px[k] if side > 0 else row.bid_px[k]
    return row.ask_px[DEPTH - 1] if side > 0 else row.bid_px[DEPTH - 1]


@njit(cache=True, nogil=True)
def _queue(row: Any, side: int, near: int) -> float:
    """Shares displayed ahead of us when we rest at `near` on this venue."""
    if side > 0 and row.bid_px[0] == near:
        return float(row.bid_qty[0])
    if side < 0 and row.ask_px[0] == near:
        return float(row.ask_qty[0])
    return 0.0


@njit(cache=True, nogil=True)
def _resting(row: Any, at: float, p: Pricing) -> tuple[float, float]:
    """(chance that share number `at` fills, its cost in bps if it does), resting on a lit
    venue at `near` or pinging a dark pool at the mid."""
    fee_scale = NANOS / p.mid * BPS  # currency per share → bps of the mid
    if row.kind == DARK:
        fill = row.dark_fill_prob * math.exp(-at / row.dark_fill_size)
        return fill, p.w_fee * row.midpoint_fee * fee_scale + p.w_markout * row.markout_bps
    fill = math.exp(-(_queue(row, p.side, p.near) + at) / row.passive_volume)
    priced = (
        p.side * (p.near - p.mid) / p.mid * BPS
        + p.w_fee * row.maker_fee * fee_scale
        + p.w_markout * row.markout_bps
    )
    return fill, priced


@njit(cache=True, nogil=True)
def _cost(state: np.ndarray, source: int, at: float, p: Pricing) -> float:
    """Marginal cost (bps) of the shares from number `at` on `source` (module docstring)."""
    row = state[source // 2]
    if source % 2 == TAKE:
        px = _level_price(row, p.side, at)
        return (
            p.side * (px - p.mid) / p.mid * BPS
            + p.w_fee * row.taker_fee * NANOS / p.mid * BPS
            + p.w_latency * row.latency_us / 1000.0
            + row.reject_rate * p.miss_bps
        )
    fill, priced = _resting(row, at, p)
    return p.miss_bps - fill * (p.miss_bps - priced)


@njit(cache=True, nogil=True)
def _usable(
    state: np.ndarray, source: int, eligible: np.ndarray, limit: int, allow_rest: bool, p: Pricing
) -> bool:
    row = state[source // 2]
    if not eligible[source // 2]:
        return False
    if source % 2 == TAKE:
        return row.kind != DARK
    if row.kind == DARK:
        if row.dark_fill_prob <= 0 or row.dark_fill_size <= 0:
            return False
        if limit > 0 and p.side * (p.mid - limit) > 0:
            return False
    elif not allow_rest or row.passive_volume <= 0:
        return False
    fill, priced = _resting(row, 0.0, p)
    return fill > 0 and priced < p.miss_bps  # a filled share must cost less than a missed one


@njit(cache=True, nogil=True)
def allocate(
    state: np.ndarray,
    eligible: np.ndarray,
    adjust_bps: np.ndarray,
    side: int,
    quantity: int,
    limit: int,
    tick: int,
    lot: int,
    max_venues: int,
    allow_rest: bool,
    w_fee: float,
    w_latency: float,
    w_markout: float,
    miss_bps: float,
    out: np.ndarray,
    spend: np.ndarray,
) -> float:
    """Fills `out` (int64, 2 per venue: take, rest/ping) with shares per source and `spend`
    (float64, the same shape) with their expected cost in bps·shares; returns the total, or
    NaN when there is no two-sided market to price against (both stay zero). `limit` 0 = none;
    `adjust_bps` adds to every source of a venue (preferences)."""
    venues = len(state)
    out[:] = 0
    spend[:] = 0.0
    bid, ask = touches(state)
    if bid <= 0 or ask <= 0:
        return math.nan
    mid = (bid + ask) / 2.0
    if limit > 0:  # to the tick, never past what was asked
        limit = limit - limit % tick if side > 0 else -(-limit // tick) * tick
    near = bid if side > 0 else ask
    if limit > 0 and side * (near - limit) > 0:
        near = limit
    p = Pricing(side, mid, near, w_fee, w_latency, w_markout, miss_bps)
    sources = 2 * venues
    usable = np.zeros(sources, dtype=np.bool_)
    capacity = np.zeros(sources, dtype=np.int64)
    for s in range(sources):
        usable[s] = _usable(state, s, eligible, limit, allow_rest, p)
        capacity[s] = _take_capacity(state[s // 2], side, limit, lot) if s % 2 == TAKE else quantity
        if capacity[s] <= 0:
            usable[s] = False
    used = np.zeros(venues, dtype=np.bool_)
    used_count = 0
    cost = np.full(sources, np.inf)
    amount = np.zeros(sources, dtype=np.int64)
    step = block_size(quantity, lot)
    remaining = quantity
    total = 0.0
    stale = True
    while remaining > 0:
        if remaining < step:
            step = remaining
            stale = True
        if stale:
            for s in range(sources):
                cost[s], amount[s] = _next_block(
                    state, s, usable, capacity, out, step, remaining, lot, p, adjust_bps
                )
            stale = False
        best = -1
        for s in range(sources):
            if amount[s] == 0 or amount[s] > remaining:  # none, or a first block too large now
                continue
            if max_venues > 0 and used_count >= max_venues and not used[s // 2]:
                continue
            if best < 0 or cost[s] < cost[best]:
                best = s
        if best < 0:
            break
        out[best] += amount[best]
        spend[best] += cost[best] * amount[best]
        total += cost[best] * amount[best]
        remaining -= amount[best]
        if not used[best // 2]:
            used[best // 2] = True
            used_count += 1
        cost[best], amount[best] = _next_block(
            state, best, usable, capacity, out, step, remaining, lot, p, adjust_bps
        )
    return total


@njit(cache=True, nogil=True)
def _next_block(
    state: np.ndarray,
    s: int,
    usable: np.ndarray,
    capacity: np.ndarray,
    out: np.ndarray,
    step: int,
    remaining: int,
    lot: int,
    p: Pricing,
    adjust_bps: np.ndarray,
) -> tuple[float, int]:
    """(marginal cost, shares) of source s's next block; (inf, 0) when it has none."""
    if not usable[s]:
        return math.inf, 0
    size = min(step, capacity[s] - out[s])
    if out[s] == 0:
        minimum = state[s // 2].min_qty
        size = max(size, -(-minimum // lot) * lot)
    if size <= 0 or size > remaining or out[s] + size > capacity[s]:
        return math.inf, 0
    at = out[s] + size / 2.0
    return _cost(state, s, at, p) + adjust_bps[s // 2], size


def decide(
    state: np.ndarray,
    eligible: np.ndarray,
    adjust_bps: np.ndarray,
    r: Request,
    out: np.ndarray,
    spend: np.ndarray,
) -> float:
    """`allocate` with the parameters of `r`."""
    return allocate(
        state, eligible, adjust_bps, r.side, r.quantity, r.limit, r.tick, r.lot, r.max_venues,
        r.allow_rest, r.w_fee, r.w_latency, r.w_markout, r.miss_bps, out, spend,
    )  # fmt: skip
