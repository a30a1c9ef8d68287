"""grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md).

Debian ships grpcio without grpcio-health-checking, so this is a small implementation of the same
service: "" is the whole server, "tiergate.v1.Tier" the tier service. Status starts NOT_SERVING
and turns SERVING once the model is loaded and warmed up.
"""

from __future__ import annotations

import threading
from typing import Dict, Iterator

import grpc

from .gen.grpc.health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, services: tuple) -> None:
        self._cond = threading.Condition()
        self._status: Dict[str, int] = {name: NOT_SERVING for name in ("",) + tuple(services)}

    def set_all(self, status: int) -> None:
        with self._cond:
            for name in self._status:
                self._status[name] = status
            self._cond.notify_all()

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
              ) -> health_pb2.HealthCheckResponse:
        with self._cond:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
              ) -> Iterator[health_pb2.HealthCheckResponse]:
        last = None
        while context.is_active():
            with self._cond:
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                if status == last:
                    # Wake up now and then to notice a client that went away.
                    self._cond.wait(timeout=1.0)
                    continue
            last = status
            yield health_pb2.HealthCheckResponse(status=status)
