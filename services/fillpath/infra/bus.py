"""The event bus: one interface, an in-process adapter here and Apache Pulsar for a cluster.

Facts travel between services as `BusMessage`s: a topic per domain, a key (the parent order id)
that keeps each order's events in order, the event id consumers deduplicate by, and the global
position (the Pulsar sequence id). Delivery is at-least-once: a handler that raises gets the
message again, up to `max_attempts`, after which the message is parked as a dead letter with
its error and the subscription moves on — a poison message never blocks a topic.

Every subscription receives every message of its topic. A subscription may have several
consumers; messages with the same key always go to the same consumer (Pulsar's Key_Shared), so
per-order order holds while different orders are handled in parallel.

`publish` returns when the messages can no longer be lost by this process crashing: for Pulsar
when the broker has persisted them; in process, where memory is not durable, when every
subscription has handled them. The outbox relay advances its checkpoint only after that.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fillpath.api.v1 import events_pb2
from fillpath.infra.event_proto import payload_field

log = logging.getLogger(__name__)

# A topic per domain. Which domain an event belongs to is written in events.proto: the field
# numbers of the envelope's payload are allotted in ranges, one per domain.
ORDERS_TOPIC = "orders"
STRATEGY_TOPIC = "strategy"
ALGO_TOPIC = "algo"
ROUTING_TOPIC = "routing"
MONITORING_TOPIC = "monitoring"
MARKET_DATA_TOPIC = "market-data"
TOPICS = (
    ORDERS_TOPIC,
    STRATEGY_TOPIC,
    ALGO_TOPIC,
    ROUTING_TOPIC,
    MONITORING_TOPIC,
    MARKET_DATA_TOPIC,
)
_TOPIC_OF_FIELD_NUMBERS = (
    (range(20, 50), ORDERS_TOPIC),
    (range(50, 60), STRATEGY_TOPIC),
    (range(60, 70), ALGO_TOPIC),
    (range(70, 80), ROUTING_TOPIC),
    (range(80, 90), MONITORING_TOPIC),
    (range(90, 100), MARKET_DATA_TOPIC),
)
_TOPIC_OF_FIELD = {
    field.name: topic
    for field in events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"].fields
    for numbers, topic in _TOPIC_OF_FIELD_NUMBERS
    if field.number in numbers and field.message_type is not None
}


def topic_of(event_type: str) -> str:
    """The topic of an event type (the name of its message in events.proto)."""
    try:
        return _TOPIC_OF_FIELD[payload_field(event_type)]
    except KeyError:
        raise ValueError(f"event type {event_type!r} is not in events.proto's envelope") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class BusMessage:
    topic: str
    key: str
    event_id: str
    position: int
    event_type: str
    payload: bytes


Handler = Callable[[BusMessage], None]
BatchHandler = Callable[[Sequence[BusMessage]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    message: BusMessage
    subscription: str
    error: str
    attempts: int


class PublisherFenced(Exception):
    """Another publisher has taken over the topics: this one must stop, not retry."""


class Publisher(Protocol):
    def publish(self, messages: Sequence[BusMessage]) -> None:
        """Publishes `messages` in order; returns when they are safe (see module docstring)."""
        ...


class Bus(Protocol):
    def subscribe(
        self, topic: str, subscription: str, handler: Handler, *, consumers: int = 1
    ) -> None:
        """Adds a subscription (or consumers to one) that receives every later message."""
        ...

    def subscribe_batch(
        self, topic: str, subscription: str, handler: BatchHandler, *, consumers: int = 1
    ) -> None:
        """As `subscribe`, for a handler that takes several messages at once: those already
        waiting, in order, so that it can make them durable together. A batch that fails is
        delivered again one message at a time (with retries and dead letters as usual)."""
        ...

    def publish(self, messages: Sequence[BusMessage]) -> None:
        """Publishes `messages` in order; returns when they are safe (see module docstring)."""
        ...

    def dead_letters(self, subscription: str) -> list[DeadLetter]: ...

    def listens_to(self, topic: str) -> bool:
        """Whether a message on `topic` would reach anyone (a broker: always)."""
        ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Delivery:
    message: BusMessage
    done: threading.Event = field(default_factory=threading.Event)


_MAX_BATCH = 256


class _Consumer:
    """One consumer thread of a subscription: handles its keys' messages in order."""

    def __init__(
        self,
        bus: InProcessBus,
        subscription: str,
        handler: Handler,
        index: int,
        batch: BatchHandler | None = None,
    ) -> None:
        self._bus = bus
        self._subscription = subscription
        self._handler = handler
        self._batch = batch
        self.queue: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"bus-{subscription}-{index}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while (delivery := self.queue.get()) is not None:
            if self._batch is None:
                self._deliver(delivery.message)
                delivery.done.set()
            elif not self._deliver_batch(delivery):
                return

    def _deliver_batch(self, first: _Delivery) -> bool:
        """Hands `first` and whatever waits behind it to the batch handler; False to stop."""
        assert self._batch is not None
        batch, going_on = [first], True
        while len(batch) < _MAX_BATCH:
            try:
                delivery = self.queue.get_nowait()
            except queue.Empty:
                break
            if delivery is None:
                going_on = False
                break
            batch.append(delivery)
        try:
            self._batch([d.message for d in batch])
        except Exception as err:
            log.warning(
                "batch of %d for %s failed (%s): delivering one at a time",
                len(batch),
                self._subscription,
                err,
            )
            for delivery in batch:
                self._deliver(delivery.message)
        for delivery in batch:
            delivery.done.set()
        return going_on

    def _deliver(self, message: BusMessage) -> None:
        attempts = 0
        while True:
            attempts += 1
            try:
                self._handler(message)
                return
            except Exception as err:
                if attempts >= self._bus.max_attempts:
                    log.exception(
                        "dead-lettering %s (%s) for %s after %d attempts",
                        message.event_id,
                        message.event_type,
                        self._subscription,
                        attempts,
                    )
                    self._bus.park(
                        DeadLetter(
                            message=message,
                            subscription=self._subscription,
                            error=f"{type(err).__name__}: {err}",
                            attempts=attempts,
                        )
                    )
                    return
                log.warning(
                    "redelivering %s to %s (attempt %d failed: %s)",
                    message.event_id,
                    self._subscription,
                    attempts,
                    err,
                )
                self._bus.backoff(attempts)

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=5)


class InProcessBus:
    """The bus of the embedded mode: subscriptions are threads in this process."""

    def __init__(self, *, max_attempts: int = 5, redelivery_delay: float = 0.01) -> None:
        self.max_attempts = max_attempts
        self._redelivery_delay = redelivery_delay
        self._lock = threading.Lock()
        self._subscriptions: dict[str, dict[str, list[_Consumer]]] = {}
        self._dead: dict[str, list[DeadLetter]] = {}
        self._closed = threading.Event()

    def subscribe(
        self, topic: str, subscription: str, handler: Handler, *, consumers: int = 1
    ) -> None:
        with self._lock:
            group = self._subscriptions.setdefault(topic, {}).setdefault(subscription, [])
            for _ in range(consumers):
                group.append(_Consumer(self, subscription, handler, len(group)))

    def subscribe_batch(
        self, topic: str, subscription: str, handler: BatchHandler, *, consumers: int = 1
    ) -> None:
        def one(message: BusMessage) -> None:
            handler([message])

        with self._lock:
            group = self._subscriptions.setdefault(topic, {}).setdefault(subscription, [])
            for _ in range(consumers):
                group.append(_Consumer(self, subscription, one, len(group), batch=handler))

    def publish(self, messages: Sequence[BusMessage]) -> None:
        with self._lock:
            groups = {
                t: [list(g) for g in subs.values()] for t, subs in self._subscriptions.items()
            }
        pending: list[_Delivery] = []
        for message in messages:
            for consumers in groups.get(message.topic, []):
                delivery = _Delivery(message)
                consumers[zlib.crc32(message.key.encode()) % len(consumers)].queue.put(delivery)
                pending.append(delivery)
        for delivery in pending:
            delivery.done.wait()

    def listens_to(self, topic: str) -> bool:
        with self._lock:
            return bool(self._subscriptions.get(topic))

    def park(self, letter: DeadLetter) -> None:
        with self._lock:
            self._dead.setdefault(letter.subscription, []).append(letter)

    def backoff(self, attempts: int) -> None:
        self._closed.wait(self._redelivery_delay * attempts)

    def dead_letters(self, subscription: str) -> list[DeadLetter]:
        with self._lock:
            return list(self._dead.get(subscription, []))

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            consumers = [
                c for subs in self._subscriptions.values() for g in subs.values() for c in g
            ]
            self._subscriptions.clear()
        for consumer in consumers:
            consumer.stop()
