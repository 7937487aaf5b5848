"""Prometheus metrics per app (own registry, so several apps can live in one test process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class MetricsMiddleware:
    """Counts requests by route and status; the latency runs until the last body byte is
    sent (pure ASGI, so streamed bodies pass untouched)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, name, str(status)).inc()
            self.metrics.latency.labels(method, name).observe(time.perf_counter() - started)


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[], Awaitable[Response]]:
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def install_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_api_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
