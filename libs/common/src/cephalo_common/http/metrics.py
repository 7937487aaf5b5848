"""Prometheus metrics per app (own registry, so several apps can live in one test process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "cephalo_http_requests_total",
            "HTTP requests handled.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "cephalo_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=registry,
        )


class MetricsMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: object, metrics: HttpMetrics) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.metrics = metrics

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(request.method, name, str(response.status_code)).inc()
        self.metrics.latency.labels(request.method, name).observe(time.perf_counter() - started)
        return response


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[], Awaitable[Response]]:
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def install_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_api_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
