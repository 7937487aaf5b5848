"""Lifecycles and their phases: each lifecycle's phases in order, a new lifecycle, and the
phase editor of an existing one (rename, change, add, remove phases)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PHASE_ROWS = 4
MAX_PHASE_ROWS = 100
KEPT_PHASE_FIELDS = ("release_retention_policy", "target_retention_policy")


def _phase_of(form: FormData, number: int) -> dict[str, Any] | None:
    """Phase row `number` of the form; None when its name is left empty."""
    name = forms.text(form, f"phase-{number}-name")
    if not name:
        return None
    minimum = forms.text(form, f"phase-{number}-minimum") or "0"
    if not minimum.isdigit():
        raise forms.invalid(f"phase {name!r}: the minimum before promotion must be a whole number")
    phase = {
        "name": name,
        "automatic_environment_ids": form.getlist(f"phase-{number}-automatic"),
        "optional_environment_ids": form.getlist(f"phase-{number}-manual"),
        "minimum_environments_before_promotion": int(minimum),
        "is_optional_phase": forms.checked(form, f"phase-{number}-optional"),
    }
    if phase_id := forms.text(form, f"phase-{number}-id"):
        phase["id"] = phase_id
    return phase


def _rows(form: FormData) -> int:
    rows = forms.text(form, "rows")
    return min(int(rows), MAX_PHASE_ROWS) if rows.isdigit() else PHASE_ROWS


def lifecycle_of(form: FormData) -> dict[str, Any]:
    """The lifecycle the form describes: its phases in the order of the rows."""
    numbers = range(1, _rows(form) + 1)
    phases = [p for n in numbers if (p := _phase_of(form, n)) is not None]
    return {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "phases": phases,
    }


def edited(lifecycle: Mapping[str, Any], form: FormData) -> dict[str, Any]:
    """The whole lifecycle to write back: the form's phases, and what the form does not show
    (retention policies, of the lifecycle and of each phase kept by its id) as it was."""
    body = lifecycle_of(form)
    kept = {str(p["id"]): p for p in lifecycle["phases"]}
    for phase in body["phases"]:
        if (old := kept.get(str(phase.get("id")))) is not None:
            phase |= {field: old.get(field) for field in KEPT_PHASE_FIELDS}
        else:
            phase.pop("id", None)
    version = forms.text(form, "version")
    if not version.isdigit():
        raise forms.invalid("the form lost the lifecycle's version; reload and try again")
    return body | {
        "slug": lifecycle["slug"],
        "version": int(version),
        **{field: lifecycle[field] for field in KEPT_PHASE_FIELDS},
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
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _lifecycles_page(portal, status=422, error=error.message)
    return redirect("/lifecycles")


async def _edit_page(
    portal: Portal, lifecycle_id: str, status: int = 200, error: str = ""
) -> Response:
    lifecycle, environments = await asyncio.gather(
        portal.api.space("GET", f"/lifecycles/{lifecycle_id}"),
        portal.api.items("/environments"),
    )
    rows = min(max(PHASE_ROWS, len(lifecycle["phases"]) + 2), MAX_PHASE_ROWS)
    return portal.render(
        "lifecycle_edit.html",
        f"Edit lifecycle {lifecycle['name']}",
        status=status,
        lifecycle=lifecycle,
        environments=environments,
        phase_rows=range(1, rows + 1),
        error=error,
    )


@router.get("/lifecycles/{lifecycle_id}")
async def edit_lifecycle(lifecycle_id: str, portal: PortalDep) -> Response:
    return await _edit_page(portal, lifecycle_id)


@router.post("/lifecycles/{lifecycle_id}")
async def save_lifecycle(lifecycle_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    path = f"/lifecycles/{lifecycle_id}"
    try:
        body = edited(await portal.api.space("GET", path), form)
        await portal.api.space("PUT", path, json=body)
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _edit_page(portal, lifecycle_id, status=422, error=error.message)
    return redirect("/lifecycles")
