"""Signing in and out of the portal with a gateway user's username and password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cephalo_gateway.edge import SESSION_COOKIE
from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError, PortalClient
from cephalo_gateway.portal.session import (
    COOKIE,
    CSRF_FIELD,
    PortalSession,
    csrf_ok,
    portal_key,
    seal,
)
from cephalo_gateway.portal.views import (
    PREFIX,
    client_ip,
    redirect,
    render,
    security_of,
    session_of,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
async def home() -> Response:
    return redirect("/dashboard")


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", "Sign in")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    username, password = forms.text(form, "username"), str(form.get("password") or "")
    async with PortalClient(request.app, None, client_ip(request)) as api:
        response = await api.raw(
            "POST", "/api/v1/users/login", json={"username": username, "password": password}
        )
    if response.status_code != 200:
        error = ApiError.of(response)
        return render(
            request,
            "sign_in.html",
            "Sign in",
            status=error.status,
            error=error.detail or error.title,
            username=username,
        )
    session = PortalSession(
        gateway_cookie=response.cookies[SESSION_COOKIE],
        csrf_token=str(response.json()["csrf_token"]),
        username=username,
    )
    answer = redirect("/dashboard")
    settings = security_of(request).settings
    answer.set_cookie(
        COOKIE,
        seal(session, portal_key(security_of(request).session_key)),
        max_age=int(settings.session_hours * 3600),
        path=PREFIX,
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="strict",
    )
    return answer


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = session_of(request)
    form = await request.form()
    if session is not None and csrf_ok(session, forms.text(form, CSRF_FIELD)):
        async with PortalClient(request.app, session, client_ip(request)) as api:
            await api.raw("POST", "/api/v1/users/logout")
    answer = redirect("/sign-in")
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer
