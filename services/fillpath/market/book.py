"""The lit venues' limit order books: price-time priority on a fixed price grid, in numba.

Each venue has, per side, a grid of price levels (ticks from a base price); each level is a FIFO
of resting orders kept as a doubly linked list through an order pool, so an order's queue
position is exact: it fills only after every order ahead of it at its level has traded or left.
Background orders carry the time at which they will cancel, held in a binary heap keyed on it.

`take` is the matching core: it walks the opposite side from the touch, level by level and order
by order, and reports what it matched (owner, level, quantity) for the engine to turn into prints
and fills. `reference.py` is the same book in plain Python; tests/unit/test_book_kernel.py holds
the two together on random operation sequences.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from fillpath.market.layout import BACKGROUND, BUY, NO_LEVEL, ORDER

FREE_TOP = 0
HEAP_SIZE = 1


class LitBooks(NamedTuple):
    head: np.ndarray  # int32[venue, side, level]: first order slot at the level, or -1
    tail: np.ndarray  # int32[venue, side, level]
    depth: np.ndarray  # int64[venue, side, level]: resting quantity
    best: np.ndarray  # int64[venue, side]: best level, or NO_LEVEL
    pool: np.ndarray  # ORDER[capacity]
    free: np.ndarray  # int32[capacity]: a stack of free slots
    heap: np.ndarray  # int32[capacity]: background slots, a min-heap on cancel_at
    counts: np.ndarray  # int64[2]: FREE_TOP, HEAP_SIZE


def new_books(venues: int, levels: int, capacity: int) -> LitBooks:
    """Empty books for `venues` venues on a grid of `levels` price levels."""
    pool = np.zeros(capacity, dtype=ORDER)
    pool["heap_pos"] = -1
    return LitBooks(
        head=np.full((venues, 2, levels), -1, dtype=np.int32),
        tail=np.full((venues, 2, levels), -1, dtype=np.int32),
        depth=np.zeros((venues, 2, levels), dtype=np.int64),
        best=np.full((venues, 2), NO_LEVEL, dtype=np.int64),
        pool=pool,
        free=np.arange(capacity - 1, -1, -1, dtype=np.int32),
        heap=np.zeros(capacity, dtype=np.int32),
        counts=np.array([capacity, 0], dtype=np.int64),
    )


@njit(cache=True, nogil=True)
def add(
    b: LitBooks,
    venue: int,
    side: int,
    level: int,
    qty: int,
    owner: int,
    cancel_at: float,
) -> int:
    """Rests an order at the back of its level's queue; its slot, or -1 when the pool is full.

    A background order (owner BACKGROUND) is canceled by `pop_due` at `cancel_at`.
    """
    top = b.counts[FREE_TOP]
    if top == 0:
        return -1
    top -= 1
    b.counts[FREE_TOP] = top
    slot = b.free[top]
    o = b.pool[slot]
    o.qty = qty
    o.owner = owner
    o.level = level
    o.venue = venue
    o.side = side
    o.cancel_at = cancel_at
    o.heap_pos = -1
    last = b.tail[venue, side, level]
    o.prev = last
    o.next = -1
    if last == -1:
        b.head[venue, side, level] = slot
    else:
        b.pool[last].next = slot
    b.tail[venue, side, level] = slot
    b.depth[venue, side, level] += qty
    best = b.best[venue, side]
    if best == NO_LEVEL or (level > best if side == BUY else level < best):
        b.best[venue, side] = level
    if owner == BACKGROUND:
        _heap_push(b, slot)
    return slot


@njit(cache=True, nogil=True)
def remove(b: LitBooks, slot: int) -> None:
    """Takes an order out of its queue (canceled, or fully filled) and frees its slot."""
    o = b.pool[slot]
    venue, side, level = o.venue, o.side, o.level
    if o.prev == -1:
        b.head[venue, side, level] = o.next
    else:
        b.pool[o.prev].next = o.next
    if o.next == -1:
        b.tail[venue, side, level] = o.prev
    else:
        b.pool[o.next].prev = o.prev
    b.depth[venue, side, level] -= o.qty
    o.qty = 0
    if o.heap_pos >= 0:
        _heap_remove(b, slot)
    if b.depth[venue, side, level] == 0 and b.best[venue, side] == level:
        _rescan_best(b, venue, side, level)
    b.free[b.counts[FREE_TOP]] = slot
    b.counts[FREE_TOP] += 1


@njit(cache=True, nogil=True)
def reduce(b: LitBooks, slot: int, by: int) -> None:
    """Lowers a resting order's quantity in place (it keeps its queue position)."""
    o = b.pool[slot]
    o.qty -= by
    b.depth[o.venue, o.side, o.level] -= by


@njit(cache=True, nogil=True)
def available(b: LitBooks, venue: int, side: int, limit: int, wanted: int) -> int:
    """How much of `wanted` an order on `side` limited at `limit` could take right now."""
    opposite = 1 - side
    level = b.best[venue, opposite]
    found = 0
    levels = b.depth.shape[2]
    while level != NO_LEVEL and 0 <= level < levels and found < wanted:
        if limit != NO_LEVEL and (level > limit if side == BUY else level < limit):
            break
        found += b.depth[venue, opposite, level]
        level = level + 1 if side == BUY else level - 1
    return min(found, wanted)


@njit(cache=True, nogil=True)
def take(
    b: LitBooks,
    venue: int,
    side: int,
    limit: int,
    qty: int,
    match_owner: np.ndarray,
    match_level: np.ndarray,
    match_qty: np.ndarray,
) -> int:
    """Matches an incoming order against the opposite side, best price first, then time.

    Stops at `limit` (NO_LEVEL: no limit), when `qty` is done, when the side is empty, or when
    the match arrays are full. Returns the number of matches written to the arrays; resting
    orders filled in full leave the book.
    """
    opposite = 1 - side
    remaining = qty
    n = 0
    capacity = match_qty.shape[0]
    while remaining > 0 and n < capacity:
        level = b.best[venue, opposite]
        if level == NO_LEVEL:
            break
        if limit != NO_LEVEL and (level > limit if side == BUY else level < limit):
            break
        slot = b.head[venue, opposite, level]
        resting = b.pool[slot]
        q = min(remaining, resting.qty)
        match_owner[n] = resting.owner
        match_level[n] = level
        match_qty[n] = q
        n += 1
        remaining -= q
        if q == resting.qty:
            remove(b, slot)
        else:
            reduce(b, slot, q)
    return n


@njit(cache=True, nogil=True)
def pop_due(b: LitBooks, until: float) -> int:
    """Cancels the next background order due at or before `until`; its slot, or -1."""
    if b.counts[HEAP_SIZE] == 0:
        return -1
    slot = b.heap[0]
    if b.pool[slot].cancel_at > until:
        return -1
    remove(b, slot)
    return slot


@njit(cache=True, nogil=True)
def next_due(b: LitBooks) -> float:
    """When the next background cancel is due (inf when none is)."""
    if b.counts[HEAP_SIZE] == 0:
        return np.inf
    return b.pool[b.heap[0]].cancel_at


@njit(cache=True, nogil=True)
def _rescan_best(b: LitBooks, venue: int, side: int, start: int) -> None:
    levels = b.depth.shape[2]
    level = start
    step = -1 if side == BUY else 1
    while 0 <= level < levels:
        if b.depth[venue, side, level] > 0:
            b.best[venue, side] = level
            return
        level += step
    b.best[venue, side] = NO_LEVEL


@njit(cache=True, nogil=True)
def _heap_less(b: LitBooks, i: int, j: int) -> bool:
    return b.pool[b.heap[i]].cancel_at < b.pool[b.heap[j]].cancel_at


@njit(cache=True, nogil=True)
def _heap_swap(b: LitBooks, i: int, j: int) -> None:
    si, sj = b.heap[i], b.heap[j]
    b.heap[i], b.heap[j] = sj, si
    b.pool[sj].heap_pos = i
    b.pool[si].heap_pos = j


@njit(cache=True, nogil=True)
def _sift_up(b: LitBooks, i: int) -> None:
    while i > 0:
        parent = (i - 1) // 2
        if not _heap_less(b, i, parent):
            break
        _heap_swap(b, i, parent)
        i = parent


@njit(cache=True, nogil=True)
def _sift_down(b: LitBooks, i: int) -> None:
    size = b.counts[HEAP_SIZE]
    while True:
        smallest = i
        left = 2 * i + 1
        if left < size and _heap_less(b, left, smallest):
            smallest = left
        if left + 1 < size and _heap_less(b, left + 1, smallest):
            smallest = left + 1
        if smallest == i:
            return
        _heap_swap(b, i, smallest)
        i = smallest


@njit(cache=True, nogil=True)
def _heap_push(b: LitBooks, slot: int) -> None:
    i = b.counts[HEAP_SIZE]
    b.heap[i] = slot
    b.pool[slot].heap_pos = i
    b.counts[HEAP_SIZE] = i + 1
    _sift_up(b, i)


@njit(cache=True, nogil=True)
def _heap_remove(b: LitBooks, slot: int) -> None:
    i = b.pool[slot].heap_pos
    last = b.counts[HEAP_SIZE] - 1
    b.counts[HEAP_SIZE] = last
    b.pool[slot].heap_pos = -1
    if i == last:
        return
    moved = b.heap[last]
    b.heap[i] = moved
    b.pool[moved].heap_pos = i
    _sift_up(b, i)
    _sift_down(b, b.pool[moved].heap_pos)
