"""The MonitorService gRPC servicer: requests to monitor calls, results to messages.

Errors are raised as domain errors and mapped to status codes by the server's interceptor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Any

import grpc

from fillpath.api.v1 import common_pb2, events_pb2, monitor_pb2, monitor_pb2_grpc
from fillpath.core.errors import InvalidArgument
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.infra.telemetry import command_context
from fillpath.monitor.live import NANOS, Execution
from fillpath.monitor.service import Monitor


def live_execution(execution: Execution) -> monitor_pb2.LiveExecution:
    message = monitor_pb2.LiveExecution(
        order_id=execution.order_id,
        symbol=execution.symbol,
        side=common_pb2.SIDE_BUY if execution.side > 0 else common_pb2.SIDE_SELL,
        quantity=execution.quantity,
        filled_quantity=execution.filled_quantity,
        scheduled_quantity=execution.scheduled_quantity,
        participation=execution.participation or 0.0,
        slippage_vs_arrival_bps=execution.slippage_vs_arrival_bps or 0.0,
        child_orders_by_venue=dict(execution.child_orders_by_venue),
        rejects=execution.rejects,
        status=execution.status,  # type: ignore[arg-type]
    )
    message.updated_at.FromNanoseconds(int(execution.updated_at * NANOS))
    return message


def order_tca(order_id: str, result: Mapping[str, Any]) -> monitor_pb2.OrderTca:
    slip = result["slippage_bps"]
    shortfall = result["implementation_shortfall"]["bps"]
    average = result["average_price"]
    return monitor_pb2.OrderTca(
        order_id=order_id,
        fill_rate=result["fill_rate"],
        avg_price_nanos=None if average is None else round(average * NANOS),
        arrival_slippage_bps=slip["arrival"] or 0.0,
        arrival_slippage_with_fees_bps=slip["arrival_with_fees"] or 0.0,
        vwap_slippage_bps=slip["vwap"] or 0.0,
        twap_slippage_bps=slip["twap"] or 0.0,
        participation=result["participation"] or 0.0,
        delay_cost_bps=shortfall["delay"],
        trading_cost_bps=shortfall["trading"],
        opportunity_cost_bps=shortfall["opportunity"],
        fees_bps=shortfall["fees"],
        permanent_impact_bps=result["impact_bps"]["permanent"] or 0.0,
        temporary_impact_bps=result["impact_bps"]["temporary"] or 0.0,
    )


class MonitorServicer(monitor_pb2_grpc.MonitorServiceServicer):
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=monitor_pb2.DESCRIPTOR.services_by_name["MonitorService"].full_name,
            add=lambda server: monitor_pb2_grpc.add_MonitorServiceServicer_to_server(self, server),
        )

    def GetLiveExecution(
        self, request: monitor_pb2.GetLiveExecutionRequest, context: grpc.ServicerContext
    ) -> monitor_pb2.LiveExecution:
        if not request.order_id:
            raise InvalidArgument.single("order_id", request.order_id, "required")
        return live_execution(self._monitor.execution(request.order_id))

    def StreamLiveExecutions(
        self, request: monitor_pb2.StreamLiveExecutionsRequest, context: grpc.ServicerContext
    ) -> Iterator[monitor_pb2.LiveExecution]:
        updates = self._monitor.stream(self._monitor.executions, context.is_active)
        # What is active now first, then every change (the stream opened before the snapshot,
        # so nothing between the two is missed; a change may come twice).
        for execution in self._monitor.all_executions():
            if execution.active and request.account in ("", execution.account):
                yield live_execution(execution)
        for execution in updates:
            if request.account in ("", execution.account):
                yield live_execution(execution)

    def GetOrderTca(
        self, request: monitor_pb2.GetOrderTcaRequest, context: grpc.ServicerContext
    ) -> monitor_pb2.OrderTca:
        if not request.order_id:
            raise InvalidArgument.single("order_id", request.order_id, "required")
        return order_tca(request.order_id, self._monitor.order_tca(request.order_id))

    def QueryTca(
        self, request: monitor_pb2.QueryTcaRequest, context: grpc.ServicerContext
    ) -> monitor_pb2.QueryTcaResponse:
        start = getattr(request, "from").ToDatetime(UTC) if request.HasField("from") else None
        end = request.to.ToDatetime(UTC) if request.HasField("to") else None
        groups = self._monitor.query_tca(request.group_by, start, end)
        return monitor_pb2.QueryTcaResponse(
            groups=[
                monitor_pb2.TcaGroup(
                    key=key,
                    orders=d["count"],
                    mean_bps=d.get("weighted_mean") or d["mean"],
                    p50_bps=d["median"],
                    p90_bps=d["p90"],
                    stddev_bps=d["stdev"],
                )
                for key, d in groups.items()
            ]
        )

    def ListAlerts(
        self, request: monitor_pb2.ListAlertsRequest, context: grpc.ServicerContext
    ) -> monitor_pb2.ListAlertsResponse:
        size = request.page.page_size or 100
        if not 1 <= size <= 1000:
            raise InvalidArgument.single("page.page_size", size, "1..1000")
        alerts, token = self._monitor.alerts(
            unacknowledged_only=request.unacknowledged_only,
            page_size=size,
            page_token=request.page.page_token,
        )
        return monitor_pb2.ListAlertsResponse(
            alerts=[a.to_event() for a in alerts], next_page_token=token
        )

    def StreamAlerts(
        self, request: monitor_pb2.StreamAlertsRequest, context: grpc.ServicerContext
    ) -> Iterator[events_pb2.AlertRaised]:
        for alert in self._monitor.stream(self._monitor.alert_stream, context.is_active):
            yield alert.to_event()

    def AcknowledgeAlert(
        self, request: monitor_pb2.AcknowledgeAlertRequest, context: grpc.ServicerContext
    ) -> events_pb2.AlertAcknowledged:
        if not request.alert_id:
            raise InvalidArgument.single("alert_id", request.alert_id, "required")
        alert = self._monitor.acknowledge(
            request.alert_id, command_context(context).actor, request.note
        )
        return alert.acknowledged_event()

    def GetReport(
        self, request: monitor_pb2.GetReportRequest, context: grpc.ServicerContext
    ) -> monitor_pb2.GetReportResponse:
        kind = request.format or "html"
        if kind not in ("html", "csv"):
            raise InvalidArgument.single("format", request.format, "html or csv")
        if not request.order_id and not request.day:
            raise InvalidArgument.single("order_id", "", "an order id or a day is required")
        page, table = self._monitor.report(request.order_id, request.day)
        if kind == "csv":
            return monitor_pb2.GetReportResponse(content_type="text/csv", content=table.encode())
        return monitor_pb2.GetReportResponse(
            content_type="text/html; charset=utf-8", content=page.encode()
        )
