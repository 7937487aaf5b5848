"""A project's channels: their lifecycle and package version rules, and the rule tester
that asks the API whether a version would pass a rule before it is saved."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.datastructures import FormData

from cephalo_gateway.portal import forms
from cephalo_gateway.portal.client import ApiError
from cephalo_gateway.portal.views import PREFIX, FormPortalDep, Portal, PortalDep, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
RULE_ROWS = 3


def _rule_of(form: FormData, number: int) -> dict[str, Any] | None:
    """Rule row `number`; None when all its fields are empty."""
    rule = {
        "action_packages": forms.words(form, f"rule-{number}-steps"),
        "version_range": forms.text(form, f"rule-{number}-range"),
        "tag": forms.text(form, f"rule-{number}-tag"),
    }
    return rule if any(rule.values()) else None


def channel_of(form: FormData) -> dict[str, Any]:
    """The channel the form describes; no lifecycle chosen means the project's own."""
    rules = [r for n in range(1, RULE_ROWS + 1) if (r := _rule_of(form, n)) is not None]
    return {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "lifecycle": forms.text(form, "lifecycle") or None,
        "is_default": forms.checked(form, "is_default"),
        "rules": rules,
    }


async def _listing(portal: Portal, project_id: str) -> dict[str, Any]:
    found, channels, lifecycles = await asyncio.gather(
        portal.api.space("GET", f"/projects/{project_id}"),
        portal.api.items(f"/projects/{project_id}/channels", take=100),
        portal.api.items("/lifecycles", take=500),
    )
    return {
        "project": found,
        "channels": channels,
        "lifecycles": lifecycles,
        "lifecycle_names": {str(lc["id"]): lc["name"] for lc in lifecycles},
        "rule_rows": range(1, RULE_ROWS + 1),
    }


async def _channels_page(
    portal: Portal, project_id: str, status: int = 200, **extra: Any
) -> Response:
    listing = await _listing(portal, project_id)
    title = f"Channels of {listing['project']['name']}"
    return portal.render("channels.html", title, status=status, **listing, **extra)


@router.get("/projects/{project_id}/channels")
async def channels(project_id: str, portal: PortalDep) -> Response:
    return await _channels_page(portal, project_id)


@router.post("/projects/{project_id}/channels")
async def create_channel(project_id: str, portal: FormPortalDep) -> Response:
    body = channel_of(await portal.request.form())
    try:
        await portal.api.space("POST", f"/projects/{project_id}/channels", json=body)
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _channels_page(portal, project_id, status=422, error=error.message)
    return redirect(f"/projects/{project_id}/channels")


@router.get("/projects/{project_id}/channels/rule-test")
async def rule_test(
    project_id: str,
    portal: PortalDep,
    version: str = Query("", max_length=200),
    version_range: str = Query("", max_length=500),
    tag: str = Query("", max_length=500),
) -> Response:
    """The API's verdict on one version against one rule, shown under the tester's form."""
    tried = {"version": version, "version_range": version_range, "tag": tag}
    status, trial, error = 200, None, ""
    try:
        if not version.strip():
            raise forms.invalid("enter a version to try")
        trial = await portal.api.space(
            "GET", f"/projects/{project_id}/channels/rule-test", params=tried
        )
    except ApiError as failed:
        if failed.status not in forms.FORM_ERRORS:
            raise
        status, error = 422, failed.message
    return await _channels_page(
        portal, project_id, status=status, trial=trial, tried=tried, tester_error=error
    )


async def _edit_page(
    portal: Portal, project_id: str, channel_id: str, status: int = 200, error: str = ""
) -> Response:
    listing, channel = await asyncio.gather(
        _listing(portal, project_id),
        portal.api.space("GET", f"/projects/{project_id}/channels/{channel_id}"),
    )
    title = f"Edit channel {channel['name']}"
    return portal.render(
        "channel_edit.html", title, status=status, channel=channel, error=error, **listing
    )


@router.get("/projects/{project_id}/channels/{channel_id}")
async def edit_channel(project_id: str, channel_id: str, portal: PortalDep) -> Response:
    return await _edit_page(portal, project_id, channel_id)


@router.post("/projects/{project_id}/channels/{channel_id}")
async def save_channel(project_id: str, channel_id: str, portal: FormPortalDep) -> Response:
    form = await portal.request.form()
    path = f"/projects/{project_id}/channels/{channel_id}"
    try:
        version = forms.text(form, "version")
        if not version.isdigit():
            raise forms.invalid("the form lost the channel's version; reload and try again")
        body = {**channel_of(form), "version": int(version)}
        await portal.api.space("PUT", path, json=body)
    except ApiError as error:
        if error.status not in forms.FORM_ERRORS:
            raise
        return await _edit_page(portal, project_id, channel_id, status=422, error=error.message)
    return redirect(f"/projects/{project_id}/channels")
