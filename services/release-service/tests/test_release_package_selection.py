"""Release creation picks package versions from a real package-feed through channel rules."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from cephalo_common.testing import running, serving
from cephalo_feed.clients.release_service import ReleaseServiceReferences
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings

WEB_AND_TOOLS = [
    {
        "name": "Web",
        "target_roles": ["web"],
        "actions": [
            {
                "action_type": "cephalo.package",
                "packages": [
                    {"package_id": "Sel.Web"},
                    {"name": "tools", "package_id": "Sel.Tools"},
                ],
            }
        ],
    }
]
WEB_VERSIONS = ["0.9.0", "1.0.0", "1.4.0", "1.5.0", "1.6.0-beta.2", "1.9.9", "2.0.0", "2.1.0-beta"]


def versions_of(release: dict[str, Any]) -> dict[str, str]:
    return {p["package_reference"]: p["version"] for p in release["selected_packages"]}


async def with_packages(api: Any, feed: Any, tools: tuple[str, ...] = ("3.0.0",)) -> None:
    for version in WEB_VERSIONS:
        await feed.push(api.id, "Sel.Web", version)
    for version in tools:
        await feed.push(api.id, "Sel.Tools", version)


async def channel(api: Any, project: dict[str, Any], name: str, *rules: dict[str, Any]) -> None:
    await api.ok(
        "POST", f"/projects/{project['id']}/channels", 201, json={"name": name, "rules": rules}
    )


async def test_the_newest_version_each_channel_allows_is_chosen(
    feed_api: Any, package_feed: Any
) -> None:
    await with_packages(feed_api, package_feed, tools=("3.0.0", "3.1.0-beta"))
    project = await feed_api.project(steps=WEB_AND_TOOLS)
    stable = {"version_range": "[1.0,2.0)", "tag": "^$", "action_packages": ["Web:"]}
    await channel(feed_api, project, "Stable", stable)
    await channel(
        feed_api, project, "Old", {"version_range": "(,1.5]", "action_packages": ["Web:"]}
    )
    await channel(feed_api, project, "Beta", {"tag": "beta"})
    url = f"/projects/{project['id']}/releases"

    default = await feed_api.ok("POST", url, 201, json={"version": "d.1"})
    assert versions_of(default) == {"": "2.1.0-beta", "tools": "3.1.0-beta"}
    chosen = await feed_api.ok("POST", url, 201, json={"version": "s.1", "channel": "Stable"})
    assert versions_of(chosen) == {"": "1.9.9", "tools": "3.1.0-beta"}
    old = await feed_api.ok("POST", url, 201, json={"version": "o.1", "channel": "Old"})
    assert versions_of(old)[""] == "1.5.0"
    beta = await feed_api.ok("POST", url, 201, json={"version": "b.1", "channel": "Beta"})
    assert versions_of(beta) == {"": "2.1.0-beta", "tools": "3.1.0-beta"}


async def test_an_explicit_version_obeys_the_rules_and_must_exist(
    feed_api: Any, package_feed: Any
) -> None:
    await with_packages(feed_api, package_feed)
    project = await feed_api.project(steps=WEB_AND_TOOLS)
    await channel(feed_api, project, "Stable", {"version_range": "[1.0,2.0)", "tag": "^$"})
    url = f"/projects/{project['id']}/releases"

    def body(web: str, channel: str = "Stable") -> dict[str, Any]:
        return {"channel": channel, "packages": [{"action_name": "Web", "version": web}]}

    for bad in ("2.0.0", "1.6.0-beta.2", "0.9.0"):
        problem = (await feed_api.request("POST", url, json=body(bad))).json()
        assert "breaks the channel rule" in problem["detail"], problem
        assert "'[1.0,2.0)'" in problem["detail"] and "'^$'" in problem["detail"]
    missing = await feed_api.request("POST", url, json=body("1.2.0"))
    assert missing.status_code == 422 and "does not exist in the feed" in missing.json()["detail"]
    tools_breaks = await feed_api.request("POST", url, json={"channel": "Stable"})
    assert tools_breaks.status_code == 422
    assert "no version of Sel.Tools" in tools_breaks.json()["detail"]

    await channel(
        feed_api, project, "Web only", {"version_range": "[1.0,2.0)", "action_packages": ["Web:"]}
    )
    release = await feed_api.ok("POST", url, 201, json=body("1.4.0", "Web only"))
    assert versions_of(release) == {"": "1.4.0", "tools": "3.0.0"}
    assert (await feed_api.ok("GET", "/projects/" + project["id"] + "/releases"))["total"] == 1


async def test_no_version_in_the_feed_is_a_clear_422(feed_api: Any) -> None:
    project = await feed_api.project(steps=WEB_AND_TOOLS)
    response = await feed_api.request("POST", f"/projects/{project['id']}/releases", json={})
    assert response.status_code == 422
    assert "no version of Sel.Web" in response.json()["detail"]


async def test_an_unreachable_feed_is_a_503_and_nothing_is_written(
    release_settings: ReleaseSettings,
) -> None:
    settings = release_settings.model_copy(
        update={"feed_url": "http://127.0.0.1:9", "feed_timeout_seconds": 2.0}
    )
    async with running(create_app(settings)) as client:
        projects = "/api/v1/spaces/default/projects"
        project = (
            await client.post(projects, json={"name": f"Down-{uuid.uuid4().hex[:8]}"})
        ).json()
        await client.put(
            f"{projects}/{project['id']}/deployment-process", json={"steps": WEB_AND_TOOLS}
        )
        for body in ({}, {"packages": [{"action_name": "Web", "version": "1.0.0"}]}):
            response = await client.post(f"{projects}/{project['id']}/releases", json=body)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        listed = await client.get(f"{projects}/{project['id']}/releases")
        assert listed.json()["total"] == 0


async def test_without_a_feed_explicit_versions_are_trusted(client: httpx.AsyncClient) -> None:
    projects = "/api/v1/spaces/default/projects"
    project = (await client.post(projects, json={"name": f"NoFeed-{uuid.uuid4().hex[:8]}"})).json()
    await client.put(
        f"{projects}/{project['id']}/deployment-process", json={"steps": WEB_AND_TOOLS}
    )
    url = f"{projects}/{project['id']}/releases"
    chosen = await client.post(url, json={"packages": [{"action_name": "Web", "version": "7.0.0"}]})
    assert chosen.status_code == 422 and "no package feed is configured" in chosen.json()["detail"]
    both = [
        {"action_name": "Web", "version": "7.0.0"},
        {"action_name": "Web", "package_reference": "tools", "version": "1.0.0"},
    ]
    assert (await client.post(url, json={"packages": both})).status_code == 201


async def test_package_references_answer_the_feeds_question(
    api: Any, other_space: Any, release_settings: ReleaseSettings
) -> None:
    """The feed's own client reads the endpoint: the contract is the one it was written for."""
    legacy = {"name": "Legacy", "target_roles": ["web"], "script_body": "echo legacy"}
    project = await api.project(steps=[*WEB_AND_TOOLS, legacy])
    url = f"/projects/{project['id']}/releases"
    for web, tools in (("1.0.0", "3.0.0"), ("1.0.0", "3.1.0"), ("1.2.0-beta", "3.1.0")):
        packages = [
            {"action_name": "Web", "version": web},
            {"action_name": "web", "package_reference": "Tools", "version": tools},
        ]
        await api.ok("POST", url, 201, json={"packages": packages, "version": web + tools})

    answer = await api.ok("GET", "/package-references", params={"package_id": "sel.web"})
    assert answer == {"package_id": "sel.web", "versions": ["1.0.0", "1.2.0-beta"]}
    tools = await api.ok("GET", "/package-references", params={"package_id": "SEL.TOOLS"})
    assert tools["versions"] == ["3.0.0", "3.1.0"]
    for unused in ("Sel", "Sel.Web.Extra", "%", "_el.Web"):
        none = await api.ok("GET", "/package-references", params={"package_id": unused})
        assert none["versions"] == [], unused
    elsewhere = await other_space.ok("GET", "/package-references", params={"package_id": "Sel.Web"})
    assert elsewhere["versions"] == []
    missing = await api.request("GET", "/package-references")
    assert missing.status_code == 422
    nowhere = await api.client.get(
        "/api/v1/spaces/no-such-space/package-references", params={"package_id": "Sel.Web"}
    )
    assert nowhere.status_code == 404

    async with serving(create_app(release_settings)) as base_url:
        client = ReleaseServiceReferences(base_url, timeout_seconds=5.0)
        try:
            known = await client.references(uuid.UUID(api.id), "Sel.Web")
        finally:
            await client.aclose()
    assert known.known and known.version_keys == {"1.0.0", "1.2.0-beta"}


async def test_a_tag_that_is_not_a_regex_is_refused(api: Any) -> None:
    project = await api.project(steps=WEB_AND_TOOLS)
    body = {"name": "Broken", "rules": [{"tag": "beta("}]}
    response = await api.request("POST", f"/projects/{project['id']}/channels", json=body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.rules.0.tag"]
