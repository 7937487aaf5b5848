"""A route that raises answers a generic 500 problem whose request id is also on the response
header and on the log line holding the traceback; the body never carries the traceback."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter

from cephalo_common.http.app import ServiceDefinition, create_service_app
from cephalo_common.settings import ServiceSettings
from cephalo_common.testing import running

SECRET = "db password is hunter2"


def _failing_app(database_url: str, nats_url: str) -> object:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError(SECRET)

    settings = ServiceSettings(
        database={"url": database_url}, nats={"url": nats_url}, log_json=True
    )
    return create_service_app(
        ServiceDefinition(name="unexpected-test", settings=settings, routers=[router])
    )


def _log_lines(text: str) -> list[dict[str, object]]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


@pytest.mark.parametrize("sent_id", [None, "client-chosen-id-42"])
async def test_a_forced_exception_is_a_generic_problem_carrying_the_request_id(
    database_url: str,
    nats_url: str,
    capsys: pytest.CaptureFixture[str],
    sent_id: str | None,
) -> None:
    headers = {"X-Request-Id": sent_id} if sent_id else {}
    async with running(_failing_app(database_url, nats_url)) as client:  # type: ignore[arg-type]
        response = await client.get("/boom", headers=headers)
    body = response.json()
    request_id = response.headers["x-request-id"]

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/internal")
    assert body["request_id"] == request_id
    assert request_id in body["detail"]
    assert sent_id in (None, request_id)
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text

    logged = [
        line for line in _log_lines(capsys.readouterr().err) if line["event"] == "unhandled error"
    ]
    assert len(logged) == 1
    assert logged[0]["request_id"] == request_id
    assert SECRET in str(logged[0].get("exception"))
