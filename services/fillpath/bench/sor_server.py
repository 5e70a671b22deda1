"""The router as `fillpath bench sor` measures it: `python -m fillpath.bench.sor_server`.

The real RoutingService (`start_sor`: servicer, router, kernel, decisions appended to Postgres
before each answer, learned figures from Redis) on an in-process bus, into which this process
publishes the benchmark's market once — the `--venues` venues of `fillpath.bench.sor.market`
as BookDepth events and their NBBO — instead of subscribing to a live feed. Settings come from
the environment (``FILLPATH_*``); FILLPATH_BENCH_VENUES and FILLPATH_BENCH_SEED pick the market.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
import yaml

from fillpath.api.v1 import events_pb2
from fillpath.bench.sor import market
from fillpath.infra.bus import MARKET_DATA_TOPIC, BusMessage, InProcessBus
from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.resources import API_VERSION
from fillpath.infra.settings import Settings
from fillpath.sor.main import start_sor
from fillpath.sor.state import DARK, DEPTH

SYMBOL = "ACME"


def venue_documents(state: np.ndarray) -> list[dict[str, Any]]:
    """Venue resources for the benchmark market's rows."""
    documents = []
    for v, row in enumerate(state):
        dark = row["kind"] == DARK
        fees = (
            {"midpointFee": f"{row['midpoint_fee']:.4f}"}
            if dark
            else {"makerFee": f"{row['maker_fee']:.4f}", "takerFee": f"{row['taker_fee']:.4f}"}
        )
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Venue",
                "metadata": {"name": f"{'dark' if dark else 'lit'}-{v:02d}"},
                "spec": {
                    "kind": "dark" if dark else "lit",
                    "minQuantity": int(row["min_qty"]),
                    "fees": fees,
                    "latency": {"orderEntryMicros": int(row["latency_us"])},
                    "connection": {"type": "simulated"},
                },
            }
        )
    return documents


def _publish_market(bus: InProcessBus, state: np.ndarray, names: list[str]) -> None:
    messages = []
    envelopes = []
    for v, row in enumerate(state):
        if row["kind"] == DARK:
            continue
        depth = events_pb2.BookDepth(symbol=SYMBOL, venue=names[v])
        for k in range(DEPTH):
            depth.bids.add(price_nanos=int(row["bid_px"][k]), size=int(row["bid_qty"][k]))
            depth.asks.add(price_nanos=int(row["ask_px"][k]), size=int(row["ask_qty"][k]))
        envelopes.append(events_pb2.EventEnvelope(event_type="BookDepth", book_depth=depth))
    lit = state[state["kind"] != DARK]
    nbbo = events_pb2.ConsolidatedQuoteUpdated(
        symbol=SYMBOL,
        bid_price_nanos=int(lit["bid_px"][:, 0].max()),
        ask_price_nanos=int(lit["ask_px"][:, 0].min()),
    )
    envelopes.append(
        events_pb2.EventEnvelope(
            event_type="ConsolidatedQuoteUpdated", consolidated_quote_updated=nbbo
        )
    )
    for envelope in envelopes:
        event_id = uuid.uuid4().hex
        messages.append(
            BusMessage(topic=MARKET_DATA_TOPIC, key=SYMBOL, event_id=event_id, position=0,
                       event_type=envelope.event_type, payload=envelope.SerializeToString())
        )  # fmt: skip
    bus.publish(messages)


def main() -> None:
    settings = Settings.from_env(os.environ)
    venues = int(os.environ.get("FILLPATH_BENCH_VENUES", "24"))
    seed = int(os.environ.get("FILLPATH_BENCH_SEED", "7"))
    state = market(venues, max(1, venues // 6), np.random.default_rng(seed))
    assert settings.config_dir is not None
    documents = venue_documents(state)
    (settings.config_dir / "venues.yaml").write_text(yaml.safe_dump_all(documents))
    bus = InProcessBus()
    runtime = start_sor(settings, settings.postgres.dsn, settings.redis.url, bus)
    _publish_market(bus, state, [d["metadata"]["name"] for d in documents])
    print(f"fillpath-sor ({venues} venues) listening on {runtime.address}", flush=True)
    try:
        wait_for_signal()
    finally:
        runtime.stop()
        bus.close()


if __name__ == "__main__":
    main()
