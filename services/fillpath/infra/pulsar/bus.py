"""The bus over Apache Pulsar: what the services of a cluster share their facts through.

- A topic per domain (`fillpath.infra.bus.TOPICS`) under a prefix, with the schema of
  `EventEnvelope` registered on it (protobuf native); a message's payload is the envelope the
  event store encoded, its key the parent order id, its properties the event id, type and
  global position.
- Publishing: one producer per topic, under a stable name, with sequence id = global position
  and no batching, so the broker's deduplication stores each position at most once. The broker
  remembers the last sequence id per producer name: a publisher that restarts skips what the
  broker already has, and anything it sends again is dropped by the broker. Producers are
  exclusive with fencing: a second publisher under the same name takes over, and the first
  gets `PublisherFenced` instead of fighting back.
- Consuming: each consumer of a subscription is a Key_Shared consumer with a thread of its own,
  so one key's messages go to one consumer at a time, in order. A message is acknowledged only
  after its handler returned (its effects are durable); a handler that raises gets it again in
  line, keeping the key's order, and after `max_attempts` it is parked with its error on the
  subscription's dead-letter topic. A message that is not an event envelope is parked at once.
  Either way the rest keeps flowing. A consumer that dies while handling leaves the message
  unacknowledged, and the broker gives it (first) to the consumer that takes over the key.
- The broker must keep deduplication and retention on for these topics (the standalone broker
  does; set them on the namespace of an external one) and the topics must not be partitioned.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

import pulsar
from google.protobuf.message import DecodeError
from pulsar.schema import ProtobufNativeSchema

from fillpath.api.v1 import events_pb2
from fillpath.infra.bus import BatchHandler, BusMessage, DeadLetter, Handler, PublisherFenced

log = logging.getLogger(__name__)

_client_log = logging.getLogger(f"{__name__}.client")
if _client_log.level == logging.NOTSET:
    _client_log.setLevel(logging.WARNING)  # the C++ client logs every connection at INFO


class EnvelopeSchema(ProtobufNativeSchema):  # type: ignore[misc]
    """The `EventEnvelope` schema, registered on each topic so any Pulsar client can read it;
    payloads pass through as the bytes the event store already encoded."""

    def __init__(self) -> None:
        super().__init__(events_pb2.EventEnvelope)

    def encode(self, obj: bytes) -> bytes:
        return obj

    def decode(self, data: bytes) -> bytes:
        return data


def _decode(message: Any, topic: str) -> tuple[BusMessage, str | None]:
    """The bus message in a Pulsar message, and what is wrong with it (None: nothing)."""
    properties: dict[str, str] = message.properties()
    payload: bytes = message.data()
    problem = None
    try:
        position = int(properties.get("position", ""))
    except ValueError:
        position, problem = 0, f"position property {properties.get('position')!r} is no number"
    if problem is None:
        try:
            events_pb2.EventEnvelope.FromString(payload)
        except DecodeError as err:
            problem = f"payload is not an EventEnvelope: {err}"
    return (
        BusMessage(
            topic=topic,
            key=message.partition_key(),
            event_id=properties.get("event_id", ""),
            position=position,
            event_type=properties.get("event_type", ""),
            payload=payload,
        ),
        problem,
    )


class _Consumer:
    """One Key_Shared consumer of a subscription and the thread that handles its messages."""

    def __init__(
        self, bus: PulsarBus, topic: str, subscription: str, handler: Handler, index: int
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._subscription = subscription
        self._handler = handler
        self._consumer = bus.client.subscribe(
            bus.topic_name(topic),
            subscription,
            consumer_type=pulsar.ConsumerType.KeyShared,
            schema=EnvelopeSchema(),
            # A new subscription starts at the oldest message the topic still holds, so a
            # service deployed just after the publisher misses nothing published meanwhile.
            initial_position=pulsar.InitialPosition.Earliest,
            consumer_name=f"{subscription}-{index}",
            negative_ack_redelivery_delay_ms=1000,
        )
        self._thread = threading.Thread(
            target=self._run, name=f"pulsar-{subscription}-{index}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        closed = self._bus.closed
        while not closed.is_set():
            try:
                received = self._consumer.receive(timeout_millis=200)
            except pulsar.Timeout:
                continue
            except pulsar.AlreadyClosed:
                return
            except Exception:
                log.exception("%s could not receive; trying again", self._subscription)
                closed.wait(1.0)
                continue
            if not self._handle(received):
                return  # closing: unacknowledged, so the broker delivers it again
            try:
                self._consumer.acknowledge(received)
            except Exception:
                # Delivered again later: a deduplicating handler (Inbox) absorbs it.
                log.exception("%s could not acknowledge a message", self._subscription)

    def _handle(self, received: Any) -> bool:
        """Handles or parks `received`; False if the bus closed first."""
        message, problem = _decode(received, self._topic)
        if problem is not None:
            return self._park(received, message, problem, received.redelivery_count() + 1)
        return self._deliver(received, message)

    def _deliver(self, received: Any, message: BusMessage) -> bool:
        """Handles `message` (retrying, then parking it); False if the bus closed meanwhile."""
        attempts = received.redelivery_count()
        while True:
            attempts += 1
            try:
                self._handler(message)
                return True
            except Exception as err:
                error = f"{type(err).__name__}: {err}"
                if attempts >= self._bus.max_attempts:
                    log.exception(
                        "dead-lettering %s (%s) for %s after %d attempts",
                        message.event_id,
                        message.event_type,
                        self._subscription,
                        attempts,
                    )
                    return self._park(received, message, error, attempts)
                log.warning(
                    "redelivering %s to %s (attempt %d failed: %s)",
                    message.event_id,
                    self._subscription,
                    attempts,
                    error,
                )
                # Backing off, doubling: 5 attempts span about 3 s at the default delay.
                backoff = self._bus.redelivery_delay * 2 ** (attempts - 1)
                if self._bus.closed.wait(backoff):
                    return False

    def _park(self, received: Any, message: BusMessage, error: str, attempts: int) -> bool:
        """Stores `received` on the dead-letter topic, trying until it is stored (the key's
        later messages wait: they must not overtake it); False if the bus closed first."""
        properties = {
            **received.properties(),
            "topic": self._topic,
            "subscription": self._subscription,
            "error": error,
            "attempts": str(attempts),
        }
        while True:
            try:
                self._bus.dead_letter_producer(self._subscription).send(
                    received.data(), properties=properties, partition_key=message.key
                )
                return True
            except Exception:
                log.exception("%s could not park %s", self._subscription, message.event_id)
                if self._bus.closed.wait(1.0):
                    return False

    def stop(self) -> None:
        self._thread.join(timeout=5)
        self._consumer.close()


class PulsarBus:
    def __init__(
        self,
        service_url: str,
        *,
        topic_prefix: str,
        producer_name: str = "fillpath-outbox",
        max_attempts: int = 5,
        redelivery_delay: float = 0.2,
    ) -> None:
        self.service_url = service_url
        self.client = pulsar.Client(service_url, logger=_client_log)
        self.max_attempts = max_attempts
        self.redelivery_delay = redelivery_delay
        self.closed = threading.Event()
        self._prefix = topic_prefix
        self._producer_name = producer_name
        self._lock = threading.Lock()
        self._producers: dict[str, Any] = {}
        self._dead_letter_producers: dict[str, Any] = {}
        self._consumers: list[_Consumer] = []

    def topic_name(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    def _dead_letter_topic(self, subscription: str) -> str:
        return f"{self._prefix}{subscription}-DLQ"

    def subscribe(
        self, topic: str, subscription: str, handler: Handler, *, consumers: int = 1
    ) -> None:
        added = [_Consumer(self, topic, subscription, handler, i) for i in range(consumers)]
        with self._lock:
            self._consumers.extend(added)

    def subscribe_batch(
        self, topic: str, subscription: str, handler: BatchHandler, *, consumers: int = 1
    ) -> None:
        # Pulsar hands each consumer one message at a time here: a batch of one.
        def one(message: BusMessage) -> None:
            handler([message])

        self.subscribe(topic, subscription, one, consumers=consumers)

    def _producer(self, topic: str) -> Any:
        with self._lock:
            if topic not in self._producers:
                self._producers[topic] = self.client.create_producer(
                    self.topic_name(topic),
                    producer_name=self._producer_name,
                    schema=EnvelopeSchema(),
                    # A batch carries one sequence id, and key-based batches leave in no
                    # particular order: deduplication by position needs one message each.
                    batching_enabled=False,
                    access_mode=pulsar.ProducerAccessMode.ExclusiveWithFencing,
                    block_if_queue_full=True,
                    max_pending_messages=1000,
                )
            return self._producers[topic]

    def dead_letter_producer(self, subscription: str) -> Any:
        with self._lock:
            if subscription not in self._dead_letter_producers:
                self._dead_letter_producers[subscription] = self.client.create_producer(
                    self._dead_letter_topic(subscription)
                )
            return self._dead_letter_producers[subscription]

    def publish(self, messages: Sequence[BusMessage]) -> None:
        """Sends `messages` in order and returns when the broker has stored every one.

        Messages the broker already has from this producer name (position at or below its
        last sequence id) are skipped.
        """
        results: list[Any] = []
        arrived = threading.Condition()

        def sent(result: Any, _message_id: Any) -> None:
            with arrived:
                results.append(result)
                arrived.notify()

        expected = 0
        for message in messages:
            producer = self._producer(message.topic)
            if message.position <= producer.last_sequence_id():
                continue
            producer.send_async(
                message.payload,
                sent,
                properties={
                    "event_id": message.event_id,
                    "event_type": message.event_type,
                    "position": str(message.position),
                },
                partition_key=message.key,
                sequence_id=message.position,
            )
            expected += 1
        with arrived:
            arrived.wait_for(lambda: len(results) == expected)
        failed = [r for r in results if r != pulsar.Result.Ok]
        if pulsar.Result.ProducerFenced in failed:
            raise PublisherFenced(f"another publisher named {self._producer_name!r} took over")
        if failed:
            raise ConnectionError(f"{len(failed)} of {expected} messages not stored: {failed[0]}")

    def dead_letters(self, subscription: str) -> list[DeadLetter]:
        reader = self.client.create_reader(
            self._dead_letter_topic(subscription), pulsar.MessageId.earliest
        )
        letters = []
        try:
            while reader.has_message_available():
                parked = reader.read_next(timeout_millis=5000)
                properties = parked.properties()
                message, _ = _decode(parked, properties.get("topic", ""))
                letters.append(
                    DeadLetter(
                        message=message,
                        subscription=subscription,
                        error=properties.get("error", ""),
                        attempts=int(properties.get("attempts", "0")),
                    )
                )
        finally:
            reader.close()
        return letters

    def listens_to(self, topic: str) -> bool:
        return True  # the broker retains messages for subscriptions made later

    def close(self) -> None:
        self.closed.set()
        with self._lock:
            consumers, self._consumers = self._consumers, []
            producers = [*self._producers.values(), *self._dead_letter_producers.values()]
            self._producers.clear()
            self._dead_letter_producers.clear()
        for consumer in consumers:
            consumer.stop()
        for producer in producers:
            with contextlib.suppress(Exception):  # a fenced producer is closed already
                producer.close()
        self.client.close()
