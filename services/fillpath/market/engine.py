"""The simulation engine of one instrument: background order flow, the efficient price, dark
liquidity and our own orders, advanced event by event in numba.

The model (docs in README "The market lab"):
- **Efficient price.** A latent log price on a 0.2 s grid with intraday volatility scaled by the
  volume profile (variance follows activity), plus a short-lived drift α (an Ornstein–Uhlenbeck
  process) that only informed dark flow sees, and our own impact.
- **Impact.** Our signed fills feed a propagator (Bouchaud, Gefen, Potters & Wyart 2004): the
  price moves by c · Σ G(t − s) q_s with G(τ) ≈ (1 + τ/τ₀)^(−1/2), held as a sum of exponentials
  (so each update is O(1)), plus a small part that never decays. Executing at a steady rate for a
  time T then moves the price by ∝ √T, hence ∝ √Q — the square-root law is a consequence, and
  tests/unit/market/test_stylized_facts.py measures it from counterfactual runs.
- **Lit venues.** Zero-intelligence flow in the spirit of Smith, Farmer, Gillemot & Krishnamurthy
  (2003), anchored to the efficient price instead of the touch so that venues stay aligned:
  limit orders at a geometric distance behind an anchor quote around the efficient price (a buy
  anchored above the best ask takes liquidity — that is how stale quotes are picked off), market
  orders, and cancellations after an exponential lifetime; fast market makers pull most stale
  quotes when the price runs through them, and an order priced through another venue's quote
  takes it first (order protection), so the consolidated market does not stay crossed. Arrivals
  are Poisson with rates that follow the intraday volume profile (a time change, so arrival
  times are exact).
- **Dark pools.** Hidden contra orders arrive over time, rest for a while and cross only against
  our orders, at the consolidated midpoint, never below the pool's minimum quantity. Their side
  leans on α: contra sellers come just before the price falls — adverse selection, stronger in
  a pool with a higher toxicity (the venue's `toxicity`).
- **Our orders** arrive after the venue's order-entry latency, join queues, take, rest, get
  canceled or replaced as on a real exchange, and are reported in the event log.

Every source of randomness has its own stream (rng.py), so the exogenous world (the price path,
the arrival times and sizes) is the same with and without our orders.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from fillpath.market import book, rng
from fillpath.market.book import LitBooks
from fillpath.market.layout import (
    ACT_CANCEL,
    ACT_NEW,
    ACT_REPLACE,
    BACKGROUND,
    BUY,
    LIQ_MAKER,
    LIQ_MIDPOINT,
    LIQ_TAKER,
    NO_LEVEL,
    OUR_DONE,
    OUR_LIVE,
    OURS,
    OUT,
    OUT_ACK,
    OUT_CANCEL_REJECTED,
    OUT_CANCELED,
    OUT_EXPIRED,
    OUT_FILL,
    OUT_QUOTE,
    OUT_REJECTED,
    OUT_REPLACE_REJECTED,
    OUT_REPLACED,
    OUT_TRADE,
    R_BELOW_FILLED,
    R_CAPACITY,
    R_CLOSED,
    R_FOK,
    R_MIN_QTY,
    R_POST_ONLY,
    R_PRICE_BAND,
    R_TOO_LATE,
    SELL,
    TIF_DAY,
    TIF_FOK,
    TIF_GTC,
)

# Parameters (float64 array `fp`).
F_REF_TICKS = 0  # reference price, in ticks of the grid (relative to its base)
F_SIGMA = 1  # efficient-price volatility per √second at average activity (log units)
F_GRID_DT = 2
F_SPREAD = 3  # anchor spread, ticks
F_DEPTH_MEAN = 4  # mean distance of a limit order behind its anchor, ticks
F_LIMIT_RATE = 5  # limit orders per second at average activity (all lit venues)
F_MARKET_RATE = 6
F_LIFETIME = 7  # mean life of a background limit order, seconds
F_LIMIT_LOTS = 8  # mean size of a limit order, lots
F_MARKET_LOTS = 9
F_LOT = 10
F_IMPACT = 11  # c: ticks per share of our net flow (the propagator's scale)
F_ALPHA_TAU = 12
F_ALPHA_STD = 13  # stationary std of the drift α, log units per second
F_DARK_RATE = 14  # contra arrivals per second at average activity (all pools)
F_DARK_LOTS = 15
F_DARK_LIFE = 16
F_DARK_ADVERSE = 17  # how far α tilts the side of contra arrivals (0: not at all, 0.5: fully)
F_DAY_END = 18  # seconds in the session
F_TICK_NANOS = 19
F_BASE_TICKS = 20  # the grid's base price in ticks
F_FADE = 21  # chance a stale background quote is pulled before it can be picked off
FP_SIZE = 22

# State (float64 array `st`).
S_T = 0
S_X = 1  # log of efficient price / reference
S_ALPHA = 2
S_NEXT_GRID = 3
S_NEXT_LIMIT = 4
S_NEXT_MARKET = 5
S_NEXT_DARK = 6
S_MID = 7  # the efficient price in grid levels (with our impact)
ST_SIZE = 8

# Counters (int64 array `ctr`).
C_OUT = 0
C_LIMITS = 1
C_MARKETS = 2
C_CANCELS = 3
C_MATCHES = 4
C_DROPPED = 5
C_VOLUME = 6
C_ACTION = 7  # actions consumed from the current batch
C_OURS = 8
CTR_SIZE = 9

# Random streams.
R_PRICE = 0
R_LIMIT = 1
R_MARKET = 2
R_DARK = 3
R_FADE = 4
STREAMS = 5

OUT_MARGIN = 16384
"""Room kept free in the output buffer: one event writes at most this many records."""

DARK_SLOTS = 256


class Engine(NamedTuple):
    fp: np.ndarray
    st: np.ndarray
    ctr: np.ndarray
    rng: np.ndarray
    lit_share: np.ndarray  # float64[lit]: cumulative share of background flow per venue
    dark_share: np.ndarray  # float64[dark]: cumulative share of contra arrivals per pool
    dark_min: np.ndarray  # int64[dark]
    dark_toxicity: np.ndarray  # float64[dark]: how strongly α steers each pool's contras
    bucket_end: np.ndarray  # float64[buckets]: end of each bucket of the volume profile, s
    intensity: np.ndarray  # float64[buckets]: activity in the bucket (mean 1 over the day)
    imp_decay: np.ndarray  # float64[k]: per grid step
    imp_weight: np.ndarray  # float64[k]
    imp_y: np.ndarray  # float64[k]: the propagator's state
    books: LitBooks
    quoted: np.ndarray  # int64[lit, 4]: the last quote sent per venue
    ours: np.ndarray  # OURS[handles]
    contra_qty: np.ndarray  # int64[dark, DARK_SLOTS]
    contra_side: np.ndarray  # int64[dark, DARK_SLOTS]
    contra_exp: np.ndarray  # float64[dark, DARK_SLOTS]
    contra_n: np.ndarray  # int64[dark]
    resting: np.ndarray  # int64[dark, DARK_SLOTS]: our handles resting in each pool, FIFO
    resting_n: np.ndarray  # int64[dark]
    match_owner: np.ndarray
    match_level: np.ndarray
    match_qty: np.ndarray
    out: np.ndarray  # OUT[capacity]


def new_engine(
    *,
    fp: np.ndarray,
    seed_states: np.ndarray,
    lit_share: np.ndarray,
    dark_share: np.ndarray,
    dark_min: np.ndarray,
    bucket_end: np.ndarray,
    intensity: np.ndarray,
    imp_tau: np.ndarray,
    imp_weight: np.ndarray,
    levels: int,
    dark_toxicity: np.ndarray | None = None,
    pool_capacity: int = 1 << 17,
    handles: int = 1 << 14,
    out_capacity: int = 1 << 17,
) -> Engine:
    lit, dark = len(lit_share), len(dark_share)
    e = Engine(
        fp=fp.astype(np.float64),
        st=np.zeros(ST_SIZE),
        ctr=np.zeros(CTR_SIZE, dtype=np.int64),
        rng=seed_states.copy(),
        lit_share=np.asarray(lit_share, dtype=np.float64),
        dark_share=np.asarray(dark_share, dtype=np.float64),
        dark_min=np.asarray(dark_min, dtype=np.int64),
        dark_toxicity=np.ones(max(dark, 1))
        if dark_toxicity is None
        else np.asarray(dark_toxicity, dtype=np.float64),
        bucket_end=np.asarray(bucket_end, dtype=np.float64),
        intensity=np.asarray(intensity, dtype=np.float64),
        imp_decay=np.exp(-fp[F_GRID_DT] / np.asarray(imp_tau, dtype=np.float64)),
        imp_weight=np.asarray(imp_weight, dtype=np.float64),
        imp_y=np.zeros(len(imp_tau)),
        books=book.new_books(max(lit, 1), levels, pool_capacity),
        quoted=np.zeros((max(lit, 1), 4), dtype=np.int64),
        ours=np.zeros(handles, dtype=OURS),
        contra_qty=np.zeros((max(dark, 1), DARK_SLOTS), dtype=np.int64),
        contra_side=np.zeros((max(dark, 1), DARK_SLOTS), dtype=np.int64),
        contra_exp=np.zeros((max(dark, 1), DARK_SLOTS)),
        contra_n=np.zeros(max(dark, 1), dtype=np.int64),
        resting=np.zeros((max(dark, 1), DARK_SLOTS), dtype=np.int64),
        resting_n=np.zeros(max(dark, 1), dtype=np.int64),
        match_owner=np.zeros(4096, dtype=np.int64),
        match_level=np.zeros(4096, dtype=np.int64),
        match_qty=np.zeros(4096, dtype=np.int64),
        out=np.zeros(out_capacity, dtype=OUT),
    )
    start(e)
    return e


@njit(cache=True, nogil=True)
def start(e: Engine) -> None:
    """Draws the first arrival times and seeds the book with a few minutes of resting orders."""
    fp, st = e.fp, e.st
    st[S_T] = 0.0
    st[S_MID] = fp[F_REF_TICKS]
    st[S_NEXT_GRID] = 0.0
    st[S_NEXT_LIMIT] = _arrival(e, 0.0, rng.exponential(e.rng, R_LIMIT), fp[F_LIMIT_RATE])
    st[S_NEXT_MARKET] = _arrival(e, 0.0, rng.exponential(e.rng, R_MARKET), fp[F_MARKET_RATE])
    if e.dark_share.shape[0] > 0 and fp[F_DARK_RATE] > 0:
        st[S_NEXT_DARK] = _arrival(e, 0.0, rng.exponential(e.rng, R_DARK), fp[F_DARK_RATE])
    else:
        st[S_NEXT_DARK] = np.inf
    # The opening book: as many resting orders as the flow keeps in steady state.
    resting = int(fp[F_LIMIT_RATE] * fp[F_LIFETIME])
    for _ in range(resting):
        _limit_order(e, 0.0, True)
    # The opening quotes: what each venue shows when the session starts (the building of the
    # book before it is not part of the log).
    e.ctr[C_OUT] = 0
    e.ctr[C_LIMITS] = 0
    e.quoted[:] = 0
    for v in range(e.lit_share.shape[0]):
        _quote(e, 0.0, v)


@njit(cache=True, nogil=True)
def run(e: Engine, until: float, actions: np.ndarray) -> bool:
    """Advances the market to `until`, applying `actions` (sorted by arrival time) on the way.

    Returns False when the output buffer filled first: drain it and call again (the clock then
    stands at the last event; the actions consumed so far are counted in ctr[C_ACTION]).
    """
    st, ctr = e.st, e.ctr
    capacity = e.out.shape[0]
    n_actions = actions.shape[0]
    while True:
        if ctr[C_OUT] > capacity - OUT_MARGIN:
            return False
        t_action = actions[ctr[C_ACTION]].t if ctr[C_ACTION] < n_actions else np.inf
        t_cancel = book.next_due(e.books)
        if t_cancel >= e.fp[F_DAY_END]:
            t_cancel = np.inf  # after the close the crowd's book stands still
        t = min(
            st[S_NEXT_GRID],
            t_action,
            t_cancel,
            st[S_NEXT_LIMIT],
            st[S_NEXT_MARKET],
            st[S_NEXT_DARK],
        )
        if t > until:
            break
        st[S_T] = t
        if t == st[S_NEXT_GRID]:
            _grid_step(e, t)
        elif t == t_action:
            _our_action(e, actions[ctr[C_ACTION]])
            ctr[C_ACTION] += 1
        elif t == t_cancel:
            slot = book.pop_due(e.books, t)
            ctr[C_CANCELS] += 1
            _quote(e, t, e.books.pool[slot].venue)
        elif t == st[S_NEXT_LIMIT]:
            _limit_order(e, t, False)
            st[S_NEXT_LIMIT] = _arrival(e, t, rng.exponential(e.rng, R_LIMIT), e.fp[F_LIMIT_RATE])
        elif t == st[S_NEXT_MARKET]:
            _market_order(e, t)
            st[S_NEXT_MARKET] = _arrival(
                e, t, rng.exponential(e.rng, R_MARKET), e.fp[F_MARKET_RATE]
            )
        else:
            _contra_arrives(e, t)
            st[S_NEXT_DARK] = _arrival(e, t, rng.exponential(e.rng, R_DARK), e.fp[F_DARK_RATE])
    st[S_T] = until
    return True


@njit(cache=True, nogil=True)
def expire_all(e: Engine) -> None:
    """The close: every order of ours still working expires."""
    t = e.st[S_T]
    for h in range(e.ctr[C_OURS]):
        if e.ours[h].state == OUR_LIVE:
            _withdraw(e, t, h, OUT_EXPIRED)


# ---- exogenous events ----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _bucket(e: Engine, t: float) -> int:
    i = 0
    last = e.bucket_end.shape[0] - 1
    while i < last and t >= e.bucket_end[i]:
        i += 1
    return i


@njit(cache=True, nogil=True)
def _arrival(e: Engine, t: float, draw: float, rate: float) -> float:
    """The next arrival of a Poisson process whose rate follows the profile: the time at which
    the integrated rate since `t` reaches `draw` (an Exp(1) draw). inf after the close."""
    remaining = draw
    i = _bucket(e, t)
    while i < e.bucket_end.shape[0]:
        r = rate * e.intensity[i]
        span = e.bucket_end[i] - t
        if r > 0.0 and remaining <= r * span:
            return t + remaining / r
        remaining -= r * span
        t = e.bucket_end[i]
        i += 1
    return np.inf


@njit(cache=True, nogil=True)
def _grid_step(e: Engine, t: float) -> None:
    fp, st = e.fp, e.st
    dt = fp[F_GRID_DT]
    u = e.intensity[_bucket(e, t)]
    z = rng.normal(e.rng, R_PRICE)
    z2 = rng.normal(e.rng, R_PRICE)
    st[S_X] += st[S_ALPHA] * dt + fp[F_SIGMA] * math.sqrt(u * dt) * z
    keep = math.exp(-dt / fp[F_ALPHA_TAU])
    st[S_ALPHA] = st[S_ALPHA] * keep + fp[F_ALPHA_STD] * math.sqrt(1.0 - keep * keep) * z2
    impact = 0.0
    for k in range(e.imp_y.shape[0]):
        e.imp_y[k] *= e.imp_decay[k]
        impact += e.imp_weight[k] * e.imp_y[k]
    reference = fp[F_REF_TICKS] + fp[F_BASE_TICKS]
    st[S_MID] = reference * math.exp(st[S_X]) - fp[F_BASE_TICKS] + fp[F_IMPACT] * impact
    st[S_NEXT_GRID] = t + dt
    if st[S_NEXT_GRID] >= fp[F_DAY_END]:
        st[S_NEXT_GRID] = np.inf
    if fp[F_FADE] > 0.0:
        _fade(e, t)


@njit(cache=True, nogil=True)
def _fade(e: Engine, t: float) -> None:
    """Fast market makers pull quotes the efficient price has run through: each background
    order on the wrong side of the new anchor quotes leaves with probability F_FADE; the rest
    stay to be picked off by the next orders that arrive."""
    spread = int(e.fp[F_SPREAD])
    bid_anchor = math.floor(e.st[S_MID] - spread / 2.0 + 0.5)
    ask_anchor = bid_anchor + spread
    b = e.books
    for v in range(b.best.shape[0]):
        for side in range(2):
            level = b.best[v, side]
            changed = False
            while level != NO_LEVEL and (
                level >= ask_anchor if side == BUY else level <= bid_anchor
            ):
                slot = b.head[v, side, level]
                while slot != -1:
                    following = b.pool[slot].next
                    if (
                        b.pool[slot].owner == BACKGROUND
                        and rng.uniform(e.rng, R_FADE) < e.fp[F_FADE]
                    ):
                        book.remove(b, slot)
                        e.ctr[C_CANCELS] += 1
                        changed = True
                    slot = following
                level = level - 1 if side == BUY else level + 1
                if not 0 <= level < b.depth.shape[2]:
                    break
            if changed:
                _quote(e, t, v)


@njit(cache=True, nogil=True)
def _pick(cumulative: np.ndarray, u: float) -> int:
    i = 0
    while i < cumulative.shape[0] - 1 and u >= cumulative[i]:
        i += 1
    return i


@njit(cache=True, nogil=True)
def _limit_order(e: Engine, t: float, opening: bool) -> None:
    """A background limit order: rests behind its anchor, or takes first if it crosses."""
    fp = e.fp
    venue = _pick(e.lit_share, rng.uniform(e.rng, R_LIMIT))
    side = BUY if rng.uniform(e.rng, R_LIMIT) < 0.5 else SELL
    distance = rng.geometric(e.rng, R_LIMIT, fp[F_DEPTH_MEAN])
    qty = (1 + rng.geometric(e.rng, R_LIMIT, fp[F_LIMIT_LOTS] - 1.0)) * int(fp[F_LOT])
    life = rng.exponential(e.rng, R_LIMIT) * fp[F_LIFETIME]
    spread = int(fp[F_SPREAD])
    bid = math.floor(e.st[S_MID] - spread / 2.0 + 0.5)
    level = bid - distance if side == BUY else bid + spread + distance
    if opening:
        # Spread the opening book over ages, as if it had been building for a while.
        life *= rng.uniform(e.rng, R_LIMIT)
    level = _clamp(e, level)
    e.ctr[C_LIMITS] += 1
    # Order protection (as under Reg NMS): an order priced through another venue's quote takes
    # that quote first, best venue first, before it rests — so the consolidated market does not
    # stay crossed.
    while qty > 0:
        target = _best_venue(e, 1 - side)
        if target < 0 or not _crosses(e, target, side, level):
            break
        qty -= _take(e, t, target, side, level, qty, BACKGROUND)
        _quote(e, t, target)
    if qty > 0 and book.add(e.books, venue, side, level, qty, BACKGROUND, t + life) < 0:
        e.ctr[C_DROPPED] += 1
    _quote(e, t, venue)


@njit(cache=True, nogil=True)
def _best_venue(e: Engine, side: int) -> int:
    """The lit venue with the best price on `side` (-1 when the side is empty everywhere)."""
    found, best = -1, NO_LEVEL
    for v in range(e.lit_share.shape[0]):
        level = e.books.best[v, side]
        if level != NO_LEVEL and (
            best == NO_LEVEL or (level > best if side == BUY else level < best)
        ):
            found, best = v, level
    return found


@njit(cache=True, nogil=True)
def _market_order(e: Engine, t: float) -> None:
    fp = e.fp
    venue = _pick(e.lit_share, rng.uniform(e.rng, R_MARKET))
    side = BUY if rng.uniform(e.rng, R_MARKET) < 0.5 else SELL
    qty = (1 + rng.geometric(e.rng, R_MARKET, fp[F_MARKET_LOTS] - 1.0)) * int(fp[F_LOT])
    e.ctr[C_MARKETS] += 1
    _take(e, t, venue, side, NO_LEVEL, qty, BACKGROUND)
    _quote(e, t, venue)


@njit(cache=True, nogil=True)
def _contra_arrives(e: Engine, t: float) -> None:
    fp = e.fp
    pool = _pick(e.dark_share, rng.uniform(e.rng, R_DARK))
    lean = fp[F_DARK_ADVERSE] * e.dark_toxicity[pool] * math.tanh(e.st[S_ALPHA] / fp[F_ALPHA_STD])
    lean = min(max(lean, -0.5), 0.5)
    side = BUY if rng.uniform(e.rng, R_DARK) < 0.5 + lean else SELL
    qty = (1 + rng.geometric(e.rng, R_DARK, fp[F_DARK_LOTS] - 1.0)) * int(fp[F_LOT])
    qty = max(qty, e.dark_min[pool])
    life = rng.exponential(e.rng, R_DARK) * fp[F_DARK_LIFE]
    _drop_expired(e, pool, t)
    n = e.contra_n[pool]
    if n == DARK_SLOTS:
        e.ctr[C_DROPPED] += 1
        return
    e.contra_qty[pool, n] = qty
    e.contra_side[pool, n] = side
    e.contra_exp[pool, n] = t + life
    e.contra_n[pool] = n + 1
    # The newcomer crosses with our resting orders on the other side, oldest first.
    i = 0
    while i < e.resting_n[pool] and e.contra_qty[pool, n] > 0:
        h = e.resting[pool, i]
        crossed = e.ours[h].side != side and _cross(e, t, pool, h, n)
        if crossed and e.ours[h].cum == e.ours[h].qty:
            e.ours[h].state = OUR_DONE
            _unrest(e, pool, h)
            continue
        i += 1
    _drop_empty(e, pool)


# ---- our orders -----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _our_action(e: Engine, a: Any) -> None:  # a: an ACTION record
    t = e.st[S_T]
    h = a.handle
    if h >= e.ctr[C_OURS]:
        e.ctr[C_OURS] = h + 1
    if a.kind == ACT_NEW:
        o = e.ours[h]
        o.qty = a.qty
        o.cum = 0
        o.min_qty = a.min_qty
        o.level = a.level
        o.slot = -1
        o.venue = a.venue
        o.side = a.side
        o.tif = a.tif
        o.post_only = a.post_only
        o.state = OUR_DONE
        if t >= e.fp[F_DAY_END]:
            _reject(e, t, h, OUT_REJECTED, R_CLOSED)
        elif a.venue < e.lit_share.shape[0]:
            _new_lit(e, t, h)
        else:
            _new_dark(e, t, h)
    elif a.kind == ACT_CANCEL:
        _cancel(e, t, h)
    elif a.kind == ACT_REPLACE:
        _replace(e, t, h, a.qty, a.level)


@njit(cache=True, nogil=True)
def _new_lit(e: Engine, t: float, h: int) -> None:
    o = e.ours[h]
    if o.level != NO_LEVEL and not 0 <= o.level < e.books.depth.shape[2]:
        _reject(e, t, h, OUT_REJECTED, R_PRICE_BAND)
        return
    if o.post_only and _crosses(e, o.venue, o.side, o.level):
        _reject(e, t, h, OUT_REJECTED, R_POST_ONLY)
        return
    _emit(e, t, OUT_ACK, o.venue, o.side, 0, h, 0, o.qty, 0, 0)
    if o.tif == TIF_FOK and book.available(e.books, o.venue, o.side, o.level, o.qty) < o.qty:
        _emit(e, t, OUT_CANCELED, o.venue, o.side, 0, h, 0, o.qty, 0, R_FOK)
        return
    o.state = OUR_LIVE
    _work_lit(e, t, h)


@njit(cache=True, nogil=True)
def _work_lit(e: Engine, t: float, h: int) -> None:
    """Takes what our order can on its venue, then rests the rest (a limit DAY/GTC) or cancels
    it. A resting price that would lock or cross another venue's quote is slid one tick behind
    that quote (price-to-comply, as exchanges do with a non-routable order): the displayed
    market never crosses, while the order keeps its limit."""
    o = e.ours[h]
    while o.cum < o.qty and _crosses(e, o.venue, o.side, o.level):
        if _take(e, t, o.venue, o.side, o.level, o.qty - o.cum, h) == 0:
            break
    leaves = o.qty - o.cum
    if leaves == 0:
        o.state = OUR_DONE
    elif o.level != NO_LEVEL and (o.tif == TIF_DAY or o.tif == TIF_GTC):
        shown = _comply(e, o.venue, o.side, o.level)
        o.slot = book.add(e.books, o.venue, o.side, shown, leaves, h, np.inf)
        if o.slot < 0:
            o.state = OUR_DONE
            _emit(e, t, OUT_CANCELED, o.venue, o.side, 0, h, 0, leaves, 0, R_CAPACITY)
    else:
        o.state = OUR_DONE
        _emit(e, t, OUT_CANCELED, o.venue, o.side, 0, h, 0, leaves, 0, 0)
    _quote(e, t, o.venue)


@njit(cache=True, nogil=True)
def _comply(e: Engine, venue: int, side: int, level: int) -> int:
    """`level`, or one tick behind the best opposite quote of the other venues if it would
    lock or cross it."""
    for v in range(e.lit_share.shape[0]):
        away = e.books.best[v, 1 - side]
        if v == venue or away == NO_LEVEL:
            continue
        if side == BUY and level >= away:
            level = away - 1
        elif side == SELL and level <= away:
            level = away + 1
    return level


@njit(cache=True, nogil=True)
def _new_dark(e: Engine, t: float, h: int) -> None:
    o = e.ours[h]
    pool = o.venue - e.lit_share.shape[0]
    if o.qty < e.dark_min[pool]:
        _reject(e, t, h, OUT_REJECTED, R_MIN_QTY)
        return
    resting = o.tif == TIF_DAY or o.tif == TIF_GTC
    if resting and e.resting_n[pool] == DARK_SLOTS:
        _reject(e, t, h, OUT_REJECTED, R_CAPACITY)
        return
    _emit(e, t, OUT_ACK, o.venue, o.side, 0, h, 0, o.qty, 0, 0)
    if o.tif == TIF_FOK and _dark_available(e, t, pool, h) < o.qty:
        _emit(e, t, OUT_CANCELED, o.venue, o.side, 0, h, 0, o.qty, 0, R_FOK)
        return
    o.state = OUR_LIVE
    _work_dark(e, t, h)


@njit(cache=True, nogil=True)
def _dark_available(e: Engine, t: float, pool: int, h: int) -> int:
    """How much of our dark order `h` the contras resting now would fill (as `_cross` would)."""
    o = e.ours[h]
    _drop_expired(e, pool, t)
    bid, ask = _nbbo(e)
    if bid == NO_LEVEL or ask == NO_LEVEL or bid >= ask or not _within_limit(o, bid, ask):
        return 0
    found = 0
    for i in range(e.contra_n[pool]):
        if e.contra_side[pool, i] == o.side:
            continue
        q = min(o.qty - found, e.contra_qty[pool, i])
        if q >= max(1, e.dark_min[pool], o.min_qty):
            found += q
    return found


@njit(cache=True, nogil=True)
def _work_dark(e: Engine, t: float, h: int) -> None:
    o = e.ours[h]
    pool = o.venue - e.lit_share.shape[0]
    _drop_expired(e, pool, t)
    for i in range(e.contra_n[pool]):
        if o.cum == o.qty:
            break
        if e.contra_side[pool, i] != o.side:
            _cross(e, t, pool, h, i)
    _drop_empty(e, pool)
    leaves = o.qty - o.cum
    if leaves == 0:
        o.state = OUR_DONE
        _unrest(e, pool, h)
    elif o.tif == TIF_DAY or o.tif == TIF_GTC:
        if not _is_resting(e, pool, h):
            # Room was checked on entry (and a replace keeps the order's place or its room).
            e.resting[pool, e.resting_n[pool]] = h
            e.resting_n[pool] += 1
    else:
        o.state = OUR_DONE
        _emit(e, t, OUT_CANCELED, o.venue, o.side, 0, h, 0, leaves, 0, 0)


@njit(cache=True, nogil=True)
def _cancel(e: Engine, t: float, h: int) -> None:
    if e.ours[h].state != OUR_LIVE:
        _reject(e, t, h, OUT_CANCEL_REJECTED, R_TOO_LATE)
    else:
        _withdraw(e, t, h, OUT_CANCELED)


@njit(cache=True, nogil=True)
def _withdraw(e: Engine, t: float, h: int, kind: int) -> None:
    """Takes a live order of ours off its venue and reports it (canceled or expired)."""
    o = e.ours[h]
    lit = e.lit_share.shape[0]
    if o.venue < lit:
        if o.slot >= 0:
            book.remove(e.books, o.slot)
        _quote(e, t, o.venue)
    else:
        _unrest(e, o.venue - lit, h)
    o.state = OUR_DONE
    _emit(e, t, kind, o.venue, o.side, 0, h, 0, o.qty - o.cum, 0, 0)


@njit(cache=True, nogil=True)
def _replace(e: Engine, t: float, h: int, qty: int, level: int) -> None:
    """Cancel/replace. Keeps queue priority only when the price stays and the size goes down."""
    o = e.ours[h]
    if o.state != OUR_LIVE:
        _reject(e, t, h, OUT_REPLACE_REJECTED, R_TOO_LATE)
        return
    if qty <= o.cum:
        _reject(e, t, h, OUT_REPLACE_REJECTED, R_BELOW_FILLED)
        return
    lit = e.lit_share.shape[0]
    if o.venue >= lit:
        pool = o.venue - lit
        grew = qty > o.qty
        o.qty = qty
        o.level = level
        _emit(e, t, OUT_REPLACED, o.venue, o.side, 0, h, _nanos(e, level), qty, 0, 0)
        if grew:
            _unrest(e, pool, h)
        _work_dark(e, t, h)
        return
    if level == NO_LEVEL or not 0 <= level < e.books.depth.shape[2]:
        _reject(e, t, h, OUT_REPLACE_REJECTED, R_PRICE_BAND)
        return
    if o.post_only and _crosses(e, o.venue, o.side, level):
        _reject(e, t, h, OUT_REPLACE_REJECTED, R_POST_ONLY)
        return
    if level == o.level and qty <= o.qty:
        if qty < o.qty:
            book.reduce(e.books, o.slot, o.qty - qty)
        o.qty = qty
        _emit(e, t, OUT_REPLACED, o.venue, o.side, 0, h, _nanos(e, level), qty, 0, 0)
        _quote(e, t, o.venue)
        return
    book.remove(e.books, o.slot)
    o.slot = -1
    o.qty = qty
    o.level = level
    _emit(e, t, OUT_REPLACED, o.venue, o.side, 0, h, _nanos(e, level), qty, 0, 0)
    _work_lit(e, t, h)


# ---- matching -------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _take(e: Engine, t: float, venue: int, side: int, limit: int, qty: int, taker: int) -> int:
    """Matches on a lit book and writes the prints and our fills; the quantity taken."""
    n = book.take(e.books, venue, side, limit, qty, e.match_owner, e.match_level, e.match_qty)
    taken = 0
    for i in range(n):
        q = e.match_qty[i]
        price = _nanos(e, e.match_level[i])
        taken += q
        _emit(e, t, OUT_TRADE, venue, side, 0, BACKGROUND, price, q, 0, 0)
        maker = e.match_owner[i]
        if maker != BACKGROUND:
            _our_fill(e, t, maker, venue, price, q, LIQ_MAKER)
            if e.ours[maker].cum == e.ours[maker].qty:
                e.ours[maker].state = OUR_DONE
                e.ours[maker].slot = -1
        if taker != BACKGROUND:
            _our_fill(e, t, taker, venue, price, q, LIQ_TAKER)
    e.ctr[C_MATCHES] += n
    e.ctr[C_VOLUME] += taken
    return taken


@njit(cache=True, nogil=True)
def _our_fill(e: Engine, t: float, h: int, venue: int, price: int, q: int, liq: int) -> None:
    o = e.ours[h]
    o.cum += q
    signed = q if o.side == BUY else -q
    for k in range(e.imp_y.shape[0]):
        e.imp_y[k] += signed
    _emit(e, t, OUT_FILL, venue, o.side, liq, h, price, q, 0, 0)


@njit(cache=True, nogil=True)
def _cross(e: Engine, t: float, pool: int, h: int, c: int) -> bool:
    """Crosses our dark order `h` with contra `c` at the midpoint, if every minimum holds."""
    o = e.ours[h]
    bid, ask = _nbbo(e)
    if bid == NO_LEVEL or ask == NO_LEVEL or bid >= ask:
        return False  # no midpoint to cross at (one-sided, locked or crossed market)
    if o.level != NO_LEVEL and (
        bid + ask > 2 * o.level if o.side == BUY else bid + ask < 2 * o.level
    ):
        return False
    leaves = o.qty - o.cum
    q = min(leaves, e.contra_qty[pool, c])
    if q < e.dark_min[pool] or q < o.min_qty:
        return False
    e.contra_qty[pool, c] -= q
    tick = int(e.fp[F_TICK_NANOS])
    base = int(e.fp[F_BASE_TICKS])
    mid = (2 * base + bid + ask) * tick // 2
    venue = e.lit_share.shape[0] + pool
    _our_fill(e, t, h, venue, mid, q, LIQ_MIDPOINT)
    _emit(e, t, OUT_TRADE, venue, o.side, 0, BACKGROUND, mid, q, 0, 0)
    return True


@njit(cache=True, nogil=True)
def _within_limit(o: Any, bid: int, ask: int) -> bool:
    """Whether the midpoint of (bid, ask) is within our order's limit (an OURS record)."""
    if o.level == NO_LEVEL:
        return True
    return bid + ask <= 2 * o.level if o.side == BUY else bid + ask >= 2 * o.level


@njit(cache=True, nogil=True)
def _nbbo(e: Engine) -> tuple[int, int]:
    bid, ask = NO_LEVEL, NO_LEVEL
    for v in range(e.lit_share.shape[0]):
        b, a = e.books.best[v, BUY], e.books.best[v, SELL]
        if b != NO_LEVEL and (bid == NO_LEVEL or b > bid):
            bid = b
        if a != NO_LEVEL and (ask == NO_LEVEL or a < ask):
            ask = a
    return bid, ask


@njit(cache=True, nogil=True)
def _crosses(e: Engine, venue: int, side: int, level: int) -> bool:
    best = e.books.best[venue, 1 - side]
    if best == NO_LEVEL:
        return False
    if level == NO_LEVEL:
        return True
    return level >= best if side == BUY else level <= best


@njit(cache=True, nogil=True)
def _drop_expired(e: Engine, pool: int, t: float) -> None:
    for i in range(e.contra_n[pool]):
        if e.contra_exp[pool, i] <= t:
            e.contra_qty[pool, i] = 0
    _drop_empty(e, pool)


@njit(cache=True, nogil=True)
def _drop_empty(e: Engine, pool: int) -> None:
    kept = 0
    for i in range(e.contra_n[pool]):
        if e.contra_qty[pool, i] > 0:
            e.contra_qty[pool, kept] = e.contra_qty[pool, i]
            e.contra_side[pool, kept] = e.contra_side[pool, i]
            e.contra_exp[pool, kept] = e.contra_exp[pool, i]
            kept += 1
    e.contra_n[pool] = kept


@njit(cache=True, nogil=True)
def _is_resting(e: Engine, pool: int, h: int) -> bool:
    for i in range(e.resting_n[pool]):  # noqa: SIM110 (numba compiles loops, not any(genexpr))
        if e.resting[pool, i] == h:
            return True
    return False


@njit(cache=True, nogil=True)
def _unrest(e: Engine, pool: int, h: int) -> None:
    kept = 0
    for i in range(e.resting_n[pool]):
        if e.resting[pool, i] != h:
            e.resting[pool, kept] = e.resting[pool, i]
            kept += 1
    e.resting_n[pool] = kept


# ---- output ---------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _clamp(e: Engine, level: int) -> int:
    return max(0, min(level, e.books.depth.shape[2] - 1))


@njit(cache=True, nogil=True)
def _nanos(e: Engine, level: int) -> int:
    if level == NO_LEVEL:
        return 0
    return (int(e.fp[F_BASE_TICKS]) + level) * int(e.fp[F_TICK_NANOS])


@njit(cache=True, nogil=True)
def _quote(e: Engine, t: float, venue: int) -> None:
    """Publishes the venue's top of book if it changed."""
    b = e.books
    bid, ask = b.best[venue, BUY], b.best[venue, SELL]
    bid_size = b.depth[venue, BUY, bid] if bid != NO_LEVEL else 0
    ask_size = b.depth[venue, SELL, ask] if ask != NO_LEVEL else 0
    q = e.quoted[venue]
    if q[0] == bid and q[1] == bid_size and q[2] == ask and q[3] == ask_size:
        return
    q[0], q[1], q[2], q[3] = bid, bid_size, ask, ask_size
    _emit(
        e, t, OUT_QUOTE, venue, 0, 0, BACKGROUND, _nanos(e, bid), bid_size, _nanos(e, ask), ask_size
    )


@njit(cache=True, nogil=True)
def _reject(e: Engine, t: float, h: int, kind: int, reason: int) -> None:
    o = e.ours[h]
    _emit(e, t, kind, o.venue, o.side, 0, h, 0, 0, 0, reason)


@njit(cache=True, nogil=True)
def _emit(
    e: Engine,
    t: float,
    kind: int,
    venue: int,
    side: int,
    liquidity: int,
    handle: int,
    price: int,
    qty: int,
    price2: int,
    qty2: int,
) -> None:
    i = e.ctr[C_OUT]
    r = e.out[i]
    r.t = t
    r.kind = kind
    r.venue = venue
    r.side = side
    r.liquidity = liquidity
    r.handle = handle
    r.price = price
    r.qty = qty
    r.price2 = price2
    r.qty2 = qty2
    e.ctr[C_OUT] = i + 1
