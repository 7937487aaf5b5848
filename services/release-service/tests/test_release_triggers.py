"""Project triggers: the resource's API, package-push releases through a real package-feed
and NATS, and scheduled triggers run with an injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
from fastapi import FastAPI

from cephalo_common.contracts import PACKAGE_PUSHED, DeploymentFinishedV1
from cephalo_common.messaging.envelope import Envelope
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.deployments import record_finished
from cephalo_release.domain.scheduled_triggers import run_due_triggers

WEB = [
    {
        "name": "Web",
        "target_roles": ["web"],
        "actions": [{"action_type": "cephalo.package", "packages": [{"package_id": "Trig.Web"}]}],
    }
]
NEW_YEAR = "0 0 9 1 1 *"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())


async def package_project(api: Any) -> tuple[dict[str, Any], str]:
    project = await api.project(steps=WEB)
    await api.ok(
        "POST",
        f"/projects/{project['id']}/channels",
        201,
        json={"name": "Stable", "rules": [{"version_range": "[1.0,2.0)", "tag": "^$"}]},
    )
    return project, f"/projects/{project['id']}/triggers"


async def test_trigger_crud_with_concurrency(api: Any) -> None:
    _, url = await package_project(api)
    created = await api.request(
        "POST", url, json={"name": "On push", "kind": "PackagePush", "channel": "Stable"}
    )
    assert created.status_code == 201 and created.headers["ETag"] == '"1"'
    trigger = created.json()
    assert trigger["next_run_at"] is None and trigger["channel_id"]
    assert (await api.ok("GET", f"{url}/on push"))["id"] == trigger["id"]
    assert (await api.ok("GET", url))["total"] == 1

    env = await api.environment()
    body = {
        "name": "Nightly",
        "kind": "Schedule",
        "cron": NEW_YEAR,
        "timezone": "Europe/Paris",
        "action": "CreateAndDeployRelease",
        "destination_environment": env["name"],
    }
    nightly = await api.ok("POST", url, 201, json=body)
    fire = datetime.fromisoformat(nightly["next_run_at"])
    assert (fire.month, fire.day, fire.hour, fire.minute) == (1, 1, 8, 0)
    assert nightly["destination_environment_id"] == env["id"]

    renamed = {**body, "name": "Yearly", "is_disabled": True, "version": 1}
    updated = await api.ok("PUT", f"{url}/{nightly['id']}", json=renamed)
    assert updated["version"] == 2 and updated["next_run_at"] is None
    problem(await api.request("PUT", f"{url}/{nightly['id']}", json=renamed), 409)
    problem(await api.request("PUT", f"{url}/{nightly['id']}", json={**body, "name": "x"}), 428)
    duplicate = {**renamed, "name": "on PUSH", "version": 2}
    problem(await api.request("PUT", f"{url}/{nightly['id']}", json=duplicate), 409)
    problem(await api.request("POST", url, json={**body, "name": "ON PUSH"}), 409)

    stale = await api.request("DELETE", f"{url}/{nightly['id']}", headers={"If-Match": '"1"'})
    problem(stale, 409)
    deleted = await api.request("DELETE", f"{url}/{nightly['id']}", headers={"If-Match": '"2"'})
    assert deleted.status_code == 204
    problem(await api.request("GET", f"{url}/{nightly['id']}"), 404)


async def test_trigger_failures_are_4xx(api: Any, other_space: Any) -> None:
    project, url = await package_project(api)
    env = await api.environment()
    schedule = {
        "name": "S",
        "kind": "Schedule",
        "cron": "0 0 9 * * *",
        "action": "DeployLatestRelease",
        "source_environment": env["id"],
        "destination_environment": env["id"],
    }
    invalid = [
        ({"kind": "PackagePush", "cron": "0 0 9 * * *"}, "body.cron"),
        ({"kind": "PackagePush", "channel": "nope"}, "body.channel"),
        ({**schedule, "cron": None}, "body.cron"),
        ({**schedule, "cron": "0 9 * * *"}, "body.cron"),
        ({**schedule, "cron": "61 0 9 * * *"}, "body.cron"),
        ({**schedule, "cron": "0 0 0 31 2 *"}, "body.cron"),
        ({**schedule, "cron": "@daily"}, "body.cron"),
        ({**schedule, "timezone": "Mars/Olympus"}, "body.timezone"),
        ({**schedule, "timezone": "../../etc/passwd"}, "body.timezone"),
        ({**schedule, "action": None}, "body.action"),
        ({**schedule, "source_environment": None}, "body.source_environment"),
        ({**schedule, "destination_environment": "nowhere"}, "body.destination_environment"),
        ({**schedule, "action": "CreateAndDeployRelease"}, "body.source_environment"),
    ]
    for fields, field in invalid:
        body = {"name": "T", **fields}
        errors = problem(await api.request("POST", url, json=body), 422)["errors"]
        assert field in [error["field"] for error in errors], (fields, errors)
    problem(await api.request("POST", url, json={"name": "T", "kind": "Sometimes"}), 422)
    problem(await api.request("POST", url, json={"kind": "PackagePush"}), 422)
    assert (await api.ok("GET", url))["total"] == 0

    trigger = await api.ok("POST", url, 201, json={"name": "T", "kind": "PackagePush"})
    theirs = f"/projects/{project['id']}/triggers/{trigger['id']}"
    problem(await other_space.request("GET", theirs), 404)
    problem(
        await other_space.request("PUT", theirs, json={"name": "x", "kind": "PackagePush"}), 404
    )
    problem(await other_space.request("DELETE", theirs), 404)
    other_project = await api.project()
    problem(await api.request("GET", f"/projects/{other_project['id']}/triggers/T"), 404)
    problem(await api.request("GET", f"{url}/{uuid.uuid4()}"), 404)


@contextlib.asynccontextmanager
async def pushed_events(nats_url: str) -> AsyncIterator[list[Envelope]]:
    connection = await nats.connect(nats_url)
    seen: list[Envelope] = []

    async def on_message(message: Any) -> None:
        seen.append(Envelope.from_bytes(message.data))

    subscription = await connection.subscribe(PACKAGE_PUSHED.filter_subject, cb=on_message)
    try:
        yield seen
    finally:
        await subscription.unsubscribe()
        await connection.close()


async def redeliver(nats_url: str, envelope: Envelope) -> None:
    """The same event again, past JetStream's de-duplication (as after a lost ack)."""
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(
            PACKAGE_PUSHED.subject(envelope.cephalospace),
            envelope.to_bytes(),
            headers={"Nats-Msg-Id": f"{envelope.id}-again"},
        )
    finally:
        await connection.close()


async def releases_of(api: Any, project: dict[str, Any]) -> list[dict[str, Any]]:
    page = await api.ok("GET", f"/projects/{project['id']}/releases", params={"take": 100})
    return list(page["items"])


async def test_a_pushed_package_creates_exactly_one_release(
    feed_api: Any, package_feed: Any, nats_url: str
) -> None:
    project, url = await package_project(feed_api)
    trigger = await feed_api.ok(
        "POST", url, 201, json={"name": "On push", "kind": "PackagePush", "channel": "Stable"}
    )
    async with pushed_events(nats_url) as seen:
        await package_feed.push(feed_api.id, "Trig.Web", "1.2.0")
        await feed_api.wait_for(lambda: _count(feed_api, project, 1))
        await feed_api.wait_for(lambda: _has_event(seen, "1.2.0"))
        first = next(e for e in seen if e.data["version"] == "1.2.0")
        await redeliver(nats_url, first)
        await package_feed.push(
            feed_api.id, "Trig.Web", "1.2.0", params={"overwriteMode": "OverwriteExisting"}
        )
        await package_feed.push(feed_api.id, "Trig.Web", "2.0.0")
        await package_feed.push(feed_api.id, "Other.Package", "1.3.0")
        await feed_api.wait_for(lambda: _trigger_says(feed_api, url, trigger, "2.0.0"))
        await package_feed.push(feed_api.id, "Trig.Web", "1.3.0")
        await feed_api.wait_for(lambda: _count(feed_api, project, 2))

    releases = await releases_of(feed_api, project)
    assert sorted(r["selected_packages"][0]["version"] for r in releases) == ["1.2.0", "1.3.0"]
    assert {r["channel_id"] for r in releases} == {trigger["channel_id"]}
    assert "Created by trigger On push" in releases[0]["release_notes"]
    await asyncio.sleep(1.0)
    assert len(await releases_of(feed_api, project)) == 2


async def _count(api: Any, project: dict[str, Any], expected: int) -> bool:
    found = len(await releases_of(api, project))
    assert found <= expected, f"{found} releases, expected {expected}"
    return found == expected


async def _has_event(seen: list[Envelope], version: str) -> bool:
    return any(envelope.data["version"] == version for envelope in seen)


async def _trigger_says(api: Any, url: str, trigger: dict[str, Any], text: str) -> bool:
    return text in (await api.ok("GET", f"{url}/{trigger['id']}"))["last_result"]


async def run_scheduled(app: FastAPI, now: datetime, finished_at: datetime) -> int:
    """One scheduler pass at a frozen `now`, whose runs complete at `finished_at`."""
    runtime = app.state.runtime
    source = runtime.extras.get("package_feed")
    async with runtime.sessionmaker() as session, session.begin():
        return await run_due_triggers(Repositories(session), now, source, clock=lambda: finished_at)


async def succeed(app: FastAPI, deployment: dict[str, Any]) -> None:
    finished = DeploymentFinishedV1(
        deployment_id=deployment["id"],
        task_id=str(uuid.uuid4()),
        release_id=deployment["release_id"],
        project_id=deployment["project_id"],
        environment_id=deployment["environment_id"],
        state="Success",
    )
    async with app.state.runtime.sessionmaker() as session, session.begin():
        await record_finished(Repositories(session), finished)


async def test_deploy_latest_release_from_a_to_b_on_schedule(
    feed_service: tuple[FastAPI, httpx.AsyncClient], feed_api: Any
) -> None:
    app = feed_service[0]
    envs = await feed_api.environments(unique_name("A"), unique_name("B"))
    a, b = envs.values()
    project = await feed_api.project()
    url = f"/projects/{project['id']}/triggers"
    body = {
        "name": "Promote yearly",
        "kind": "Schedule",
        "cron": NEW_YEAR,
        "timezone": "Europe/Paris",
        "action": "DeployLatestRelease",
        "source_environment": a["id"],
        "destination_environment": b["id"],
    }
    trigger = await feed_api.ok("POST", url, 201, json=body)
    due = datetime.fromisoformat(trigger["next_run_at"])
    assert due == datetime(due.year, 1, 1, 8, 0, tzinfo=UTC)

    assert await run_scheduled(app, due - timedelta(seconds=1), due) == 0
    assert await run_scheduled(app, due, due) == 1
    nothing = await feed_api.ok("GET", f"{url}/{trigger['id']}")
    assert "no successful deployment" in nothing["last_result"]
    assert datetime.fromisoformat(nothing["next_run_at"]) == due.replace(year=due.year + 1)

    old, new = await feed_api.release(project), await feed_api.release(project)
    for release in (old, new):
        deployed = await feed_api.deploy(release, a)
        assert deployed.status_code == 201, deployed.text
        await succeed(app, deployed.json())
    second = due.replace(year=due.year + 1)
    slow = second + timedelta(days=800)
    assert await run_scheduled(app, second, slow) == 1
    to_b = await feed_api.deployments(environment_id=b["id"])
    assert [(d["release_id"], d["trigger"], d["deployed_by"]) for d in to_b] == [
        (new["id"], "Trigger", "trigger Promote yearly")
    ]
    after = await feed_api.ok("GET", f"{url}/{trigger['id']}")
    assert datetime.fromisoformat(after["last_run_at"]) == slow
    next_run = datetime.fromisoformat(after["next_run_at"])
    assert next_run == datetime(slow.year + 1, 1, 1, 8, 0, tzinfo=UTC)
    assert await run_scheduled(app, slow, slow) == 0


async def test_create_and_deploy_a_new_release_on_schedule(
    feed_service: tuple[FastAPI, httpx.AsyncClient], feed_api: Any, package_feed: Any
) -> None:
    app = feed_service[0]
    env = await feed_api.environment()
    project, url = await package_project(feed_api)
    await package_feed.push(feed_api.id, "Trig.Web", "1.4.0")
    await package_feed.push(feed_api.id, "Trig.Web", "2.4.0")
    body = {
        "name": "Every new year",
        "kind": "Schedule",
        "cron": NEW_YEAR,
        "channel": "Stable",
        "action": "CreateAndDeployRelease",
        "destination_environment": env["name"],
    }
    trigger = await feed_api.ok("POST", url, 201, json=body)
    due = datetime.fromisoformat(trigger["next_run_at"])
    assert due == datetime(due.year, 1, 1, 9, 0, tzinfo=UTC)
    assert await run_scheduled(app, due, due + timedelta(minutes=5)) == 1
    releases = await releases_of(feed_api, project)
    assert [r["selected_packages"][0]["version"] for r in releases] == ["1.4.0"]
    deployments = await feed_api.deployments(environment_id=env["id"])
    assert [d["release_id"] for d in deployments] == [releases[0]["id"]]
    ran = await feed_api.ok("GET", f"{url}/{trigger['id']}")
    assert releases[0]["version"] in ran["last_result"]

    await feed_api.ok(
        "PUT",
        f"/projects/{project['id']}",
        json={"name": project["name"], "version": 1, "is_disabled": True},
    )
    later = due.replace(year=due.year + 1)
    assert await run_scheduled(app, later, later) == 1
    failed = await feed_api.ok("GET", f"{url}/{trigger['id']}")
    assert failed["last_result"].startswith("failed:") and "disabled" in failed["last_result"]
    assert len(await releases_of(feed_api, project)) == 1


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_trigger_that_cannot_release_says_why_and_others_still_do(
    feed_api: Any, package_feed: Any
) -> None:
    both = [
        {
            "name": "Web",
            "target_roles": ["web"],
            "actions": [
                {
                    "action_type": "cephalo.package",
                    "packages": [
                        {"package_id": "Pair.Web"},
                        {"name": "db", "package_id": "Pair.Db"},
                    ],
                }
            ],
        }
    ]
    web_only = [
        {
            **both[0],
            "actions": [{**both[0]["actions"][0], "packages": [{"package_id": "Pair.Web"}]}],
        }
    ]
    pair = await feed_api.project(steps=both)
    single = await feed_api.project(steps=web_only)
    pair_url, single_url = (f"/projects/{p['id']}/triggers" for p in (pair, single))
    pair_trigger = await feed_api.ok(
        "POST", pair_url, 201, json={"name": "Pair", "kind": "PackagePush"}
    )
    await feed_api.ok("POST", single_url, 201, json={"name": "Single", "kind": "PackagePush"})

    await package_feed.push(feed_api.id, "Pair.Web", "1.1.0")
    await feed_api.wait_for(lambda: _count(feed_api, single, 1))
    await feed_api.wait_for(lambda: _trigger_says(feed_api, pair_url, pair_trigger, "Pair.Db"))
    said = (await feed_api.ok("GET", f"{pair_url}/{pair_trigger['id']}"))["last_result"]
    assert said.startswith("no release:") and "no version of Pair.Db" in said
    assert await releases_of(feed_api, pair) == []

    await package_feed.push(feed_api.id, "Pair.Db", "1.0.0")
    await feed_api.wait_for(lambda: _count(feed_api, pair, 1))
    (release,) = await releases_of(feed_api, pair)
    assert {p["package_reference"]: p["version"] for p in release["selected_packages"]} == {
        "": "1.1.0",
        "db": "1.0.0",
    }
    assert len(await releases_of(feed_api, single)) == 1
