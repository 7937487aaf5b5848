"""The demo seed and deployment that `make run` performs, through the public API only.

Idempotent: the environment and project are created once; every run cuts a new release
and deploys it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

DEMO_ENVIRONMENT = "Development"
DEMO_PROJECT = "Hello Cephalo"
DEMO_ROLE = "demo"
DEMO_SCRIPT = """echo "Hello from Cephalo on $(hostname)"
echo "Release ${CEPHALO_VAR_OCTOPUS_RELEASE_NUMBER} of ${CEPHALO_VAR_OCTOPUS_PROJECT_NAME} reached ${CEPHALO_VAR_OCTOPUS_ENVIRONMENT_NAME}"
uname -sr
echo "Done."
"""
TERMINAL = {"Success", "Failed", "Canceled", "TimedOut"}


@dataclass
class DeploymentOutcome:
    deployment_id: str
    task: dict[str, Any]
    log: list[dict[str, Any]]

    @property
    def state(self) -> str:
        return str(self.task["state"])


class Api:
    """A thin client of the public API that turns problem responses into readable errors."""

    def __init__(self, client: httpx.AsyncClient, space: str = "default") -> None:
        self.client = client
        self.base = f"/api/v1/spaces/{space}"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, self.base + path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def find(self, path: str) -> Any | None:
        response = await self.client.get(self.base + path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()


async def ensure_environment(api: Api, name: str = DEMO_ENVIRONMENT) -> dict[str, Any]:
    found = await api.find(f"/environments/{name}")
    return dict(found or await api.call("POST", "/environments", json={"name": name}))


async def ensure_project(
    api: Api, name: str = DEMO_PROJECT, role: str = DEMO_ROLE
) -> dict[str, Any]:
    project = await api.find(f"/projects/{name}") or await api.call(
        "POST", "/projects", json={"name": name, "description": "Made by make run."}
    )
    process = await api.call("GET", f"/projects/{project['id']}/deployment-process")
    if not process["steps"]:
        step = {"name": "Say hello", "target_roles": [role], "script_body": DEMO_SCRIPT}
        await api.call(
            "PUT", f"/projects/{project['id']}/deployment-process", json={"steps": [step]}
        )
    return dict(project)


async def create_release(api: Api, project: dict[str, Any]) -> dict[str, Any]:
    existing = await api.call("GET", f"/projects/{project['id']}/releases")
    version = f"1.0.{(existing['total'] if isinstance(existing, dict) else len(existing)) + 1}"
    return dict(
        await api.call("POST", f"/projects/{project['id']}/releases", json={"version": version})
    )


async def deploy_and_wait(
    api: Api, release: dict[str, Any], environment: dict[str, Any], timeout: float = 180.0
) -> DeploymentOutcome:
    deployment = await api.call(
        "POST",
        "/deployments",
        json={"release_id": release["id"], "environment_id": environment["id"]},
    )
    async with asyncio.timeout(timeout):
        task = await _wait_for_task(api, deployment["id"])
    log = await _settled_log(api, str(task["id"]))
    return DeploymentOutcome(deployment_id=deployment["id"], task=task, log=log)


async def _settled_log(
    api: Api, task_id: str, quiet: float = 1.0, limit: float = 5.0
) -> list[dict[str, Any]]:
    """The task log once it stops growing: a step's last lines may land just after the
    task turned terminal (logs and verdicts are consumed apart)."""
    lines = _lines(await api.call("GET", f"/tasks/{task_id}/log"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        await asyncio.sleep(quiet)
        again = _lines(await api.call("GET", f"/tasks/{task_id}/log"))
        if len(again) == len(lines):
            break
        lines = again
    return lines


async def _wait_for_task(api: Api, deployment_id: str) -> dict[str, Any]:
    while True:
        tasks = await api.call("GET", f"/tasks?deployment_id={deployment_id}")
        items = tasks["items"] if isinstance(tasks, dict) else tasks
        if items and items[0]["state"] in TERMINAL:
            return dict(await api.call("GET", f"/tasks/{items[0]['id']}"))
        await asyncio.sleep(0.3)


def _lines(log: Any) -> list[dict[str, Any]]:
    items = log["items"] if isinstance(log, dict) else log
    return list(items)
