"""The routing kernel agrees with its plain-Python reference, share for share, and keeps the
promises a desk relies on: never more than asked, whole lots, nothing beyond the displayed size
or the limit, minimum sizes respected, excluded venues left alone, at most max_venues."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillpath.sor import reference
from fillpath.sor.kernel import Request, decide
from fillpath.sor.state import DARK, DEPTH, LIT, empty_state

TICK = 10_000_000  # one cent in nanos
MID = 100_000_000_000  # 100.00


def _run(state: np.ndarray, eligible: list[bool], adjust: list[float], r: Request):
    out = np.zeros(2 * len(state), dtype=np.int64)
    spend = np.zeros(2 * len(state))
    eligible_array = np.array(eligible, dtype=np.bool_)
    total = decide(state, eligible_array, np.array(adjust, dtype=np.float64), r, out, spend)
    return out, spend, total


@st.composite
def venue_rows(draw: Any) -> dict[str, Any]:
    dark = draw(st.booleans()) and draw(st.booleans())  # a quarter dark
    half_spread = draw(st.integers(1, 4))
    quantities = st.lists(st.integers(0, 3_000), min_size=DEPTH, max_size=DEPTH)
    return {
        "kind": DARK if dark else LIT,
        "bid": MID - half_spread * TICK - draw(st.integers(0, 2)) * TICK,
        "ask": MID + half_spread * TICK + draw(st.integers(0, 2)) * TICK,
        "bid_qty": draw(quantities),
        "ask_qty": draw(quantities),
        "maker_fee": draw(st.floats(-0.003, 0.003)),
        "taker_fee": draw(st.floats(-0.001, 0.003)),
        "midpoint_fee": draw(st.floats(0, 0.002)),
        "latency_us": draw(st.floats(50, 2_000)),
        "min_qty": draw(st.sampled_from([0, 0, 100, 250, 2_000])),
        "passive_volume": draw(st.sampled_from([0.0, 500.0, 3_000.0, 20_000.0])),
        "dark_fill_prob": draw(st.floats(0, 1)),
        "dark_fill_size": draw(st.sampled_from([0.0, 300.0, 5_000.0])),
        "markout_bps": draw(st.floats(-2, 5)),
        "reject_rate": draw(st.floats(0, 0.2)),
    }


def _state(rows: list[dict[str, Any]]) -> np.ndarray:
    state = empty_state(len(rows))
    for v, row in enumerate(rows):
        state[v]["kind"] = row["kind"]
        if row["kind"] == LIT:
            state[v]["bid_px"] = [row["bid"] - k * TICK for k in range(DEPTH)]
            state[v]["ask_px"] = [row["ask"] + k * TICK for k in range(DEPTH)]
            state[v]["bid_qty"] = row["bid_qty"]
            state[v]["ask_qty"] = row["ask_qty"]
        for name in ("maker_fee", "taker_fee", "midpoint_fee", "latency_us", "min_qty",
                     "passive_volume", "dark_fill_prob", "dark_fill_size", "markout_bps",
                     "reject_rate"):  # fmt: skip
            state[v][name] = row[name]
    return state


@st.composite
def cases(draw: Any) -> tuple[np.ndarray, list[bool], list[float], Request]:
    rows = draw(st.lists(venue_rows(), min_size=1, max_size=8))
    lot = draw(st.sampled_from([1, 100]))
    limit = draw(st.one_of(st.just(0), st.integers(MID - 8 * TICK, MID + 8 * TICK)))
    request = Request(
        side=draw(st.sampled_from([1, -1])),
        quantity=lot * draw(st.integers(1, 400)),
        limit=limit,
        tick=TICK,
        lot=lot,
        max_venues=draw(st.integers(0, 3)),
        allow_rest=draw(st.booleans()),
        w_fee=draw(st.sampled_from([0.0, 1.0])),
        w_latency=draw(st.floats(0, 1)),
        w_markout=draw(st.sampled_from([0.0, 1.0])),
        miss_bps=draw(st.floats(0, 30)),
    )
    eligible = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    adjust = draw(st.lists(st.floats(-1, 1), min_size=len(rows), max_size=len(rows)))
    return _state(rows), eligible, adjust, request


@settings(max_examples=400, deadline=None)
@given(cases())
def test_the_kernel_allocates_exactly_as_the_reference(case: tuple) -> None:
    state, eligible, adjust, request = case

    out, spend, total = _run(state, eligible, adjust, request)
    expected, expected_spend, expected_total = reference.allocate(state, eligible, adjust, request)

    assert out.tolist() == expected
    assert spend.tolist() == pytest.approx(expected_spend, rel=1e-12, abs=1e-9)
    if not math.isnan(total):
        assert spend.sum() == pytest.approx(total, rel=1e-12, abs=1e-9)
    if math.isnan(expected_total):
        assert math.isnan(total)
    else:
        assert total == pytest.approx(expected_total, rel=1e-12, abs=1e-9)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_an_allocation_keeps_every_promise(case: tuple) -> None:
    state, eligible, adjust, r = case

    out, _, _ = _run(state, eligible, adjust, r)

    assert out.sum() <= r.quantity
    assert (out % r.lot == 0).all()
    limit = (r.limit // TICK) * TICK if r.side > 0 else -(-r.limit // TICK) * TICK
    for v, row in enumerate(state):
        take, rest = out[2 * v], out[2 * v + 1]
        if not eligible[v]:
            assert take == rest == 0
        if row["kind"] == DARK:
            assert take == 0
        for shares in (take, rest):
            assert shares == 0 or shares >= row["min_qty"]
        far_px = row["ask_px"] if r.side > 0 else row["bid_px"]
        far_qty = row["ask_qty"] if r.side > 0 else row["bid_qty"]
        within = [
            q for px, q in zip(far_px, far_qty, strict=True)
            if r.limit == 0 or r.side * (px - limit) <= 0
        ]  # fmt: skip
        assert take <= sum(within)  # displayed, within the limit
    used = {v for v in range(len(state)) if out[2 * v] or out[2 * v + 1]}
    if r.max_venues:
        assert len(used) <= r.max_venues


def _two_lit_venues() -> np.ndarray:
    state = empty_state(2)
    for v in range(2):
        state[v]["bid_px"] = [MID - TICK - k * TICK for k in range(DEPTH)]
        state[v]["ask_px"] = [MID + TICK + k * TICK for k in range(DEPTH)]
        state[v]["bid_qty"] = 500
        state[v]["ask_qty"] = 500
    state[0]["taker_fee"] = 0.0030  # maker-taker
    state[1]["taker_fee"] = -0.0005  # inverted: a rebate to take
    return state


def test_an_urgent_buy_sweeps_in_order_of_all_in_price() -> None:
    state = _two_lit_venues()
    request = Request(side=1, quantity=1_500, lot=100, tick=TICK, miss_bps=50.0)

    out, _, total = _run(state, [True, True], [0.0, 0.0], request)

    # Both venues show 500 at 100.01 (1 bp over the mid) and 500 at 100.02 (2 bp). All in:
    # venue 1's first level 0.95 bp (its rebate), venue 0's first 1.3 bp (its fee), venue 1's
    # second 1.95 bp, venue 0's second 2.3 bp: the 1,500 shares are the first three.
    assert out.tolist() == [500, 0, 1_000, 0]
    fee_bps = {0: 0.003 / 100 * 1e4, 1: -0.0005 / 100 * 1e4}
    price_bps = {1: 0.01 / 100 * 1e4, 2: 0.02 / 100 * 1e4}
    expected = 500 * (price_bps[1] + fee_bps[0]) + 500 * (price_bps[1] + fee_bps[1])
    expected += 500 * (price_bps[2] + fee_bps[1])
    assert total == pytest.approx(expected, rel=1e-12)


def test_nothing_is_routed_without_a_two_sided_market() -> None:
    state = _two_lit_venues()
    state["ask_qty"] = 0
    request = Request(side=1, quantity=100, tick=TICK)

    out, _, total = _run(state, [True, True], [0.0, 0.0], request)

    assert math.isnan(total)
    assert out.sum() == 0
