"""The bus contract, held against every adapter (today: in-process; Pulsar joins it next).

What every bus must do: deliver each message to every subscription, keep one key's messages in
order across the consumers of a subscription, redeliver what a handler failed on, park a poison
message without blocking the rest, and — with the Postgres inbox — let a consumer handle each
event exactly once however often it arrives.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from fillpath.infra.bus import Bus, BusMessage, InProcessBus
from fillpath.infra.event_store import Transaction
from fillpath.infra.postgres.inbox import Inbox


def message(n: int, key: str = "P1", topic: str = "orders") -> BusMessage:
    return BusMessage(
        topic=topic,
        key=key,
        event_id=f"00000000-0000-0000-0000-{n:012d}",
        position=n,
        event_type="OrderAccepted",
        payload=f"payload-{n}".encode(),
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
            tx.execute("INSERT INTO effects VALUES (%s, %s)", (m.event_id, m.payload.decode()))
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
