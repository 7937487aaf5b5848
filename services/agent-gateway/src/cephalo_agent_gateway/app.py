"""`create_app(settings)`: agent-gateway as a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cephalo_agent_gateway.api import routers
from cephalo_agent_gateway.db.models import OutboxEvent
from cephalo_agent_gateway.events.consumers import consumers
from cephalo_agent_gateway.runtime import (
    agent_bus,
    polling_listener,
    start_gateway,
    stop_gateway,
)
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_common.http.app import ServiceDefinition, create_service_app

SERVICE_NAME = "agent-gateway"


def create_app(settings: AgentGatewaySettings | None = None) -> FastAPI:
    app = create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings or AgentGatewaySettings(),
            routers=routers,
            outbox_model=OutboxEvent,
            consumers=consumers,
            on_startup=[start_gateway],
            on_shutdown=[stop_gateway],
            readiness_checks=[polling_listener, agent_bus],
            description="Deployment targets, their trust and connections; runs steps on agents.",
        )
    )
    return app
