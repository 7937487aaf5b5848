"""The installed `cephalo` executable end to end (issue 10, done-when 1): a subprocess per
command against every service running as a real process and a real polling agent."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_dev.agents import LocalAgent

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

Cephalo = Callable[..., subprocess.CompletedProcess[str]]


def test_push_shows_progress_and_stores_the_package(
    cephalo: Cephalo, api: httpx.Client, make_package: Callable[..., Path]
) -> None:
    package_id = f"E2e.Web{uuid.uuid4().hex[:6]}"
    path = make_package(package_id, "1.2.3", size=3 * 1024 * 1024)
    result = cephalo("package", "push", str(path), "--progress")
    assert result.returncode == 0, result.stderr
    assert path.name in result.stderr
    assert "3.1/3.1 MB" in result.stderr
    assert f"Pushed {package_id} 1.2.3" in result.stdout
    stored = api.get(f"/packages/{package_id}/versions/1.2.3")
    assert stored.status_code == 200
    assert stored.json()["size_bytes"] == path.stat().st_size


def test_release_create_with_explicit_and_defaulted_package_versions(
    cephalo: Cephalo,
    api: httpx.Client,
    make_package: Callable[..., Path],
    package_project: Callable[[dict[str, str]], dict[str, Any]],
) -> None:
    web, db = f"E2e.Web{uuid.uuid4().hex[:6]}", f"E2e.Db{uuid.uuid4().hex[:6]}"
    files = [make_package(web, v) for v in ("1.0.0", "1.1.0")]
    files += [make_package(db, v) for v in ("2.0.0", "2.5.0", "3.0.0")]
    assert cephalo("package", "push", *map(str, files)).returncode == 0
    project = package_project({"Web": web, "Database": db})
    rule = {"action_packages": ["Database"], "version_range": "[2.0,3.0)", "tag": ""}
    channel = api.post(
        f"/projects/{project['id']}/channels", json={"name": "Stable", "rules": [rule]}
    )
    assert channel.status_code == 201, channel.text

    explicit = cephalo("release", "create", "-p", project["name"], "--version", "1.0.0",
                       "--package", "Web:1.0.0", "--package", f"{db}:2.0.0")  # fmt: skip
    assert explicit.returncode == 0, explicit.stderr
    assert _versions(api, project, "1.0.0") == {"Web": "1.0.0", "Database": "2.0.0"}

    defaulted = cephalo(
        "release", "create", "-p", project["name"], "--version", "1.0.1", "--channel", "Stable"
    )
    assert defaulted.returncode == 0, defaulted.stderr
    assert _versions(api, project, "1.0.1") == {"Web": "1.1.0", "Database": "2.5.0"}
    assert "Database 2.5.0" in defaulted.stdout

    typo = cephalo("release", "create", "-p", project["name"], "--package", "Wbe:1.0.0")
    assert typo.returncode == 2 and "Wbe" in typo.stderr


def _versions(api: httpx.Client, project: dict[str, Any], version: str) -> dict[str, str]:
    page = api.get(f"/projects/{project['id']}/releases", params={"partial_name": version}).json()
    release = next(r for r in page["items"] if r["version"] == version)
    return {p["action_name"]: p["version"] for p in release["selected_packages"]}


def test_deploy_wait_streams_the_log_and_exits_0(
    cephalo: Cephalo,
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project('echo "first line"\nsleep 1\necho "last line" >&2\n', steps=2)
    assert cephalo("release", "create", "-p", project["name"], "--version", "5.0.0").returncode == 0
    result = cephalo("release", "deploy", "-p", project["name"], "--version", "5.0.0",
                     "--to", environment["name"], "--wait", "--timeout", "120")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    streamed = [line for line in out if line.endswith(("first line", "last line"))]
    assert len(streamed) == 4 and all(agent.name in line for line in streamed)
    assert out[-1] == f"Deployment to {environment['name']}: Success"
    assert out[0].startswith("Queued deployment ")


def test_a_failing_deployment_exits_1_with_the_failed_steps_log_on_stderr(
    cephalo: Cephalo,
    environment: dict[str, Any],
    agent: LocalAgent,
    api: httpx.Client,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project('echo "checking the database"\necho "no route to db" >&2\nexit 4\n')
    assert cephalo("release", "create", "-p", project["name"], "--version", "6.0.0").returncode == 0
    result = cephalo(
        "release", "deploy", "-p", project["name"], "--to", environment["name"], "--wait"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no route to db" in result.stdout
    stderr = result.stderr
    assert "Failed" in stderr and 'Step "Step 1" failed' in stderr
    assert "checking the database" in stderr and "no route to db" in stderr
    assert "Traceback" not in stderr


def test_a_timeout_exits_1_and_can_cancel_the_task(
    cephalo: Cephalo,
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project('echo "slow start"\nsleep 10\n')
    assert cephalo("release", "create", "-p", project["name"], "--version", "1.0.0").returncode == 0
    result = cephalo("release", "deploy", "-p", project["name"], "--to", environment["name"],
                     "--wait", "--timeout", "3", "--cancel-on-timeout")  # fmt: skip
    assert result.returncode == 1
    assert "did not finish within 3 s" in result.stderr
    assert "Cancelled task" in result.stderr
    task_id = result.stderr.split("Cancelled task ", 1)[1].split()[0]
    waited = cephalo("task", "wait", task_id, "--timeout", "60", "-o", "json")
    assert waited.returncode == 1, waited.stderr
    assert json.loads(waited.stdout)["state"] == "Canceled"
