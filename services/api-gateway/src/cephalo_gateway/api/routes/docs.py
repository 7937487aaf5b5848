from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cephalo_gateway.api.docs_page import render_docs_page
from cephalo_gateway.deps import GatewayDep
from cephalo_gateway.domain.openapi import merge_documents

router = APIRouter(include_in_schema=False)


async def _merged(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    services = await gateway.upstreams.openapi_documents()
    return merge_documents(request.app.openapi(), services)


@router.get("/api/openapi.json")
async def openapi_document(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    """The whole public API: the gateway's paths and every reachable service's."""
    return await _merged(request, gateway)


@router.get("/api/docs", response_class=HTMLResponse)
async def docs(request: Request, gateway: GatewayDep) -> HTMLResponse:
    """A self-contained page (no CDN assets, so it works air-gapped)."""
    return HTMLResponse(render_docs_page(await _merged(request, gateway)))
