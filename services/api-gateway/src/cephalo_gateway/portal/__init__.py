"""The web portal at `/app`: server-rendered pages over the gateway's own public API.

No build step, no CDN, no inline script (the gateway's CSP): Jinja2 templates, one
stylesheet, and one small script for the live task log.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

from cephalo_gateway.portal import (
    routes_admin,
    routes_auth,
    routes_channels,
    routes_deploy,
    routes_infrastructure,
    routes_lifecycles,
    routes_people,
    routes_process,
    routes_projects,
    routes_variables,
)
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, CsrfRefused, SignInRequired, redirect, render

STATIC = Path(__file__).parent / "static"
ASSETS = {"portal.css": "text/css", "portal.js": "text/javascript"}
static_router = APIRouter(prefix=PREFIX, include_in_schema=False)


@static_router.get("/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    return FileResponse(
        STATIC / name, media_type=ASSETS[name], headers={"cache-control": "max-age=300"}
    )


routers = [
    static_router,
    routes_auth.router,
    routes_infrastructure.router,
    routes_projects.router,
    routes_variables.router,
    routes_channels.router,
    routes_process.router,
    routes_people.router,
    routes_deploy.router,
    routes_lifecycles.router,
    routes_admin.router,
]


async def _sign_in(request: Request, error: Exception) -> Response:
    return redirect("/sign-in")


async def _csrf(request: Request, error: Exception) -> Response:
    return render(
        request,
        "error.html",
        "Refused",
        status=403,
        message="This form is out of date or was not sent by the portal. Reload and try again.",
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    if error.status == 401:
        return redirect("/sign-in")
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Check your input"}
    status = error.status if 400 <= error.status < 600 else 502
    return render(
        request,
        "error.html",
        titles.get(error.status, error.title),
        status=status,
        message=error.message,
    )


def install(app: FastAPI) -> None:
    """Mount the pages and turn the portal's own exceptions into pages."""
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(CsrfRefused, _csrf)
    app.add_exception_handler(ApiError, _api_error)
