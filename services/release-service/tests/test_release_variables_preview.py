"""The preview-and-explain endpoint: each of the 11 precedence levels against each other,
the tie-break rules, and the same explanation from a release's snapshot (issue 4, Done-when 3)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

SpaceApi = Any
SECRET = "s3cr3t-value-for-preview"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class World:
    """A project whose one step targets `web`, deployed to machine m1 tagged web and db."""

    def __init__(self, api: SpaceApi) -> None:
        self.api = api

    async def build(self) -> None:
        api = self.api
        self.environment = await api.environment()
        self.project = await api.project(
            [{"name": "Deploy", "target_roles": ["web"], "script_body": "echo"}]
        )
        process = await api.ok("GET", f"/projects/{self.project['id']}/deployment-process")
        self.action = process["steps"][0]["actions"][0]["id"]
        channels = await api.ok("GET", f"/projects/{self.project['id']}/channels")
        self.channel = channels["items"][0]["id"]

    def scopes(self) -> dict[int, dict[str, list[str]]]:
        project = self.project["id"]
        return {
            1: {"Action": [self.action]},
            2: {"Machine": ["m1"]},
            3: {"Role": ["web"]},
            4: {"Role": ["db"]},
            5: {"Tenant": ["t1"]},
            6: {"TenantTag": ["Region/EU"]},
            7: {"Environment": [self.environment["id"]]},
            8: {"Channel": [self.channel]},
            9: {"ProcessOwner": [project]},
            10: {"Project": [project]},
            11: {},
        }

    def params(self) -> dict[str, Any]:
        return {
            "environment": self.environment["name"],
            "channel": self.channel,
            "machine": "m1",
            "role": ["web", "db"],
            "step": "Deploy",
            "tenant": "t1",
            "tenant_tag": ["Region/EU"],
        }


PAIRS = list(itertools.combinations(range(1, 12), 2))


def pair_name(better: int, worse: int) -> str:
    return f"L{better:02d}_vs_L{worse:02d}"


async def test_each_level_beats_every_less_specific_level_and_says_why(api: SpaceApi) -> None:
    world = World(api)
    await world.build()
    scopes = world.scopes()
    variables = []
    for better, worse in PAIRS:
        name = pair_name(better, worse)
        variables += [
            {"name": name, "value": f"level {worse}", "scope": scopes[worse]},
            {"name": name, "value": f"level {better}", "scope": scopes[better]},
        ]
    project_id = world.project["id"]
    current = await api.ok("GET", f"/projects/{project_id}/variables")
    await api.ok(
        "PUT",
        f"/projects/{project_id}/variables",
        json={"version": current["version"], "variables": variables},
    )
    preview = await api.ok(
        "GET", f"/projects/{project_id}/variables/preview", params=world.params()
    )
    by_name = {item["name"]: item for item in preview["variables"]}
    assert len(by_name) == len(PAIRS) == 55
    for better, worse in PAIRS:
        row = by_name[pair_name(better, worse)]
        assert row["value"] == f"level {better}", row
        assert row["rule"] == "more_specific_dimension", row
        assert row["winner"]["levels"] == [better]
        lost = [c for c in row["candidates"] if c["outcome"] == "lost"]
        assert [c["levels"] for c in lost] == [[worse]]
        assert lost[0]["rule"] == "more_specific_dimension"
        assert "is more specific than" in row["explanation"]
        assert not row["tie"]


async def _library(api: SpaceApi, variables: list[dict[str, Any]]) -> str:
    body = {"name": unique("Lib"), "variables": variables}
    return str((await api.ok("POST", "/library-variable-sets", 201, json=body))["id"])


async def test_tie_breaks_and_rejections_are_explained(api: SpaceApi) -> None:
    world = World(api)
    await world.build()
    env = world.environment["id"]
    first = await _library(
        api, [{"name": "Shared", "value": "first"}, {"name": "Mine", "value": "lib"}]
    )
    second = await _library(api, [{"name": "Shared", "value": "second"}])
    other_env = await api.environment()
    project_id = world.project["id"]
    current = await api.ok("GET", f"/projects/{project_id}/variables")
    await api.ok(
        "PUT",
        f"/projects/{project_id}/variables",
        json={
            "version": current["version"],
            "library_variable_sets": [first, second],
            "variables": [
                {"name": "Css", "value": "tag", "scope": {"Role": ["db"]}},
                {
                    "name": "Css",
                    "value": "tag+env",
                    "scope": {"Role": ["db"], "Environment": [env]},
                },
                {"name": "Mine", "value": "project"},
                {"name": "Tied", "value": "declared first", "scope": {"Machine": ["m1"]}},
                {"name": "Tied", "value": "declared second", "scope": {"Machine": ["m1", "m2"]}},
                {"name": "Elsewhere", "value": "x", "scope": {"Environment": [other_env["id"]]}},
                {"name": "Alone", "value": "only"},
                {"name": "Password", "type": "Sensitive", "value": SECRET},
                {"name": "Conn", "value": "user=me;pw=#{Password}"},
            ],
        },
    )
    response = await api.request(
        "GET", f"/projects/{project_id}/variables/preview", params=world.params()
    )
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    by_name = {item["name"]: item for item in response.json()["variables"]}
    expected = {
        "Css": ("tag+env", "more_dimensions", False),
        "Mine": ("project", "project_over_library_set", False),
        "Shared": ("first", "library_set_order", True),
        "Tied": ("declared first", "declaration_order", True),
        "Elsewhere": (None, "no_match", False),
        "Alone": ("only", "only_match", False),
        "Password": ("********", "only_match", False),
    }
    for name, (value, rule, tie) in expected.items():
        row = by_name[name]
        assert (row["value"], row["rule"], row["tie"]) == (value, rule, tie), row
    rejected = by_name["Elsewhere"]["candidates"][0]
    assert rejected["outcome"] == "rejected" and rejected["mismatch"] == "Environment"
    assert by_name["Shared"]["winner"]["source"]["id"] == first
    assert by_name["Conn"]["evaluated"] == "user=me;pw=********"
    assert any("Shared" in warning for warning in response.json()["warnings"])


async def test_a_release_preview_explains_its_snapshot(api: SpaceApi) -> None:
    world = World(api)
    await world.build()
    project_id = world.project["id"]
    scopes = world.scopes()
    current = await api.ok("GET", f"/projects/{project_id}/variables")
    await api.ok(
        "PUT",
        f"/projects/{project_id}/variables",
        json={
            "version": current["version"],
            "variables": [
                {"name": "Url", "value": "env", "scope": scopes[7]},
                {"name": "Url", "value": "step", "scope": scopes[1]},
            ],
        },
    )
    release = await api.release(world.project)
    current = await api.ok("GET", f"/projects/{project_id}/variables")
    await api.ok(
        "PUT",
        f"/projects/{project_id}/variables",
        json={"version": current["version"], "variables": [{"name": "Url", "value": "new"}]},
    )
    params = {k: v for k, v in world.params().items() if k != "channel"}
    preview = await api.ok("GET", f"/releases/{release['id']}/variables/preview", params=params)
    (url,) = preview["variables"]
    assert (url["value"], url["rule"]) == ("step", "more_specific_dimension")
    assert preview["context"]["channel"] == release["channel_id"]
    without_step = {k: v for k, v in params.items() if k != "step"}
    preview = await api.ok(
        "GET", f"/releases/{release['id']}/variables/preview", params=without_step
    )
    assert preview["variables"][0]["value"] == "env"


@pytest.mark.parametrize(
    "params",
    [{"environment": "no-such-env"}, {"channel": "no-such-channel"}, {"step": "no-such-step"}],
)
async def test_preview_of_an_unknown_context_is_404(api: SpaceApi, params: dict[str, str]) -> None:
    project = await api.project()
    response = await api.request(
        "GET", f"/projects/{project['id']}/variables/preview", params=params
    )
    assert response.status_code == 404, response.text
