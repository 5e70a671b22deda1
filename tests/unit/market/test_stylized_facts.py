"""Stylized facts of real markets that the lab must reproduce for our cost figures to mean
anything: the intraday volume curve, stable spreads and books, and the square-root law of
market impact."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fillpath.core.enums import OrderType, Side, TimeInForce
from fillpath.core.venues import VenueOrder
from fillpath.market.config import US_EQUITY_PROFILE
from fillpath.market.lab import MarketLab
from fillpath.market.layout import OUT_QUOTE, OUT_TRADE
from fillpath.market.marketdata import QuoteBoard

pytestmark = pytest.mark.slow

DAYS = 4


def _day(lab: MarketLab, symbol: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The day's prints and quotes, and how many 10-second samples found the NBBO crossed."""
    trades, quotes = [], []
    board = QuoteBoard(venues=len(lab.venues))
    crossed = 0
    for step in range(1, 2341):
        for md in lab.advance(step * 10.0).market_data:
            trades.append(md.records[md.records["kind"] == OUT_TRADE])
            quotes.append(md.records[md.records["kind"] == OUT_QUOTE])
            board.update(symbol, quotes[-1])
        nbbo = board.nbbo(symbol)
        crossed += nbbo.two_sided and nbbo.bid > nbbo.ask
    return np.concatenate(trades), np.concatenate(quotes), crossed


@pytest.mark.parametrize("symbol", ["ACME", "INIT"])
def test_volume_curve_spreads_and_depth_over_many_days(
    make_lab: Callable[..., MarketLab], symbol: str
) -> None:
    profile = np.asarray(US_EQUITY_PROFILE) / sum(US_EQUITY_PROFILE)
    curves = []
    for seed in range(DAYS):
        lab = make_lab([symbol], seed)
        adv = lab.model(symbol).instrument.adv
        tick = lab.model(symbol).tick_nanos
        spread_ticks = lab.model(symbol).params.spread_ticks
        trades, quotes, crossed = _day(lab, symbol)
        assert crossed == 0  # order protection: no venue's bid above another's ask

        volume = int(trades["qty"].sum())
        assert 0.8 * adv <= volume <= 1.2 * adv, f"day {seed}: {volume:,} vs ADV {adv:,}"
        bucket = np.minimum((trades["t"] // 1800).astype(int), len(profile) - 1)
        curve = np.bincount(bucket, weights=trades["qty"], minlength=len(profile))
        curves.append(curve / curve.sum())

        # No venue's book is ever crossed or locked; empty sides are rare and short-lived.
        both = (quotes["price"] > 0) & (quotes["price2"] > 0)
        assert np.all(quotes["price"][both] < quotes["price2"][both])
        assert both.mean() > 0.995
        # The consolidated spread stays near the quoted spread the crowd centres on.
        spreads = (quotes["price2"][both] - quotes["price"][both]) / tick
        assert np.median(spreads) <= 2 * spread_ticks + 1
        assert np.percentile(spreads, 99) <= 10 * spread_ticks + 10
        assert np.median(quotes["qty"][both]) >= 100
    realised = np.mean(curves, axis=0)
    print(f"{symbol} volume curve: {np.round(realised, 3)}\n  configured: {np.round(profile, 3)}")
    assert np.max(np.abs(realised - profile)) < 0.025
    assert np.corrcoef(realised, profile)[0, 1] > 0.95


def _meta_order(
    make_lab: Callable[..., MarketLab], seed: int, fraction: float, participation: float
) -> float:
    """Peak impact of buying `fraction` of ADV evenly at `participation`, in units of the daily
    volatility: the consolidated mid at the end with the meta-order minus the same session's
    mid without it (same seed: the same exogenous world)."""
    symbol = "ACME"
    with_order, without = make_lab([symbol], seed), make_lab([symbol], seed)
    model = with_order.model(symbol)
    quantity = fraction * model.instrument.adv
    duration = fraction * with_order.config.session_seconds / participation
    start, step = 300.0, 10.0
    boards = [QuoteBoard(venues=len(with_order.venues)) for _ in range(2)]
    lit = [v.name for v in with_order.venues if v.kind == "lit"]
    sent, diffs = 0, []
    t = start
    k = 0
    while t < start + duration:
        t += step
        k += 1
        for lab, board in zip((with_order, without), boards, strict=True):
            for md in lab.advance(t).market_data:
                board.update(symbol, md.records)
        target = round(quantity * min(1.0, (t - start) / duration) / 100) * 100
        if target > sent:
            with_order.submit(
                VenueOrder(
                    order_id=f"meta-{k}",
                    symbol=symbol,
                    venue=lit[k % len(lit)],
                    side=Side.BUY,
                    quantity=target - sent,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.IOC,
                )
            )
            sent = target
        if t >= start + duration - 60.0:
            mids = [b.nbbo(symbol).mid for b in boards]
            diffs.append(mids[0] - mids[1])
    sigma_price = model.instrument.daily_volatility * model.instrument.reference_price.nanos
    return float(np.mean(diffs)) / sigma_price


def test_square_root_law_of_impact_emerges(make_lab: Callable[..., MarketLab]) -> None:
    fractions = np.array([0.001, 0.003, 0.01, 0.03, 0.1])
    impacts = np.array(
        [np.mean([_meta_order(make_lab, seed, f, 0.15) for seed in (1, 2, 3)]) for f in fractions]
    )
    assert np.all(impacts > 0), impacts
    exponent, log_y = np.polyfit(np.log(fractions), np.log(impacts), 1)
    print(
        f"impact/σ by Q/ADV: {np.round(impacts, 4).tolist()} at {fractions.tolist()}\n"
        f"fitted power law: impact = {np.exp(log_y):.2f}·σ·(Q/ADV)^{exponent:.3f}"
    )
    assert 0.4 <= exponent <= 0.7
