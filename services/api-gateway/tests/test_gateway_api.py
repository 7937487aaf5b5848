"""What the gateway answers itself: the API root, the audit log, the merged OpenAPI
document and its docs page, and the probes."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI

from cephalo_common.db.session import unit_of_work
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain import audit


async def test_the_api_root_links_to_every_collection(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Cephalo" and body["version"]
    links = body["links"]
    assert links["environments"] == "/api/v1/spaces/{space}/environments"
    assert links["worker-pools"] == "/api/v1/spaces/{space}/worker-pools"
    assert links["server-certificate"] == "/api/v1/server-certificate"
    assert links["openapi"] == "/api/openapi.json"
    assert links["audit-events"] == "/api/v1/audit-events"


async def record(app: FastAPI, method: str) -> str:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    entry = audit.AuditEntry(
        method=method,
        path="/api/v1/spaces/default/projects",
        status=201,
        space_id=None,
        actor=audit.ANONYMOUS,
        request_id=request_id,
        upstream="release-service",
    )
    async with unit_of_work(app.state.runtime.sessionmaker) as session:
        await audit.record(Repositories(session), entry)
    return request_id


async def test_audit_events_are_listed_newest_first_and_paged(
    client: httpx.AsyncClient, gateway_app: FastAPI
) -> None:
    first, second, third = [await record(gateway_app, m) for m in ("POST", "PUT", "DELETE")]
    newest = (await client.get("/api/v1/audit-events", params={"limit": 3})).json()
    assert [event["request_id"] for event in newest] == [third, second, first]
    page = (await client.get("/api/v1/audit-events", params={"limit": 1, "offset": 1})).json()
    assert [event["request_id"] for event in page] == [second]


async def test_bad_paging_parameters_are_invalid_input(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}):
        response = await client.get("/api/v1/audit-events", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_audit_log_cannot_be_written_through_the_api(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/audit-events", json={"method": "GET"})
    assert response.status_code == 404


async def test_the_merged_openapi_has_release_service_paths_and_names_the_missing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    assert "/api/v1/spaces/{space}/environments" in paths
    assert "/api/v1/spaces/{space_id}/packages" in paths
    assert "/api/v1/audit-events" in paths and "/api/v1" in paths
    assert "/api/v1/{path}" not in paths
    assert "Environment" in document["components"]["schemas"]
    description = document["info"]["description"]
    assert "agent-gateway" in description and "deploy-orchestrator" in description
    assert "release-service" not in description


async def test_the_docs_page_lists_the_paths_without_external_assets(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/v1/spaces/{space}/environments" in response.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)


async def test_fastapis_cdn_docs_are_not_served(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 404, path


async def test_probes_answer_with_real_postgres_and_nats(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_metrics_count_answers_per_upstream(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/spaces")
    metrics = (await client.get("/metrics")).text
    assert (
        'cephalo_gateway_upstream_responses_total{outcome="200",upstream="release-service"}'
        in metrics
    )
