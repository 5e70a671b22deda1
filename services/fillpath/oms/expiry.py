"""Expires parent orders when their time comes (GTD: the expire time; DAY: the session close).

Every OMS process sweeps; two that pick the same order meet in optimistic concurrency, and the
loser finds it already expired and records nothing.
"""

from __future__ import annotations

import logging
import threading

from fillpath.core.clock import Clock
from fillpath.core.errors import FillpathError
from fillpath.infra.event_store import CommandContext
from fillpath.oms.projection import OrderViews
from fillpath.oms.service import OrderManagement

log = logging.getLogger(__name__)


class ExpirySweeper:
    def __init__(
        self, oms: OrderManagement, views: OrderViews, clock: Clock, interval: float = 1.0
    ) -> None:
        self._oms = oms
        self._views = views
        self._clock = clock
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expiry-sweeper", daemon=True)

    def sweep(self) -> int:
        """Expires what is due now; returns how many orders were expired."""
        expired = 0
        for order_id in self._views.due_for_expiry(self._clock.now()):
            try:
                outcome = self._oms.expire(order_id, CommandContext(actor="oms:expiry"))
            except FillpathError as err:
                log.warning("could not expire %s: %s", order_id, err)
                continue
            expired += bool(outcome.events)
        return expired

    def start(self) -> ExpirySweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.sweep()
            except FillpathError as err:
                log.warning("expiry sweep failed: %s", err)
