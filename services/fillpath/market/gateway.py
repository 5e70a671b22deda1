"""The market lab behind the `VenueGateway` port: the simulated venues the OMS sends child
orders to.

`SimulatedGateway` owns a `MarketLab`. With a `speed`, a driver thread advances the session in
step with the wall clock, `speed` times faster (a demo at 60× runs a simulated minute a
second); without one the caller drives it (`advance_to`, `run_to_close`), which is what tests do.
Execution reports go to the subscribed handler — the OMS — outside the lab's lock, since the
handler may send new orders; market data goes to `on_market_data`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from fillpath.core.commands import ApplyExecutionReport
from fillpath.core.enums import ExecType
from fillpath.core.errors import InvalidArgument
from fillpath.core.price import Price
from fillpath.core.venues import ReportHandler, VenueOrder
from fillpath.market.lab import MarketData, MarketLab, Step

log = logging.getLogger(__name__)

MarketDataHandler = Callable[[MarketData], None]


class SimulatedGateway:
    def __init__(
        self,
        lab: MarketLab,
        *,
        speed: float | None = None,
        tick: float = 0.02,
        on_market_data: MarketDataHandler | None = None,
    ) -> None:
        self.lab = lab
        self._speed = speed
        self._tick = tick
        self._on_market_data = on_market_data
        self._on_report: ReportHandler | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- VenueGateway -----------------------------------------------------------------------

    def subscribe(self, on_report: ReportHandler) -> None:
        self._on_report = on_report

    @property
    def speed(self) -> float | None:
        return self._speed

    def new_order(self, order: VenueOrder) -> bool:
        """Sends `order`; False when its id was seen before (nothing is done)."""
        try:
            with self._lock:
                return self.lab.submit(order)
        except InvalidArgument as err:
            self._refuse(order.order_id, order.venue, ExecType.REJECTED, err)
            return True

    def cancel_order(self, order_id: str) -> None:
        try:
            with self._lock:
                self.lab.cancel(order_id)
        except InvalidArgument as err:
            self._refuse(order_id, "", ExecType.CANCEL_REJECTED, err)

    def replace_order(self, order_id: str, quantity: int, limit_price: Price | None) -> None:
        try:
            with self._lock:
                self.lab.replace(order_id, quantity, limit_price)
        except InvalidArgument as err:
            self._refuse(order_id, "", ExecType.REPLACE_REJECTED, err)

    def _refuse(self, order_id: str, venue: str, exec_type: ExecType, err: InvalidArgument) -> None:
        """What a venue does with a request it cannot take: refuses it, saying why."""
        self._deliver_reports(
            [
                ApplyExecutionReport(
                    order_id=order_id,
                    exec_id=f"refused-{exec_type.name.lower()}-{order_id}-{self.lab.now:.6f}",
                    exec_type=exec_type,
                    venue=venue,
                    text=str(err),
                    transact_time=self.lab.time_of(self.lab.now),
                )
            ]
        )

    # ---- driving the session ----------------------------------------------------------------

    def advance_to(self, seconds: float) -> Step:
        """Runs the session to `seconds` after the open and delivers what arrived by then."""
        with self._lock:
            step = self.lab.advance(seconds)
        self._deliver(step)
        return step

    def run_to_close(self, step: float = 60.0) -> None:
        """Fast-forwards to the close (and a moment after: the expiry reports arrive)."""
        close = self.lab.config.session_seconds
        t = self.lab.now
        while t < close + 1.0:
            t = min(close + 1.0, t + step)
            self.advance_to(t)

    def start(self) -> SimulatedGateway:
        if self._speed is None:
            raise ValueError("a gateway without a speed is driven by its caller")
        self._thread = threading.Thread(target=self._drive, name="lab-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _drive(self) -> None:
        assert self._speed is not None
        wall0, sim0 = time.monotonic(), self.lab.now
        close = self.lab.config.session_seconds + 1.0
        while not self._stop.wait(self._tick):
            target = min(close, sim0 + (time.monotonic() - wall0) * self._speed)
            if target <= self.lab.now:
                continue
            try:
                self.advance_to(target)
            except Exception:
                log.exception("the lab driver failed at %.3fs; it stops", target)
                return

    def _deliver(self, step: Step) -> None:
        if self._on_market_data is not None:
            for data in step.market_data:
                self._on_market_data(data)
        self._deliver_reports(step.reports)

    def _deliver_reports(self, reports: Sequence[ApplyExecutionReport]) -> None:
        if self._on_report is None:
            return
        for report in reports:
            try:
                self._on_report(report)
            except Exception:
                log.exception("the report handler failed on %s", report.exec_id)
