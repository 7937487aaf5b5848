"""The audit log and the signed-in user's own API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
AUDIT_PAGE = 50
FORM_ERRORS = forms.FORM_ERRORS
_invalid = forms.invalid


# Audit log -------------------------------------------------------------------------------


def _moment(value: str, name: str) -> str | None:
    """A `datetime-local` value (taken as UTC) as the API's ISO 8601, or None when empty."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise _invalid(f"{name}: not a date and time") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


async def _audit_params(portal: Portal, filters: dict[str, str], offset: int) -> dict[str, Any]:
    """Administrators read the whole log; others the space they work in (EventView)."""
    params: dict[str, Any] = {"limit": AUDIT_PAGE + 1, "offset": offset}
    params |= {name: filters[name] for name in ("user", "category") if filters[name]}
    for name in ("from", "to"):
        if (moment := _moment(filters[name], name)) is not None:
            params[name] = moment
    if not portal.viewer.is_administrator:
        space = await portal.api.call("GET", portal.api.space_base)
        params["space_id"] = space["id"]
    return params


@router.get("/audit")
async def audit(
    portal: PortalDep,
    user: str = Query("", max_length=200),
    category: str = Query("", max_length=40),
    occurred_from: str = Query("", alias="from", max_length=40),
    occurred_to: str = Query("", alias="to", max_length=40),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Response:
    filters = {"user": user, "category": category, "from": occurred_from, "to": occurred_to}
    status, error, events = 200, "", []
    try:
        params = await _audit_params(portal, filters, offset)
        events = await portal.api.call("GET", "/api/v1/audit-events", params=params)
    except ApiError as failed:
        if failed.status not in FORM_ERRORS:
            raise
        status, error = 422, failed.message
    categories = await portal.api.call("GET", "/api/v1/audit-events/categories")
    query = urlencode({k: v for k, v in filters.items() if v})
    return portal.render(
        "audit.html",
        "Audit log",
        status=status,
        events=events[:AUDIT_PAGE],
        more=len(events) > AUDIT_PAGE,
        offset=offset,
        page_size=AUDIT_PAGE,
        filters=filters,
        categories=categories,
        query=query,
        error=error,
    )


# API keys --------------------------------------------------------------------------------

KEYS = "/api/v1/users/me/api-keys"


async def _keys_page(
    portal: Portal, status: int = 200, created: dict[str, Any] | None = None, error: str = ""
) -> Response:
    keys = await portal.api.call("GET", KEYS)
    return portal.render(
        "api_keys.html", "API keys", status=status, keys=keys, created=created, error=error
    )


@router.get("/api-keys")
async def api_keys(portal: PortalDep) -> Response:
    return await _keys_page(portal)


@router.post("/api-keys")
async def create_api_key(portal: FormPortalDep) -> Response:
    """The new key is on this answer only (`no-store`), never again."""
    form = await portal.request.form()
    body = {"purpose": forms.text(form, "purpose"), "never_expires": forms.checked(form, "never")}
    try:
        created = await portal.api.call("POST", KEYS, json=body)
    except ApiError as error:
        if error.status not in FORM_ERRORS:
            raise
        return await _keys_page(portal, status=422, error=error.message)
    return await _keys_page(portal, status=201, created=created)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(key_id: str, portal: FormPortalDep) -> Response:
    await portal.api.call("DELETE", f"{KEYS}/{key_id}")
    return redirect("/api-keys")
