"""Our orders on the lab's venues behave as on a real exchange: queue position, IOC, FOK,
post-only, cancel/replace priority, and midpoint dark crossing with minimum quantities.

A quiet engine (no background flow, a still price) with hand-placed resting orders, so every
outcome is known in advance.
"""

from __future__ import annotations

import numpy as np

from fillpath.market import book, rng
from fillpath.market import engine as eng
from fillpath.market.layout import (
    ACT_CANCEL,
    ACT_NEW,
    ACT_REPLACE,
    ACTION,
    BACKGROUND,
    BUY,
    LIQ_MIDPOINT,
    NO_LEVEL,
    OUT_ACK,
    OUT_CANCELED,
    OUT_FILL,
    OUT_REJECTED,
    OUT_REPLACED,
    R_CAPACITY,
    R_FOK,
    R_MIN_QTY,
    R_POST_ONLY,
    SELL,
    TIF_DAY,
    TIF_FOK,
    TIF_IOC,
)

TICK = 10_000_000  # 0.01 in nanos
BASE = 10_000  # the grid starts at 100.00
LIT_A, LIT_B, DARK = 0, 1, 2


def quiet_engine(dark_min: int = 100) -> eng.Engine:
    fp = np.zeros(eng.FP_SIZE)
    fp[eng.F_REF_TICKS] = 50
    fp[eng.F_BASE_TICKS] = BASE
    fp[eng.F_GRID_DT] = 1.0
    fp[eng.F_SPREAD] = 1
    fp[eng.F_LOT] = 100
    fp[eng.F_ALPHA_TAU] = 30.0
    fp[eng.F_ALPHA_STD] = 1e-9
    fp[eng.F_DAY_END] = 23_400.0
    fp[eng.F_TICK_NANOS] = TICK
    return eng.new_engine(
        fp=fp,
        seed_states=rng.seeded_streams(1, eng.STREAMS),
        lit_share=np.array([0.5, 1.0]),
        dark_share=np.array([1.0]),
        dark_min=np.array([dark_min]),
        bucket_end=np.array([23_400.0]),
        intensity=np.array([1.0]),
        imp_tau=np.array([10.0]),
        imp_weight=np.array([0.0]),
        levels=100,
    )


def action(t: float, kind: int, handle: int, **fields: int) -> np.ndarray:
    a = np.zeros(1, dtype=ACTION)
    a["t"], a["kind"], a["handle"] = t, kind, handle
    a["level"] = NO_LEVEL
    for key, value in fields.items():
        a[key] = value
    return a


def run(e: eng.Engine, until: float, *actions: np.ndarray) -> np.ndarray:
    batch = np.concatenate(actions) if actions else np.zeros(0, dtype=ACTION)
    e.ctr[eng.C_ACTION] = 0
    assert eng.run(e, until, batch)
    out = e.out[: e.ctr[eng.C_OUT]].copy()
    e.ctr[eng.C_OUT] = 0
    return out


def ours(out: np.ndarray, handle: int, kind: int) -> np.ndarray:
    return out[(out["handle"] == handle) & (out["kind"] == kind)]


def buy(
    t: float, handle: int, qty: int, level: int, tif: int = TIF_DAY, **extra: int
) -> np.ndarray:
    return action(t, ACT_NEW, handle, venue=LIT_A, side=BUY, qty=qty, level=level, tif=tif, **extra)


def sell(t: float, handle: int, qty: int, level: int = NO_LEVEL, tif: int = TIF_IOC) -> np.ndarray:
    return action(t, ACT_NEW, handle, venue=LIT_A, side=SELL, qty=qty, level=level, tif=tif)


def test_passive_order_fills_only_after_the_quantity_ahead_trades_or_cancels() -> None:
    e = quiet_engine()
    book.add(e.books, LIT_A, BUY, 40, 100, BACKGROUND, np.inf)
    ahead = book.add(e.books, LIT_A, BUY, 40, 200, BACKGROUND, np.inf)
    out = run(e, 1.5, buy(1.0, 0, 300, 40))
    assert len(ours(out, 0, OUT_ACK)) == 1

    out = run(e, 2.5, sell(2.0, 1, 250))  # takes the first 100 and 150 of the second
    assert len(ours(out, 0, OUT_FILL)) == 0

    book.remove(e.books, ahead)  # the rest of the order ahead of ours is canceled
    out = run(e, 3.5, sell(3.0, 2, 100))

    fills = ours(out, 0, OUT_FILL)
    assert fills["qty"].tolist() == [100]
    assert fills["price"].tolist() == [(BASE + 40) * TICK]


def test_ioc_takes_what_it_can_and_cancels_the_rest() -> None:
    e = quiet_engine()
    book.add(e.books, LIT_A, SELL, 60, 300, BACKGROUND, np.inf)
    book.add(e.books, LIT_A, SELL, 62, 300, BACKGROUND, np.inf)

    out = run(e, 2.0, buy(1.0, 0, 1000, 61, tif=TIF_IOC))

    assert ours(out, 0, OUT_FILL)["qty"].tolist() == [300]
    assert ours(out, 0, OUT_CANCELED)["qty"].tolist() == [700]
    assert e.books.depth[LIT_A, SELL, 62] == 300


def test_fok_that_cannot_fill_in_full_trades_nothing() -> None:
    e = quiet_engine()
    book.add(e.books, LIT_A, SELL, 60, 300, BACKGROUND, np.inf)

    out = run(e, 2.0, buy(1.0, 0, 400, 61, tif=TIF_FOK))

    assert len(ours(out, 0, OUT_FILL)) == 0
    assert ours(out, 0, OUT_CANCELED)["qty2"].tolist() == [R_FOK]
    assert e.books.depth[LIT_A, SELL, 60] == 300


def test_post_only_that_would_take_is_rejected() -> None:
    e = quiet_engine()
    book.add(e.books, LIT_A, SELL, 60, 300, BACKGROUND, np.inf)

    out = run(e, 2.0, buy(1.0, 0, 100, 60, post_only=1), buy(1.5, 1, 100, 59, post_only=1))

    assert ours(out, 0, OUT_REJECTED)["qty2"].tolist() == [R_POST_ONLY]
    assert len(ours(out, 1, OUT_ACK)) == 1
    assert e.books.depth[LIT_A, BUY, 59] == 100


def test_replace_down_keeps_priority_and_replace_up_loses_it() -> None:
    e = quiet_engine()
    run(e, 2.0, buy(1.0, 0, 300, 40), buy(1.5, 1, 300, 40))

    # Handle 0 shrinks: still first in the queue.
    run(e, 3.0, action(2.5, ACT_REPLACE, 0, qty=200, level=40))
    out = run(e, 4.0, sell(3.5, 9, 200))
    assert ours(out, 0, OUT_FILL)["qty"].tolist() == [200]

    e = quiet_engine()
    run(e, 2.0, buy(1.0, 0, 300, 40), buy(1.5, 1, 300, 40))
    # Handle 0 grows: it goes to the back, behind handle 1.
    out = run(e, 3.0, action(2.5, ACT_REPLACE, 0, qty=400, level=40))
    assert ours(out, 0, OUT_REPLACED)["qty"].tolist() == [400]
    out = run(e, 4.0, sell(3.5, 9, 300))
    assert ours(out, 1, OUT_FILL)["qty"].tolist() == [300]
    assert len(ours(out, 0, OUT_FILL)) == 0


def test_cancel_takes_our_order_off_the_book() -> None:
    e = quiet_engine()
    run(e, 2.0, buy(1.0, 0, 300, 40))

    out = run(e, 3.0, action(2.5, ACT_CANCEL, 0))

    assert ours(out, 0, OUT_CANCELED)["qty"].tolist() == [300]
    assert e.books.best[LIT_A, BUY] == NO_LEVEL


def contra(e: eng.Engine, side: int, qty: int) -> None:
    n = e.contra_n[0]
    e.contra_qty[0, n], e.contra_side[0, n], e.contra_exp[0, n] = qty, side, np.inf
    e.contra_n[0] = n + 1


def test_dark_pool_crosses_at_the_midpoint_and_respects_minimum_quantities() -> None:
    e = quiet_engine(dark_min=200)
    book.add(e.books, LIT_A, BUY, 40, 100, BACKGROUND, np.inf)
    book.add(e.books, LIT_B, SELL, 43, 100, BACKGROUND, np.inf)  # NBBO 100.40 / 100.43
    contra(e, SELL, 150)  # below the pool's minimum: never crosses
    contra(e, SELL, 600)

    dark_buy = action(1.0, ACT_NEW, 0, venue=DARK, side=BUY, qty=1000, tif=TIF_DAY, min_qty=500)
    out = run(e, 2.0, dark_buy, action(1.5, ACT_NEW, 1, venue=DARK, side=BUY, qty=100, tif=TIF_DAY))

    fills = ours(out, 0, OUT_FILL)
    assert fills["qty"].tolist() == [600]
    assert fills["price"].tolist() == [(2 * BASE + 40 + 43) * TICK // 2]  # 100.415
    assert fills["liquidity"].tolist() == [LIQ_MIDPOINT]
    assert ours(out, 1, OUT_REJECTED)["qty2"].tolist() == [R_MIN_QTY]  # 100 < pool minimum


def test_dark_order_minimum_quantity_decides_alone() -> None:
    e = quiet_engine(dark_min=200)
    book.add(e.books, LIT_A, BUY, 40, 100, BACKGROUND, np.inf)
    book.add(e.books, LIT_B, SELL, 42, 100, BACKGROUND, np.inf)
    contra(e, SELL, 300)  # above the pool's minimum, below the order's

    order = action(1.0, ACT_NEW, 0, venue=DARK, side=BUY, qty=1000, tif=TIF_DAY, min_qty=500)
    out = run(e, 2.0, order)
    assert len(ours(out, 0, OUT_FILL)) == 0

    contra(e, SELL, 600)
    out = run(e, 3.0, action(2.5, ACT_REPLACE, 0, qty=1000))  # a replace looks again
    assert ours(out, 0, OUT_FILL)["qty"].tolist() == [600]


def test_dark_fok_that_cannot_fill_in_full_trades_nothing() -> None:
    e = quiet_engine(dark_min=100)
    book.add(e.books, LIT_A, BUY, 40, 100, BACKGROUND, np.inf)
    book.add(e.books, LIT_B, SELL, 42, 100, BACKGROUND, np.inf)
    contra(e, SELL, 300)

    out = run(e, 2.0, action(1.0, ACT_NEW, 0, venue=DARK, side=BUY, qty=1000, tif=TIF_FOK))

    assert len(ours(out, 0, OUT_FILL)) == 0
    assert ours(out, 0, OUT_CANCELED)["qty2"].tolist() == [R_FOK]
    assert e.contra_qty[0, 0] == 300


def test_dark_order_filled_by_a_replace_leaves_the_pool() -> None:
    e = quiet_engine(dark_min=0)
    book.add(e.books, LIT_A, BUY, 40, 100, BACKGROUND, np.inf)
    book.add(e.books, LIT_B, SELL, 42, 100, BACKGROUND, np.inf)
    run(e, 2.0, action(1.0, ACT_NEW, 0, venue=DARK, side=BUY, qty=500, tif=TIF_DAY))
    contra(e, SELL, 300)

    out = run(e, 3.0, action(2.5, ACT_REPLACE, 0, qty=300))  # down to what the contra has

    assert ours(out, 0, OUT_FILL)["qty"].tolist() == [300]
    assert e.resting_n[0] == 0


def test_dark_pool_full_of_our_orders_rejects_the_next() -> None:
    e = quiet_engine(dark_min=0)
    batch = [
        action(1.0 + i * 1e-4, ACT_NEW, i, venue=DARK, side=BUY, qty=100, tif=TIF_DAY)
        for i in range(eng.DARK_SLOTS + 1)
    ]

    out = run(e, 2.0, *batch)

    assert ours(out, eng.DARK_SLOTS, OUT_REJECTED)["qty2"].tolist() == [R_CAPACITY]
    assert e.resting_n[0] == eng.DARK_SLOTS


def test_resting_order_priced_through_another_venue_slides_behind_it() -> None:
    e = quiet_engine()
    book.add(e.books, LIT_B, SELL, 43, 100, BACKGROUND, np.inf)  # the best offer, on B

    run(e, 2.0, buy(1.0, 0, 300, 45))  # on A, where nothing is offered

    assert e.books.best[LIT_A, BUY] == 42  # one tick behind B's offer: no crossed market
    assert e.ours[0]["level"] == 45  # the order keeps its limit
