"""`create_service_app()`: the one way a Cephalo service becomes a FastAPI app.

The lifespan owns every client: the database engine, the NATS broker, the outbox relay and
the consumers. Nothing connects eagerly: a service whose Postgres or NATS is down still
starts, answers `/livez`, and reports 503 on `/readyz` until both answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cephalo_common.db.engine import create_engine, create_sessionmaker, ping
from cephalo_common.db.outbox import OutboxMixin, OutboxRelay, pending_count
from cephalo_common.http.metrics import install_metrics
from cephalo_common.http.problems import install_problem_handlers
from cephalo_common.ids import utc_now, uuid7
from cephalo_common.logging import configure_logging, get_logger
from cephalo_common.messaging.broker import Broker, ConsumerSpec
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import ServiceSettings

log = get_logger(__name__)
READINESS_TIMEOUT_SECONDS = 2.0


@dataclass
class Runtime:
    """Everything a running service holds; found on `app.state.runtime`."""

    name: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    registry: CollectorRegistry
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


ConsumerFactory = Callable[[Runtime], Sequence[ConsumerSpec]]
Hook = Callable[[Runtime], Awaitable[None]]


@dataclass
class ServiceDefinition:
    name: str
    settings: ServiceSettings
    routers: Sequence[APIRouter] = ()
    outbox_model: type[OutboxMixin] | None = None
    consumers: ConsumerFactory | None = None
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    readiness_checks: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    title: str | None = None
    description: str = ""
    broker_factory: Callable[[ServiceSettings, str], Broker] | None = None
    openapi_url: str | None = "/openapi.json"


def _default_broker(settings: ServiceSettings, name: str) -> Broker:
    return NatsBroker(settings.nats, name=name)


@asynccontextmanager
async def _lifespan(app: FastAPI, definition: ServiceDefinition) -> AsyncIterator[None]:
    settings = definition.settings
    engine = create_engine(settings.database, application_name=definition.name)
    broker = (definition.broker_factory or _default_broker)(settings, definition.name)
    runtime = Runtime(
        name=definition.name,
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        broker=broker,
        registry=app.state.registry,
    )
    app.state.runtime = runtime
    if isinstance(broker, NatsBroker):
        await broker.start()
    if settings.run_workers:
        _start_workers(runtime, definition)
    for hook in definition.on_startup:
        await hook(runtime)
    log.info("service started", service=definition.name)
    try:
        yield
    finally:
        for hook in definition.on_shutdown:
            await hook(runtime)
        await _stop_tasks(runtime.tasks)
        if isinstance(broker, NatsBroker):
            await broker.close()
        await engine.dispose()
        log.info("service stopped", service=definition.name)


async def _stop_tasks(tasks: list[asyncio.Task[None]], timeout: float = 10.0) -> None:
    """Cancel background work and wait a bounded time: shutdown must never hang."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        log.error("background task did not stop", task=task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(BaseException):
                task.result()


def _start_workers(runtime: Runtime, definition: ServiceDefinition) -> None:
    messaging = runtime.settings.messaging
    if definition.outbox_model is not None:
        runtime.relay = OutboxRelay(
            runtime.sessionmaker,
            definition.outbox_model,
            runtime.broker,
            batch_size=messaging.outbox_batch_size,
            poll_seconds=messaging.outbox_poll_seconds,
        )
        runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
        _register_outbox_gauge(runtime, definition.outbox_model)
        _replay_on_store_loss(runtime, runtime.relay)
    for spec in definition.consumers(runtime) if definition.consumers else ():
        runtime.tasks.append(asyncio.create_task(runtime.broker.consume(spec), name=spec.name))


def _replay_on_store_loss(runtime: Runtime, relay: OutboxRelay) -> None:
    """What NATS may have lost is published again from the outbox (see the broker)."""
    messaging = runtime.settings.messaging
    broker = runtime.broker
    if not isinstance(broker, NatsBroker):
        return
    if messaging.replay_after_store_loss_seconds > 0:
        window = timedelta(seconds=messaging.replay_after_store_loss_seconds)

        async def store_lost() -> None:
            await relay.replay_published_since(utc_now() - window)

        broker.on_store_lost(store_lost)
    if messaging.replay_before_disconnect_seconds > 0:
        margin = timedelta(seconds=messaging.replay_before_disconnect_seconds)

        async def reconnected(dropped_at: datetime) -> None:
            await relay.replay_published_since(dropped_at - margin)

        broker.on_reconnected(reconnected)


def _register_outbox_gauge(runtime: Runtime, model: type[OutboxMixin]) -> None:
    gauge = Gauge(
        "cephalo_outbox_pending", "Outbox rows not yet published.", registry=runtime.registry
    )

    async def refresh() -> None:
        while True:
            with contextlib.suppress(Exception):
                async with runtime.sessionmaker() as session:
                    gauge.set(await pending_count(session, model))
            await asyncio.sleep(5)

    runtime.tasks.append(asyncio.create_task(refresh(), name="outbox-gauge"))


class RequestIdMiddleware:
    """Binds a request id (from `X-Request-Id` or new) to every log line of the request.

    Pure ASGI, like every middleware here: `BaseHTTPMiddleware` costs a task group per
    received chunk and a memory stream per sent chunk, which halves streaming throughput.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or str(uuid7())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")


async def readiness(
    runtime: Runtime, checks: Sequence[Callable[[Runtime], Awaitable[None]]]
) -> dict[str, str]:
    """Each dependency's state; any value other than "ok" makes the service not ready."""
    status: dict[str, str] = {}
    try:
        await asyncio.wait_for(ping(runtime.engine), READINESS_TIMEOUT_SECONDS)
        status["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - reported, not raised
        status["database"] = f"unavailable: {type(error).__name__}"
    status["nats"] = "ok" if runtime.broker.connected else "unavailable"
    for check in checks:
        name = getattr(check, "__name__", "check")
        try:
            await asyncio.wait_for(check(runtime), READINESS_TIMEOUT_SECONDS)
            status[name] = "ok"
        except Exception as error:  # noqa: BLE001 - reported, not raised
            status[name] = f"unavailable: {error}"
    return status


def _probe_router(definition: ServiceDefinition) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @router.get("/readyz")
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        checks = await readiness(request.app.state.runtime, definition.readiness_checks)
        ready = all(value == "ok" for value in checks.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not ready", "checks": checks}

    router.add_api_route("/healthz", readyz, methods=["GET"])
    return router


def create_service_app(definition: ServiceDefinition) -> FastAPI:
    """FastAPI's /docs and /redoc load assets from a CDN, which fails air-gapped: they are off;
    every service's /openapi.json is merged and browsable at the gateway's /api/docs."""
    settings = definition.settings
    configure_logging(service=definition.name, json=settings.log_json, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _lifespan(app, definition):
            yield

    app = FastAPI(
        title=definition.title or f"Cephalo {definition.name}",
        description=definition.description,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=definition.openapi_url,
        docs_url=None,
        redoc_url=None,
    )
    app.state.registry = CollectorRegistry()
    install_problem_handlers(app)
    install_metrics(app, app.state.registry)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(_probe_router(definition))
    for router in definition.routers:
        app.include_router(router)
    return app


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit at the edge, before the response is sent (scope="function")."""
    async with get_runtime(request).sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
