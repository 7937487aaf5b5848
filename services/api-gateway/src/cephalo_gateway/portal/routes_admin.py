"""Lifecycles and their phases, the audit log, and the signed-in user's own API keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.datastructures import FormData

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PHASE_ROWS = 4
AUDIT_PAGE = 50
FORM_ERRORS = forms.FORM_ERRORS
_invalid = forms.invalid


# Lifecycles ------------------------------------------------------------------------------


def _phase_of(form: FormData, number: int) -> dict[str, Any] | None:
    """Phase row `number` of the form; None when its name is left empty."""
    name = forms.text(form, f"phase-{number}-name")
    if not name:
        return None
    minimum = forms.text(form, f"phase-{number}-minimum") or "0"
    if not minimum.isdigit():
        raise _invalid(f"phase {name!r}: the minimum before promotion must be a whole number")
    return {
        "name": name,
        "automatic_environment_ids": form.getlist(f"phase-{number}-automatic"),
        "optional_environment_ids": form.getlist(f"phase-{number}-manual"),
        "minimum_environments_before_promotion": int(minimum),
        "is_optional_phase": forms.checked(form, f"phase-{number}-optional"),
    }


def lifecycle_of(form: FormData) -> dict[str, Any]:
    """The lifecycle the form describes: its phases in the order of the rows."""
    phases = [p for n in range(1, PHASE_ROWS + 1) if (p := _phase_of(form, n)) is not None]
    return {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "phases": phases,
    }


async def _lifecycles_page(portal: Portal, status: int = 200, error: str = "") -> Response:
    found, environments = await asyncio.gather(
        portal.api.items("/lifecycles", take=500), portal.api.items("/environments")
    )
    return portal.render(
        "lifecycles.html",
        "Lifecycles",
        status=status,
        lifecycles=found,
        environments=environments,
        environment_names={str(e["id"]): e["name"] for e in environments},
        phase_rows=range(1, PHASE_ROWS + 1),
        error=error,
    )


@router.get("/lifecycles")
async def lifecycles(portal: PortalDep) -> Response:
    return await _lifecycles_page(portal)


@router.post("/lifecycles")
async def create_lifecycle(portal: FormPortalDep) -> Response:
    try:
        body = lifecycle_of(await portal.request.form())
        await portal.api.space("POST", "/lifecycles", json=body)
    except ApiError as error:
        if error.status not in FORM_ERRORS:
            raise
        return await _lifecycles_page(portal, status=422, error=error.message)
    return redirect("/lifecycles")


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
