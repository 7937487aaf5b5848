"""Process, releases, deployments and the dashboard through the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.contracts import DeploymentFinishedV1
from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.deployments import dispatch_due, record_finished
from cephalo_release.settings import ReleaseSettings

Finish = Callable[[dict[str, Any], str], Awaitable[None]]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return dict(response.json())


@pytest.fixture
async def sessions(
    release_settings: ReleaseSettings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(release_settings.database, application_name="release-tests")
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def finish(sessions: async_sessionmaker[AsyncSession]) -> Finish:
    """Record the orchestrator's verdict the way the consumer does (without NATS)."""

    async def apply(deployment: dict[str, Any], state: str = "Success") -> None:
        async with sessions() as session, session.begin():
            await record_finished(
                Repositories(session),
                DeploymentFinishedV1(
                    deployment_id=deployment["id"],
                    task_id=str(uuid.uuid4()),
                    release_id=deployment["release_id"],
                    project_id=deployment["project_id"],
                    environment_id=deployment["environment_id"],
                    state=state,
                ),
            )

    return apply


def script(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "target_roles": ["web"],
        "actions": [
            {
                "action_type": "cephalo.script",
                "properties": {"script_body": f"echo {name}", "syntax": "bash"},
                **fields,
            }
        ],
    }


EVERY_ACTION_TYPE = [
    {
        "name": "Migrate",
        "target_roles": ["db"],
        "condition": "Always",
        "actions": [
            {
                "action_type": "cephalo.script",
                "is_required": True,
                "packages": [{"name": "tools", "package_id": "Acme.Tools"}],
                "properties": {
                    "script_source": "Package",
                    "script_package": "tools",
                    "script_file_name": "migrate.ps1",
                    "syntax": "powershell",
                },
            }
        ],
    },
    {
        "name": "Web",
        "target_roles": ["web"],
        "window_size": 2,
        "actions": [
            {
                "name": "Deploy web",
                "action_type": "cephalo.package",
                "packages": [{"package_id": "Acme.Web"}],
                "properties": {"package_reference": ""},
            },
            {
                "name": "Smoke test",
                "action_type": "cephalo.script",
                "condition": "Variable",
                "condition_expression": "#{RunSmoke}",
                "properties": {"script_body": "curl localhost", "syntax": "sh"},
            },
        ],
    },
    {
        "name": "Approve",
        "start_trigger": "StartWithPrevious",
        "actions": [
            {"action_type": "cephalo.manual", "properties": {"instructions": "Check the site"}}
        ],
    },
    {
        "name": "Health",
        "target_roles": ["web"],
        "actions": [{"action_type": "cephalo.health-check"}],
    },
    {
        "name": "Manifests",
        "target_roles": ["k8s"],
        "actions": [
            {
                "action_type": "cephalo.kubernetes-yaml",
                "properties": {"yaml": "kind: ConfigMap", "namespace": "shop"},
            }
        ],
    },
]


# --- deployment process --------------------------------------------------------------


async def test_every_action_type_is_stored_and_read_back(api: Any) -> None:
    project = await api.project()
    url = f"/projects/{project['id']}/deployment-process"
    saved = await api.ok("PUT", url, json={"version": 2, "steps": EVERY_ACTION_TYPE})
    assert saved["version"] == 3
    assert [s["name"] for s in saved["steps"]] == [
        "Migrate",
        "Web",
        "Approve",
        "Health",
        "Manifests",
    ]
    web = saved["steps"][1]
    assert web["window_size"] == 2 and [a["name"] for a in web["actions"]] == [
        "Deploy web",
        "Smoke test",
    ]
    assert all(a["id"] for step in saved["steps"] for a in step["actions"])
    read = await api.request("GET", url)
    assert read.headers["etag"] == '"3"' and read.json() == saved
    again = await api.ok("PUT", url, json={"version": 3, "steps": saved["steps"]})
    assert [s["id"] for s in again["steps"]] == [s["id"] for s in saved["steps"]]


async def test_the_flat_script_step_is_still_accepted(api: Any) -> None:
    project = await api.project(
        steps=[{"name": "Old", "target_roles": ["web"], "script_body": "echo old", "syntax": "sh"}]
    )
    process = await api.ok("GET", f"/projects/{project['id']}/deployment-process")
    action = process["steps"][0]["actions"][0]
    assert action["action_type"] == "cephalo.script"
    assert action["properties"]["script_body"] == "echo old"
    assert action["properties"]["syntax"] == "sh"


@pytest.mark.parametrize(
    "steps",
    [
        [script("A"), script("a")],
        [{**script("Rolling"), "actions": script("x")["actions"] + script("y")["actions"]}],
        [{**script("NoRoles"), "target_roles": []}],
        [{**script("Cond"), "condition": "Variable"}],
        [script("Filter", environments=[str(uuid.uuid4())])],
        [script("Channel", channels=[str(uuid.uuid4())])],
        [{"name": "Pkg", "target_roles": ["web"], "actions": [{"action_type": "cephalo.package"}]}],
        [{"name": "Manual", "actions": [{"action_type": "cephalo.manual", "properties": {}}]}],
        [{"name": "Unknown", "actions": [{"action_type": "cephalo.teleport"}]}],
        [{"name": "Flat", "target_roles": ["web"], "script_body": "x", "extra": 1}],
        [{"name": "Empty", "actions": []}],
    ],
    ids=[
        "duplicate-step-names",
        "several-actions-without-window",
        "script-without-roles",
        "variable-without-expression",
        "unknown-environment",
        "unknown-channel",
        "package-without-reference",
        "manual-without-instructions",
        "unknown-action-type",
        "flat-with-unknown-field",
        "no-actions",
    ],
)
async def test_an_invalid_process_is_a_422(api: Any, steps: list[dict[str, Any]]) -> None:
    project = await api.project()
    response = await api.request(
        "PUT", f"/projects/{project['id']}/deployment-process", json={"steps": steps}
    )
    problem(response, 422)


async def test_a_stale_process_is_a_409_and_another_spaces_project_a_404(
    api: Any, other_space: Any
) -> None:
    project = await api.project()
    url = f"/projects/{project['id']}/deployment-process"
    problem(await api.request("PUT", url, json={"version": 1, "steps": []}), 409)
    problem(await api.request("PUT", url, json={"steps": []}, headers={"If-Match": '"1"'}), 409)
    problem(await other_space.request("GET", url), 404)


async def test_a_release_keeps_its_snapshot_when_the_process_changes(api: Any) -> None:
    project = await api.project(steps=EVERY_ACTION_TYPE)
    release = await api.release(
        project,
        packages=[
            {"action_name": "Migrate", "package_reference": "tools", "version": "1.0.0"},
            {"action_name": "Deploy web", "version": "2.0.0"},
        ],
    )
    await api.ok(
        "PUT", f"/projects/{project['id']}/deployment-process", json={"steps": [script("Only")]}
    )
    again = await api.ok("GET", f"/releases/{release['id']}")
    assert [s["name"] for s in again["steps"]] == [s["name"] for s in EVERY_ACTION_TYPE]
    assert again["selected_packages"] == [
        {"action_name": "Migrate", "package_reference": "tools", "version": "1.0.0"},
        {"action_name": "Deploy web", "package_reference": "", "version": "2.0.0"},
    ]


# --- releases ------------------------------------------------------------------------


async def test_release_numbers_follow_the_project_template(api: Any) -> None:
    project = await api.project()
    url = f"/projects/{project['id']}/releases"
    first = await api.ok("POST", url, 201, json={})
    second = await api.ok("POST", url, 201, json={})
    assert (first["version"], second["version"]) == ("0.0.1", "0.0.2")
    await api.ok("POST", url, 201, json={"version": "1.4.9"})
    assert (await api.ok("POST", url, 201, json={}))["version"] == "1.4.10"


async def test_a_mask_template_increments_and_dates_render(api: Any) -> None:
    project = await api.project()
    body = {"name": project["name"], "version": 1, "versioning_strategy": {"template": "2.c.i"}}
    await api.ok("PUT", f"/projects/{project['id']}", json=body)
    url = f"/projects/{project['id']}/releases"
    assert (await api.ok("POST", url, 201, json={}))["version"] == "2.0.0"
    assert (await api.ok("POST", url, 201, json={}))["version"] == "2.0.1"
    body = {**body, "version": 2, "versioning_strategy": {"template": "#{Cephalo.Date.Year}.i"}}
    await api.ok("PUT", f"/projects/{project['id']}", json=body)
    year = datetime.now(UTC).year
    assert (await api.ok("POST", url, 201, json={}))["version"] == f"{year}.0"


async def test_a_bad_template_or_number_is_a_422(api: Any) -> None:
    project = await api.project()
    url = f"/projects/{project['id']}/releases"
    problem(await api.request("POST", url, json={"version": "1.0 beta"}), 422)
    body = {"name": project["name"], "version": 1, "versioning_strategy": {"template": "#{Nope}"}}
    await api.ok("PUT", f"/projects/{project['id']}", json=body)
    assert "Nope" in problem(await api.request("POST", url, json={}), 422)["detail"]


async def test_release_numbers_are_unique_per_project(api: Any) -> None:
    project = await api.project()
    url = f"/projects/{project['id']}/releases"
    await api.ok("POST", url, 201, json={"version": "3.0.0-Beta"})
    problem(await api.request("POST", url, json={"version": "3.0.0-beta"}), 409)


async def test_release_notes_channel_and_paging(api: Any) -> None:
    project = await api.project()
    await api.ok("POST", f"/projects/{project['id']}/channels", 201, json={"name": "Hotfix"})
    url = f"/projects/{project['id']}/releases"
    release = await api.ok(
        "POST", url, 201, json={"version": "1.0.0", "channel": "hotfix", "release_notes": "# Fixed"}
    )
    await api.ok("POST", url, 201, json={"version": "1.1.0"})
    assert release["release_notes"] == "# Fixed"
    only_hotfix = await api.ok("GET", url, params={"channel": "Hotfix"})
    assert [r["version"] for r in only_hotfix["items"]] == ["1.0.0"]
    newest = await api.ok("GET", url, params={"take": 1})
    assert [r["version"] for r in newest["items"]] == ["1.1.0"] and newest["total"] == 2
    filtered = await api.ok("GET", url, params={"partial_name": "1.0.0"})
    assert [r["version"] for r in filtered["items"]] == ["1.0.0"]
    problem(await api.request("POST", url, json={"channel": "nope"}), 404)


async def test_packages_need_a_version_and_obey_the_channel_rules(api: Any) -> None:
    steps = [
        {
            "name": "Web",
            "target_roles": ["web"],
            "actions": [
                {"action_type": "cephalo.package", "packages": [{"package_id": "Acme.Web"}]}
            ],
        }
    ]
    project = await api.project(steps=steps)
    await api.ok(
        "POST",
        f"/projects/{project['id']}/channels",
        201,
        json={"name": "Stable", "rules": [{"version_range": "[1.0,2.0)", "tag": "^$"}]},
    )
    url = f"/projects/{project['id']}/releases"
    problem(await api.request("POST", url, json={"version": "1"}), 422)
    problem(
        await api.request(
            "POST", url, json={"packages": [{"action_name": "Nope", "version": "1.0.0"}]}
        ),
        422,
    )
    for bad in ("2.0.0", "1.5.0-beta.1"):
        body = {"channel": "Stable", "packages": [{"action_name": "Web", "version": bad}]}
        assert (
            "breaks the channel rule"
            in problem(await api.request("POST", url, json=body), 422)["detail"]
        )
    good = {"channel": "Stable", "packages": [{"action_name": "Web", "version": "1.5.0"}]}
    assert (await api.ok("POST", url, 201, json=good))["channel_id"]


async def test_a_donor_package_gives_the_release_number(api: Any) -> None:
    steps = [
        {
            "name": "Web",
            "target_roles": ["web"],
            "actions": [
                {"action_type": "cephalo.package", "packages": [{"package_id": "Acme.Web"}]}
            ],
        }
    ]
    project = await api.project(steps=steps)
    strategy = {"template": None, "donor_package": {"action_name": "Web"}}
    await api.ok(
        "PUT",
        f"/projects/{project['id']}",
        json={"name": project["name"], "version": 1, "versioning_strategy": strategy},
    )
    body = {"packages": [{"action_name": "Web", "version": "4.2.0"}]}
    release = await api.ok("POST", f"/projects/{project['id']}/releases", 201, json=body)
    assert release["version"] == "4.2.0"


async def test_a_disabled_project_cannot_release_or_deploy(api: Any) -> None:
    project = await api.project()
    env = await api.environment()
    release = await api.release(project)
    await api.ok(
        "PUT",
        f"/projects/{project['id']}",
        json={"name": project["name"], "version": 1, "is_disabled": True},
    )
    problem(await api.request("POST", f"/projects/{project['id']}/releases", json={}), 422)
    assert "disabled" in problem(await api.deploy(release, env), 422)["detail"]


async def test_a_release_of_another_space_is_not_found(api: Any, other_space: Any) -> None:
    release = await other_space.release(await other_space.project())
    problem(await api.request("GET", f"/releases/{release['id']}"), 404)
    problem(await api.request("GET", f"/releases/{release['id']}/progression"), 404)
    problem(await api.request("GET", f"/releases/{uuid.uuid4()}"), 404)


# --- deployments ---------------------------------------------------------------------


async def test_a_lifecycle_blocked_deployment_names_the_phase(api: Any) -> None:
    envs = await api.environments("Dev", "Prod")
    lifecycle = await api.lifecycle(
        [
            {"name": "Development", "optional_environment_ids": [envs["Dev"]["id"]]},
            {"name": "Production", "optional_environment_ids": [envs["Prod"]["id"]]},
        ]
    )
    release = await api.release(await api.project(lifecycle=lifecycle["id"]))
    detail = problem(await api.deploy(release, envs["Prod"]), 422)["detail"]
    assert detail == (
        'Cannot deploy to "Prod": phase "Development" is not complete '
        "(0 of 1 required environments succeeded)"
    )
    progression = await api.ok("GET", f"/releases/{release['id']}/progression")
    assert progression["next_deployments"] == [envs["Dev"]["id"]]
    assert progression["phases"][1]["environments"][0]["reason"] == detail


async def test_deployment_options_are_recorded(api: Any) -> None:
    env = await api.environment()
    project = await api.project(
        steps=[
            script("Build"),
            {
                **script("Notify"),
                "actions": [{**script("Notify")["actions"][0], "is_required": True}],
            },
        ],
        default_guided_failure_mode="On",
    )
    release = await api.release(project)
    machine, other = str(uuid.uuid4()), str(uuid.uuid4())
    response = await api.deploy(
        release,
        env,
        specific_machine_ids=[machine],
        excluded_machine_ids=[other],
        skip_actions=["build"],
        comments="Friday",
    )
    assert response.status_code == 201, response.text
    deployment = response.json()
    build_id = release["steps"][0]["actions"][0]["id"]
    assert deployment["skip_actions"] == [build_id]
    assert (
        deployment["use_guided_failure"] is True and deployment["guided_failure_override"] is None
    )
    assert (deployment["specific_machine_ids"], deployment["excluded_machine_ids"]) == (
        [machine],
        [other],
    )
    assert deployment["state"] == "Queued" and deployment["requested_at"]
    off = (await api.deploy(release, env, use_guided_failure=False)).json()
    assert off["use_guided_failure"] is False


@pytest.mark.parametrize(
    "options",
    [
        {"skip_actions": ["Notify"]},
        {"skip_actions": ["Nothing"]},
        {"specific_machine_ids": ["M"], "excluded_machine_ids": ["M"]},
        {"queue_time_expiry": "2030-01-01T00:00:00Z"},
        {"queue_time": "2099-01-01T00:00:00Z"},
        {"queue_time": "2030-01-01T00:00:00"},
        {"queue_time": "2030-01-01T00:00:00Z", "queue_time_expiry": "2029-01-01T00:00:00Z"},
        {"skip_actions": ["Build", "Notify"]},
    ],
    ids=[
        "skip-required",
        "skip-unknown",
        "machine-both",
        "expiry-without-time",
        "beyond-30-days",
        "naive-time",
        "expiry-before-time",
        "skip-everything",
    ],
)
async def test_invalid_deployment_options_are_a_422(api: Any, options: dict[str, Any]) -> None:
    env = await api.environment()
    notify = {
        **script("Notify"),
        "actions": [{**script("Notify")["actions"][0], "is_required": True}],
    }
    release = await api.release(await api.project(steps=[script("Build"), notify]))
    machine = str(uuid.uuid4())
    body = {
        key: [machine if v == "M" else v for v in value] if isinstance(value, list) else value
        for key, value in options.items()
    }
    problem(await api.deploy(release, env, **body), 422)


async def test_environment_filters_leave_steps_out_of_a_deployment(api: Any) -> None:
    envs = await api.environments("Dev", "Prod")
    steps = [script("Everywhere"), script("Prod only", environments=[envs["Prod"]["id"]])]
    release = await api.release(await api.project(steps=steps))
    assert (await api.deploy(release, envs["Dev"])).status_code == 201
    only_prod = [script("Prod only", environments=[envs["Prod"]["id"]])]
    second = await api.release(await api.project(steps=only_prod))
    assert "nothing to deploy" in problem(await api.deploy(second, envs["Dev"]), 422)["detail"]


async def test_a_scheduled_deployment_waits_for_its_time(api: Any) -> None:
    env = await api.environment()
    release = await api.release(await api.project())
    soon = datetime.now(UTC) + timedelta(seconds=1)
    deployment = (await api.deploy(release, env, queue_time=soon.isoformat())).json()
    assert deployment["state"] == "Scheduled" and deployment["requested_at"] is None

    async def queued() -> bool:
        current = await api.ok("GET", f"/deployments/{deployment['id']}")
        return bool(current["state"] == "Queued" and current["requested_at"])

    await api.wait_for(queued, timeout=15)


async def test_a_scheduled_deployment_past_its_expiry_never_starts(
    api: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    env = await api.environment()
    release = await api.release(await api.project())
    start = datetime.now(UTC) + timedelta(hours=1)
    deployment = (
        await api.deploy(
            release,
            env,
            queue_time=start.isoformat(),
            queue_time_expiry=(start + timedelta(minutes=5)).isoformat(),
        )
    ).json()
    async with sessions() as session, session.begin():
        await dispatch_due(Repositories(session), start + timedelta(hours=1))
    current = await api.ok("GET", f"/deployments/{deployment['id']}")
    assert current["state"] == "Canceled" and "expiry" in current["error"]


async def test_redeploy_and_rollback(api: Any, finish: Finish) -> None:
    env = await api.environment()
    project = await api.project()
    first, second = await api.release(project), await api.release(project)
    problem(
        await api.request(
            "POST",
            "/deployments/rollback",
            json={"project": project["name"], "environment": env["name"]},
        ),
        422,
    )
    one = (await api.deploy(first, env)).json()
    await finish(one, "Success")
    two = (await api.deploy(second, env)).json()
    await finish(two, "Success")
    again = await api.ok("POST", f"/deployments/{two['id']}/redeploy", 201, json={})
    assert (again["release_id"], again["redeploy_of_id"], again["trigger"]) == (
        second["id"],
        two["id"],
        "Redeploy",
    )
    back = await api.ok(
        "POST",
        "/deployments/rollback",
        201,
        json={"project": project["slug"], "environment": env["slug"]},
    )
    assert (back["release_id"], back["trigger"]) == (first["id"], "Rollback")
    problem(
        await api.request(
            "POST", "/deployments/rollback", json={"project": "nope", "environment": env["id"]}
        ),
        404,
    )


async def test_deployments_of_another_space_are_not_found(api: Any, other_space: Any) -> None:
    env = await other_space.environment()
    release = await other_space.release(await other_space.project())
    foreign = (await other_space.deploy(release, env)).json()
    problem(await api.request("GET", f"/deployments/{foreign['id']}"), 404)
    problem(await api.request("POST", f"/deployments/{foreign['id']}/redeploy", json={}), 404)
    mine = await api.environment()
    problem(await api.deploy(release, mine), 404)
    problem(await api.deploy(await api.release(await api.project()), env), 404)


async def test_deployments_are_listed_and_filtered(api: Any) -> None:
    envs = await api.environments("Dev", "Test")
    project = await api.project()
    release = await api.release(project)
    await api.deploy(release, envs["Dev"])
    await api.deploy(release, envs["Test"])
    page = await api.ok("GET", "/deployments", params={"environment_id": envs["Test"]["id"]})
    assert page["total"] == 1 and page["items"][0]["environment_id"] == envs["Test"]["id"]
    assert (await api.ok("GET", "/deployments", params={"state": "Queued"}))["total"] == 2
    problem(await api.request("GET", "/deployments", params={"project_id": "nope"}), 422)


async def test_the_dashboard_shows_the_latest_deployment_per_project_and_environment(
    api: Any, finish: Finish
) -> None:
    envs = await api.environments("Dev", "Prod")
    project = await api.project()
    first, second = await api.release(project), await api.release(project)
    one = (await api.deploy(first, envs["Dev"])).json()
    await finish(one, "Success")
    await api.deploy(second, envs["Dev"])
    await api.deploy(
        first, envs["Prod"], queue_time=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    board = await api.ok("GET", "/dashboard")
    assert [e["name"] for e in board["environments"]] == ["Dev", "Prod"]
    assert [p["id"] for p in board["projects"]] == [project["id"]]
    assert [(i["environment_id"], i["release_version"], i["state"]) for i in board["items"]] == [
        (envs["Dev"]["id"], second["version"], "Queued")
    ]
    group = await api.ok("POST", "/project-groups", 201, json={"name": "Empty"})
    assert (await api.ok("GET", "/dashboard", params={"project_group": group["slug"]}))[
        "items"
    ] == []
    problem(await api.request("GET", "/dashboard", params={"project_group": "nope"}), 404)
