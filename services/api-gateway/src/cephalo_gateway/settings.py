"""api-gateway settings: env vars `CEPHALO_GATEWAY_…`."""

from __future__ import annotations

from pydantic import Field

from cephalo_common.settings import ServiceSettings, service_config
from cephalo_gateway.domain.routing import Upstream


class GatewaySettings(ServiceSettings):
    model_config = service_config("gateway")

    port: int = Field(8080, ge=0, le=65535)
    release_service_url: str = Field(
        "http://127.0.0.1:8081", description="Internal base URL of release-service."
    )
    orchestrator_url: str = Field(
        "http://127.0.0.1:8082", description="Internal base URL of deploy-orchestrator."
    )
    package_feed_url: str = Field(
        "http://127.0.0.1:8083", description="Internal base URL of package-feed."
    )
    agent_gateway_url: str = Field(
        "http://127.0.0.1:8084", description="Internal base URL of agent-gateway's HTTP API."
    )
    upstream_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Connect, and each read or write of a forwarded request (not the whole "
        "transfer, so large package uploads and downloads are not cut short).",
    )
    space_cache_seconds: float = Field(
        30.0, ge=0, description="How long a space slug → id lookup is reused (0 disables)."
    )

    def upstream_urls(self) -> dict[Upstream, str]:
        return {
            Upstream.RELEASE_SERVICE: self.release_service_url,
            Upstream.DEPLOY_ORCHESTRATOR: self.orchestrator_url,
            Upstream.PACKAGE_FEED: self.package_feed_url,
            Upstream.AGENT_GATEWAY: self.agent_gateway_url,
        }
