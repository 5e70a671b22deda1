"""The strategy service as `fillpath bench strategy` measures it:
`python -m fillpath.bench.strategy_server`.

The real StrategyService (`start_strategy`: servicer, rules, the registry's promoted cost model,
every choice appended to Postgres before it is answered) on an in-process bus, into which this
process publishes one quote per instrument at their reference prices instead of subscribing to
a live feed. Settings come from the environment (``FILLPATH_*``).
"""

from __future__ import annotations

import os
import time
import uuid

from fillpath.api.v1 import events_pb2
from fillpath.infra.bus import MARKET_DATA_TOPIC, BusMessage, InProcessBus
from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import Settings
from fillpath.strategy.main import start_strategy


def _quotes() -> list[BusMessage]:
    now = time.time_ns()
    messages = []
    for symbol, instrument in load_reference_data().instruments.items():
        price, tick = instrument.reference_price.nanos, instrument.tick_size.nanos
        quote = events_pb2.ConsolidatedQuoteUpdated(
            symbol=symbol, exchange_time_unix_nanos=now, bid_price_nanos=price - tick,
            bid_size=500, ask_price_nanos=price + tick, ask_size=500,
        )  # fmt: skip
        envelope = events_pb2.EventEnvelope(
            event_type="ConsolidatedQuoteUpdated", consolidated_quote_updated=quote
        )
        messages.append(
            BusMessage(topic=MARKET_DATA_TOPIC, key=symbol, event_id=uuid.uuid4().hex, position=0,
                       event_type=envelope.event_type, payload=envelope.SerializeToString())
        )  # fmt: skip
    return messages


def main() -> None:
    settings = Settings.from_env(os.environ)
    bus = InProcessBus()
    runtime = start_strategy(settings, settings.postgres.dsn, bus)
    bus.publish(_quotes())
    model = runtime.strategies.model
    print(
        f"fillpath-strategy (model {model.version if model else 'none'}) listening on "
        f"{runtime.address}",
        flush=True,
    )
    try:
        wait_for_signal()
    finally:
        runtime.stop()
        bus.close()


if __name__ == "__main__":
    main()
