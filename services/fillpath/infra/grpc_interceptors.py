"""A base for server interceptors that wrap what each method does.

grpc's sync interceptor API hands back a method handler (a namedtuple at run time); this
replaces its unary-unary or unary-stream behavior with a wrapped one, so an interceptor only
says how to wrap a call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc

UnaryBehavior = Callable[[Any, grpc.ServicerContext], Any]
StreamBehavior = Callable[[Any, grpc.ServicerContext], Iterator[Any]]


class BehaviorInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    def wrap_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        raise NotImplementedError

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        raise NotImplementedError

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        tuple_handler = cast(Any, handler)
        if tuple_handler.unary_unary is not None:
            return tuple_handler._replace(
                unary_unary=self.wrap_unary(method, tuple_handler.unary_unary)
            )
        if tuple_handler.unary_stream is not None:
            return tuple_handler._replace(
                unary_stream=self.wrap_stream(method, tuple_handler.unary_stream)
            )
        return handler
