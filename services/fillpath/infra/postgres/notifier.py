"""Wakes readers of the event log when an append commits.

Each append ends with ``pg_notify('fillpath_events', <last position>)``, delivered when it
commits. One listening connection per process turns those into a condition readers wait on
(an event store in the same process also calls `advance` as its appends commit),
with a timeout as the fallback if a notification is ever missed (they then poll). It starts
listening when the first reader waits: a process nobody reads the log in (an OMS serving only
commands) is not woken by every commit.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from fillpath.infra.postgres.event_store import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class PositionNotifier:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._condition = threading.Condition()
        self._latest = 0
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-notifier", daemon=True)
        self._start_lock = threading.Lock()

    def start(self) -> PositionNotifier:
        """Starts listening now (otherwise the first `wait_beyond` does)."""
        with self._start_lock:
            if not self._thread.is_alive() and not self._stopped.is_set():
                # A thread runs once: a listener that died is replaced by a new one.
                self._thread = threading.Thread(
                    target=self._run, name="event-notifier", daemon=True
                )
                self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def wait_beyond(self, position: int, timeout: float) -> int:
        """Waits until an event after `position` is known, or `timeout` seconds pass."""
        if not self._thread.is_alive():
            self.start()
        with self._condition:
            self._condition.wait_for(
                lambda: self._latest > position or self._stopped.is_set(), timeout=timeout
            )
            return self._latest

    def advance(self, position: int) -> None:
        """Wakes readers: events up to `position` have committed (from this process's own
        appends, sooner than their notification comes round through Postgres)."""
        with self._condition:
            if position > self._latest:
                self._latest = position
                self._condition.notify_all()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
                    self.advance(int(row[0]) if row else 0)
                    self._ready.set()
                    while not self._stopped.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self.advance(_position(notify.payload))
            except Exception as err:
                log.warning("event notifier failed (%s); listening again", err)
                self._ready.set()
                self._stopped.wait(1.0)


def _position(payload: str) -> int:
    """The position a notification announces; anything else (anyone may NOTIFY) wakes readers
    to look for themselves."""
    try:
        return int(payload)
    except ValueError:
        log.warning("ignoring a notification that is not a position: %r", payload[:40])
        return 0
