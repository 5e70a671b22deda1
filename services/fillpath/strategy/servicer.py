"""The StrategyService gRPC servicer: requests to `Strategies` calls, choices to messages.

Domain errors are mapped to status codes by the server's interceptor (InvalidArgument →
INVALID_ARGUMENT with a field violation per bad field, FailedPrecondition →
FAILED_PRECONDITION).
"""

from __future__ import annotations

from datetime import UTC

import grpc

from fillpath.api.v1 import common_pb2, strategy_pb2, strategy_pb2_grpc
from fillpath.core.errors import InvalidArgument
from fillpath.core.strategy import StrategySelected
from fillpath.infra.grpc_server import ServiceBinding
from fillpath.infra.telemetry import command_context
from fillpath.strategy.choice import SelectionRequest, request_of
from fillpath.strategy.performance import Tracker
from fillpath.strategy.registry import ModelInfo, Registry, refresh_model
from fillpath.strategy.service import Strategies


def selection_message(selected: StrategySelected) -> strategy_pb2.SelectStrategyResponse:
    message = strategy_pb2.SelectStrategyResponse(
        algo_profile=selected.algo_profile,
        algorithm=common_pb2.AlgorithmKind.ValueType(selected.algorithm.value),
        urgency=common_pb2.Urgency.ValueType(selected.urgency.value if selected.urgency else 0),
        params=dict(selected.params),
        venue_preferences=selected.venue_preferences,
        excluded_venues=selected.excluded_venues,
        allow_dark=selected.allow_dark,
        max_participation_bps=selected.max_participation_bps,
    )
    if selected.start_time is not None:
        message.start_time.FromDatetime(selected.start_time)
    if selected.end_time is not None:
        message.end_time.FromDatetime(selected.end_time)
    explanation = message.explanation
    explanation.rule = selected.rule
    explanation.strategy = selected.strategy
    explanation.model_version = selected.model_version
    explanation.text = selected.explanation
    explanation.features.update(dict(selected.features))
    for name, cost in selected.candidate_costs:
        explanation.candidates.add(algo_profile=name, predicted_cost_bps=cost)
    return message


def model_message(info: ModelInfo) -> strategy_pb2.ModelInfo:
    message = strategy_pb2.ModelInfo(
        version=info.version, promoted=info.promoted, metrics=info.metrics,
        features=list(info.features),
    )  # fmt: skip
    message.trained_at.FromDatetime(info.trained_at)
    return message


class StrategyServicer(strategy_pb2_grpc.StrategyServiceServicer):
    def __init__(self, strategies: Strategies, registry: Registry, tracker: Tracker) -> None:
        self._strategies = strategies
        self._registry = registry
        self._tracker = tracker

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=strategy_pb2.DESCRIPTOR.services_by_name["StrategyService"].full_name,
            add=lambda server: strategy_pb2_grpc.add_StrategyServiceServicer_to_server(
                self, server
            ),
        )

    def SelectStrategy(
        self, request: strategy_pb2.SelectStrategyRequest, context: grpc.ServicerContext
    ) -> strategy_pb2.SelectStrategyResponse:
        return selection_message(
            self._strategies.choose(selection_request(request), command_context(context))
        )

    def GetPerformance(
        self, request: strategy_pb2.GetPerformanceRequest, context: grpc.ServicerContext
    ) -> strategy_pb2.GetPerformanceResponse:
        since = getattr(request, "from")  # a Python keyword as a field name
        found = self._tracker.performance(
            strategy=request.strategy, profile=request.algo_profile,
            since=since.ToDatetime(tzinfo=UTC) if request.HasField("from") else None,
            until=request.to.ToDatetime(tzinfo=UTC) if request.HasField("to") else None,
        )  # fmt: skip
        response = strategy_pb2.GetPerformanceResponse()
        for p in found.profiles:
            response.profiles.add(
                strategy=p.strategy, algo_profile=p.algo_profile, orders=p.orders,
                mean_cost_bps=p.mean_cost_bps, stddev_cost_bps=p.stddev_cost_bps,
                mean_prediction_error_bps=p.mean_prediction_error_bps,
            )  # fmt: skip
        for m in found.models:
            response.models.add(
                version=m.version, orders=m.orders, mean_cost_bps=m.mean_cost_bps,
                mean_prediction_error_bps=m.mean_prediction_error_bps,
                mean_abs_prediction_error_bps=m.mean_abs_prediction_error_bps,
                promoted=m.promoted,
            )  # fmt: skip
        for d in found.drift:
            point = response.drift.add(
                model_version=d.model_version, orders=d.orders,
                mean_prediction_error_bps=d.mean_prediction_error_bps,
            )  # fmt: skip
            point.day.FromDatetime(d.day)
        return response

    def ListModels(
        self, request: strategy_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> strategy_pb2.ListModelsResponse:
        return strategy_pb2.ListModelsResponse(
            models=[model_message(m) for m in self._registry.list()]
        )

    def PromoteModel(
        self, request: strategy_pb2.PromoteModelRequest, context: grpc.ServicerContext
    ) -> strategy_pb2.PromoteModelResponse:
        """Promotes a stored model (NOT_FOUND naming it otherwise); the service ranks with it
        from the next choice on."""
        if not request.version:
            raise InvalidArgument.single("version", "", "required")
        info = self._registry.promote(request.version)
        refresh_model(self._strategies, self._registry)
        return strategy_pb2.PromoteModelResponse(model=model_message(info))


def selection_request(request: strategy_pb2.SelectStrategyRequest) -> SelectionRequest:
    """Raises InvalidArgument naming the bad field."""
    if not request.order_id:
        raise InvalidArgument.single("order_id", "", "required")
    return request_of(
        request.order_id, request.account, request.symbol, request.side, request.quantity,
        request.urgency or request.instructions.urgency, request.instructions,
    )  # fmt: skip
