"""The OpenAPI document builds without warnings (the gateway merges it into the public one)."""

from __future__ import annotations

import httpx


async def test_the_openapi_document_lists_every_route_once(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    operations = [
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
    ]
    assert len(operations) == len(set(operations))
    content = document["paths"][
        "/api/v1/spaces/{space_id}/packages/{package_id}/versions/{version}/content"
    ]
    assert set(content) == {"get", "head"}
