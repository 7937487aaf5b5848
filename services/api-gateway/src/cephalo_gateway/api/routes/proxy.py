from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cephalo_gateway.deps import GatewayDep
from cephalo_gateway.proxy import forward

router = APIRouter(include_in_schema=False)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/api/v1/{path:path}", methods=METHODS)
async def proxy(request: Request, gateway: GatewayDep) -> Response:
    """Everything under /api/v1 that the gateway does not answer itself."""
    return await forward(request, gateway)
