"""Domain errors to gRPC status codes with rich details, in one server interceptor.

Servicers raise `FillpathError`s and never touch status codes. The mapping (STYLE.md):
INVALID_ARGUMENT with a google.rpc.BadRequest naming each bad field and value; NOT_FOUND and
ALREADY_EXISTS with a ResourceInfo; FAILED_PRECONDITION with an ErrorInfo whose reason says which
rule (e.g. INVALID_TRANSITION); ABORTED for a lost concurrency race; UNAVAILABLE with a RetryInfo
when a dependency is down. Anything unexpected is logged with its traceback and answered INTERNAL
with a reference to the log line, never UNKNOWN with a traceback.

`describe` does the reverse for clients: a readable sentence from a failed call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any, cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fillpath.core.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    FailedPrecondition,
    FillpathError,
    IntegrityError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from fillpath.infra.grpc_interceptors import BehaviorInterceptor, StreamBehavior, UnaryBehavior

log = logging.getLogger(__name__)

DOMAIN = "fillpath.io"


def status_of(err: FillpathError) -> status_pb2.Status:
    """The google.rpc.Status that reports `err`."""
    details: list[Any] = []
    if isinstance(err, InvalidArgument):
        code = code_pb2.INVALID_ARGUMENT
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=f"{v.value!r}: {v.reason}"
                    )
                    for v in err.violations
                ]
            )
        )
    elif isinstance(err, NotFound | AlreadyExists):
        code = code_pb2.NOT_FOUND if isinstance(err, NotFound) else code_pb2.ALREADY_EXISTS
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=err.kind, resource_name=err.key, description=str(err)
            )
        )
    elif isinstance(err, FailedPrecondition):
        code = code_pb2.FAILED_PRECONDITION
        details.append(
            error_details_pb2.ErrorInfo(
                reason=err.reason,
                domain=DOMAIN,
                metadata={k: str(v) for k, v in err.facts.items()},
            )
        )
    elif isinstance(err, ConcurrencyConflict):
        code = code_pb2.ABORTED
        details.append(
            error_details_pb2.ErrorInfo(
                reason="CONCURRENCY_CONFLICT",
                domain=DOMAIN,
                metadata={
                    "stream_id": err.stream_id,
                    "expected_version": str(err.expected_version),
                },
            )
        )
    elif isinstance(err, Unavailable):
        code = code_pb2.UNAVAILABLE
        details.append(
            error_details_pb2.ErrorInfo(
                reason="DEPENDENCY_UNAVAILABLE",
                domain=DOMAIN,
                metadata={"dependency": err.dependency},
            )
        )
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
    elif isinstance(err, IntegrityError):
        code = code_pb2.DATA_LOSS
    else:
        code = code_pb2.INTERNAL
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return status_pb2.Status(code=code, message=str(err), details=packed)


def _abort(context: grpc.ServicerContext, method: str, err: Exception) -> None:
    if isinstance(err, FillpathError):
        if not isinstance(err, InvalidArgument | NotFound | AlreadyExists | FailedPrecondition):
            log.warning("%s failed: %s", method, err)
        context.abort_with_status(rpc_status.to_status(status_of(err)))
    reference = uuid.uuid4().hex[:12]
    log.error("%s failed unexpectedly (ref %s)", method, reference, exc_info=err)
    context.abort(
        grpc.StatusCode.INTERNAL, f"internal error in {method} (ref {reference} in the log)"
    )


class ErrorInterceptor(BehaviorInterceptor):
    """Turns exceptions raised by servicers into gRPC statuses (see module docstring)."""

    def wrap_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return behavior(request, context)
            except Exception as err:
                if _aborted_already(context):
                    raise
                _abort(context, method, err)
                raise  # unreachable: abort raises

        return guarded

    def wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from behavior(request, context)
            except Exception as err:
                if _aborted_already(context):
                    raise
                _abort(context, method, err)
                raise

        return guarded


def _aborted_already(context: grpc.ServicerContext) -> bool:
    # A servicer that called context.abort itself has set the code; let its status through.
    return cast(Any, context).code() not in (None, grpc.StatusCode.OK)


def describe(err: grpc.RpcError) -> str:
    """A readable account of a failed call: status, message and each detail."""
    call = cast(Any, err)  # every RpcError a stub raises is also a grpc.Call
    lines = [f"{call.code().name}: {call.details()}"]
    status = rpc_status.from_call(call)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines[0] = f"{call.code().name}: {len(bad.field_violations)} bad field(s)"
            lines.extend(f"  {v.field}: {v.description}" for v in bad.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            facts = ", ".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))
            lines.append(f"  reason: {info.reason}" + (f" ({facts})" if facts else ""))
    return "\n".join(lines)
