"""The portal in process (no browser): sign-in, page structure, CSRF on forms, and that a
viewer is shown no edit buttons and is refused by the API when posting anyway."""

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


@pytest.fixture
def portal_app(gateway_settings: GatewaySettings) -> FastAPI:
    """Plain-HTTP test client: the portal cookie must not be `Secure` here."""
    return create_app(gateway_settings.model_copy(update={"session_cookie_secure": False}))


@pytest.fixture
async def admin(portal_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(portal_app) as client:
        client.headers["X-Cephalo-Api-Key"] = admin_key
        yield client


async def environments(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await admin.get("/api/v1/spaces/default/environments", params={"take": 500})
    body = response.json()
    return list(body["items"] if isinstance(body, dict) else body)


async def test_signing_in_and_every_page_has_a_title_a_main_landmark_and_labels(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    assert (await admin.get("/app/dashboard")).headers["location"] == "/app/sign-in"
    well_formed(await admin.get("/app/sign-in"))
    wrong = await admin.post("/app/sign-in", data={"username": "nobody", "password": "x" * 12})
    assert wrong.status_code == 401
    assert "username or password is wrong" in wrong.text
    assert page_problems(wrong.text) == []

    username = await new_user(admin, role="space-manager")
    async with signed_in(portal_app, username) as browser:
        html = well_formed(await browser.get("/app/environments"))
        name = unique("Env")
        created = await browser.post(
            "/app/environments", data={"name": name, "csrf_token": csrf_of(html)}
        )
        assert created.status_code == 303
        project_form = well_formed(await browser.get("/app/projects"))
        made = await browser.post(
            "/app/projects", data={"name": unique("Proj"), "csrf_token": csrf_of(project_form)}
        )
        assert made.status_code == 303
        for path in (
            "/app/dashboard",
            "/app/environments",
            "/app/projects",
            made.headers["location"],
            "/app/packages",
        ):
            text = well_formed(await browser.get(path))
            assert "Sign out" in text
        assert name in (await browser.get("/app/environments")).text


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    username = await new_user(admin, role="space-manager")
    async with signed_in(portal_app, username) as browser:
        name = unique("NoCsrf")
        for token in (None, "forged"):
            data = {"name": name} | ({"csrf_token": token} if token else {})
            refused = await browser.post("/app/environments", data=data)
            assert refused.status_code == 403
            assert page_problems(refused.text) == []
        assert name not in [e["name"] for e in await environments(admin)]


async def test_a_viewer_sees_no_edit_or_deploy_buttons_and_a_direct_post_is_refused(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    username = await new_user(admin, role="project-viewer")
    async with signed_in(portal_app, username) as browser:
        pages = {
            p: well_formed(await browser.get(f"/app/{p}"))
            for p in ("environments", "projects", "dashboard", "packages")
        }
        for text in pages.values():
            assert '<button type="submit">Add' not in text
            assert "Deploy to" not in text and "Upload" not in text
        token = csrf_of(pages["projects"])
        name = unique("ViewerEnv")
        refused = await browser.post("/app/environments", data={"name": name, "csrf_token": token})
        assert refused.status_code == 403, refused.text
        assert "permission" in refused.text
        assert name not in [e["name"] for e in await environments(admin)]
        project = await browser.post("/app/projects", data={"name": name, "csrf_token": token})
        assert project.status_code == 403


async def test_signing_out_ends_the_gateway_session(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    username = await new_user(admin, role="space-manager")
    async with signed_in(portal_app, username) as browser:
        cookie = browser.cookies["cephalo_portal"]
        token = csrf_of(well_formed(await browser.get("/app/projects")))
        out = await browser.post("/app/sign-out", data={"csrf_token": token})
        assert out.status_code == 303
        browser.cookies.set("cephalo_portal", cookie, path="/app")
        again = await browser.get("/app/projects")
        assert again.status_code == 303 and again.headers["location"] == "/app/sign-in"


async def new_environment(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.post(
        "/api/v1/spaces/default/environments", json={"name": unique("LcEnv")}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def lifecycle_names(admin: httpx.AsyncClient) -> list[str]:
    response = await admin.get("/api/v1/spaces/default/lifecycles", params={"take": 500})
    body = response.json()
    return [item["name"] for item in (body["items"] if isinstance(body, dict) else body)]


async def test_a_lifecycle_is_added_with_its_phases_and_bad_input_is_a_form_error(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    test_env, production = await new_environment(admin), await new_environment(admin)
    username = await new_user(admin, role="space-manager")
    async with signed_in(portal_app, username) as browser:
        token = csrf_of(well_formed(await browser.get("/app/lifecycles")))
        name = unique("Lifecycle")
        form = {
            "csrf_token": token,
            "name": name,
            "phase-1-name": "Test",
            "phase-1-automatic": test_env["id"],
            "phase-2-name": "Production",
            "phase-2-manual": production["id"],
            "phase-2-minimum": "1",
        }
        assert (await browser.post("/app/lifecycles", data=form)).status_code == 303
        page = well_formed(await browser.get("/app/lifecycles"))
        assert f'data-lifecycle="{name}"' in page and 'data-phase="Production"' in page
        assert production["name"] in page

        again = await browser.post("/app/lifecycles", data=form)
        assert again.status_code == 422 and 'role="alert"' in again.text
        assert page_problems(again.text) == []
        odd = unique("Odd")
        bad = {**form, "name": odd, "phase-1-minimum": "several"}
        refused = await browser.post("/app/lifecycles", data=bad)
        assert refused.status_code == 422 and "whole number" in refused.text
        unknown = {**form, "name": odd, "phase-1-automatic": "not-an-id"}
        assert (await browser.post("/app/lifecycles", data=unknown)).status_code == 422
        assert odd not in await lifecycle_names(admin)

    viewer = await new_user(admin, role="project-viewer")
    async with signed_in(portal_app, viewer) as browser:
        page = well_formed(await browser.get("/app/lifecycles"))
        assert "Add lifecycle" not in page and name in page
        post = {"csrf_token": csrf_of(page), "name": unique("ViewerLc")}
        assert (await browser.post("/app/lifecycles", data=post)).status_code == 403
        assert post["name"] not in await lifecycle_names(admin)


async def test_the_audit_log_shows_changes_filtered_by_user_and_refuses_a_bad_date(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    username = await new_user(admin, role="space-manager")
    async with signed_in(portal_app, username) as browser:
        token = csrf_of(well_formed(await browser.get("/app/environments")))
        name = unique("AuditEnv")
        await browser.post("/app/environments", data={"name": name, "csrf_token": token})
        mine = well_formed(await browser.get("/app/audit", params={"user": username}))
        assert "POST /api/v1/spaces/default/environments" in mine
        others = well_formed(await browser.get("/app/audit", params={"user": unique("nobody")}))
        assert "/environments</code>" not in others and "Nothing recorded that matches" in others
        bad = await browser.get("/app/audit", params={"from": "last tuesday"})
        assert bad.status_code == 422 and "not a date" in bad.text
        assert page_problems(bad.text) == []
        ranged = await browser.get(
            "/app/audit", params={"user": username, "from": "2000-01-01T00:00"}
        )
        assert "POST /api/v1/spaces/default/environments" in well_formed(ranged)


async def test_a_new_api_key_is_shown_once_works_and_can_be_revoked(
    portal_app: FastAPI, admin: httpx.AsyncClient
) -> None:
    username = await new_user(admin, role="project-viewer")
    async with signed_in(portal_app, username) as browser:
        token = csrf_of(well_formed(await browser.get("/app/api-keys")))
        empty = await browser.post("/app/api-keys", data={"csrf_token": token, "purpose": ""})
        assert empty.status_code == 422 and page_problems(empty.text) == []
        created = await browser.post("/app/api-keys", data={"csrf_token": token, "purpose": "ci"})
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        assert page_problems(created.text) == []
        match = re.search(r'<code id="new-key-value" data-key>([^<]+)</code>', created.text)
        assert match is not None
        key = match.group(1)
        listed = well_formed(await browser.get("/app/api-keys"))
        assert key not in listed and 'data-key-purpose="ci"' in listed
        async with running(portal_app) as api:
            assert (
                await api.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": key})
            ).status_code == 200
            key_id = re.search(r"/app/api-keys/([^/]+)/revoke", listed)
            assert key_id is not None
            revoked = await browser.post(
                f"/app/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": token}
            )
            assert revoked.status_code == 303
            assert (
                await api.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": key})
            ).status_code == 401
