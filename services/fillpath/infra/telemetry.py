"""Tracing and request context for every gRPC service.

Each call runs in an OpenTelemetry span that continues the caller's trace (W3C `traceparent` in
the gRPC metadata). The span's trace context is written into the metadata of every event the
call records, with the actor (metadata `fillpath-actor`) and a correlation id
(`x-correlation-id`, or a new one), so an event can be traced back to the request that caused
it and the request forward to its events.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fillpath.infra.event_store import CommandContext
from fillpath.infra.grpc_interceptors import BehaviorInterceptor, StreamBehavior, UnaryBehavior

log = logging.getLogger(__name__)

ACTOR_KEY = "fillpath-actor"
CORRELATION_KEY = "x-correlation-id"
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("fillpath")


def configure_tracing(service: str, console: bool = False) -> None:
    """Records spans when they go somewhere: `console` prints finished ones (debugging).

    Without an exporter the default no-op provider stays: calls still continue the caller's
    trace, and events still carry its traceparent, without the cost of recording spans that
    nobody will read.
    """
    if not console:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}


def command_context(context: grpc.ServicerContext) -> CommandContext:
    """Who is calling and within which trace, for the events this call records."""
    metadata = _metadata(context)
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return CommandContext(
        actor=metadata.get(ACTOR_KEY) or context.peer(),
        correlation_id=metadata.get(CORRELATION_KEY) or str(uuid.uuid4()),
        traceparent=carrier.get("traceparent", ""),
    )


class TracingInterceptor(BehaviorInterceptor):
    """Runs each call in a server span that continues the caller's trace."""

    def wrap_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        def traced(request: Any, context: grpc.ServicerContext) -> Any:
            with _tracer.start_as_current_span(
                method, context=_parent(context), kind=trace.SpanKind.SERVER
            ):
                return behavior(request, context)

        return traced

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        def traced(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _tracer.start_as_current_span(
                method, context=_parent(context), kind=trace.SpanKind.SERVER
            ):
                yield from behavior(request, context)

        return traced


def _parent(context: grpc.ServicerContext) -> Any:
    return _propagator.extract(_metadata(context))
