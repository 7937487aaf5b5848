"""Environments, lifecycles, project groups, projects and channels through the HTTP API:
the conventions (paging, slugs, ETag/version) and every failure path (404, 409, 422, 428)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    return dict(body)


# --- paging and filtering ------------------------------------------------------------


async def test_lists_page_with_skip_take_total_and_links(api: Any) -> None:
    for index in range(5):
        await api.environment(f"Paged {index}")
    page = await api.ok("GET", "/environments", params={"skip": 1, "take": 2})
    assert [e["name"] for e in page["items"]] == ["Paged 1", "Paged 2"]
    assert (page["total"], page["skip"], page["take"]) == (5, 1, 2)
    assert page["links"]["next"].endswith("skip=3&take=2")
    assert page["links"]["prev"].endswith("skip=0&take=2")
    assert page["links"]["self"].startswith(f"/api/v1/spaces/{api.slug}/environments?")


async def test_skip_and_take_are_clamped_not_rejected(api: Any) -> None:
    await api.environment()
    page = await api.ok("GET", "/environments", params={"skip": -5, "take": 10_000})
    assert (page["skip"], page["take"]) == (0, 100)
    page = await api.ok("GET", "/environments", params={"skip": 10**12, "take": 0})
    assert (page["skip"], page["take"], page["items"]) == (2_147_483_647, 1, [])


async def test_a_non_numeric_take_is_a_problem(api: Any) -> None:
    problem(await api.request("GET", "/environments", params={"take": "lots"}), 422)


async def test_lists_filter_by_partial_name_case_insensitively(api: Any) -> None:
    await api.environments("Production EU", "Production US", "Staging")
    page = await api.ok("GET", "/environments", params={"partial_name": "production"})
    assert [e["name"] for e in page["items"]] == ["Production EU", "Production US"]
    assert page["total"] == 2
    literal = await api.ok("GET", "/environments", params={"partial_name": "%"})
    assert literal["total"] == 0


@pytest.mark.parametrize(
    "path", ["/environments", "/lifecycles", "/project-groups", "/projects", "/deployments"]
)
async def test_every_list_answers_the_page_envelope(api: Any, path: str) -> None:
    page = await api.ok("GET", path)
    assert {"items", "total", "skip", "take", "links"} <= page.keys()


async def test_spaces_are_listed_as_a_page(client: Any) -> None:
    page = (await client.get("/api/v1/spaces", params={"partial_name": "Default"})).json()
    assert "default" in {space["slug"] for space in page["items"]}


# --- environments --------------------------------------------------------------------


async def test_an_environment_resolves_by_id_slug_and_name(api: Any) -> None:
    env = await api.environment("Pre Production")
    assert env["slug"] == "pre-production"
    for ref in (env["id"], "pre-production", "PRE PRODUCTION"):
        assert (await api.ok("GET", f"/environments/{ref}"))["id"] == env["id"]


async def test_environment_slugs_are_made_unique(api: Any) -> None:
    first = await api.environment("Test!")
    second = await api.environment("Test?")
    assert (first["slug"], second["slug"]) == ("test", "test-2")
    problem(await api.request("POST", "/environments", json={"name": "x", "slug": "test"}), 409)


async def test_an_environment_update_needs_the_version_it_read(api: Any) -> None:
    env = await api.environment()
    response = await api.request("GET", f"/environments/{env['id']}")
    assert response.headers["etag"] == '"1"'
    body = {"name": "Renamed", "use_guided_failure": True}
    problem(await api.request("PUT", f"/environments/{env['id']}", json=body), 428)
    updated = await api.request(
        "PUT", f"/environments/{env['id']}", json=body, headers={"If-Match": '"1"'}
    )
    assert updated.status_code == 200 and updated.headers["etag"] == '"2"'
    assert updated.json()["use_guided_failure"] is True
    stale = await api.request("PUT", f"/environments/{env['id']}", json={**body, "version": 1})
    assert "changed since version 1" in problem(stale, 409)["detail"]


async def test_an_environment_update_cannot_take_another_name(api: Any) -> None:
    envs = await api.environments("A", "B")
    response = await api.request(
        "PUT", f"/environments/{envs['B']['id']}", json={"name": "a", "version": 1}
    )
    problem(response, 409)


async def test_body_version_and_if_match_must_agree(api: Any) -> None:
    env = await api.environment()
    response = await api.request(
        "PUT",
        f"/environments/{env['id']}",
        json={"name": "x", "version": 1},
        headers={"If-Match": '"2"'},
    )
    problem(response, 422)
    problem(
        await api.request(
            "PUT", f"/environments/{env['id']}", json={"name": "x"}, headers={"If-Match": "*"}
        ),
        422,
    )


async def test_environments_are_reordered_all_at_once(api: Any) -> None:
    envs = await api.environments("One", "Two", "Three")
    order = [envs[name]["id"] for name in ("Three", "One", "Two")]
    result = await api.ok("POST", "/environments/reorder", json={"environment_ids": order})
    assert [e["sort_order"] for e in result] == [0, 1, 2]
    listed = await api.ok("GET", "/environments")
    assert [e["name"] for e in listed["items"]] == ["Three", "One", "Two"]


async def test_a_partial_or_foreign_reorder_is_rejected(api: Any, other_space: Any) -> None:
    envs = await api.environments("One", "Two")
    foreign = await other_space.environment()
    for ids in (
        [envs["One"]["id"]],
        [envs["One"]["id"], envs["One"]["id"], envs["Two"]["id"]],
        [envs["One"]["id"], envs["Two"]["id"], foreign["id"]],
    ):
        problem(
            await api.request("POST", "/environments/reorder", json={"environment_ids": ids}), 422
        )


async def test_an_environment_from_another_space_is_not_found(api: Any, other_space: Any) -> None:
    foreign = await other_space.environment()
    problem(await api.request("GET", f"/environments/{foreign['id']}"), 404)
    problem(
        await api.request(
            "PUT", f"/environments/{foreign['id']}", json={"name": "x", "version": 1}
        ),
        404,
    )


# --- lifecycles ----------------------------------------------------------------------


async def test_a_space_starts_with_a_default_lifecycle_and_project_group(api: Any) -> None:
    lifecycles = (await api.ok("GET", "/lifecycles"))["items"]
    assert [(lc["name"], lc["is_default"]) for lc in lifecycles] == [("Default Lifecycle", True)]
    assert [p["name"] for p in lifecycles[0]["phases"]] == ["Any environment"]
    groups = (await api.ok("GET", "/project-groups"))["items"]
    assert [(g["name"], g["is_default"]) for g in groups] == [("Default Project Group", True)]


async def test_retention_is_inherited_from_the_previous_phase_or_the_lifecycle(api: Any) -> None:
    envs = await api.environments("Dev", "Test", "Prod")
    keep_three = {"strategy": "Count", "quantity_to_keep": 3, "unit": "Items"}
    keep_days = {"strategy": "Count", "quantity_to_keep": 30, "unit": "Days"}
    lifecycle = await api.lifecycle(
        [
            {"name": "Dev", "optional_environment_ids": [envs["Dev"]["id"]]},
            {
                "name": "Test",
                "optional_environment_ids": [envs["Test"]["id"]],
                "release_retention_policy": keep_days,
            },
            {"name": "Prod", "optional_environment_ids": [envs["Prod"]["id"]]},
        ],
        release_retention_policy=keep_three,
    )
    effective = [p["effective_release_retention_policy"] for p in lifecycle["phases"]]
    assert effective == [keep_three, keep_days, keep_days]
    assert [p["release_retention_policy"] for p in lifecycle["phases"]] == [None, keep_days, None]
    assert lifecycle["phases"][2]["effective_target_retention_policy"]["strategy"] == "Forever"


@pytest.mark.parametrize(
    "phases",
    [
        [{"name": "A"}, {"name": "a"}],
        [{"name": "A", "optional_environment_ids": ["ENV"], "automatic_environment_ids": ["ENV"]}],
        [
            {
                "name": "A",
                "optional_environment_ids": ["ENV"],
                "minimum_environments_before_promotion": 2,
            }
        ],
        [{"name": "A", "optional_environment_ids": [str(uuid.uuid4())]}],
        [{"name": "A", "release_retention_policy": {"strategy": "Count", "quantity_to_keep": 0}}],
        [{"name": "", "extra": True}],
    ],
    ids=["duplicate-names", "env-twice", "minimum-too-high", "unknown-env", "count-0", "shape"],
)
async def test_an_invalid_lifecycle_is_a_422(api: Any, phases: list[dict[str, Any]]) -> None:
    env = await api.environment()
    text = str(phases).replace("ENV", env["id"]).replace("'", '"').replace("True", "true")
    import json

    response = await api.request(
        "POST", "/lifecycles", json={"name": "Bad", "phases": json.loads(text)}
    )
    problem(response, 422)


async def test_lifecycle_names_and_slugs_are_unique(api: Any) -> None:
    await api.ok("POST", "/lifecycles", 201, json={"name": "Release train"})
    problem(await api.request("POST", "/lifecycles", json={"name": "RELEASE TRAIN"}), 409)
    problem(
        await api.request("POST", "/lifecycles", json={"name": "Other", "slug": "release-train"}),
        409,
    )


async def test_a_lifecycle_update_is_versioned(api: Any) -> None:
    created = await api.ok("POST", "/lifecycles", 201, json={"name": "Versioned"})
    url = f"/lifecycles/{created['slug']}"
    updated = await api.ok("PUT", url, json={"name": "Versioned", "version": 1, "phases": []})
    assert updated["version"] == 2 and updated["phases"] == []
    problem(await api.request("PUT", url, json={"name": "Versioned", "version": 1}), 409)
    problem(await api.request("PUT", url, json={"name": "Versioned"}), 428)


async def test_a_lifecycle_from_another_space_is_not_found(api: Any, other_space: Any) -> None:
    foreign = await other_space.lifecycle([])
    problem(await api.request("GET", f"/lifecycles/{foreign['id']}"), 404)
    problem(await api.request("PUT", f"/lifecycles/{foreign['id']}", json={"name": "x"}), 404)
    problem(
        await api.request("POST", "/projects", json={"name": "p", "lifecycle": foreign["id"]}), 404
    )


# --- project groups and projects -----------------------------------------------------


async def test_project_groups_are_created_updated_and_unique(api: Any, other_space: Any) -> None:
    group = await api.ok("POST", "/project-groups", 201, json={"name": "Web apps"})
    problem(await api.request("POST", "/project-groups", json={"name": "web APPS"}), 409)
    updated = await api.ok(
        "PUT", "/project-groups/web-apps", json={"name": "Web", "version": 1, "slug": "web"}
    )
    assert (updated["slug"], updated["version"]) == ("web", 2)
    problem(
        await api.request("PUT", "/project-groups/web", json={"name": "Web", "version": 1}), 409
    )
    problem(await api.request("GET", f"/project-groups/{uuid.uuid4()}"), 404)
    problem(await other_space.request("GET", f"/project-groups/{group['id']}"), 404)
    problem(await api.request("POST", "/project-groups", json={"name": " "}), 422)


async def test_a_project_gets_the_default_lifecycle_group_and_settings(api: Any) -> None:
    project = await api.ok("POST", "/projects", 201, json={"name": "Shop"})
    lifecycles = (await api.ok("GET", "/lifecycles"))["items"]
    groups = (await api.ok("GET", "/project-groups"))["items"]
    assert project["lifecycle_id"] == lifecycles[0]["id"]
    assert project["project_group_id"] == groups[0]["id"]
    assert project["default_guided_failure_mode"] == "EnvironmentDefault"
    assert project["connectivity_policy"] == {
        "skip_unavailable_targets": False,
        "exclude_unhealthy_targets": False,
        "allow_deployments_to_no_targets": False,
    }
    assert project["versioning_strategy"]["template"].startswith("#{Cephalo.Version.LastMajor}")
    channels = (await api.ok("GET", "/projects/shop/channels"))["items"]
    assert [(c["name"], c["is_default"]) for c in channels] == [("Default", True)]


async def test_project_settings_are_replaced_with_the_version_read(api: Any) -> None:
    lifecycle = await api.lifecycle([])
    group = await api.ok("POST", "/project-groups", 201, json={"name": "Services"})
    await api.ok("POST", "/projects", 201, json={"name": "Billing"})
    body = {
        "name": "Billing",
        "version": 1,
        "lifecycle": lifecycle["slug"],
        "project_group": "Services",
        "default_guided_failure_mode": "On",
        "connectivity_policy": {
            "skip_unavailable_targets": True,
            "allow_deployments_to_no_targets": True,
        },
        "versioning_strategy": {"template": "1.0.i"},
        "is_disabled": True,
    }
    updated = await api.ok("PUT", "/projects/billing", json=body)
    assert (updated["lifecycle_id"], updated["project_group_id"]) == (lifecycle["id"], group["id"])
    assert updated["is_disabled"] is True and updated["version"] == 2
    assert updated["connectivity_policy"]["skip_unavailable_targets"] is True
    problem(await api.request("PUT", "/projects/billing", json=body), 409)
    filtered = await api.ok("GET", "/projects", params={"project_group": "services"})
    assert [p["name"] for p in filtered["items"]] == ["Billing"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "p", "default_guided_failure_mode": "Sometimes"},
        {"name": "p", "versioning_strategy": {"template": None}},
        {
            "name": "p",
            "versioning_strategy": {"donor_package": {"action_name": "x"}, "template": "1"},
        },
        {"name": "p", "connectivity_policy": {"skip": True}},
        {"name": "p", "slug": "Not A Slug"},
        {"name": "p", "lifecycle": ""},
    ],
)
async def test_invalid_project_settings_are_a_422(api: Any, body: dict[str, Any]) -> None:
    problem(await api.request("POST", "/projects", json=body), 422)


async def test_project_names_and_slugs_are_unique_and_refs_resolve(api: Any) -> None:
    await api.ok("POST", "/projects", 201, json={"name": "Payments"})
    problem(await api.request("POST", "/projects", json={"name": "PAYMENTS"}), 409)
    problem(await api.request("POST", "/projects", json={"name": "x", "slug": "payments"}), 409)
    problem(
        await api.request("POST", "/projects", json={"name": "y", "project_group": "nope"}), 404
    )
    problem(await api.request("GET", "/projects/nope"), 404)


# --- channels ------------------------------------------------------------------------


async def test_channels_override_the_lifecycle_and_one_is_always_default(api: Any) -> None:
    project = await api.project()
    lifecycle = await api.lifecycle([])
    base = f"/projects/{project['id']}/channels"
    hotfix = await api.ok(
        "POST",
        base,
        201,
        json={"name": "Hotfix", "lifecycle": lifecycle["name"], "is_default": True},
    )
    assert hotfix["lifecycle_id"] == lifecycle["id"] and hotfix["is_default"] is True
    channels = (await api.ok("GET", base))["items"]
    assert sorted((c["name"], c["is_default"]) for c in channels) == [
        ("Default", False),
        ("Hotfix", True),
    ]
    problem(await api.request("PUT", f"{base}/hotfix", json={"name": "Hotfix", "version": 1}), 422)
    problem(await api.request("POST", base, json={"name": "hotfix"}), 409)
    problem(await api.request("PUT", f"{base}/hotfix", json={"name": "Hotfix", "version": 9}), 409)


async def test_a_channel_range_must_parse(api: Any) -> None:
    project = await api.project()
    response = await api.request(
        "POST",
        f"/projects/{project['id']}/channels",
        json={"name": "Bad", "rules": [{"version_range": "[2.0,1.0"}]},
    )
    problem(response, 422)


async def test_a_channel_of_another_project_or_space_is_not_found(
    api: Any, other_space: Any
) -> None:
    mine, theirs = await api.project(), await other_space.project()
    foreign = (await other_space.ok("GET", f"/projects/{theirs['id']}/channels"))["items"][0]
    problem(await api.request("GET", f"/projects/{mine['id']}/channels/{foreign['id']}"), 404)
    problem(await api.request("GET", f"/projects/{theirs['id']}/channels"), 404)


async def test_space_slugs_are_unique_and_validated(client: Any, api: Any) -> None:
    duplicate = await client.post("/api/v1/spaces", json={"name": "Again", "slug": api.slug})
    problem(duplicate, 409)
    problem(await client.post("/api/v1/spaces", json={"name": "x", "slug": "Not Valid"}), 422)
    problem(await client.get(f"/api/v1/spaces/{uuid.uuid4()}"), 404)
