"""The errors of fillpath, one tree under `FillpathError`.

Each error says what was wrong and with which value, so that the gRPC layer can turn it into a
status with details without knowing the domain, and a person reading a log knows what to fix.
Errors are *temporary* (`retryable = True`: try again after a delay, e.g. a lost optimistic
concurrency race or a dependency that is down) or *permanent* (retrying the same request cannot
help).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


class FillpathError(Exception):
    """Root of every error fillpath raises on purpose."""

    retryable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. ``children[2].quantity``), value and why."""

    field: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"{self.field}={self.value!r}: {self.reason}"


class InvalidArgument(FillpathError):
    """The request is malformed; nothing was changed. Carries every violation found."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations = tuple(violations)
        super().__init__("; ".join(str(v) for v in self.violations))

    @classmethod
    def single(cls, field: str, value: object, reason: str) -> InvalidArgument:
        return cls([FieldViolation(field, value, reason)])


class NotFound(FillpathError):
    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class AlreadyExists(FillpathError):
    """An identifier is already taken by something different from what the request describes."""

    def __init__(self, kind: str, key: str, detail: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} already exists: {detail}")


class FailedPrecondition(FillpathError):
    """The request is well formed but the current state does not allow it."""

    def __init__(self, reason: str, message: str, **facts: object) -> None:
        self.reason = reason
        self.facts = facts
        super().__init__(message)


class InvalidTransition(FailedPrecondition):
    """The order lifecycle has no edge for this event from the order's current status."""

    def __init__(self, order_id: str, status: str, event: str) -> None:
        super().__init__(
            "INVALID_TRANSITION",
            f"order {order_id} is {status}: {event} is not allowed",
            order_id=order_id,
            status=status,
            event=event,
        )
        self.order_id = order_id
        self.status = status
        self.event = event


class Overfill(FailedPrecondition):
    def __init__(self, order_id: str, leaves: int, quantity: int) -> None:
        super().__init__(
            "OVERFILL",
            f"order {order_id}: fill of {quantity} exceeds leaves quantity {leaves}",
            order_id=order_id,
            leaves=leaves,
            quantity=quantity,
        )


class ConcurrencyConflict(FillpathError):
    """Another writer appended to the stream first; reload and decide again."""

    retryable = True

    def __init__(self, stream_id: str, expected_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        super().__init__(
            f"stream {stream_id} moved past version {expected_version} (concurrent write)"
        )


class Unavailable(FillpathError):
    """A dependency (database, cache, broker) did not answer."""

    retryable = True

    def __init__(self, dependency: str, detail: str) -> None:
        self.dependency = dependency
        super().__init__(f"{dependency} unavailable: {detail}")


class IntegrityError(FillpathError):
    """Stored data contradicts itself (a broken hash chain, an impossible event sequence)."""
