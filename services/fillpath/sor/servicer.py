"""The RoutingService gRPC servicer: requests to router calls, decisions to messages.

Errors are raised as domain errors and mapped to status codes by the server's interceptor
(InvalidArgument → INVALID_ARGUMENT with a field violation per bad field, FailedPrecondition →
FAILED_PRECONDITION).
"""

from __future__ import annotations

import math
from datetime import UTC

import grpc

from fillpath.api.v1 import common_pb2, events_pb2, routing_pb2, routing_pb2_grpc
from fillpath.core.enums import Side, Urgency
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.price import Price
from fillpath.core.routing import RoutingDecision
from fillpath.infra.event_proto import to_proto
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.infra.telemetry import command_context
from fillpath.sor.router import BEST_EXECUTION, BEST_PRICE, FASTEST, LOWEST_COST, RouteOrder
from fillpath.sor.service import Routing, VenueFigures

MODE_NAMES = {
    routing_pb2.ROUTING_MODE_UNSPECIFIED: BEST_EXECUTION,
    routing_pb2.ROUTING_MODE_BEST_EXECUTION: BEST_EXECUTION,
    routing_pb2.ROUTING_MODE_BEST_PRICE: BEST_PRICE,
    routing_pb2.ROUTING_MODE_FASTEST: FASTEST,
    routing_pb2.ROUTING_MODE_LOWEST_COST: LOWEST_COST,
}
CIRCUIT_STATES = {
    "closed": routing_pb2.CIRCUIT_STATE_CLOSED,
    "open": routing_pb2.CIRCUIT_STATE_OPEN,
    "half-open": routing_pb2.CIRCUIT_STATE_HALF_OPEN,
}
MAX_PAGE_SIZE = 1000


def route_order(request: routing_pb2.RouteRequest) -> RouteOrder:
    """The request as the router takes it; enum values out of range are refused here."""
    violations = []
    mode = MODE_NAMES.get(request.mode)
    if mode is None:
        violations.append(FieldViolation("mode", request.mode, "not a RoutingMode"))
    if request.side not in Side._value2member_map_:
        violations.append(FieldViolation("side", request.side, "BUY, SELL or SELL_SHORT"))
    if request.urgency and request.urgency not in Urgency._value2member_map_:
        violations.append(FieldViolation("urgency", request.urgency, "LOW, MEDIUM or HIGH"))
    if violations:
        raise InvalidArgument(violations)
    return RouteOrder(
        order_id=request.order_id,
        symbol=request.symbol,
        side=Side(request.side),
        quantity=request.quantity,
        limit_price=(
            Price(request.limit_price_nanos) if request.HasField("limit_price_nanos") else None
        ),
        urgency=Urgency(request.urgency) if request.urgency else Urgency.MEDIUM,
        mode=mode or BEST_EXECUTION,
        preferred=tuple(request.preferred_venues),
        excluded=tuple(request.excluded_venues),
        max_venues=request.max_venues,
        allow_dark=request.allow_dark,
    )


def decision_message(decision: RoutingDecision) -> events_pb2.RoutingDecision:
    message = events_pb2.RoutingDecision()
    to_proto(decision, message)
    return message


def venue_quality(f: VenueFigures) -> routing_pb2.VenueQuality:
    message = routing_pb2.VenueQuality(
        venue=f.venue,
        symbol=f.symbol,
        kind=common_pb2.VENUE_KIND_DARK if f.dark else common_pb2.VENUE_KIND_LIT,
        score=f.score,
        liquidity=f.liquidity,
        latency_micros=f.latency_us,
        cost_bps=None if math.isnan(f.cost_bps) else f.cost_bps,
        fill_rate=None if math.isnan(f.fill_rate) else f.fill_rate,
        markout_bps=f.markout_bps,
        available=f.available,
        circuit=CIRCUIT_STATES[f.circuit],
    )
    message.updated_at.FromDatetime(f.updated_at)
    return message


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, routing: Routing) -> None:
        self._routing = routing

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name,
            add=lambda server: routing_pb2_grpc.add_RoutingServiceServicer_to_server(self, server),
        )

    def Route(
        self, request: routing_pb2.RouteRequest, context: grpc.ServicerContext
    ) -> routing_pb2.RouteResponse:
        decision = self._routing.route(route_order(request), command_context(context))
        message = decision_message(decision)
        return routing_pb2.RouteResponse(
            decision_id=decision.decision_id,
            allocations=message.allocations,
            rationale=decision.rationale,
            expected_cost_bps=decision.expected_cost_bps,
        )

    def GetVenueQuality(
        self, request: routing_pb2.GetVenueQualityRequest, context: grpc.ServicerContext
    ) -> routing_pb2.GetVenueQualityResponse:
        unknown = [v for v in request.venues if v not in self._routing.book.index]
        if unknown:
            raise InvalidArgument([FieldViolation("venues", v, "unknown venue") for v in unknown])
        figures = self._routing.venue_figures(request.symbol, tuple(request.venues))
        return routing_pb2.GetVenueQualityResponse(venues=[venue_quality(f) for f in figures])

    def ListDecisions(
        self, request: routing_pb2.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> routing_pb2.ListDecisionsResponse:
        size = request.page.page_size or 100
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument.single("page.page_size", size, f"1..{MAX_PAGE_SIZE}")
        start = getattr(request, "from").ToDatetime(UTC) if request.HasField("from") else None
        end = request.to.ToDatetime(UTC) if request.HasField("to") else None
        decisions, token = self._routing.decisions.list(
            order_id=request.order_id,
            symbol=request.symbol,
            start=start,
            end=end,
            page_size=size,
            page_token=request.page.page_token,
        )
        return routing_pb2.ListDecisionsResponse(
            decisions=[decision_message(d) for d in decisions], next_page_token=token
        )
