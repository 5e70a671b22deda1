"""The lab's market data reaches bus subscribers as events: every print, each venue's top of
book and depth, the NBBO and one-minute volume bars that add up to the prints."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from fillpath.api.v1 import events_pb2
from fillpath.infra.bus import MARKET_DATA_TOPIC, BusMessage, InProcessBus
from fillpath.market.gateway import SimulatedGateway
from fillpath.market.lab import MarketData, MarketLab
from fillpath.market.layout import OUT, OUT_TRADE
from fillpath.market.marketdata import MarketDataPublisher


def test_market_data_events_on_the_bus_match_what_the_lab_printed(
    make_lab: Callable[..., MarketLab],
) -> None:
    lab = make_lab(["ACME", "INIT"], 4, record=True)
    bus = InProcessBus()
    got: list[events_pb2.EventEnvelope] = []
    lock = threading.Lock()

    def handle(message: BusMessage) -> None:
        envelope = events_pb2.EventEnvelope.FromString(message.payload)
        assert message.key == getattr(envelope, envelope.WhichOneof("payload")).symbol
        with lock:
            got.append(envelope)

    bus.subscribe(MARKET_DATA_TOPIC, "test", handle)
    gateway = SimulatedGateway(lab, on_market_data=MarketDataPublisher(lab, bus))
    for second in range(1, 301):
        gateway.advance_to(float(second))
    bus.close()

    by_type: dict[str, list] = {}
    for envelope in got:
        by_type.setdefault(envelope.event_type, []).append(
            getattr(envelope, envelope.WhichOneof("payload"))
        )
    log = lab.event_log("ACME")
    latency = np.asarray([v.market_data_latency for v in lab.venues])
    printed = log[(log["kind"] == OUT_TRADE) & (log["t"] + latency[log["venue"]] <= 300.0)]
    acme_prints = [t for t in by_type["TradePrinted"] if t.symbol == "ACME"]
    # Every print that reached us by 300 s (after its venue's market-data latency), once.
    names = [v.name for v in lab.venues]
    expected = sorted((names[int(r["venue"])], int(r["price"]), int(r["qty"])) for r in printed)
    assert sorted((t.venue, t.price_nanos, t.quantity) for t in acme_prints) == expected

    bars = [b for b in by_type["VolumeBar"] if b.symbol == "ACME"]
    assert [b.start_unix_nanos for b in bars] == sorted(b.start_unix_nanos for b in bars)
    assert len(bars) == 4  # minutes 0–3 are closed by 300 s; the fifth is still open
    for bar in bars:
        inside = [
            t
            for t in acme_prints
            if bar.start_unix_nanos <= t.exchange_time_unix_nanos < bar.end_unix_nanos
        ]
        assert bar.volume == sum(t.quantity for t in inside)
        assert bar.trades == len(inside)
        assert bar.low_price_nanos <= bar.vwap_price_nanos <= bar.high_price_nanos

    venues = {q.venue for q in by_type["QuoteUpdated"]}
    assert venues == {v.name for v in lab.venues if v.kind == "lit"}
    for nbbo in by_type["ConsolidatedQuoteUpdated"]:
        assert 0 < nbbo.bid_price_nanos <= nbbo.ask_price_nanos
    for depth in by_type["BookDepth"]:
        bids = [level.price_nanos for level in depth.bids]
        asks = [level.price_nanos for level in depth.asks]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert not bids or not asks or bids[0] < asks[0]
    assert np.all(np.diff([e.position for e in got]) > 0)


def test_volume_bars_are_published_once_each_in_order_even_with_late_prints(
    make_lab: Callable[..., MarketLab],
) -> None:
    lab = make_lab(["ACME"], 1)
    published: list[BusMessage] = []

    class Collect:
        def publish(self, messages: list[BusMessage]) -> None:
            published.extend(messages)

    publisher = MarketDataPublisher(lab, Collect())  # type: ignore[arg-type]
    trades = np.zeros(5, dtype=OUT)
    trades["kind"] = OUT_TRADE
    trades["qty"] = 100
    trades["price"] = 100_000_000_000
    # Minute 4, then a late print of minute 3, then minutes 6 and 5 (a slower venue's).
    trades["t"] = [245.0, 179.9, 365.0, 359.9, 430.0]
    for record in trades:
        one = np.array([record], dtype=OUT)
        publisher(MarketData(symbol="ACME", records=one, received=one["t"] + 0.001))

    bars = [
        events_pb2.EventEnvelope.FromString(m.payload).volume_bar
        for m in published
        if m.event_type == "VolumeBar"
    ]
    starts = [b.start_unix_nanos for b in bars]
    assert starts == sorted(set(starts))
    assert sum(b.volume for b in bars) == 400  # the last minute's bar is still open
