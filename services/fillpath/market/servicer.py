"""The market lab's venues over gRPC (`VenueGatewayService`): conversion and wiring only.

Every report the simulated venues send is kept, numbered from 1, for the session, so a client
(the OMS) that reconnects resumes where it was — and one that restarts can start from 0, since
the OMS applies a report once by its exec id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from fillpath.api.v1 import market_pb2, market_pb2_grpc, oms_pb2
from fillpath.core.commands import ApplyExecutionReport
from fillpath.core.enums import OrderType, Side, TimeInForce
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.price import Price
from fillpath.core.venues import VenueOrder
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.market.gateway import SimulatedGateway


def report_message(report: ApplyExecutionReport) -> oms_pb2.ExecutionReport:
    message = oms_pb2.ExecutionReport(
        order_id=report.order_id,
        exec_id=report.exec_id,
        exec_type=int(report.exec_type),  # type: ignore[arg-type]
        venue=report.venue,
        venue_order_id=report.venue_order_id,
        last_quantity=report.last_quantity,
        last_price_nanos=report.last_price.nanos if report.last_price else 0,
        liquidity=int(report.liquidity) if report.liquidity else 0,  # type: ignore[arg-type]
        fee_nanos=report.fee_nanos,
        quantity=report.quantity,
        text=report.text,
    )
    if report.limit_price is not None:
        message.limit_price_nanos = report.limit_price.nanos
    if report.transact_time is not None:
        message.transact_time.FromDatetime(report.transact_time)
    return message


class VenueGatewayServicer(market_pb2_grpc.VenueGatewayServiceServicer):
    def __init__(self, gateway: SimulatedGateway) -> None:
        self._gateway = gateway
        self._reports: list[oms_pb2.ExecutionReport] = []
        self._changed = threading.Condition()
        self._closed = False
        gateway.subscribe(self._keep)

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=market_pb2.DESCRIPTOR.services_by_name["VenueGatewayService"].full_name,
            add=lambda server: market_pb2_grpc.add_VenueGatewayServiceServicer_to_server(
                self, server
            ),
        )

    def close(self) -> None:
        """Ends the open report streams (the server is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _keep(self, report: ApplyExecutionReport) -> None:
        with self._changed:
            self._reports.append(report_message(report))
            self._changed.notify_all()

    def NewOrder(
        self, request: market_pb2.NewOrderRequest, context: grpc.ServicerContext
    ) -> market_pb2.NewOrderResponse:
        violations = []
        if not request.order_id:
            violations.append(FieldViolation("order_id", "", "required"))
        for field, enum in (
            ("side", Side),
            ("order_type", OrderType),
            ("time_in_force", TimeInForce),
        ):
            value = getattr(request, field)
            if value not in enum._value2member_map_:
                violations.append(FieldViolation(field, value, "unspecified or unknown"))
        if violations:
            raise InvalidArgument(violations)
        order = VenueOrder(
            order_id=request.order_id,
            symbol=request.symbol,
            venue=request.venue,
            side=Side(request.side),
            quantity=request.quantity,
            order_type=OrderType(request.order_type),
            limit_price=Price(request.limit_price_nanos)
            if request.HasField("limit_price_nanos")
            else None,
            time_in_force=TimeInForce(request.time_in_force),
            post_only=request.post_only,
            min_quantity=request.min_quantity,
        )
        return market_pb2.NewOrderResponse(accepted=self._gateway.new_order(order))

    def CancelOrder(
        self, request: market_pb2.VenueCancelRequest, context: grpc.ServicerContext
    ) -> market_pb2.VenueCancelResponse:
        self._gateway.cancel_order(request.order_id)
        return market_pb2.VenueCancelResponse()

    def ReplaceOrder(
        self, request: market_pb2.VenueReplaceRequest, context: grpc.ServicerContext
    ) -> market_pb2.VenueReplaceResponse:
        limit = Price(request.limit_price_nanos) if request.HasField("limit_price_nanos") else None
        self._gateway.replace_order(request.order_id, request.quantity, limit)
        return market_pb2.VenueReplaceResponse()

    def StreamExecutionReports(
        self, request: market_pb2.StreamExecutionReportsRequest, context: grpc.ServicerContext
    ) -> Iterator[market_pb2.SequencedReport]:
        sent = max(0, request.after_sequence)
        while context.is_active():
            with self._changed:
                if not self._closed and len(self._reports) <= sent:
                    self._changed.wait(timeout=1.0)
                if self._closed:
                    return
                batch = self._reports[sent:]
            for report in batch:
                sent += 1
                yield market_pb2.SequencedReport(sequence=sent, report=report)

    def GetSession(
        self, request: market_pb2.GetSessionRequest, context: grpc.ServicerContext
    ) -> market_pb2.GetSessionResponse:
        lab = self._gateway.lab
        response = market_pb2.GetSessionResponse(
            symbols=list(lab.symbols),
            venues=[v.name for v in lab.venues],
            seed=lab.config.seed,
            speed=self._gateway.speed or 0.0,
        )
        response.now.FromDatetime(lab.time_of(lab.now))
        response.open.FromDatetime(lab.time_of(0.0))
        response.close.FromDatetime(lab.time_of(lab.config.session_seconds))
        return response
