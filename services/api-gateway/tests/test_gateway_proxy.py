"""The gateway in front of the real release-service and package-feed (uvicorn, real
Postgres and NATS): forwarding, slug resolution, problems, and the audit log."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cephalo_common.contracts import AUDIT_RECORDED
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.testing import running
from cephalo_gateway.app import create_app
from cephalo_gateway.db.models import OutboxEvent
from cephalo_gateway.settings import GatewaySettings


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def default_space_id(release_url: str) -> str:
    async with httpx.AsyncClient(base_url=release_url) as direct:
        return str((await direct.get("/api/v1/spaces/default")).json()["id"])


async def audit_for(client: httpx.AsyncClient, request_id: str) -> dict[str, object]:
    events = (await client.get("/api/v1/audit-events", params={"limit": 500})).json()
    matching = [event for event in events if event["request_id"] == request_id]
    assert len(matching) == 1, events
    return dict(matching[0])


async def test_an_environment_created_through_the_gateway_exists_in_release_service(
    client: httpx.AsyncClient, release_url: str
) -> None:
    name = unique("Staging")
    created = await client.post(
        "/api/v1/spaces/default/environments",
        json={"name": name},
        headers={"X-Request-Id": unique("req")},
    )
    assert created.status_code == 201, created.text
    environment = created.json()
    assert environment["space_id"] == await default_space_id(release_url)
    async with httpx.AsyncClient(base_url=release_url) as direct:
        found = await direct.get(f"/api/v1/spaces/default/environments/{environment['id']}")
    assert found.status_code == 200 and found.json()["name"] == name


async def test_a_state_changing_request_is_audited_with_its_outcome(
    client: httpx.AsyncClient, gateway_app: FastAPI, release_url: str
) -> None:
    request_id = unique("req")
    created = await client.post(
        "/api/v1/spaces/default/environments",
        json={"name": unique("Test")},
        headers={"X-Request-Id": request_id},
    )
    assert created.headers["x-request-id"] == request_id
    event = await audit_for(client, request_id)
    assert event["method"] == "POST" and event["status"] == 201
    assert event["path"] == "/api/v1/spaces/default/environments"
    assert event["space_id"] == await default_space_id(release_url)
    assert (event["actor"], event["upstream"]) == ("bootstrap", "release-service")
    assert event["category"] == "Created" and event["user_id"]
    async with gateway_app.state.runtime.sessionmaker() as session:
        rows = (await session.execute(select(OutboxEvent))).scalars().all()
    published = [
        Envelope.from_bytes(row.payload) for row in rows if row.type == AUDIT_RECORDED.type
    ]
    assert any(envelope.data["audit_event_id"] == event["id"] for envelope in published)


async def test_reads_are_not_audited(client: httpx.AsyncClient) -> None:
    request_id = unique("req")
    response = await client.get(
        "/api/v1/spaces/default/environments", headers={"X-Request-Id": request_id}
    )
    assert response.status_code == 200
    events = (await client.get("/api/v1/audit-events", params={"limit": 500})).json()
    assert all(event["request_id"] != request_id for event in events)


async def test_a_conflict_from_upstream_passes_through_unchanged(
    client: httpx.AsyncClient, release_url: str
) -> None:
    name = unique("Prod")
    url = "/api/v1/spaces/default/environments"
    assert (await client.post(url, json={"name": name})).status_code == 201
    via_gateway = await client.post(url, json={"name": name.upper()})
    async with httpx.AsyncClient(base_url=release_url) as direct:
        space_id = await default_space_id(release_url)
        direct_answer = await direct.post(
            f"/api/v1/spaces/{space_id}/environments", json={"name": name.upper()}
        )
    assert via_gateway.status_code == 409
    assert via_gateway.headers["content-type"] == "application/problem+json"
    assert via_gateway.json() == direct_answer.json()


async def test_a_validation_problem_from_upstream_passes_through_and_is_audited(
    client: httpx.AsyncClient,
) -> None:
    request_id = unique("req")
    response = await client.post(
        "/api/v1/spaces/default/environments",
        json={"name": "", "colour": "blue"},
        headers={"X-Request-Id": request_id},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {error["field"] for error in response.json()["errors"]} >= {"body.name", "body.colour"}
    assert (await audit_for(client, request_id))["status"] == 422


async def test_a_slug_becomes_a_uuid_for_services_that_only_take_ids(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/api/v1/spaces/default/packages", params={"package_id": "Acme.Web"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == []


async def test_a_space_id_works_as_well_as_its_slug(
    client: httpx.AsyncClient, release_url: str
) -> None:
    space_id = await default_space_id(release_url)
    by_id = await client.get(f"/api/v1/spaces/{space_id}/environments")
    by_slug = await client.get("/api/v1/spaces/default/environments")
    assert by_id.status_code == 200 and by_id.json() == by_slug.json()


async def test_spaces_are_listed_and_fetched_through_the_gateway(
    client: httpx.AsyncClient,
) -> None:
    spaces = (await client.get("/api/v1/spaces/")).json()
    assert "default" in {
        space["slug"] for space in (spaces["items"] if isinstance(spaces, dict) else spaces)
    }
    assert (await client.get("/api/v1/spaces/default")).json()["slug"] == "default"


async def test_an_unknown_space_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/spaces/nowhere/environments")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "space 'nowhere' was not found"


async def test_an_unknown_collection_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/spaces/default/unicorns", json={})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "unicorns" in response.json()["detail"]


async def test_an_upstream_with_nothing_listening_is_a_503_naming_it(
    client: httpx.AsyncClient,
) -> None:
    request_id = unique("req")
    response = await client.post(
        "/api/v1/spaces/default/machines",
        json={"name": "web-01"},
        headers={"X-Request-Id": request_id},
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "agent-gateway is unavailable"
    event = await audit_for(client, request_id)
    assert (event["status"], event["upstream"]) == (503, "agent-gateway")


async def test_release_service_down_makes_slug_resolution_a_503(
    gateway_settings: GatewaySettings, nothing_listening: str, admin_key: str
) -> None:
    settings = gateway_settings.model_copy(update={"release_service_url": nothing_listening})
    async with running(create_app(settings)) as client:
        response = await client.get(
            "/api/v1/spaces/some-slug/tasks", headers={"x-cephalo-api-key": admin_key}
        )
    assert response.status_code == 503
    assert response.json()["detail"] == "release-service is unavailable"


async def test_an_overlong_slug_is_an_unknown_space(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/spaces/{'s' * 300}/environments")
    assert response.status_code == 404
