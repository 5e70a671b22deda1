"""The AlgoService gRPC servicer: requests to `Algos` calls, executions to messages.

Domain errors are mapped to status codes by the server's interceptor (InvalidArgument →
INVALID_ARGUMENT with a field violation per bad field, NotFound → NOT_FOUND,
FailedPrecondition → FAILED_PRECONDITION).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

import grpc

from fillpath.algo.execution import ExecutionState
from fillpath.algo.plan import plan
from fillpath.algo.requests import enum_of, start_request, time_of
from fillpath.algo.service import Algos, Summary
from fillpath.api.v1 import algo_pb2, algo_pb2_grpc, common_pb2
from fillpath.core.enums import AlgorithmKind, Side, Urgency
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.price import Price
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.infra.telemetry import command_context

MAX_PAGE_SIZE = 1000


def execution_message(summary: Summary) -> algo_pb2.Execution:
    message = algo_pb2.Execution(
        execution_id=summary.execution_id,
        order_id=summary.order_id,
        algorithm=common_pb2.AlgorithmKind.ValueType(summary.algorithm.value),
        algo_profile=summary.profile,
        state=algo_pb2.ExecutionState.ValueType(summary.state.value),
        target_quantity=summary.quantity,
        scheduled_quantity=summary.scheduled,
        executed_quantity=summary.executed,
    )
    message.start_time.FromDatetime(summary.start)
    message.end_time.FromDatetime(summary.end)
    return message


class AlgoServicer(algo_pb2_grpc.AlgoServiceServicer):
    def __init__(self, algos: Algos, instruments: Mapping[str, Instrument]) -> None:
        self._algos = algos
        self._instruments = instruments

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=algo_pb2.DESCRIPTOR.services_by_name["AlgoService"].full_name,
            add=lambda server: algo_pb2_grpc.add_AlgoServiceServicer_to_server(self, server),
        )

    def StartExecution(
        self, request: algo_pb2.StartExecutionRequest, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        if not request.order_id:
            raise InvalidArgument.single("order_id", "", "required")
        start = start_request(request.order_id, request.instructions)
        return execution_message(self._algos.start(start, command_context(context)))

    def PauseExecution(
        self, request: algo_pb2.ExecutionRef, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        return execution_message(self._algos.pause(request.execution_id, command_context(context)))

    def ResumeExecution(
        self, request: algo_pb2.ExecutionRef, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        return execution_message(self._algos.resume(request.execution_id, command_context(context)))

    def CancelExecution(
        self, request: algo_pb2.ExecutionRef, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        return execution_message(self._algos.cancel(request.execution_id, command_context(context)))

    def AdjustExecution(
        self, request: algo_pb2.AdjustExecutionRequest, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        summary = self._algos.adjust(
            request.execution_id,
            command_context(context),
            end=time_of(request.end_time, request.HasField("end_time")),
            max_participation_bps=request.max_participation_bps or None,
            urgency=enum_of(Urgency, "urgency", request.urgency),  # type: ignore[arg-type]
            limit_price=(
                Price(request.limit_price_nanos) if request.HasField("limit_price_nanos") else None
            ),
        )
        return execution_message(summary)

    def GetExecution(
        self, request: algo_pb2.ExecutionRef, context: grpc.ServicerContext
    ) -> algo_pb2.Execution:
        return execution_message(self._algos.get(request.execution_id))

    def ListExecutions(
        self, request: algo_pb2.ListExecutionsRequest, context: grpc.ServicerContext
    ) -> algo_pb2.ListExecutionsResponse:
        size = request.page.page_size or 100
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument.single("page.page_size", size, f"1..{MAX_PAGE_SIZE}")
        bad = [s for s in request.states if s not in ExecutionState._value2member_map_]
        if bad:
            raise InvalidArgument([FieldViolation("states", s, "an ExecutionState") for s in bad])
        found, token = self._algos.summaries(
            [ExecutionState(s) for s in request.states], size, request.page.page_token
        )
        return algo_pb2.ListExecutionsResponse(
            executions=[execution_message(s) for s in found], next_page_token=token
        )

    def PlanSchedule(
        self, request: algo_pb2.PlanScheduleRequest, context: grpc.ServicerContext
    ) -> algo_pb2.PlanScheduleResponse:
        instrument = self._instruments.get(request.symbol)
        if instrument is None:
            raise InvalidArgument.single("symbol", request.symbol, "unknown instrument")
        if request.side not in Side._value2member_map_:
            raise InvalidArgument.single("side", request.side, "BUY, SELL or SELL_SHORT")
        if not (request.HasField("start_time") and request.HasField("end_time")):
            raise InvalidArgument.single("end_time", "", "start_time and end_time are required")
        start = request.start_time.ToDatetime(tzinfo=UTC)
        planned = plan(
            self._algos.profiles,
            instrument,
            algorithm=enum_of(AlgorithmKind, "algorithm", request.algorithm),  # type: ignore[arg-type]
            profile=request.algo_profile,
            quantity=request.quantity,
            start=start,
            end=request.end_time.ToDatetime(tzinfo=UTC),
            params=dict(request.params),
            calendar=self._algos.calendar_of(start),
        )
        response = algo_pb2.PlanScheduleResponse(
            expected_cost=planned.expected_cost, cost_variance=planned.variance
        )
        for period, (at, quantity, remaining) in enumerate(planned.slices, start=1):
            entry = response.slices.add(period=period, quantity=quantity, remaining=remaining)
            entry.time.FromDatetime(at)
        return response
