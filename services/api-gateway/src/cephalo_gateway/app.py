"""`create_app(settings)`: api-gateway as a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from cephalo_common.db.session import unit_of_work
from cephalo_common.http.app import Runtime, ServiceDefinition, create_service_app
from cephalo_common.logging import get_logger
from cephalo_gateway.api import routers
from cephalo_gateway.authz import Authorizer
from cephalo_gateway.db.models import OutboxEvent
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.deps import GATEWAY_EXTRA, SECURITY_EXTRA
from cephalo_gateway.domain import identity
from cephalo_gateway.domain.routing import Upstream
from cephalo_gateway.domain.spaces import SpaceCache
from cephalo_gateway.edge import EdgeMiddleware
from cephalo_gateway.portal import install as install_portal
from cephalo_gateway.proxy import Gateway
from cephalo_gateway.security import Security
from cephalo_gateway.settings import GatewaySettings
from cephalo_gateway.upstream.client import UpstreamClient
from cephalo_gateway.upstream.metrics import GatewayMetrics
from cephalo_gateway.upstream.scopes import ScopeResolver
from cephalo_gateway.upstream.spaces import SpaceResolver

SERVICE_NAME = "api-gateway"
DEV_SECRET = "cephalo-dev-internal-secret"  # noqa: S105  # pragma: allowlist secret - the default we warn about
log = get_logger(__name__)


class _Upstreams:
    """Lifespan hooks: the pooled upstream client is opened at startup, closed at shutdown."""

    def __init__(self, settings: GatewaySettings, security: Security) -> None:
        self.settings = settings
        self.security = security
        self.metrics: GatewayMetrics | None = None

    async def open(self, runtime: Runtime) -> None:
        if self.metrics is None:
            self.metrics = GatewayMetrics(runtime.registry)
        client = UpstreamClient(
            self.settings.upstream_urls(), timeout_seconds=self.settings.upstream_timeout_seconds
        )
        security = self.security

        def as_gateway(upstream: Upstream) -> list[tuple[str, str]]:
            return [security.identity_header(None, upstream.value)]

        runtime.extras[SECURITY_EXTRA] = security
        runtime.extras[GATEWAY_EXTRA] = Gateway(
            upstreams=client,
            spaces=SpaceResolver(
                client,
                SpaceCache(self.settings.space_cache_seconds),
                lambda: security.identity_header(None, Upstream.RELEASE_SERVICE.value),
            ),
            metrics=self.metrics,
            sessionmaker=runtime.sessionmaker,
            security=security,
            authorizer=Authorizer(
                ScopeResolver(client, self.settings.scope_cache_seconds, as_gateway)
            ),
        )

    async def close(self, runtime: Runtime) -> None:
        gateway: Gateway | None = runtime.extras.pop(GATEWAY_EXTRA, None)
        if gateway is not None:
            await gateway.upstreams.aclose()


async def bootstrap(settings: GatewaySettings, security: Security, runtime: Runtime) -> None:
    """The configured bootstrap key and initial administrator; a database that is not
    reachable yet is logged, not fatal (readiness reports it)."""
    if settings.bootstrap_api_key is None and settings.initial_admin_username is None:
        return
    try:
        async with unit_of_work(runtime.sessionmaker) as session:
            repos = Repositories(session)
            if settings.bootstrap_api_key is not None:
                key = settings.bootstrap_api_key.get_secret_value()
                if await identity.ensure_bootstrap_key(repos, security.hasher, key):
                    log.info("bootstrap API key registered")
            if settings.initial_admin_username and settings.initial_admin_password:
                password = settings.initial_admin_password.get_secret_value()
                username = settings.initial_admin_username
                if await identity.ensure_initial_admin(repos, security.hasher, username, password):
                    log.info("initial administrator created", username=username)
    except ValueError:
        raise
    except Exception:
        log.exception("could not bootstrap identities; will not retry until restart")


def _warn_about(settings: GatewaySettings) -> None:
    if not settings.auth_required:
        log.warning("authentication is OFF: every caller is an administrator (dev only)")
    if settings.internal_token_secret.get_secret_value() == DEV_SECRET:
        log.warning("INTERNAL_TOKEN_SECRET is the development default: set a real one")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    security = Security(settings)
    upstreams = _Upstreams(settings, security)
    _warn_about(settings)

    async def on_startup(runtime: Runtime) -> None:
        await upstreams.open(runtime)
        await bootstrap(settings, security, runtime)

    app = create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings,
            routers=routers,
            outbox_model=OutboxEvent,
            on_startup=[on_startup],
            on_shutdown=[upstreams.close],
            title="Cephalo API",
            description="The public API of Cephalo: every service behind one address.",
            openapi_url=None,
        )
    )
    install_portal(app)
    # Innermost of the middleware: after request ids and metrics, before routing.
    app.user_middleware.append(Middleware(EdgeMiddleware, settings=settings))
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "X-Cephalo-Api-Key", "X-Cephalo-Csrf-Token"],
            allow_credentials=True,
        )
    return app
