"""The gRPC server every fillpath service runs in.

`create_server(address, services)` returns the server and the port it bound (pass port 0 in
tests), with the tracing and error interceptors, grpc.health.v1 (every service SERVING) and
server reflection, so `grpcurl` works against any service. `wait_for_signal` blocks until
SIGTERM or SIGINT; `RunningServer.stop` turns health to NOT_SERVING and stops with a grace
period for calls in flight.

A process that serves gRPC runs many threads (the server's, relays, writers, consumers) that
mostly wait and then have a millisecond's work. By default the interpreter makes a woken thread
wait up to 5 ms for another to give up the GIL; `create_server` shortens that to
`SWITCH_INTERVAL_SECONDS`. Measured with `fillpath bench monitor` (a fill's commit to its
figures in a client's hands, through the relay, the bus, the monitor and a stream, all in one
process): p50 8–12 → 4 ms and p99 18–26 → 11–13 ms.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fillpath.infra.grpc_errors import ErrorInterceptor
from fillpath.infra.telemetry import TracingInterceptor

SWITCH_INTERVAL_SECONDS = 0.0005


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A servicer to add: its full proto name and the generated ``add_…_to_server`` call."""

    name: str
    add: Callable[[grpc.Server], None]


@dataclass(slots=True)
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    names: tuple[str, ...]

    def stop(self, grace: float = 5.0) -> None:
        for name in (*self.names, ""):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.stop(grace).wait()


def create_server(
    address: str,
    services: Sequence[ServiceBinding],
    *,
    max_workers: int = 32,
    share_port: bool = False,
) -> RunningServer:
    """A server for `services` on `address`; `share_port` lets sibling worker processes bind
    the same port (fillpath.infra.workers). Otherwise a port in use is an error."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[TracingInterceptor(), ErrorInterceptor()],
        options=[("grpc.so_reuseport", 1 if share_port else 0)],
    )
    for binding in services:
        binding.add(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(b.name for b in services)
    for name in (*names, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
        pool=cast(descriptor_pool.DescriptorPool, _MethodAwarePool(descriptor_pool.Default())),
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return RunningServer(server=server, port=port, health=health_servicer, names=names)


class _MethodAwarePool:
    """The default descriptor pool, that also finds the file of ``package.Service.Method``.

    grpcurl's `describe` and ghz ask reflection for a method's symbol; protobuf's Python pool
    knows services but not their methods by name.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, name: str) -> Any:  # noqa: N802 - protobuf's API
        try:
            return self._pool.FindFileContainingSymbol(name)
        except KeyError:
            service_name, _, method = name.rpartition(".")
            service = self._pool.FindServiceByName(service_name)
            if method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def wait_for_signal(stop: threading.Event | None = None) -> int:
    """Blocks until SIGTERM or SIGINT arrives (which sets `stop`) or the caller sets `stop`;
    returns the signal's number, or 0 when it was the caller."""
    received: list[int] = []
    stop = stop or threading.Event()

    def handle(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    stop.wait()
    return received[0] if received else 0
