"""A whole Cephalo stack (every service a real process, one real polling agent) for CLI tests.

`cli` runs a command line in this process (fast, for schemas and error paths);
`cephalo` runs the installed `.venv/bin/cephalo` executable as a subprocess (end to end).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from cephalo_cli.main import run
from cephalo_cli.schemas import schema
from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.shared_stack import SharedStack
from cephalo_dev.stack import Stack

EXECUTABLE = Path(sys.executable).with_name("cephalo")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _validate(command: str, document: Any) -> None:
    jsonschema_rs.validator_for(schema(command)).validate(document)


@pytest.fixture
def validate() -> Callable[[str, Any], None]:
    """Raise unless a document matches the documented schema of a command."""
    return _validate


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty config dir and no CEPHALO_*/OCTOPUS_* variables."""
    for name in list(os.environ):
        if name.startswith(("CEPHALO_", "OCTOPUS_CLI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "cephalo" / "config.json"


@pytest.fixture(scope="session")
def stack(whole_stack: SharedStack) -> SharedStack:
    """The session's shared stack (cephalo_dev.shared_stack): names here are unique."""
    return whole_stack


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[httpx.Client]:
    """The public API under the default space, for arranging what a test needs."""
    with httpx.Client(
        base_url=stack.gateway_url + "/api/v1/spaces/default",
        headers=stack.auth_headers,
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def role() -> str:
    return f"cli-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def environment(api: httpx.Client) -> dict[str, Any]:
    response = api.post("/environments", json={"name": f"CLI {uuid.uuid4().hex[:6]}"})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="session")
def agent(
    stack: Stack,
    api: httpx.Client,
    environment: dict[str, Any],
    role: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalAgent]:
    local = LocalAgent(
        f"agent-{role}", tmp_path_factory.mktemp("agent"), stack.gateway_url, api_key=stack.api_key
    )
    local.register([environment["name"]], [role])
    process = local.start(stack.logs_dir / "cli-agent.log")
    try:
        deadline = time.monotonic() + 60
        while not any(
            m["name"] == local.name and m["connected"] for m in api.get("/machines").json()
        ):
            assert time.monotonic() < deadline, "the agent did not connect within 60 s"
            time.sleep(0.2)
        yield local
    finally:
        stop(process)


@pytest.fixture
def cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `cephalo ARGS…` in this process against the stack (server and key as flags)."""

    def invoke(*args: str, key: str | None = None, server: str | None = None) -> Result:
        capsys.readouterr()
        code = run(
            ["--server", server or stack.gateway_url, "--api-key", key or stack.api_key, *args]
        )
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def cephalo(stack: Stack) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `cephalo` executable; the key comes from CEPHALO_API_KEY."""

    def invoke(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "CEPHALO_SERVER": stack.gateway_url,
            "CEPHALO_API_KEY": stack.api_key,
            "COLUMNS": "120",
        }
        return subprocess.run(
            [str(EXECUTABLE), *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    return invoke


def _make_package(directory: Path, package_id: str, version: str, size: int = 2048) -> Path:
    """A real zip package `<id>.<version>.zip` with one file of `size` random bytes."""
    path = directory / f"{package_id}.{version}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app/run.sh", "echo run\n")
        archive.writestr("app/blob.bin", os.urandom(size))
    return path


def _script_project(api: httpx.Client, role: str, script: str, steps: int = 1) -> dict[str, Any]:
    """A new project whose process runs `script` on the role's targets."""
    project = api.post("/projects", json={"name": f"CLI {uuid.uuid4().hex[:8]}"}).json()
    body = {
        "steps": [
            {"name": f"Step {index + 1}", "target_roles": [role], "script_body": script}
            for index in range(steps)
        ]
    }
    response = api.put(f"/projects/{project['id']}/deployment-process", json=body)
    assert response.status_code == 200, response.text
    return dict(project)


def _package_project(api: httpx.Client, role: str, packages: dict[str, str]) -> dict[str, Any]:
    """A project with one script step per `{step name: package id}` that references it."""
    project = api.post("/projects", json={"name": f"CLI {uuid.uuid4().hex[:8]}"}).json()
    steps = [
        {
            "name": step,
            "target_roles": [role],
            "actions": [
                {
                    "action_type": "cephalo.script",
                    "properties": {"script_source": "Inline", "script_body": "echo ok"},
                    "packages": [{"package_id": package_id}],
                }
            ],
        }
        for step, package_id in packages.items()
    ]
    response = api.put(f"/projects/{project['id']}/deployment-process", json={"steps": steps})
    assert response.status_code == 200, response.text
    return dict(project)


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    def make(package_id: str, version: str, size: int = 2048) -> Path:
        return _make_package(tmp_path, package_id, version, size)

    return make


@pytest.fixture
def script_project(api: httpx.Client, role: str) -> Callable[..., dict[str, Any]]:
    def make(script: str, steps: int = 1) -> dict[str, Any]:
        return _script_project(api, role, script, steps)

    return make


@pytest.fixture
def package_project(api: httpx.Client, role: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    def make(packages: dict[str, str]) -> dict[str, Any]:
        return _package_project(api, role, packages)

    return make
