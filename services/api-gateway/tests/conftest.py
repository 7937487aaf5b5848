"""Real upstreams for the gateway: release-service and package-feed apps served by uvicorn
on free loopback ports, on the session's real Postgres and NATS."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, free_port
from cephalo_common.testing import running, serving, wait_until_ready
from cephalo_dev.stack import Stack as DevStack
from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.app import create_app
from cephalo_gateway.domain.credentials import new_api_key
from cephalo_gateway.settings import GatewaySettings
from cephalo_orchestrator.app import create_app as create_orchestrator_app
from cephalo_orchestrator.settings import OrchestratorSettings
from cephalo_release.app import create_app as create_release_app
from cephalo_release.settings import ReleaseSettings

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


@pytest.fixture(scope="session")
def serve() -> Serve:
    return serving


@pytest.fixture(scope="session")
def common_settings(nats_url: str) -> dict[str, Any]:
    return {"nats": {"url": nats_url}, "messaging": {"outbox_poll_seconds": 0.1}}


@pytest.fixture(scope="session")
def release_settings(
    new_database: Callable[[str], str], common_settings: dict[str, Any]
) -> ReleaseSettings:
    """Migrations run synchronously (they start their own event loop), so outside async
    fixtures. A master key, so sensitive variables can be stored (the portal's editor), and
    so a database of its own: a release-service without that key refuses to start beside
    values sealed with it (the session's shared database serves other suites' services)."""
    database_url = new_database("gateway_release")
    upgrade("cephalo_release", database_url)
    return ReleaseSettings(
        database={"url": database_url},
        master_key=base64.b64encode(os.urandom(32)).decode(),
        **common_settings,
    )


@pytest.fixture(scope="session")
def feed_settings(
    migrate: Callable[[str], str], common_settings: dict[str, Any], scratch_dir: Path
) -> FeedSettings:
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        storage_dir=scratch_dir / "gateway-feed-packages",
        **common_settings,
    )


@pytest.fixture(scope="session")
async def release_url(release_settings: ReleaseSettings) -> AsyncIterator[str]:
    async with serving(create_release_app(release_settings)) as url:
        yield url


@pytest.fixture(scope="session")
async def feed_url(feed_settings: FeedSettings) -> AsyncIterator[str]:
    async with serving(create_feed_app(feed_settings)) as url:
        yield url


@pytest.fixture
async def silent_upstream() -> AsyncIterator[str]:
    """Accepts connections and never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="session")
def nothing_listening() -> str:
    """An address where no server runs (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def gateway_database_url(migrate: Callable[[str], str]) -> str:
    return migrate("cephalo_gateway")


@pytest.fixture(scope="session")
def admin_key() -> str:
    """The bootstrap administrator key every gateway in these tests registers."""
    return new_api_key()


FAST_HASHES = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 256,
    "argon2_parallelism": 1,
    "scrypt_log2_n": 8,
}
GENEROUS_LIMITS = {
    "per_ip_per_minute": 100_000,
    "per_ip_burst": 100_000,
    "per_user_per_minute": 100_000,
    "per_user_burst": 100_000,
}


@pytest.fixture(scope="session")
def gateway_settings(
    admin_key: str,
    gateway_database_url: str,
    common_settings: dict[str, Any],
    release_url: str,
    feed_url: str,
    nothing_listening: str,
) -> GatewaySettings:
    # No outbox relay in the gateways these tests start and stop by the dozen: the relay's
    # `wait_for` can swallow a cancellation on Python 3.11 and hang a shutdown (see README).
    return GatewaySettings(
        database={"url": gateway_database_url},
        release_service_url=release_url,
        package_feed_url=feed_url,
        orchestrator_url=nothing_listening,
        agent_gateway_url=nothing_listening,
        upstream_timeout_seconds=5,
        bootstrap_api_key=admin_key,
        passwords=FAST_HASHES,
        rate_limits=GENEROUS_LIMITS,
        run_workers=False,
        **common_settings,
    )


@pytest.fixture
def gateway_app(gateway_settings: GatewaySettings) -> FastAPI:
    return create_app(gateway_settings)


@pytest.fixture
async def client(gateway_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client that signs in as the bootstrap administrator."""
    async with running(gateway_app) as client:
        client.headers["X-Cephalo-Api-Key"] = admin_key
        yield client


# An isolated stack: its own database and NATS, so deployments made here are never consumed
# by other suites' orchestrators (and theirs never reach ours).


@dataclass
class Stack:
    """release-service, deploy-orchestrator and the gateway in front of them."""

    gateway_url: str
    release_url: str
    orchestrator_url: str
    database_url: str
    settings: GatewaySettings
    admin_key: str


def _create_database(url: str, name: str) -> str:
    async def create() -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def isolated_infra(database_url: str, scratch_dir: Path) -> Iterator[tuple[str, str]]:
    """(database URL, NATS URL) used by nothing else in the session."""
    url = _create_database(database_url, "gateway_isolated")
    for package in ("cephalo_release", "cephalo_orchestrator", "cephalo_gateway"):
        upgrade(package, url)
    nats = EmbeddedNats(scratch_dir / "gateway-isolated-nats", free_port())
    nats.start()
    try:
        yield url, nats.url
    finally:
        nats.stop()


@pytest.fixture(scope="session")
async def stack(
    isolated_infra: tuple[str, str], admin_key: str, nothing_listening: str
) -> AsyncIterator[Stack]:
    url, nats_url = isolated_infra
    common: dict[str, Any] = {
        "database": {"url": url},
        "nats": {"url": nats_url},
        "messaging": {"outbox_poll_seconds": 0.1, "consumer_ack_wait_seconds": 5},
    }
    # A master key so sensitive variables can be saved (the audit tests send some).
    release = ReleaseSettings(**common, master_key=base64.b64encode(os.urandom(32)).decode())
    orchestrator = OrchestratorSettings(
        **common, agent_gateway_url=nothing_listening, task_poll_seconds=0.1
    )
    async with (
        serving(create_release_app(release)) as release_url,
        serving(create_orchestrator_app(orchestrator)) as orchestrator_url,
    ):
        settings = GatewaySettings(
            **common,
            release_service_url=release_url,
            orchestrator_url=orchestrator_url,
            package_feed_url=nothing_listening,
            agent_gateway_url=nothing_listening,
            upstream_timeout_seconds=5,
            bootstrap_api_key=admin_key,
            passwords=FAST_HASHES,
            rate_limits=GENEROUS_LIMITS,
            octopus_task_wait_seconds=5,
            scope_cache_seconds=0,
            run_workers=False,
        )
        async with serving(create_app(settings)) as gateway_url:
            async with httpx.AsyncClient(base_url=gateway_url) as probe:
                await wait_until_ready(probe)
            yield Stack(gateway_url, release_url, orchestrator_url, url, settings, admin_key)


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The isolated gateway, as the bootstrap administrator."""
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-Cephalo-Api-Key": stack.admin_key}, timeout=30
    ) as client:
        yield client


# The whole stack as real processes (`whole_stack`) is the session's shared one
# (cephalo_dev.shared_stack, rate limits out of the way).


@pytest.fixture(scope="session")
def merged_openapi(whole_stack: DevStack) -> dict[str, Any]:
    """The gateway's merged document with every service in it: a service that did not answer
    in time on a loaded machine is named in the description, so ask again (bounded)."""
    with httpx.Client(base_url=whole_stack.gateway_url, timeout=60) as client:
        for _ in range(20):
            document: dict[str, Any] = client.get("/api/openapi.json").json()
            if "Not included" not in document["info"].get("description", ""):
                return document
            time.sleep(1)
    raise AssertionError(document["info"]["description"])
