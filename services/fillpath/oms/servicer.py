"""The OMS gRPC servicer: converts requests to commands and outcomes to responses, nothing more.

Errors are raised as domain errors and mapped to status codes by the server's interceptor.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import grpc

from fillpath.api.v1 import oms_pb2, oms_pb2_grpc
from fillpath.core.events import OrderEvent, OrderReplaceRejected
from fillpath.core.ids import stream_id_of
from fillpath.core.parent_order import ParentOrder
from fillpath.infra.event_proto import envelope_of
from fillpath.infra.event_store import RecordedEvent
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.notifier import PositionNotifier
from fillpath.infra.telemetry import command_context
from fillpath.oms import mapping
from fillpath.oms.history import summarize
from fillpath.oms.projection import OrderViews
from fillpath.oms.service import OrderManagement

_STREAM_BATCH = 500
_STREAM_CACHE = 1024


class OrderManagementServicer(oms_pb2_grpc.OrderManagementServiceServicer):
    def __init__(
        self,
        oms: OrderManagement,
        views: OrderViews,
        store: PostgresEventStore,
        notifier: PositionNotifier,
    ) -> None:
        self._oms = oms
        self._views = views
        self._store = store
        self._notifier = notifier

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=oms_pb2.DESCRIPTOR.services_by_name["OrderManagementService"].full_name,
            add=lambda server: oms_pb2_grpc.add_OrderManagementServiceServicer_to_server(
                self, server
            ),
        )

    def SubmitOrder(
        self, request: oms_pb2.SubmitOrderRequest, context: grpc.ServicerContext
    ) -> oms_pb2.SubmitOrderResponse:
        outcome = self._oms.submit(mapping.submit_command(request), command_context(context))
        return oms_pb2.SubmitOrderResponse(
            order=mapping.aggregate_order(outcome.aggregate), duplicate=outcome.duplicate
        )

    def AmendOrder(
        self, request: oms_pb2.AmendOrderRequest, context: grpc.ServicerContext
    ) -> oms_pb2.AmendOrderResponse:
        command = mapping.amend_command(request)
        outcome = self._oms.amend(command, command_context(context))
        response = oms_pb2.AmendOrderResponse(
            order=mapping.aggregate_order(outcome.aggregate, command.order_id), accepted=True
        )
        for event in outcome.events:
            if isinstance(event, OrderReplaceRejected) and event.order_id == command.order_id:
                response.accepted = False
                response.reject_code = mapping.proto_enum(event.code)
                response.reject_reason = event.reason
        return response

    def CancelOrder(
        self, request: oms_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> oms_pb2.CancelOrderResponse:
        command = mapping.cancel_command(request)
        outcome = self._oms.cancel(command, command_context(context))
        return oms_pb2.CancelOrderResponse(
            order=mapping.aggregate_order(outcome.aggregate, command.order_id)
        )

    def GetOrder(
        self, request: oms_pb2.GetOrderRequest, context: grpc.ServicerContext
    ) -> oms_pb2.GetOrderResponse:
        aggregate = self._oms.get(request.order_id)
        return oms_pb2.GetOrderResponse(order=mapping.aggregate_order(aggregate, request.order_id))

    def ListOrders(
        self, request: oms_pb2.ListOrdersRequest, context: grpc.ServicerContext
    ) -> oms_pb2.ListOrdersResponse:
        rows, token = self._views.page(mapping.order_query(request))
        return oms_pb2.ListOrdersResponse(
            orders=[mapping.row_order(r) for r in rows], next_page_token=token
        )

    def GetOrderHistory(
        self, request: oms_pb2.GetOrderHistoryRequest, context: grpc.ServicerContext
    ) -> oms_pb2.GetOrderHistoryResponse:
        events = self._oms.history(request.order_id)
        return oms_pb2.GetOrderHistoryResponse(
            entries=[mapping.history_entry(envelope_of(e), summarize(e.event)) for e in events]
        )

    def PlaceChildOrders(
        self, request: oms_pb2.PlaceChildOrdersRequest, context: grpc.ServicerContext
    ) -> oms_pb2.PlaceChildOrdersResponse:
        command = mapping.place_children_command(request)
        outcome = self._oms.place_children(command, command_context(context))
        aggregate = outcome.aggregate
        by_client_id = {c.terms.client_order_id: c for c in aggregate.children.values()}
        return oms_pb2.PlaceChildOrdersResponse(
            parent=mapping.aggregate_order(aggregate, with_children=False),
            children=[
                mapping.order_message(by_client_id[c.client_order_id]) for c in command.children
            ],
        )

    def ApplyExecutionReport(
        self, request: oms_pb2.ApplyExecutionReportRequest, context: grpc.ServicerContext
    ) -> oms_pb2.ApplyExecutionReportResponse:
        command = mapping.report_command(request)
        outcome = self._oms.apply_report(command, command_context(context))
        return oms_pb2.ApplyExecutionReportResponse(
            order=mapping.aggregate_order(outcome.aggregate, command.order_id),
            parent=mapping.aggregate_order(outcome.aggregate, with_children=False),
            duplicate=outcome.duplicate,
        )

    def StreamOrderUpdates(
        self, request: oms_pb2.StreamOrderUpdatesRequest, context: grpc.ServicerContext
    ) -> Iterator[oms_pb2.OrderUpdate]:
        position = max(request.from_position, 0)
        wanted_stream = stream_id_of(request.order_id) if request.order_id else None
        states: OrderedDict[str, ParentOrder] = OrderedDict()
        while context.is_active():
            batch = self._store.read_all(position, _STREAM_BATCH)
            if not batch:
                self._notifier.wait_beyond(position, timeout=1.0)
                continue
            for recorded in batch:
                position = recorded.position
                event = recorded.event
                if not isinstance(event, OrderEvent):
                    continue
                if wanted_stream is not None and recorded.stream_id != wanted_stream:
                    continue
                aggregate = self._state_after(states, recorded)
                if request.account and aggregate.parent.terms.account != request.account:
                    continue
                if request.order_id and request.order_id not in (event.order_id, wanted_stream):
                    continue
                yield oms_pb2.OrderUpdate(
                    event=envelope_of(recorded),
                    order=mapping.aggregate_order(aggregate, event.order_id, with_children=False),
                )

    def _state_after(
        self, states: OrderedDict[str, ParentOrder], recorded: RecordedEvent
    ) -> ParentOrder:
        """The stream's aggregate right after `recorded`, advanced from a cached one if possible."""
        aggregate = states.pop(recorded.stream_id, None)
        if aggregate is not None and aggregate.version == recorded.version - 1:
            aggregate.apply(recorded.event, recorded.version)
        else:
            events = self._store.read_stream(recorded.stream_id, to_version=recorded.version)
            aggregate = ParentOrder.from_events((e.version, e.event) for e in events)
        states[recorded.stream_id] = aggregate
        if len(states) > _STREAM_CACHE:
            states.popitem(last=False)
        return aggregate
