"""`fillpath bench bus`: how fast the event log reaches consumers, in process and over Pulsar.

Each bus gets the same two runs, on embedded Postgres (synchronous commits) with the outbox
relay publishing the event log, and one subscriber that only notes when each event arrived:

- relay throughput: `events` events are in the log before the relay starts; the figure is
  events per second from the relay's start until the subscriber has the last one;
- commit-to-consumer latency: with the relay caught up, writers append one event at a time at
  `rate` events/s for `duration` seconds; each event's latency runs from the moment its append
  returned (committed) to the moment the subscriber got it.

The in-process bus is the baseline; Pulsar is a standalone broker on loopback (one bookie that
fsyncs its journal before acknowledging). Printed as a table with the Pulsar / in-process ratios,
or with --json as one object.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from fillpath.bench.stats import Samples
from fillpath.core.events import EVENT_TYPES, OrderCancelRequested
from fillpath.infra.bus import ORDERS_TOPIC, Bus, BusMessage, InProcessBus, topic_of
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.event_store import CommandContext
from fillpath.infra.outbox import OutboxRelay
from fillpath.infra.postgres.embedded import EmbeddedPostgres, start_embedded_postgres
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.notifier import PositionNotifier
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.pulsar.standalone import PULSAR_VERSION, start_standalone

_STREAMS = 200
_WRITERS = 8
_BATCH = 500


@dataclass(slots=True)
class _Subscriber:
    """Notes when each position arrives (the first time)."""

    arrived: dict[int, float] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def handle(self, message: BusMessage) -> None:
        with self._changed:
            self.arrived.setdefault(message.position, time.monotonic())
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.arrived) >= count, timeout)


def _event(stream: str, n: int) -> OrderCancelRequested:
    return OrderCancelRequested(
        order_id=stream, occurred_at=SystemClock().now(), reason=f"bench {n}"
    )


def _fill(store: PostgresEventStore, events: int) -> None:
    """`events` events in the log (a multiple of the stream count), the streams interleaved,
    20 per append."""
    per_stream = events // _STREAMS
    for version in range(0, per_stream, 20):
        for s in range(_STREAMS):
            count = min(20, per_stream - version)
            batch = [_event(f"B{s}", version + i) for i in range(count)]
            store.append(f"B{s}", version, batch, CommandContext())


def _write_at_rate(store: PostgresEventStore, rate: int, duration: float) -> dict[int, float]:
    """Appends single events at `rate`/s from several writers; returns position → commit time."""
    committed: dict[int, float] = {}
    lock = threading.Lock()
    per_writer = rate / _WRITERS
    start = time.monotonic()

    def write(index: int) -> None:
        stream = f"W{index}-{uuid.uuid4().hex[:8]}"
        for n in range(int(per_writer * duration)):
            wait = start + n / per_writer - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            (recorded,) = store.append(stream, n, [_event(stream, n)], CommandContext())
            at = time.monotonic()
            with lock:
                committed[recorded.position] = at

    writers = [threading.Thread(target=write, args=(i,)) for i in range(_WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    return committed


@contextmanager
def _database(server: EmbeddedPostgres, name: str) -> Iterator[str]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.database_dsn(name)
    migrate(dsn, [EVENT_STORE_MIGRATIONS])
    yield dsn


def _measure(
    server: EmbeddedPostgres,
    name: str,
    make_bus: Callable[[], Bus],
    *,
    events: int,
    rate: int,
    duration: float,
    status: Callable[[str], None],
) -> dict[str, Any]:
    with _database(server, f"bench_{name}") as dsn:
        pool = open_pool(dsn, 4 + _WRITERS, name=f"bench-{name}")
        store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
        notifier = PositionNotifier(dsn).start()
        bus = make_bus()
        relay = None
        try:
            status(f"{name}: writing {events:,} events to the log…")
            _fill(store, events)
            subscriber = _Subscriber()
            bus.subscribe(ORDERS_TOPIC, "bench", subscriber.handle)
            status(f"{name}: relaying {events:,} events…")
            started = time.monotonic()
            relay = OutboxRelay(
                pool, store, bus, notifier, topic_of, name=name, batch_size=_BATCH
            ).start()
            if not subscriber.wait_for(events, timeout=600):
                raise RuntimeError(f"{name}: {len(subscriber.arrived)} of {events} arrived")
            elapsed = max(subscriber.arrived.values()) - started

            status(f"{name}: {rate}/s single-event commits for {duration:g}s…")
            committed = _write_at_rate(store, rate, duration)
            subscriber.wait_for(events + len(committed), timeout=60)
            latency = Samples()
            for position, at in committed.items():
                if position in subscriber.arrived:
                    latency.add(subscriber.arrived[position] - at)
                else:
                    latency.fail()
        finally:
            if relay is not None:
                relay.stop()
            bus.close()
            notifier.stop()
            pool.close()
    return {
        "relay_throughput": {"events": events, "seconds": elapsed, "per_s": events / elapsed},
        "commit_to_consumer": {**latency.summary_ms(), "rate_per_s": rate},
    }


def run_bus_bench(
    console: Console, *, events: int, rate: int, duration: float, as_json: bool
) -> dict[str, Any]:
    events -= events % _STREAMS
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fillpath-bench-bus-") as scratch:
        root = Path(scratch)
        with console.status("starting embedded Postgres and a standalone Pulsar broker…") as st:
            postgres = start_embedded_postgres(root / "postgres")
            broker = start_standalone(root / "pulsar")
            try:
                prefix = f"persistent://public/default/bench-{uuid.uuid4().hex[:8]}-"
                for name, make_bus in (
                    ("in_process", InProcessBus),
                    ("pulsar", lambda: PulsarBus(broker.service_url, topic_prefix=prefix)),
                ):
                    results[name] = _measure(
                        postgres,
                        name,
                        make_bus,
                        events=events,
                        rate=rate,
                        duration=duration,
                        status=st.update,
                    )
            finally:
                broker.stop()
                postgres.stop()
    base, pulsar = results["in_process"], results["pulsar"]
    results["ratios"] = {
        "relay_throughput": pulsar["relay_throughput"]["per_s"] / base["relay_throughput"]["per_s"],
        "p50": pulsar["commit_to_consumer"]["p50_ms"] / base["commit_to_consumer"]["p50_ms"],
        "p99": pulsar["commit_to_consumer"]["p99_ms"] / base["commit_to_consumer"]["p99_ms"],
    }
    results["setup"] = {
        "events": events,
        "rate_per_s": rate,
        "duration_s": duration,
        "writers": _WRITERS,
        "relay_batch": _BATCH,
        "broker": f"Pulsar {PULSAR_VERSION} standalone on loopback, journal fsynced",
    }
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        _print(console, results)
    return results


def _print(console: Console, figures: dict[str, Any]) -> None:
    setup = figures["setup"]
    table = Table(
        title=f"Event log to consumer: outbox relay over each bus, same run "
        f"({setup['events']:,}-event backlog; {setup['rate_per_s']}/s commits for "
        f"{setup['duration_s']:g}s)",
        title_justify="left",
        header_style="bold",
    )
    for column in ("", "relay events/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "lost"):
        table.add_column(column, justify="left" if not column else "right")
    for label, key in (("in-process bus", "in_process"), ("Pulsar", "pulsar")):
        lat = figures[key]["commit_to_consumer"]
        table.add_row(
            label,
            f"{figures[key]['relay_throughput']['per_s']:,.0f}",
            f"{lat['p50_ms']:.2f}",
            f"{lat['p99_ms']:.2f}",
            f"{lat['p999_ms']:.2f}",
            f"{lat['max_ms']:.2f}",
            str(lat["errors"]),
        )
    ratios = figures["ratios"]
    table.add_row(
        "ratio Pulsar / in-process",
        f"{ratios['relay_throughput']:.2f}×",
        f"{ratios['p50']:.1f}×",
        f"{ratios['p99']:.1f}×",
        "",
        "",
        "",
    )
    console.print(table)
    console.print(
        f"latency: from an append's return (committed, fsynced) to the subscriber; "
        f"{setup['writers']} writers, one event per append; relay batches of "
        f"{setup['relay_batch']}; broker: {setup['broker']}"
    )
