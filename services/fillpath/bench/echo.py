"""A bare gRPC echo server, built like every fillpath service (same server, same
interceptors): the baseline of `fillpath bench`. Run as ``python -m fillpath.bench.echo``."""

from __future__ import annotations

import sys

import grpc

from fillpath.api.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from fillpath.infra.grpc_server import ServiceBinding, create_server, wait_for_signal


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


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    running = create_server(address, [EchoServicer().binding()])
    running.server.start()
    print(f"fillpath-echo listening on {address.rsplit(':', 1)[0]}:{running.port}", flush=True)
    wait_for_signal()
    running.stop(1.0)


if __name__ == "__main__":
    main()
