"""`create_app(settings)`: release-service as a FastAPI app (the canonical example to copy)."""

from __future__ import annotations

from fastapi import FastAPI

from cephalo_common.http.app import ServiceDefinition, create_service_app
from cephalo_release.api import routers
from cephalo_release.clients.lifespan import close_clients, open_clients
from cephalo_release.db.models import OutboxEvent
from cephalo_release.events.consumers import consumers
from cephalo_release.events.scheduler import start_scheduler
from cephalo_release.events.secrets import start_secrets
from cephalo_release.settings import ReleaseSettings

SERVICE_NAME = "release-service"


def create_app(settings: ReleaseSettings | None = None) -> FastAPI:
    return create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings or ReleaseSettings(),
            routers=routers,
            outbox_model=OutboxEvent,
            consumers=consumers,
            on_startup=[start_secrets, open_clients, start_scheduler],
            on_shutdown=[close_clients],
            description=(
                "Spaces, environments, lifecycles, projects, channels, processes, releases, "
                "deployments and the dashboard."
            ),
        )
    )
