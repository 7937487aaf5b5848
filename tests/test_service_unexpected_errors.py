"""On every service, a route that raises answers the generic 500 problem with the request id
and nothing of the exception (the handler is `cephalo_common.http.problems`, installed by
`create_service_app`; `libs/common/tests/test_http_unexpected_errors.py` proves the log line).

The apps run without their lifespan: the handler needs neither a database nor NATS."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from cephalo_agent_gateway.app import create_app as agent_gateway_app
from cephalo_feed.app import create_app as feed_app
from cephalo_gateway.app import create_app as gateway_app
from cephalo_orchestrator.app import create_app as orchestrator_app
from cephalo_release.app import create_app as release_app

SECRET = "connection string postgres://admin:hunter2@db"


async def _boom() -> None:
    raise RuntimeError(SECRET)


@pytest.mark.parametrize(
    "create_app",
    [release_app, orchestrator_app, feed_app, agent_gateway_app, gateway_app],
    ids=["release", "orchestrator", "feed", "agent-gateway", "api-gateway"],
)
async def test_a_forced_exception_is_a_generic_problem_on_every_service(
    create_app: Callable[[], FastAPI],
) -> None:
    app = create_app()
    app.add_api_route("/forced-error", _boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/forced-error", headers={"X-Request-Id": "probe-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "probe-1"
    assert response.json()["request_id"] == "probe-1"
    assert SECRET not in response.text and "Traceback" not in response.text
