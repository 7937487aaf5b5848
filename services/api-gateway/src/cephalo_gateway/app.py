"""`create_app(settings)`: api-gateway as a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cephalo_common.http.app import Runtime, ServiceDefinition, create_service_app
from cephalo_gateway.api import routers
from cephalo_gateway.db.models import OutboxEvent
from cephalo_gateway.deps import GATEWAY_EXTRA
from cephalo_gateway.domain.spaces import SpaceCache
from cephalo_gateway.proxy import Gateway
from cephalo_gateway.settings import GatewaySettings
from cephalo_gateway.upstream.client import UpstreamClient
from cephalo_gateway.upstream.metrics import GatewayMetrics
from cephalo_gateway.upstream.spaces import SpaceResolver

SERVICE_NAME = "api-gateway"


class _Upstreams:
    """Lifespan hooks: the pooled upstream client is opened at startup, closed at shutdown."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics: GatewayMetrics | None = None

    async def open(self, runtime: Runtime) -> None:
        if self.metrics is None:
            self.metrics = GatewayMetrics(runtime.registry)
        client = UpstreamClient(
            self.settings.upstream_urls(), timeout_seconds=self.settings.upstream_timeout_seconds
        )
        runtime.extras[GATEWAY_EXTRA] = Gateway(
            upstreams=client,
            spaces=SpaceResolver(client, SpaceCache(self.settings.space_cache_seconds)),
            metrics=self.metrics,
            sessionmaker=runtime.sessionmaker,
        )

    async def close(self, runtime: Runtime) -> None:
        gateway: Gateway | None = runtime.extras.pop(GATEWAY_EXTRA, None)
        if gateway is not None:
            await gateway.upstreams.aclose()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    upstreams = _Upstreams(settings)
    return create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings,
            routers=routers,
            outbox_model=OutboxEvent,
            on_startup=[upstreams.open],
            on_shutdown=[upstreams.close],
            title="Cephalo API",
            description="The public API of Cephalo: every service behind one address.",
            openapi_url=None,
        )
    )
