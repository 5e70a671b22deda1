"""The execution monitor: consumes the bus, keeps the live executions, raises alerts.

Execution facts (order, strategy, algorithm and routing events) are applied to the `LiveBook`
in the order they arrive, under one lock, each with the mark of its symbol's market, and the
new figures are readable at once (`execution`, the streams, the dashboard): every fact is
already durable in the log of the service that recorded it. A writer thread journals the facts
and writes the executions they changed, a batch per transaction, and only then acknowledges
them to the bus. A fact delivered twice is skipped by its event id. If a commit fails, the
monitor folds its journal again (readers see the figures as journaled) and the facts of the
failed batch are redelivered; a crash before the commit ends the same way on restart.

Market data moves each symbol's `MarketState` and goes to the tape table in batches, off the
path of the facts; the market states are saved in Redis with each tape batch, so a restart goes
on with the session's volume. (Losing Redis or a tape batch loses no execution fact.)

Alerts (fillpath.monitor.alerts) are checked after each commit for the orders it changed, and
every `check_interval` seconds for what time alone makes true. Each alert is saved, then sent
to every channel: the bus (AlertRaised on the monitoring topic), the log and a webhook.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import redis

from fillpath.api.v1 import events_pb2
from fillpath.core.errors import InvalidArgument, NotFound
from fillpath.infra.bus import MARKET_DATA_TOPIC, MONITORING_TOPIC, Bus, BusMessage
from fillpath.monitor import tca
from fillpath.monitor.alerts import Alert, AlertEngine, AlertRules
from fillpath.monitor.live import NANOS, Execution, LiveBook, Mark, MarketState
from fillpath.monitor.report import render_report
from fillpath.monitor.store import TAPE_QUOTE, TAPE_TRADE, JournalEntry, MonitorStore

log = logging.getLogger("fillpath.monitor")

POST_TRADE_SECONDS = 300.0
"""The permanent-impact horizon: the mid this long after the end of an order."""

FACT_TOPICS = ("orders", "strategy", "algo", "routing")
_MARKET_KEY = "fillpath:monitor:market:"


class AlertChannel(Protocol):
    def send(self, alert: Alert) -> None: ...


class LogChannel:
    def send(self, alert: Alert) -> None:
        level = (
            logging.CRITICAL
            if alert.severity == events_pb2.ALERT_SEVERITY_CRITICAL
            else (logging.WARNING)
        )
        log.log(level, "alert %s [%s]: %s", alert.alert_id, alert.rule, alert.message)


class BusChannel:
    """AlertRaised and AlertAcknowledged events on the monitoring topic."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def send(self, alert: Alert) -> None:
        self.publish("alert_raised", alert.to_event(), alert.alert_id, alert.raised_at)

    def publish(self, name: str, payload: Any, alert_id: str, at: float) -> None:
        envelope = events_pb2.EventEnvelope(
            stream_id=f"alert-{alert_id}",
            event_type=type(payload).__name__,
            schema_version=1,
        )
        envelope.recorded_at.FromNanoseconds(int(at * NANOS))
        envelope.metadata.event_id = uuid.uuid4().hex
        envelope.metadata.actor = "fillpath-monitor"
        getattr(envelope, name).CopyFrom(payload)
        self._bus.publish(
            [
                BusMessage(
                    topic=MONITORING_TOPIC,
                    key=alert_id,
                    event_id=envelope.metadata.event_id,
                    position=0,
                    event_type=envelope.event_type,
                    payload=envelope.SerializeToString(),
                )
            ]
        )


class WebhookChannel:
    """POSTs each alert as JSON, from a thread of its own, retrying a few times."""

    def __init__(self, url: str, attempts: int = 3, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument.single("webhook", url, "an http(s) URL")
        self._url = url
        self._attempts = attempts
        self._timeout = timeout
        self._queue: queue.SimpleQueue[Alert | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="monitor-webhook", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        self._queue.put(alert)

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            body = json.dumps(dataclasses.asdict(alert)).encode()
            for attempt in range(1, self._attempts + 1):
                request = urllib.request.Request(  # noqa: S310 (http(s) checked above)
                    self._url, data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=self._timeout):  # noqa: S310
                        break
                except OSError as err:
                    log.warning(
                        "webhook %s refused alert %s (attempt %d): %s",
                        self._url,
                        alert.alert_id,
                        attempt,
                        err,
                    )
                    time.sleep(0.2 * attempt)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


@dataclass(eq=False)
class _Pending:
    entry: JournalEntry
    execution: Execution | None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Subscribers:
    """Queues of the open streams (gRPC and the dashboard), each given every item."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue[Any]] = []

    def open(self) -> queue.SimpleQueue[Any]:
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            self._queues.append(q)
        return q

    def close(self, q: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)
        q.put(None)

    def put(self, item: Any) -> None:
        with self._lock:
            queues = list(self._queues)
        for q in queues:
            q.put(item)

    def close_all(self) -> None:
        with self._lock:
            queues, self._queues = self._queues, []
        for q in queues:
            q.put(None)


class Monitor:
    def __init__(
        self,
        store: MonitorStore,
        rules: AlertRules,
        *,
        redis_client: redis.Redis | None = None,
        channels: Sequence[AlertChannel] = (),
        wall_clock: Callable[[], float] = time.time,
        check_interval: float = 1.0,
        tape_interval: float = 0.2,
    ) -> None:
        self._store = store
        self._redis = redis_client
        self._channels = list(channels)
        self._wall = wall_clock
        self._check_interval = check_interval
        self._tape_interval = tape_interval
        self._lock = threading.Lock()  # the book, the markets, the sequence, the seen ids
        self._book = LiveBook()
        self._markets: dict[str, MarketState] = {}
        self._seq = 0
        self._seen: set[str] = set()
        self._tape: list[tuple[str, float, int, int, int, int]] = []
        self._tape_lock = threading.Lock()
        self._pending: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._view: dict[str, Execution] = {}  # what readers see
        self._read_lock = threading.Lock()
        self._finished: set[str] = set()  # orders whose end the alert engine has seen
        self._alerts_lock = threading.Lock()
        self._engine = AlertEngine(rules)
        self.executions = _Subscribers()
        self.alert_stream = _Subscribers()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> Monitor:
        """Folds the journal, takes back the market states and alerts, starts the threads."""
        self._reload()
        if self._redis is not None:
            for key in self._redis.scan_iter(match=f"{_MARKET_KEY}*"):
                raw = self._redis.get(key)
                if raw:
                    state = MarketState.from_json(json.loads(raw))
                    self._markets[state.symbol] = state
        open_alerts, _ = self._store.alerts(unacknowledged_only=True, page_size=10_000)
        self._engine.remember(open_alerts)
        for execution in self._view.values():
            if not execution.active:
                self._engine.finished(execution)
                self._finished.add(execution.order_id)
        for target, name in (
            (self._write, "monitor-writer"),
            (self._flush_tape_loop, "monitor-tape"),
            (self._check_loop, "monitor-checks"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pending.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._flush_tape()
        self.executions.close_all()
        self.alert_stream.close_all()
        for channel in self._channels:
            if isinstance(channel, WebhookChannel):
                channel.close()

    def subscribe(self, bus: Bus) -> None:
        """Subscribes to the execution facts and to market data."""
        for topic in (*FACT_TOPICS, MARKET_DATA_TOPIC):
            bus.subscribe_batch(topic, "monitor", self.handle_batch)

    def _reload(self) -> None:
        with self._lock:
            self._fold_journal()

    def _fold_journal(self) -> None:
        """The book, sequence and seen ids as the journal has them (hold the lock)."""
        self._book = LiveBook()
        self._seen.clear()
        self._seq = 0
        for entry in self._store.journal():
            self._book.apply(events_pb2.EventEnvelope.FromString(entry.envelope), entry.mark)
            self._seen.add(entry.event_id)
            self._seq = entry.seq
        with self._read_lock:
            self._view = dict(self._book.executions)

    # ---- the bus -----------------------------------------------------------------------

    def handle(self, message: BusMessage) -> None:
        """The bus handler of one message (see `handle_batch`)."""
        self.handle_batch([message])

    def handle_batch(self, messages: Sequence[BusMessage]) -> None:
        """The bus handler: returns once the facts are journaled (market data: at once)."""
        waiting: list[_Pending] = []
        for message in messages:
            envelope = events_pb2.EventEnvelope.FromString(message.payload)
            if message.topic == MARKET_DATA_TOPIC:
                self._market_data(envelope)
                continue
            with self._lock:
                if message.event_id in self._seen:
                    continue
                symbol = self._book.symbol_of(envelope)
                market = self._markets.get(symbol) if symbol else None
                mark = market.mark() if market is not None else Mark()
                execution = self._book.apply(envelope, mark)
                if execution is not None:
                    with self._read_lock:
                        self._view[execution.order_id] = execution
                    self.executions.put(execution)
                self._seq += 1
                self._seen.add(message.event_id)
                pending = _Pending(
                    entry=JournalEntry(
                        seq=self._seq,
                        event_id=message.event_id,
                        event_type=message.event_type,
                        envelope=message.payload,
                        mark=mark,
                    ),
                    execution=execution,
                )
                self._pending.put(pending)
            waiting.append(pending)
        for pending in waiting:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error

    def _market_data(self, envelope: events_pb2.EventEnvelope) -> None:
        kind = envelope.WhichOneof("payload")
        if kind not in ("trade_printed", "consolidated_quote_updated", "quote_updated"):
            return
        payload = getattr(envelope, kind)
        with self._lock:
            market = self._markets.get(payload.symbol)
            if market is None:
                market = self._markets[payload.symbol] = MarketState(symbol=payload.symbol)
            market.apply(envelope)
            t = payload.exchange_time_unix_nanos / NANOS
            if kind == "trade_printed":
                self._tape.append(
                    (payload.symbol, t, TAPE_TRADE, payload.price_nanos, payload.quantity, 0)
                )
            elif kind == "consolidated_quote_updated":
                self._tape.append(
                    (payload.symbol, t, TAPE_QUOTE, payload.bid_price_nanos, 0,
                     payload.ask_price_nanos)
                )  # fmt: skip

    def _write(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 256:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._pending.put(None)  # stop after this batch
                    break
                batch.append(item)
            changed = {p.execution.order_id: p.execution for p in batch if p.execution}
            try:
                self._store.commit([p.entry for p in batch], list(changed.values()))
            except Exception as err:
                log.exception("journal commit failed; folding the journal again")
                self._recover(batch, err)
                continue
            for pending in batch:
                pending.done.set()
            self._check(list(changed.values()))

    def _recover(self, batch: list[_Pending], err: BaseException) -> None:
        """After a failed commit: every fact applied since the last commit is refused (the
        bus redelivers it) and the book goes back to what the journal holds."""
        with self._lock:
            while True:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._pending.put(None)
                    break
                batch.append(item)
            self._fold_journal()
        for pending in batch:
            pending.error = err
            pending.done.set()

    # ---- alerts ------------------------------------------------------------------------

    def _check(self, executions: Sequence[Execution]) -> None:
        now = self._wall()
        with self._lock:
            times = {symbol: market.time for symbol, market in self._markets.items()}
        with self._alerts_lock:
            raised: list[Alert] = []
            for execution in executions:
                findings = self._engine.findings(execution, times.get(execution.symbol, 0.0))
                raised += self._engine.alerts(findings, now)
                if not execution.active and execution.order_id not in self._finished:
                    self._engine.finished(execution)
                    self._finished.add(execution.order_id)
        self._raise(raised)

    def _check_loop(self) -> None:
        while not self._stop.wait(self._check_interval):
            try:
                with self._read_lock:
                    active = [x for x in self._view.values() if x.active]
                with self._lock:
                    markets = [
                        dataclasses.replace(m, venue_quoted_at=dict(m.venue_quoted_at))
                        for m in self._markets.values()
                    ]
                times = {m.symbol: m.time for m in markets}
                now = self._wall()
                with self._alerts_lock:
                    findings = [
                        f for x in active for f in self._engine.findings(x, times.get(x.symbol, 0))
                    ]
                    findings += [f for m in markets for f in self._engine.venue_findings(m)]
                    raised = self._engine.alerts(findings, now)
                self._raise(raised)
            except Exception:
                log.exception("periodic alert check failed; the next one runs as planned")

    def _raise(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self._store.save_alert(alert)
            self.alert_stream.put(alert)
            for channel in self._channels:
                try:
                    channel.send(alert)
                except Exception:
                    log.exception("alert %s not sent to %s", alert.alert_id, channel)

    def acknowledge(self, alert_id: str, by: str, note: str) -> Alert:
        """Marks an alert acknowledged (again: the first acknowledgement stands)."""
        alert = self._store.alert(alert_id)
        if alert is None:
            raise NotFound("alert", alert_id)
        if alert.acknowledged:
            return alert
        alert = dataclasses.replace(
            alert, acknowledged_by=by, acknowledged_at=self._wall(), note=note
        )
        self._store.save_alert(alert)
        with self._alerts_lock:
            self._engine.acknowledge(alert)
        for channel in self._channels:
            if isinstance(channel, BusChannel):
                channel.publish(
                    "alert_acknowledged", alert.acknowledged_event(), alert.alert_id, self._wall()
                )
        return alert

    # ---- the tape ----------------------------------------------------------------------

    def _flush_tape_loop(self) -> None:
        while not self._stop.wait(self._tape_interval):
            try:
                self._flush_tape()
            except Exception:
                log.exception("tape flush failed; the rows are kept for the next one")

    def _flush_tape(self) -> None:
        # One flush at a time: a reader that flushes before it reads finds every row written.
        with self._tape_lock:
            with self._lock:
                rows, self._tape = self._tape, []
                states = {s: json.dumps(m.to_json()) for s, m in self._markets.items()}
            if not rows:
                return
            try:
                self._store.append_tape(rows)
            except Exception:
                with self._lock:
                    self._tape[:0] = rows
                raise
            if self._redis is not None:
                self._redis.mset({f"{_MARKET_KEY}{s}": v for s, v in states.items()})

    # ---- reads -------------------------------------------------------------------------

    def execution(self, order_id: str) -> Execution:
        with self._read_lock:
            execution = self._view.get(order_id)
        if execution is None:
            raise NotFound("execution", order_id)
        return execution

    def all_executions(self) -> list[Execution]:
        with self._read_lock:
            return sorted(self._view.values(), key=lambda x: (x.created_at, x.order_id))

    def tca_document(self, order_id: str) -> dict[str, Any]:
        """The order as `fillpath tca compute` reads it, from the journal's fills and the tape."""
        execution = self.execution(order_id)
        if execution.arrival is None or execution.arrival_mid is None:
            raise InvalidArgument.single(
                "order_id", order_id, "the order has no arrival quote yet: no TCA"
            )
        self._flush_tape()
        start = execution.arrival.time
        end_mark = execution.end or execution.last or execution.arrival
        end = max(end_mark.time, start)
        trades, quotes = self._store.tape(execution.symbol, start - 60, end + POST_TRADE_SECONDS)

        def mid_at(t: float, fallback: float) -> float:
            i = int(np.searchsorted(quotes[:, 0], t, side="right")) - 1 if len(quotes) else -1
            return float((quotes[i, 1] + quotes[i, 2]) / 2) if i >= 0 else fallback

        ours = {(round(f.time, 6), f.price_nanos, f.quantity) for f in execution.fills}
        arrival_mid = execution.arrival_mid
        end_mid = end_mark.mid or mid_at(end, arrival_mid)
        decision = (
            execution.decision_price_nanos / NANOS
            if execution.decision_price_nanos is not None
            else arrival_mid
        )
        return {
            "order": {
                "id": execution.order_id,
                "algorithm": execution.algorithm or "DIRECT",
                "side": "buy" if execution.side > 0 else "sell",
                "quantity": execution.quantity,
                "decision_price": decision,
                "arrival_time": start,
                "end_time": end,
                "arrival_bid": execution.arrival.bid_nanos / NANOS,
                "arrival_ask": execution.arrival.ask_nanos / NANOS,
                "end_mid": end_mid,
                "post_trade_mid": mid_at(end + POST_TRADE_SECONDS, end_mid),
            },
            "fills": [
                {
                    "time": f.time,
                    "quantity": f.quantity,
                    "price": f.price_nanos / NANOS,
                    "bid": (f.bid_nanos or execution.arrival.bid_nanos) / NANOS,
                    "ask": (f.ask_nanos or execution.arrival.ask_nanos) / NANOS,
                    "venue": f.venue,
                    "fee": f.fee_nanos / NANOS,
                    "liquidity": f.liquidity,
                }
                for f in execution.fills
            ],
            "tape": [
                {
                    "time": float(t),
                    "quantity": int(q),
                    "price": float(p),
                    "own": (round(float(t), 6), round(p * NANOS), int(q)) in ours,
                }
                for t, p, q in trades
            ],
            "quotes": [{"time": float(t), "bid": float(b), "ask": float(a)} for t, b, a in quotes],
        }

    def order_tca(self, order_id: str) -> dict[str, Any]:
        return tca.compute_from_document(self.tca_document(order_id))

    def finished_in(self, start: datetime | None, end: datetime | None) -> list[Execution]:
        """Finished orders with fills created in [start, end)."""
        low = start.timestamp() if start else float("-inf")
        high = end.timestamp() if end else float("inf")
        return [
            x
            for x in self.all_executions()
            if not x.active and x.filled_quantity and low <= x.created_at < high
        ]

    def query_tca(
        self, group_by: str, start: datetime | None, end: datetime | None
    ) -> dict[str, dict[str, Any]]:
        """Arrival slippage (bps) of finished orders grouped by `group_by`; by venue, the
        slippage of each fill against the mid, weighted by quantity."""
        keys = ("venue", "algorithm", "strategy", "account", "symbol", "day")
        if group_by not in keys:
            raise InvalidArgument.single("group_by", group_by, f"one of {', '.join(keys)}")
        rows: list[dict[str, Any]] = []
        for execution in self.finished_in(start, end):
            result = self.order_tca(execution.order_id)
            if group_by == "venue":
                rows += [
                    {"venue": f.venue, "slippage": r["slippage_vs_mid_bps"], "q": f.quantity}
                    for f, r in zip(execution.fills, result["fills"], strict=True)
                ]
                continue
            day = datetime.fromtimestamp(execution.created_at, UTC).date().isoformat()
            rows.append(
                {
                    "algorithm": execution.algorithm or "DIRECT",
                    "strategy": execution.strategy or "(none)",
                    "account": execution.account,
                    "symbol": execution.symbol,
                    "day": day,
                    "slippage": result["slippage_bps"]["arrival"],
                    "q": execution.filled_quantity,
                }
            )
        weight = "q" if group_by == "venue" else None
        return tca.aggregate(rows, group_by, "slippage", weight=weight)

    def report(self, order_id: str, day: str) -> tuple[str, str]:
        """(HTML, CSV) of one order, or of every finished order created on `day` (YYYY-MM-DD)."""
        if order_id:
            documents = [self.tca_document(order_id)]
            title = f"TCA of order {order_id}"
        else:
            try:
                start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            except ValueError as err:
                raise InvalidArgument.single("day", day, "YYYY-MM-DD") from err
            end = datetime.fromtimestamp(start.timestamp() + 86_400, UTC)
            documents = [self.tca_document(x.order_id) for x in self.finished_in(start, end)]
            title = f"TCA of {day}"
        return render_report(documents, title)

    def stream(
        self, subscribers: _Subscribers, active: Callable[[], bool] = lambda: True
    ) -> Iterator[Any]:
        """Items as `subscribers` get them from now on, while `active()` and the monitor runs."""
        q = subscribers.open()  # now, not at the first next(): nothing is missed meanwhile

        def drain() -> Iterator[Any]:
            try:
                while active():
                    try:
                        item = q.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    if item is None:
                        return
                    yield item
            finally:
                subscribers.close(q)

        return drain()

    def alerts(
        self, *, unacknowledged_only: bool = False, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[Alert], str]:
        return self._store.alerts(
            unacknowledged_only=unacknowledged_only, page_size=page_size, page_token=page_token
        )
