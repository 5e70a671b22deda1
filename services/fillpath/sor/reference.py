"""The routing kernel's rules in plain Python: the reference fillpath.sor.kernel is tested against.

Written to be read, not to be fast: every block, every source's next block is priced again from
scratch (the kernel keeps them and re-prices only what changed). Same formulas, same order of
operations, so the two agree share for share.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fillpath.sor.kernel import BPS, MAX_BLOCKS, NANOS, Request
from fillpath.sor.state import DARK


def allocate(
    state: np.ndarray, eligible: list[bool], adjust_bps: list[float], r: Request
) -> tuple[list[int], list[float], float]:
    """Shares per source (take, rest/ping per venue), their expected cost in bps·shares, and
    the total."""
    venues = [_venue(row) for row in state]
    out = [0] * (2 * len(venues))
    spend = [0.0] * len(out)
    lit = [v for v in venues if v["kind"] != DARK]
    bids = [v["bid_px"][0] for v in lit if v["bid_qty"][0] > 0]
    asks = [v["ask_px"][0] for v in lit if v["ask_qty"][0] > 0]
    if not bids or not asks:
        return out, spend, math.nan
    mid = (max(bids) + min(asks)) / 2.0
    side, lot = r.side, r.lot
    limit = r.limit
    if limit > 0:
        limit = (limit // r.tick) * r.tick if side > 0 else -(-limit // r.tick) * r.tick
    near = max(bids) if side > 0 else min(asks)
    if limit > 0 and side * (near - limit) > 0:
        near = limit

    def resting(v: dict[str, Any], at: float) -> tuple[float, float]:
        fee_scale = NANOS / mid * BPS
        if v["kind"] == DARK:
            fill = v["dark_fill_prob"] * math.exp(-at / v["dark_fill_size"])
            return fill, r.w_fee * v["midpoint_fee"] * fee_scale + r.w_markout * v["markout_bps"]
        book_px, book_qty = (v["bid_px"], v["bid_qty"]) if side > 0 else (v["ask_px"], v["ask_qty"])
        queue = float(book_qty[0]) if book_px[0] == near else 0.0
        fill = math.exp(-(queue + at) / v["passive_volume"])
        priced = (
            side * (near - mid) / mid * BPS
            + r.w_fee * v["maker_fee"] * fee_scale
            + r.w_markout * v["markout_bps"]
        )
        return fill, priced

    def far_levels(v: dict[str, Any]) -> list[tuple[int, int]]:
        prices, sizes = (v["ask_px"], v["ask_qty"]) if side > 0 else (v["bid_px"], v["bid_qty"])
        return list(zip(prices, sizes, strict=True))

    def take_capacity(v: dict[str, Any]) -> int:
        total = 0
        for px, qty in far_levels(v):
            if qty <= 0 or (limit > 0 and side * (px - limit) > 0):
                break
            total += qty
        return total - total % lot

    def cost(source: int, at: float) -> float:
        v = venues[source // 2]
        if source % 2 == 0:
            levels = far_levels(v)
            px, cum = levels[-1][0], 0
            for level_px, qty in levels:
                cum += qty
                if at < cum:
                    px = level_px
                    break
            return float(
                side * (px - mid) / mid * BPS
                + r.w_fee * v["taker_fee"] * NANOS / mid * BPS
                + r.w_latency * v["latency_us"] / 1000.0
                + v["reject_rate"] * r.miss_bps
            )
        fill, priced = resting(v, at)
        return r.miss_bps - fill * (r.miss_bps - priced)

    def usable(source: int) -> bool:
        v = venues[source // 2]
        if not eligible[source // 2]:
            return False
        if source % 2 == 0:
            return v["kind"] != DARK and take_capacity(v) > 0
        if v["kind"] == DARK:
            if v["dark_fill_prob"] <= 0 or v["dark_fill_size"] <= 0:
                return False
            if limit > 0 and side * (mid - limit) > 0:
                return False
        elif not r.allow_rest or v["passive_volume"] <= 0:
            return False
        fill, priced = resting(v, 0.0)
        return fill > 0 and priced < r.miss_bps

    sources = [s for s in range(len(out)) if usable(s)]
    capacity = {s: take_capacity(venues[s // 2]) if s % 2 == 0 else r.quantity for s in sources}
    block = lot * max(1, -(-(r.quantity // lot) // MAX_BLOCKS))
    remaining, total = r.quantity, 0.0
    while remaining > 0:
        step = min(block, remaining)
        used = {s // 2 for s in range(len(out)) if out[s] > 0}
        best: tuple[float, int, int] | None = None  # (cost, source, shares)
        for s in sources:
            if r.max_venues > 0 and len(used) >= r.max_venues and s // 2 not in used:
                continue
            size = min(step, capacity[s] - out[s])
            if out[s] == 0:
                size = max(size, -(-venues[s // 2]["min_qty"] // lot) * lot)
            if size <= 0 or size > remaining or out[s] + size > capacity[s]:
                continue
            c = cost(s, out[s] + size / 2.0) + adjust_bps[s // 2]
            if best is None or c < best[0]:
                best = (c, s, size)
        if best is None:
            break
        c, s, size = best
        out[s] += size
        spend[s] += c * size
        total += c * size
        remaining -= size
    return out, spend, total


def _venue(row: np.void) -> dict[str, Any]:
    return {name: _plain(row[name]) for name in row.dtype.names or ()}


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return [x.item() for x in value]
    return value.item() if isinstance(value, np.generic) else value
