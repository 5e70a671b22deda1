"""Venue quality and the circuit breaker, with Redis real and the order events built by hand.

A venue that stops acknowledging is taken out of routing after `breaker_failures` silent
orders, stays out for the cool-down, then gets exactly one probe (two replicas cannot both
probe), and is back once the probe is acknowledged. The leakage guard keeps a pool out for an
order it was just pinged for.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import redis

from fillpath.api.v1 import common_pb2 as C
from fillpath.api.v1 import events_pb2
from fillpath.core.enums import Side, Urgency
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import SorSettings
from fillpath.sor.market import MarketBook
from fillpath.sor.quality import Learner, QualityStore, figures
from fillpath.sor.router import RouteOrder, Router
from fillpath.sor.venues import load_venue_specs

NANOS = 1_000_000_000
TICK = 10_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _envelope(kind: str, at: float, event_id: str, **fields: object) -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(event_type=kind)
    envelope.recorded_at.FromNanoseconds(int(at * NANOS))
    envelope.metadata.event_id = event_id
    payload = getattr(envelope, kind)
    for name, value in fields.items():
        if isinstance(value, dict):
            for k, v in value.items():
                setattr(getattr(payload, name), k, v)
        else:
            setattr(payload, name, value)
    return envelope


def _quote(book: MarketBook, venue: str, bid: int, ask: int, size: int = 5_000) -> None:
    depth = events_pb2.BookDepth(symbol="ACME", venue=venue)
    for k in range(5):
        depth.bids.add(price_nanos=bid - k * TICK, size=size)
        depth.asks.add(price_nanos=ask + k * TICK, size=size)
    book.apply(events_pb2.EventEnvelope(book_depth=depth))


@pytest.fixture
def parts(redis_url: str) -> Iterator[tuple[Router, Learner, QualityStore, MarketBook, Clock]]:
    specs = load_venue_specs()
    client = redis.Redis.from_url(redis_url)
    store = QualityStore(client, specs)
    book = MarketBook(specs)
    mid = 102 * NANOS
    for spec in specs:
        if spec.kind == 0:
            _quote(book, spec.name, mid - TICK, mid + TICK)
    nbbo = events_pb2.ConsolidatedQuoteUpdated(
        symbol="ACME", bid_price_nanos=mid - TICK, ask_price_nanos=mid + TICK
    )
    book.apply(events_pb2.EventEnvelope(consolidated_quote_updated=nbbo))
    book.set_learned("ACME", figures(specs, store.counters(["ACME"])["ACME"], lot=1))  # priors
    settings = SorSettings(breaker_failures=3, breaker_cooldown=5.0)
    clock = Clock()
    learner = Learner(store, book, breaker_failures=3, breaker_cooldown=5.0, clock=clock)
    instruments = load_reference_data().instruments
    router = Router(book, instruments, settings, claim_probe=store.claim_probe, seed=1)
    yield router, learner, store, book, clock
    client.close()


def _place(learner: Learner, child: str, venue: str, at: float) -> None:
    terms = {"order_id": child, "symbol": "ACME", "venue": venue, "side": C.SIDE_BUY,
             "quantity": 500}  # fmt: skip
    learner.on_order_event(
        _envelope("child_order_placed", at, f"placed-{child}", order_id=child, terms=terms)
    )


def _order(**fields: object) -> RouteOrder:
    values: dict[str, object] = {"order_id": "P1", "symbol": "ACME", "side": Side.BUY,
                                 "quantity": 12_000, "urgency": Urgency.HIGH}  # fmt: skip
    values.update(fields)
    return RouteOrder(**values)  # type: ignore[arg-type]


def test_a_silent_venue_is_taken_out_probed_and_brought_back(
    parts: tuple[Router, Learner, QualityStore, MarketBook, Clock],
) -> None:
    router, learner, store, _book, clock = parts
    router.breakers = store.breakers()
    assert "lumen" in {a.venue for a in router.route(_order()).allocations}

    # Three orders to lumen that are never acknowledged within its 50 ms budget.
    for i in range(3):
        _place(learner, f"P1.{i}", "lumen", clock.now)
    clock.now += 0.01
    assert learner.check_timeouts() == []
    clock.now += 0.1
    assert learner.check_timeouts() == ["lumen"] * 3
    router.breakers = store.breakers()
    decision = router.route(_order())
    assert "lumen" not in {a.venue for a in decision.allocations}
    assert dict(decision.excluded)["lumen"] == "circuit open (3 failures)"

    # After the cool-down, one probe of one lot (two replicas: only one gets it).
    breaker = store.breakers()["lumen"]
    router.breakers = {"lumen": type(breaker)(breaker.failures, open_until=0.0)}
    probe = router.route(_order(order_id="P2"))
    sent = [a for a in probe.allocations if a.venue == "lumen"]
    assert [a.quantity for a in sent] == [1]
    assert "probing lumen" in probe.rationale
    other = router.route(_order(order_id="P3"))
    assert dict(other.excluded)["lumen"] == "circuit half-open, probe in flight"

    # The probe is acknowledged: the circuit closes.
    _place(learner, "P2.0", "lumen", clock.now)
    learner.on_order_event(
        _envelope("order_accepted", clock.now + 0.001, "ack-P2.0", order_id="P2.0")
    )
    router.breakers = store.breakers()
    assert store.breakers()["lumen"].failures == 0
    assert "lumen" not in dict(router.route(_order(order_id="P4")).excluded)


def test_acknowledgements_rejects_and_dark_pings_are_learned_once(
    parts: tuple[Router, Learner, QualityStore, MarketBook, Clock],
) -> None:
    _router, learner, store, book, clock = parts
    _place(learner, "P1.1", "lumen", clock.now)
    ack = _envelope("order_accepted", clock.now + 0.002, "ack-1", order_id="P1.1")
    learner.on_order_event(ack)
    learner.on_order_event(ack)  # redelivered: counted once
    _place(learner, "P1.2", "shade", clock.now)
    fill = _envelope(
        "child_order_filled", clock.now, "fill-1", order_id="P1.2", venue="shade", quantity=300,
        price_nanos=102 * NANOS,
    )  # fmt: skip
    learner.on_order_event(fill)
    learner.on_order_event(_envelope("order_canceled", clock.now, "cxl-1", order_id="P1.2"))
    _place(learner, "P1.3", "orbit", clock.now)
    learner.on_order_event(
        _envelope("order_rejected", clock.now, "rej-1", order_id="P1.3", reason="down")
    )

    counters = store.counters(["ACME"])["ACME"]
    index = book.index
    assert counters["acks"][index["lumen"]] == 1
    assert counters["ack_us"][index["lumen"]] == pytest.approx(2_000, rel=1e-3)
    assert (counters["pings"][index["shade"]], counters["hits"][index["shade"]]) == (1, 1)
    assert counters["ping_qty"][index["shade"]] == 300
    assert counters["rejects"][index["orbit"]] == 1
    learned = figures(book.venues, counters, lot=1)
    shade = index["shade"]
    # One hit in one ping moves the 30 % prior (weight 5) to 1.5+1 / 6.
    assert learned["dark_fill_prob"][shade] == pytest.approx((0.3 * 5 + 1) / 6)
    assert learned["latency_us"][index["lumen"]] == pytest.approx((2_000 + 5 * 180) / 6, rel=1e-3)
    assert np.isnan(learned["passive_fill_rate"]).all()


def test_the_leakage_guard_rests_a_pool_after_a_ping_for_the_same_order(
    parts: tuple[Router, Learner, QualityStore, MarketBook, Clock],
) -> None:
    router, *_ = parts
    patient = _order(urgency=Urgency.LOW, quantity=20_000, allow_dark=True, excluded=())
    first = router.route(patient)
    pinged = {a.venue for a in first.allocations if a.source == "ping"}
    assert pinged, first.rationale
    again = router.route(patient)
    for venue in pinged:
        assert dict(again.excluded)[venue] == "cool-down after a ping for this order"
    other = router.route(_order(order_id="P9", urgency=Urgency.LOW, quantity=20_000))
    assert not {v for v, why in other.excluded if why.startswith("cool-down")}
