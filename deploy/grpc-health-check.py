#!/usr/bin/env python3
"""Exit 0 when the gRPC server at ADDRESS answers SERVING to grpc.health.v1 (container health checks)."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: weft-grpc-health HOST:PORT", file=sys.stderr)
        return 2
    with grpc.insecure_channel(sys.argv[1]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as exc:
            print(f"{sys.argv[1]}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"{sys.argv[1]}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}", file=sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
