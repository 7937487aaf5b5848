"""`create_app(settings)`: deploy-orchestrator as a FastAPI app.

The lifespan (from cephalo_common) owns the engine, the broker, the outbox relay and the
consumers; the hooks here add what this service holds itself: the agent-gateway HTTP client,
the task runner and the tasks-by-state gauge.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from cephalo_common.http.app import Runtime, ServiceDefinition, create_service_app
from cephalo_orchestrator.api import routers
from cephalo_orchestrator.clients.agent_gateway import AgentGatewayMachines, create_client
from cephalo_orchestrator.clients.package_feed import FeedPackages
from cephalo_orchestrator.db.models import OutboxEvent
from cephalo_orchestrator.deps import ARTIFACT_STORE_KEY, HTTP_CLIENT_KEY
from cephalo_orchestrator.events.consumers import RUNNER_KEY, consumers
from cephalo_orchestrator.metrics import refresh_tasks_gauge, tasks_gauge
from cephalo_orchestrator.runner import TaskRunner, node_name
from cephalo_orchestrator.settings import OrchestratorSettings

SERVICE_NAME = "deploy-orchestrator"
RUNNER_TASK_KEY = "runner_task"
FEED_CLIENT_KEY = "package_feed_client"  # pragma: allowlist secret


def _settings(runtime: Runtime) -> OrchestratorSettings:
    settings = runtime.settings
    assert isinstance(settings, OrchestratorSettings)
    return settings


async def start_runner(runtime: Runtime) -> None:
    settings = _settings(runtime)
    client = create_client(settings.agent_gateway_url, settings.agent_gateway_timeout_seconds)
    runtime.extras[HTTP_CLIENT_KEY] = client
    if not settings.run_workers:
        return
    feed_client = create_client(settings.package_feed_url, settings.package_feed_timeout_seconds)
    runtime.extras[FEED_CLIENT_KEY] = feed_client
    gateway = AgentGatewayMachines(client)
    feed = FeedPackages(feed_client, settings.package_download_base_url)
    runner = TaskRunner(runtime.sessionmaker, gateway, gateway, feed, settings, node_name())
    runtime.extras[RUNNER_KEY] = runner
    task = asyncio.create_task(runner.run(), name="task-runner")
    runtime.extras[RUNNER_TASK_KEY] = task
    runtime.tasks.append(task)


async def start_metrics(runtime: Runtime) -> None:
    gauge = tasks_gauge(runtime)
    every = _settings(runtime).metrics_refresh_seconds
    runtime.tasks.append(
        asyncio.create_task(refresh_tasks_gauge(runtime, gauge, every), name="tasks-gauge")
    )


async def stop_runner(runtime: Runtime) -> None:
    """Stop the runner before its HTTP client closes under it."""
    task = runtime.extras.pop(RUNNER_TASK_KEY, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for key in (HTTP_CLIENT_KEY, FEED_CLIENT_KEY, ARTIFACT_STORE_KEY):
        client = runtime.extras.pop(key, None)
        if client is not None:
            await client.aclose()


def create_app(settings: OrchestratorSettings | None = None) -> FastAPI:
    return create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings or OrchestratorSettings(),
            routers=routers,
            outbox_model=OutboxEvent,
            consumers=consumers,
            on_startup=[start_runner, start_metrics],
            on_shutdown=[stop_runner],
            description="Server tasks: deployments run step by step on their targets, with logs.",
        )
    )
