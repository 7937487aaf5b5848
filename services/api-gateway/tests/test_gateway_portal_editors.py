"""The portal's editors in process (no browser): a project's variables (scoped values,
sensitive values write-only, the preview of who wins), its channels with the version rule
tester, and its deployment process (edit, reorder, disable). Each through the API as the
signed-in user: a viewer sees no edit controls and is refused when posting anyway, bad
input is the same page again with 422, an unknown id is a 404."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.testing import running
from cephalo_gateway.app import create_app
from cephalo_gateway.portal.audit import page_problems
from cephalo_gateway.portal.testing import csrf_of, new_user, signed_in, unique, well_formed
from cephalo_gateway.settings import GatewaySettings

SPACE = "/api/v1/spaces/default"


@pytest.fixture
def portal_app(gateway_settings: GatewaySettings) -> FastAPI:
    """Plain-HTTP test client: the portal cookie must not be `Secure` here."""
    return create_app(gateway_settings.model_copy(update={"session_cookie_secure": False}))


@pytest.fixture
async def admin(portal_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(portal_app) as client:
        client.headers["X-Cephalo-Api-Key"] = admin_key
        yield client


async def created(admin: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin.post(SPACE + path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def read(admin: httpx.AsyncClient, path: str) -> Any:
    response = await admin.get(SPACE + path)
    assert response.status_code == 200, response.text
    return response.json()


def refused_form(response: httpx.Response, text: str) -> None:
    """The same page again, status 422, the API's reason above the form."""
    assert response.status_code == 422, response.text
    assert 'role="alert"' in response.text and text in response.text, response.text
    assert page_problems(response.text) == []


async def test_variables_are_added_scoped_edited_and_deleted_and_secrets_never_shown(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    production = await created(admin, "/environments", {"name": unique("VarProd")})
    project = await created(admin, "/projects", {"name": unique("VarProj")})
    page = f"/app/projects/{project['id']}/variables"
    secret = "hunter2-" + unique("s")
    contributor = await new_user(admin, "project-contributor")
    async with signed_in(portal_app, contributor) as browser:
        token = csrf_of(well_formed(await browser.get(page)))
        add = {"csrf_token": token, "type": "Text", "description": ""}
        plain = await browser.post(page, data={**add, "name": "Greeting", "value": "hello"})
        assert plain.status_code == 303, plain.text
        scoped = {**add, "name": "Greeting", "value": "hi prod", "environments": production["id"]}
        assert (await browser.post(page, data=scoped)).status_code == 303
        hidden = {**add, "name": "DbPassword", "type": "Sensitive", "value": secret}
        assert (await browser.post(page, data=hidden)).status_code == 303

        grid = well_formed(await browser.get(page))
        assert secret not in grid and "hi prod" in grid and production["name"] in grid
        assert re.search(r'data-variable="DbPassword".*?data-sensitive>set<', grid, re.S)

        refused_form(await browser.post(page, data={**add, "name": "Bad", "value": "#{oops"}), "")
        refused_form(await browser.post(page, data={**add, "name": "", "value": "x"}), "name")
        duplicate = await browser.post(page, data=scoped)
        refused_form(duplicate, "declared twice")

        stored = (await read(admin, f"/projects/{project['id']}/variables"))["variables"]
        by_name = {(v["name"], bool(v["scope"])): v for v in stored}
        assert len(stored) == 3
        db = by_name[("DbPassword", False)]
        edit_page = well_formed(await browser.get(f"{page}/{db['id']}"))
        assert secret not in edit_page and 'type="password"' in edit_page
        kept = {**add, "type": "Sensitive", "name": "DbPassword", "value": ""}
        kept["description"] = "the main database"
        assert (await browser.post(f"{page}/{db['id']}", data=kept)).status_code == 303
        after = await read(admin, f"/projects/{project['id']}/variables")
        db_after = next(v for v in after["variables"] if v["id"] == db["id"])
        assert db_after["has_value"] and db_after["description"] == "the main database"

        hello = by_name[("Greeting", False)]
        bad_edit = await browser.post(
            f"{page}/{hello['id']}", data={**add, "name": "Greeting", "value": "#{x"}
        )
        refused_form(bad_edit, "")
        assert (await browser.get(f"{page}/no-such-variable")).status_code == 404
        missing = await browser.post(f"{page}/no-such-variable/delete", data={"csrf_token": token})
        assert missing.status_code == 404
        assert (await browser.get("/app/projects/no-such-project/variables")).status_code == 404

        deleted = await browser.post(f"{page}/{hello['id']}/delete", data={"csrf_token": token})
        assert deleted.status_code == 303
        names = [
            v["name"]
            for v in (await read(admin, f"/projects/{project['id']}/variables"))["variables"]
        ]
        assert sorted(names) == ["DbPassword", "Greeting"]

        preview = well_formed(
            await browser.get(f"{page}/preview", params={"environment": production["id"]})
        )
        assert re.search(r'data-preview="Greeting".*?hi prod', preview, re.S)
        assert secret not in preview
        audited = await admin.get("/api/v1/audit-events", params={"user": contributor})
        assert "/variables" in audited.text and secret not in audited.text
        unknown = await browser.get(f"{page}/preview", params={"environment": "nowhere"})
        refused_form(unknown, "nowhere")

        library = await created(
            admin,
            "/library-variable-sets",
            {"name": unique("Shared"), "variables": [{"name": "Region", "value": "eu-1"}]},
        )
        included = await browser.post(
            f"{page}/library-sets", data={"csrf_token": token, "library_sets": library["id"]}
        )
        assert included.status_code == 303
        after = await read(admin, f"/projects/{project['id']}/variables")
        assert [s["id"] for s in after["library_variable_sets"]] == [library["id"]]
        assert len(after["variables"]) == 2
        assert library["name"] in well_formed(await browser.get(page))
        assert "eu-1" in well_formed(await browser.get(f"{page}/preview"))
        unknown_set = {"csrf_token": token, "library_sets": "no-such-set"}
        refused = await browser.post(f"{page}/library-sets", data=unknown_set)
        assert refused.status_code in (404, 422)

    async with signed_in(portal_app, await new_user(admin, "project-viewer")) as viewer:
        grid = well_formed(await viewer.get(page))
        assert "Greeting" in grid and "Add value" not in grid and "Delete" not in grid
        assert secret not in grid
        post = {**add, "csrf_token": csrf_of(grid), "name": "ViewerVar", "value": "x"}
        refused = await viewer.post(page, data=post)
        assert refused.status_code == 403, refused.text
        stored = (await read(admin, f"/projects/{project['id']}/variables"))["variables"]
        assert "ViewerVar" not in [v["name"] for v in stored]


async def test_channels_are_added_with_rules_edited_and_the_rule_tester_asks_the_api(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    project = await created(admin, "/projects", {"name": unique("ChanProj")})
    lifecycle = await created(admin, "/lifecycles", {"name": unique("ChanLc"), "phases": []})
    page = f"/app/projects/{project['id']}/channels"
    async with signed_in(portal_app, await new_user(admin, "project-contributor")) as browser:
        listed = well_formed(await browser.get(page))
        assert 'data-channel="Default"' in listed
        token = csrf_of(listed)
        form = {
            "csrf_token": token,
            "name": "Hotfix",
            "lifecycle": lifecycle["id"],
            "rule-1-steps": "Deploy web",
            "rule-1-range": "[2.0,3.0)",
            "rule-1-tag": "^$",
        }
        assert (await browser.post(page, data=form)).status_code == 303
        shown = well_formed(await browser.get(page))
        assert 'data-channel="Hotfix"' in shown and lifecycle["name"] in shown
        assert "[2.0,3.0)" in shown

        refused_form(await browser.post(page, data=form), "")
        bad_range = {**form, "name": "Odd", "rule-1-range": "[3.0,2.0"}
        refused_form(await browser.post(page, data=bad_range), "range")
        unknown_lc = {**form, "name": "Odd", "lifecycle": "no-such-lifecycle"}
        assert (await browser.post(page, data=unknown_lc)).status_code in (404, 422)

        hotfix = next(
            c
            for c in (await read(admin, f"/projects/{project['id']}/channels"))["items"]
            if c["name"] == "Hotfix"
        )
        edit = well_formed(await browser.get(f"{page}/{hotfix['id']}"))
        assert 'value="[2.0,3.0)"' in edit
        changed = {**form, "version": str(hotfix["version"]), "rule-1-range": "[2.0,4.0)"}
        assert (await browser.post(f"{page}/{hotfix['id']}", data=changed)).status_code == 303
        saved = await read(admin, f"/projects/{project['id']}/channels/{hotfix['id']}")
        assert saved["rules"][0]["version_range"] == "[2.0,4.0)"
        stale = await browser.post(f"{page}/{hotfix['id']}", data=changed)
        refused_form(stale, "")
        assert (await browser.get(f"{page}/no-such-channel")).status_code == 404

        tester = f"{page}/rule-test"
        rule = {"version_range": "[2.0,3.0)", "tag": "^$"}
        passes = well_formed(await browser.get(tester, params={"version": "2.5.0", **rule}))
        assert 'data-trial="matches"' in passes
        fails = well_formed(await browser.get(tester, params={"version": "2.5.0-beta", **rule}))
        assert 'data-trial="fails"' in fails and "tag does not match" in fails
        broken = await browser.get(tester, params={"version": "1.0.0", "tag": "(open"})
        refused_form(broken, "regular expression")
        refused_form(await browser.get(tester, params={"version": ""}), "enter a version")

    async with signed_in(portal_app, await new_user(admin, "project-viewer")) as viewer:
        listed = well_formed(await viewer.get(page))
        assert "Add channel" not in listed and "Edit" not in listed
        tried = well_formed(await viewer.get(f"{page}/rule-test", params={"version": "1.0.0"}))
        assert 'data-trial="matches"' in tried
        post = {"csrf_token": csrf_of(listed), "name": "ViewerChannel"}
        assert (await viewer.post(page, data=post)).status_code == 403
        names = [
            c["name"] for c in (await read(admin, f"/projects/{project['id']}/channels"))["items"]
        ]
        assert "ViewerChannel" not in names


def script_step(name: str) -> dict[str, Any]:
    return {"name": name, "target_roles": ["web"], "script_body": f"echo {name}"}


async def test_steps_are_edited_reordered_and_disabled_in_the_process_editor(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    project = await created(admin, "/projects", {"name": unique("StepProj")})
    process = f"/projects/{project['id']}/deployment-process"
    steps = [script_step("First"), script_step("Second")]
    put = await admin.put(SPACE + process, json={"steps": steps})
    assert put.status_code == 200, put.text
    first, second = [s["id"] for s in put.json()["steps"]]
    page = f"/app/projects/{project['id']}"

    async def names() -> list[str]:
        return [s["name"] for s in (await read(admin, process))["steps"]]

    async with signed_in(portal_app, await new_user(admin, "project-contributor")) as browser:
        shown = well_formed(await browser.get(page))
        token = csrf_of(shown)
        assert "Move step Second up" in shown and "Move step First up" not in shown
        moved = await browser.post(
            f"{page}/steps/{second}/move", data={"csrf_token": token, "direction": "up"}
        )
        assert moved.status_code == 303 and await names() == ["Second", "First"]
        sideways = {"csrf_token": token, "direction": "sideways"}
        assert (await browser.post(f"{page}/steps/{second}/move", data=sideways)).status_code == 422

        disabled = await browser.post(f"{page}/steps/{first}/disable", data={"csrf_token": token})
        assert disabled.status_code == 303
        after = (await read(admin, process))["steps"]
        assert [a["is_disabled"] for s in after for a in s["actions"]] == [False, True]
        assert "Enable step First" in well_formed(await browser.get(page))
        enabled = await browser.post(f"{page}/steps/{first}/enable", data={"csrf_token": token})
        assert enabled.status_code == 303
        assert not any(
            a["is_disabled"] for s in (await read(admin, process))["steps"] for a in s["actions"]
        )

        edit = well_formed(await browser.get(f"{page}/steps/{first}"))
        assert "echo First" in edit
        form = {
            "csrf_token": token,
            "name": "Renamed",
            "roles": "web, api",
            "syntax": "sh",
            "script_body": "echo renamed",
        }
        assert (await browser.post(f"{page}/steps/{first}", data=form)).status_code == 303
        renamed = next(s for s in (await read(admin, process))["steps"] if s["id"] == first)
        assert renamed["name"] == "Renamed" and renamed["target_roles"] == ["web", "api"]
        action = renamed["actions"][0]
        assert action["properties"]["script_body"] == "echo renamed"
        assert action["name"] == "Renamed" and action["properties"]["syntax"] == "sh"

        refused_form(
            await browser.post(f"{page}/steps/{first}", data={**form, "script_body": ""}), "script"
        )
        clash = await browser.post(f"{page}/steps/{first}", data={**form, "name": "Second"})
        refused_form(clash, "")
        assert await names() == ["Second", "Renamed"]
        empty = {"csrf_token": token, "name": "Empty", "kind": "script", "script_body": ""}
        refused_form(await browser.post(f"{page}/steps", data=empty), "script")
        assert await names() == ["Second", "Renamed"]
        assert (await browser.get(f"{page}/steps/no-such-step")).status_code == 404
        gone = await browser.post(f"{page}/steps/no-such-step/disable", data={"csrf_token": token})
        assert gone.status_code == 404

    async with signed_in(portal_app, await new_user(admin, "project-viewer")) as viewer:
        shown = well_formed(await viewer.get(page))
        assert "Move step" not in shown and "Disable step" not in shown
        post = {"csrf_token": csrf_of(shown), "direction": "down"}
        assert (await viewer.post(f"{page}/steps/{second}/move", data=post)).status_code == 403
        assert await names() == ["Second", "Renamed"]


async def test_a_lifecycle_s_phases_are_edited_and_kept_policies_survive(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    test_env = await created(admin, "/environments", {"name": unique("LcTest")})
    production = await created(admin, "/environments", {"name": unique("LcProd")})
    retention = {"strategy": "Count", "unit": "Days", "quantity_to_keep": 7}
    lifecycle = await created(
        admin,
        "/lifecycles",
        {
            "name": unique("EditLc"),
            "release_retention_policy": retention,
            "phases": [{"name": "Test", "automatic_environment_ids": [test_env["id"]]}],
        },
    )
    page = f"/app/lifecycles/{lifecycle['id']}"
    async with signed_in(portal_app, await new_user(admin, "space-manager")) as browser:
        listed = well_formed(await browser.get("/app/lifecycles"))
        assert f"Edit lifecycle {lifecycle['name']}" in listed
        edit = well_formed(await browser.get(page))
        assert 'data-phase-row="Test"' in edit
        phase_id = lifecycle["phases"][0]["id"]
        form = {
            "csrf_token": csrf_of(edit),
            "version": str(lifecycle["version"]),
            "rows": "4",
            "name": lifecycle["name"],
            "phase-1-id": phase_id,
            "phase-1-name": "Testing",
            "phase-1-automatic": test_env["id"],
            "phase-2-name": "Production",
            "phase-2-manual": production["id"],
            "phase-2-minimum": "1",
        }
        assert (await browser.post(page, data=form)).status_code == 303
        saved = await read(admin, f"/lifecycles/{lifecycle['id']}")
        assert [p["name"] for p in saved["phases"]] == ["Testing", "Production"]
        assert saved["phases"][0]["id"] == phase_id
        assert saved["release_retention_policy"]["quantity_to_keep"] == 7
        assert saved["phases"][1]["optional_environment_ids"] == [production["id"]]

        refused_form(await browser.post(page, data=form), "")
        fresh = {**form, "version": str(saved["version"])}
        refused_form(await browser.post(page, data={**fresh, "phase-2-minimum": "x"}), "whole")
        unknown = {**fresh, "phase-2-manual": "not-an-environment"}
        assert (await browser.post(page, data=unknown)).status_code == 422
        assert (await read(admin, f"/lifecycles/{lifecycle['id']}"))["version"] == saved["version"]
        assert (await browser.get("/app/lifecycles/no-such-lifecycle")).status_code == 404

    async with signed_in(portal_app, await new_user(admin, "project-viewer")) as viewer:
        shown = well_formed(await viewer.get(page))
        assert "Save lifecycle" not in shown
        post = {**form, "csrf_token": csrf_of(shown), "name": "Viewer's"}
        assert (await viewer.post(page, data=post)).status_code == 403
        assert (await read(admin, f"/lifecycles/{lifecycle['id']}"))["name"] == lifecycle["name"]
