"""The bus contract, held against every adapter: in-process, and Pulsar on a real broker.

What every bus must do: deliver each message to every subscription, keep one key's messages in
order across the consumers of a subscription, redeliver what a handler failed on, park a poison
message without blocking the rest, and — with the Postgres inbox — let a consumer handle each
event exactly once however often it arrives.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import pulsar
import pytest
from psycopg_pool import ConnectionPool

from fillpath.api.v1 import events_pb2
from fillpath.infra.bus import Bus, BusMessage, InProcessBus
from fillpath.infra.event_store import Transaction
from fillpath.infra.postgres.inbox import Inbox
from fillpath.infra.pulsar.bus import PulsarBus
from fillpath.infra.pulsar.standalone import PulsarStandalone


def message(n: int, key: str = "P1", topic: str = "orders") -> BusMessage:
    event_id = f"00000000-0000-0000-0000-{n:012d}"
    envelope = events_pb2.EventEnvelope(
        position=n, stream_id=key, event_type="OrderCancelRequested"
    )
    envelope.metadata.event_id = event_id
    envelope.order_cancel_requested.order_id = key
    envelope.order_cancel_requested.reason = f"reason-{n}"
    return BusMessage(
        topic=topic,
        key=key,
        event_id=event_id,
        position=n,
        event_type="OrderCancelRequested",
        payload=envelope.SerializeToString(),
    )


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class BusContract:
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        raise NotImplementedError

    def test_every_subscription_gets_every_message_of_its_topic(self, bus: Bus) -> None:
        got: dict[str, list[int]] = defaultdict(list)
        lock = threading.Lock()

        def record(name: str) -> Any:
            def handle(m: BusMessage) -> None:
                with lock:
                    got[name].append(m.position)

            return handle

        bus.subscribe("orders", "monitor", record("monitor"))
        bus.subscribe("orders", "strategy", record("strategy"))
        bus.subscribe("routing", "other", record("other"))
        bus.publish([message(i) for i in range(1, 21)])
        wait_for(lambda: len(got["monitor"]) == 20 and len(got["strategy"]) == 20)
        assert got["monitor"] == got["strategy"] == list(range(1, 21))
        assert got["other"] == []

    def test_one_keys_messages_stay_in_order_across_consumers(self, bus: Bus) -> None:
        seen: dict[str, list[int]] = defaultdict(list)
        threads: dict[str, set[str]] = defaultdict(set)
        lock = threading.Lock()

        def handle(m: BusMessage) -> None:
            time.sleep(0.001)
            with lock:
                seen[m.key].append(m.position)
                threads[m.key].add(threading.current_thread().name)

        bus.subscribe("orders", "algo", handle, consumers=4)
        keys = [f"P{k}" for k in range(8)]
        bus.publish([message(i, key=keys[i % 8]) for i in range(1, 161)])
        wait_for(lambda: sum(len(v) for v in seen.values()) == 160)
        for key in keys:
            assert seen[key] == sorted(seen[key])
            assert len(threads[key]) == 1
        assert len({t for ts in threads.values() for t in ts}) > 1

    def test_a_batch_subscriber_gets_every_message_once_in_order(self, bus: Bus) -> None:
        got: list[int] = []
        failed = threading.Event()

        def handle(batch: Sequence[BusMessage]) -> None:
            if 7 in [m.position for m in batch] and not failed.is_set():
                failed.set()  # the whole batch fails once, and comes again one by one
                raise RuntimeError("not now")
            got.extend(m.position for m in batch)

        bus.subscribe_batch("orders", "monitor", handle)
        bus.publish([message(i) for i in range(1, 41)])
        wait_for(lambda: len(set(got)) == 40)
        assert failed.is_set()
        assert got == sorted(got)
        assert sorted(set(got)) == list(range(1, 41))

    def test_a_failed_handling_is_delivered_again(self, bus: Bus) -> None:
        attempts: list[int] = []

        def flaky(m: BusMessage) -> None:
            attempts.append(m.position)
            if len(attempts) < 3:
                raise ConnectionError("database blinked")

        bus.subscribe("orders", "flaky", flaky)
        bus.publish([message(1)])
        wait_for(lambda: len(attempts) >= 3)
        assert attempts == [1, 1, 1]
        assert bus.dead_letters("flaky") == []

    def test_a_poison_message_is_parked_with_its_error_and_the_rest_flows(self, bus: Bus) -> None:
        handled: list[int] = []

        def handle(m: BusMessage) -> None:
            if m.position == 2:
                raise ValueError("malformed payload")
            handled.append(m.position)

        bus.subscribe("orders", "picky", handle)
        bus.publish([message(i) for i in range(1, 5)])
        wait_for(lambda: handled == [1, 3, 4])
        (letter,) = bus.dead_letters("picky")
        assert letter.message.position == 2
        assert "malformed payload" in letter.error

    def test_with_the_inbox_a_redelivered_event_is_handled_once(
        self, bus: Bus, pool: ConnectionPool[Any]
    ) -> None:
        with pool.connection() as conn:
            conn.execute("CREATE TABLE effects (event_id text, payload text)")
        inbox = Inbox(pool, "effects-writer")
        failures = {"left": 1}

        def apply(tx: Transaction, m: BusMessage) -> None:
            tx.execute("INSERT INTO effects VALUES (%s, %s)", (m.event_id, m.key))
            if m.position == 3 and failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("crashed after writing, before commit")

        bus.subscribe("orders", "effects", inbox.handler(apply))
        batch = [message(i) for i in range(1, 6)]
        bus.publish(batch)
        bus.publish(batch[1:4])  # the relay restarted and published again
        with pool.connection() as conn:
            wait_for(lambda: conn.execute("SELECT count(*) FROM effects").fetchone() == (5,))
            rows = conn.execute("SELECT event_id, count(*) FROM effects GROUP BY 1").fetchall()
        assert {count for _, count in rows} == {1}


class TestInProcessBus(BusContract):
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        bus = InProcessBus(max_attempts=3, redelivery_delay=0.001)
        yield bus
        bus.close()

    def test_publish_returns_only_after_every_subscription_handled_the_messages(
        self, bus: Bus
    ) -> None:
        handled: list[int] = []
        bus.subscribe("orders", "slow", lambda m: (time.sleep(0.01), handled.append(m.position)))
        bus.publish([message(i) for i in range(1, 6)])
        assert handled == [1, 2, 3, 4, 5]


class TestPulsarBus(BusContract):
    @pytest.fixture
    def bus(self, pulsar_broker: PulsarStandalone) -> Iterator[PulsarBus]:
        bus = PulsarBus(
            pulsar_broker.service_url,
            topic_prefix=f"persistent://public/default/{uuid.uuid4().hex[:12]}-",
            max_attempts=3,
            redelivery_delay=0.001,
        )
        yield bus
        bus.close()

    def test_a_malformed_payload_is_parked_with_its_error_and_never_handled(
        self, bus: PulsarBus
    ) -> None:
        handled: list[int] = []
        bus.subscribe("orders", "strict", lambda m: handled.append(m.position))
        # Another client writes something that is no event envelope onto the topic (before
        # the bus's own producer, which holds the topic exclusively once it publishes).
        stray = bus.client.create_producer(bus.topic_name("orders"))
        stray.send(b"\xff\xfe not protobuf", properties={"position": "2"}, partition_key="P1")
        stray.close()
        bus.publish([message(1), message(3)])
        wait_for(lambda: handled == [1, 3])
        (letter,) = bus.dead_letters("strict")
        assert letter.message.payload == b"\xff\xfe not protobuf"
        assert "not an EventEnvelope" in letter.error

    def test_the_topic_carries_the_event_envelope_schema(self, bus: PulsarBus) -> None:
        bus.publish([message(1)])
        typed = bus.client.subscribe(
            bus.topic_name("orders"),
            "typed-reader",
            schema=pulsar.schema.ProtobufNativeSchema(events_pb2.EventEnvelope),
            initial_position=pulsar.InitialPosition.Earliest,
        )
        envelope = typed.receive(timeout_millis=10_000).value()
        typed.close()
        assert envelope.order_cancel_requested.reason == "reason-1"

    def test_a_publisher_restarted_under_its_name_sends_nothing_twice(self, bus: PulsarBus) -> None:
        got: list[int] = []
        bus.subscribe("orders", "counter", lambda m: got.append(m.position))
        bus.publish([message(i) for i in range(1, 6)])
        again = PulsarBus(bus.service_url, topic_prefix=bus.topic_name(""))
        try:
            again.publish([message(i) for i in range(3, 9)])  # 3..5 were stored already
        finally:
            again.close()
        wait_for(lambda: len(got) >= 8)
        time.sleep(0.5)
        assert got == list(range(1, 9))
