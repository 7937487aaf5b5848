from __future__ import annotations

from fastapi import APIRouter

from cephalo_gateway.domain.routing import API_PREFIX, COLLECTIONS, SYSTEM_ROUTES
from cephalo_gateway.schemas.root import ApiRoot

router = APIRouter(tags=["api"])
VERSION = "0.1.0"


def _links() -> dict[str, str]:
    links = {
        "self": API_PREFIX,
        "spaces": f"{API_PREFIX}/spaces",
        "space": f"{API_PREFIX}/spaces/{{space}}",
    }
    links.update({name: f"{API_PREFIX}/spaces/{{space}}/{name}" for name in COLLECTIONS})
    links.update({name: f"{API_PREFIX}/{name}" for name in SYSTEM_ROUTES})
    links["audit-events"] = f"{API_PREFIX}/audit-events"
    links["login"] = f"{API_PREFIX}/users/login"
    links["me"] = f"{API_PREFIX}/users/me"
    links["my-permissions"] = f"{API_PREFIX}/users/me/permissions"
    links["users"] = f"{API_PREFIX}/users"
    links["teams"] = f"{API_PREFIX}/teams"
    links["roles"] = f"{API_PREFIX}/roles"
    links["webhooks"] = f"{API_PREFIX}/webhooks"
    links["octopus"] = "/api"
    links["openapi"] = "/api/openapi.json"
    links["docs"] = "/api/docs"
    return links


@router.get(API_PREFIX)
async def api_root() -> ApiRoot:
    """The API root: the server's name and version and links to every collection."""
    return ApiRoot(name="Cephalo", version=VERSION, links=_links())
