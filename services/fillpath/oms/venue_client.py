"""The `VenueGateway` port over gRPC: the OMS's client of a venue gateway process (`fillpath lab`,
later a FIX gateway).

Orders, cancels and replaces are unary calls. Reports arrive on one stream, numbered from 1; the
client resumes after the last one it handed on when the stream breaks, so a gateway restart or
a network blip loses nothing (and a report seen twice is recorded once: exec ids).
"""

from __future__ import annotations

import logging
import threading

import grpc

from fillpath.api.v1 import market_pb2, oms_pb2
from fillpath.api.v1.market_pb2_grpc import VenueGatewayServiceStub
from fillpath.core.price import Price
from fillpath.core.venues import ReportHandler, VenueOrder
from fillpath.oms.mapping import report_command

log = logging.getLogger(__name__)


class GrpcVenueGateway:
    def __init__(self, address: str, *, timeout: float = 5.0) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address)
        self._stub = VenueGatewayServiceStub(self._channel)
        self._timeout = timeout
        self._after = 0
        self._stop = threading.Event()
        self._call: grpc.CallIterator[market_pb2.SequencedReport] | None = None
        self._thread: threading.Thread | None = None

    def new_order(self, order: VenueOrder) -> bool:
        request = market_pb2.NewOrderRequest(
            order_id=order.order_id,
            symbol=order.symbol,
            venue=order.venue,
            side=int(order.side),  # type: ignore[arg-type]
            quantity=order.quantity,
            order_type=int(order.order_type),  # type: ignore[arg-type]
            time_in_force=int(order.time_in_force),  # type: ignore[arg-type]
            post_only=order.post_only,
            min_quantity=order.min_quantity,
        )
        if order.limit_price is not None:
            request.limit_price_nanos = order.limit_price.nanos
        response: market_pb2.NewOrderResponse = self._stub.NewOrder(request, timeout=self._timeout)
        return response.accepted

    def cancel_order(self, order_id: str) -> None:
        self._stub.CancelOrder(
            market_pb2.VenueCancelRequest(order_id=order_id), timeout=self._timeout
        )

    def replace_order(self, order_id: str, quantity: int, limit_price: Price | None) -> None:
        request = market_pb2.VenueReplaceRequest(order_id=order_id, quantity=quantity)
        if limit_price is not None:
            request.limit_price_nanos = limit_price.nanos
        self._stub.ReplaceOrder(request, timeout=self._timeout)

    def subscribe(self, on_report: ReportHandler) -> None:
        """Streams every report (from the first) to `on_report`, on a thread of its own."""
        self._thread = threading.Thread(
            target=self._follow, args=(on_report,), name="venue-reports", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()  # type: ignore[no-untyped-call]
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._channel.close()

    def _follow(self, on_report: ReportHandler) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                call = self._stub.StreamExecutionReports(
                    market_pb2.StreamExecutionReportsRequest(after_sequence=self._after)
                )
                self._call = call
                for item in call:
                    on_report(
                        report_command(oms_pb2.ApplyExecutionReportRequest(report=item.report))
                    )
                    self._after = item.sequence
                    delay = 0.1
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return
                log.warning(
                    "venue report stream from %s broke after #%d (%s); resuming in %.1fs",
                    self.address, self._after, err.code(), delay,
                )  # fmt: skip
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)
