"""A bare gRPC echo server, built like every fillpath service (same server, same
interceptors): the baseline of `fillpath bench`. Run as ``python -m fillpath.bench.echo``."""

from __future__ import annotations

import os
import sys
from typing import Any

import grpc

from fillpath.api.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from fillpath.infra.grpc_server import ServiceBinding, create_server, wait_for_signal
from fillpath.infra.workers import run_workers


class EchoServicer(diagnostics_pb2_grpc.EchoServiceServicer):
    def Echo(  # noqa: N802 - the proto's method name
        self, request: diagnostics_pb2.EchoMessage, context: grpc.ServicerContext
    ) -> diagnostics_pb2.EchoMessage:
        return request

    def binding(self) -> ServiceBinding:
        return ServiceBinding(
            name=diagnostics_pb2.DESCRIPTOR.services_by_name["EchoService"].full_name,
            add=lambda server: diagnostics_pb2_grpc.add_EchoServiceServicer_to_server(self, server),
        )


def serve_worker(index: int, address: str, ready: Any) -> None:
    running = create_server(address, [EchoServicer().binding()], max_workers=16, share_port=True)
    running.server.start()
    ready.put(index)
    wait_for_signal()
    running.stop(1.0)


def main() -> None:
    """Serves like the OMS does: one process per core on one port."""
    processes = os.cpu_count() or 1
    address, wait = run_workers(processes, "127.0.0.1:0", serve_worker)
    print(f"fillpath-echo ({processes} processes) listening on {address}", flush=True)
    sys.exit(wait())


if __name__ == "__main__":
    main()
