"""The numba matching core agrees with the plain-Python reference book, operation by operation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fillpath.market import book
from fillpath.market.layout import BUY, NO_LEVEL, SELL
from fillpath.market.reference import ReferenceBook

LEVELS = 40

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from([BUY, SELL]),
            st.integers(0, LEVELS - 1),
            st.integers(1, 500),
        ),
        st.tuples(st.just("remove"), st.integers(0, 10_000)),
        st.tuples(st.just("reduce"), st.integers(0, 10_000), st.integers(1, 499)),
        st.tuples(
            st.just("take"),
            st.sampled_from([BUY, SELL]),
            st.one_of(st.just(NO_LEVEL), st.integers(0, LEVELS - 1)),
            st.integers(1, 2_000),
        ),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_take_add_remove_random_sequences_match_the_reference(sequence: list[tuple]) -> None:
    fast = book.new_books(1, LEVELS, 512)
    slow = ReferenceBook()
    slots: dict[int, int] = {}  # owner tag → slot in the fast book
    live: list[int] = []
    owner_of = np.zeros(512, dtype=np.int64)
    mo, ml, mq = (np.zeros(4096, dtype=np.int64) for _ in range(3))
    next_owner = 0
    for op in sequence:
        if op[0] == "add":
            _, side, level, qty = op
            # Only rest where the order would not cross (an incoming order takes first).
            best = slow.best(1 - side)
            if best is not None and (level >= best if side == BUY else level <= best):
                continue
            slot = book.add(fast, 0, side, level, qty, next_owner, np.inf)
            slow.add(side, level, qty, next_owner)
            slots[next_owner] = slot
            owner_of[slot] = next_owner
            live.append(next_owner)
            next_owner += 1
        elif op[0] == "remove" and live:
            owner = live.pop(op[1] % len(live))
            book.remove(fast, slots.pop(owner))
            slow.remove(owner)
        elif op[0] == "reduce" and live:
            owner = live[op[1] % len(live)]
            slot = slots[owner]
            by = min(op[2], int(fast.pool[slot]["qty"]) - 1)
            if by > 0:
                book.reduce(fast, slot, by)
                slow.reduce(owner, by)
        elif op[0] == "take":
            _, side, limit, qty = op
            n = book.take(fast, 0, side, limit, qty, mo, ml, mq)
            expected = slow.take(side, None if limit == NO_LEVEL else limit, qty)
            assert list(zip(mo[:n], ml[:n], mq[:n], strict=True)) == expected
            # Orders filled in full left both books.
            for owner in [o for o in live if o not in _owners(slow)]:
                live.remove(owner)
                slots.pop(owner)
        for side in (BUY, SELL):
            best = slow.best(side)
            assert fast.best[0, side] == (NO_LEVEL if best is None else best)
            for level in range(LEVELS):
                assert fast.depth[0, side, level] == slow.depth(side, level)


def _owners(ref: ReferenceBook) -> set[int]:
    return {owner for queue in ref.levels.values() for owner, _ in queue}


def test_take_walks_levels_in_price_then_time_order() -> None:
    b = book.new_books(1, 10, 16)
    book.add(b, 0, SELL, 5, 100, 1, np.inf)
    book.add(b, 0, SELL, 4, 100, 2, np.inf)
    book.add(b, 0, SELL, 4, 100, 3, np.inf)
    mo, ml, mq = (np.zeros(8, dtype=np.int64) for _ in range(3))

    n = book.take(b, 0, BUY, 5, 250, mo, ml, mq)

    assert list(zip(mo[:n], ml[:n], mq[:n], strict=True)) == [(2, 4, 100), (3, 4, 100), (1, 5, 50)]
    assert b.best[0, SELL] == 5
    assert b.depth[0, SELL, 5] == 50


def test_pop_due_cancels_background_orders_in_time_order() -> None:
    b = book.new_books(1, 10, 16)
    book.add(b, 0, BUY, 3, 100, -1, 9.0)
    early = book.add(b, 0, BUY, 4, 100, -1, 2.0)
    book.add(b, 0, BUY, 2, 100, -1, 5.0)

    assert book.next_due(b) == 2.0
    assert book.pop_due(b, 1.0) == -1
    assert book.pop_due(b, 2.0) == early
    assert b.best[0, BUY] == 3
    assert book.next_due(b) == 5.0
