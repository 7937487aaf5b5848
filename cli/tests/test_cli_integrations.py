"""The CI recipes in integrations/, run against a stack.

GitHub's runner is not available here, so `run_action` plays its part for composite actions:
inputs with their defaults, `${{ inputs.* }}` expansion (an undeclared input fails),
`bash --noprofile --norc -eo pipefail`, `$GITHUB_OUTPUT` and `$GITHUB_ACTION_PATH`. The
scripts themselves, the CLI and the server are the real ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cephalo_dev.agents import LocalAgent
from cephalo_dev.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class ActionRun:
    code: int
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""


def _environment(stack: Stack, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CEPHALO_", "GITHUB_"))}
    return {**clean, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **extra}


def run_action(name: str, inputs: dict[str, str], stack: Stack, tmp_path: Path) -> ActionRun:
    path = INTEGRATIONS / "github" / name / "action.yml"
    action = yaml.safe_load(path.read_text())
    assert action["runs"]["using"] == "composite"
    values = {key: str(spec.get("default", "")) for key, spec in action["inputs"].items()}
    missing = [
        k for k, spec in action["inputs"].items() if spec.get("required") and k not in inputs
    ]
    assert not missing, f"required inputs not given: {missing}"
    values.update(inputs)

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, _, key = match.group(1).partition(".")
            assert kind == "inputs", f"unexpected expression {match.group(0)}"
            return values[key]

        return EXPRESSION.sub(one, text)

    step_outputs: dict[str, dict[str, str]] = {}
    log = []
    for index, step in enumerate(action["runs"]["steps"]):
        output_file = tmp_path / f"{name}-{index}.out"
        output_file.write_text("")
        env = _environment(
            stack,
            GITHUB_OUTPUT=str(output_file),
            GITHUB_PATH=str(tmp_path / "github-path"),
            GITHUB_ACTION_PATH=str(path.parent),
            **{key: expand(str(value)) for key, value in (step.get("env") or {}).items()},
        )
        assert step["shell"] == "bash"
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", expand(step["run"])],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        log.append(done.stdout + done.stderr)
        step_outputs[step.get("id", str(index))] = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if line
        )
        if done.returncode != 0:
            return ActionRun(done.returncode, {}, "\n".join(log))
    outputs = {}
    for key, spec in (action.get("outputs") or {}).items():
        reference = EXPRESSION.fullmatch(spec["value"])
        assert reference, spec["value"]
        _, step_id, _, output = reference.group(1).split(".")
        outputs[key] = step_outputs[step_id].get(output, "")
    return ActionRun(0, outputs, "\n".join(log))


def test_the_github_actions_push_create_and_deploy(
    stack: Stack,
    tmp_path: Path,
    agent: LocalAgent,
    environment: dict[str, Any],
    make_package: Callable[..., Path],
    package_project: Callable[[dict[str, str]], dict[str, Any]],
) -> None:
    package_id = f"Gha.Web{uuid.uuid4().hex[:6]}"
    make_package(package_id, "1.0.0")
    make_package(package_id, "1.1.0")
    connection = {"server": stack.gateway_url, "api-key": stack.api_key}
    pushed = run_action(
        "push-package", {**connection, "packages": f"{package_id}.*.zip\n"}, stack, tmp_path
    )
    assert pushed.code == 0, pushed.log
    assert f"{package_id}.1.0.0.zip" in pushed.log
    assert '"stored":true' in pushed.outputs["packages"]

    project = package_project({"Web": package_id})
    created = run_action(
        "create-release",
        {**connection, "project": project["name"], "version": "3.0.0", "packages": "Web:1.0.0"},
        stack,
        tmp_path,
    )
    assert created.code == 0, created.log
    assert created.outputs["release-version"] == "3.0.0"
    again = run_action(
        "create-release",
        {**connection, "project": project["name"], "version": "3.0.0", "ignore-existing": "true"},
        stack,
        tmp_path,
    )
    assert again.code == 0 and again.outputs["release-id"] == created.outputs["release-id"]

    deployed = run_action(
        "deploy-release",
        {
            **connection,
            "project": project["name"],
            "environments": environment["name"],
            "timeout": "150",
        },
        stack,
        tmp_path,
    )
    assert deployed.code == 0, deployed.log
    assert deployed.outputs["state"] == "Success"
    assert re.search(rf"^{re.escape(agent.name)}\s+ok$", deployed.log, re.MULTILINE), deployed.log


def test_the_deploy_action_fails_the_job_when_the_deployment_fails(
    stack: Stack,
    tmp_path: Path,
    agent: LocalAgent,
    environment: dict[str, Any],
    script_project: Callable[..., dict[str, Any]],
    api: httpx.Client,
) -> None:
    project = script_project('echo "broken build"\nexit 9\n')
    assert api.post(f"/projects/{project['id']}/releases", json={"version": "1.0.0"}).is_success
    inputs = {
        "server": stack.gateway_url,
        "api-key": stack.api_key,
        "project": project["name"],
        "environments": environment["name"],
    }
    run = run_action("deploy-release", inputs, stack, tmp_path)
    assert run.code == 1
    assert "broken build" in run.log


def test_the_shell_example_pushes_creates_and_deploys(
    stack: Stack,
    tmp_path: Path,
    agent: LocalAgent,
    environment: dict[str, Any],
    make_package: Callable[..., Path],
    package_project: Callable[[dict[str, str]], dict[str, Any]],
    api: httpx.Client,
) -> None:
    package_id = f"Sh.Web{uuid.uuid4().hex[:6]}"
    project = package_project({"Web": package_id})
    package = make_package(package_id, "2.4.0")
    env = _environment(stack, CEPHALO_SERVER=stack.gateway_url, CEPHALO_API_KEY=stack.api_key)
    script = str(INTEGRATIONS / "shell" / "release.sh")
    done = subprocess.run(
        [script, project["name"], "2.4.0", environment["name"], str(package)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Deployment to {environment['name']}: Success" in done.stdout
    releases = api.get(f"/projects/{project['id']}/releases").json()["items"]
    assert releases[0]["selected_packages"][0]["version"] == "2.4.0"
    usage = subprocess.run([script], env=env, capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2


def test_the_gitlab_template_jobs_run(
    stack: Stack,
    tmp_path: Path,
    agent: LocalAgent,
    environment: dict[str, Any],
    script_project: Callable[..., dict[str, Any]],
) -> None:
    template = yaml.safe_load((INTEGRATIONS / "gitlab" / "cephalo.gitlab-ci.yml").read_text())
    project = script_project('echo "from gitlab"')

    def job(name: str, **variables: str) -> subprocess.CompletedProcess[str]:
        base, spec = template[".cephalo"], template[name]
        assert spec["extends"] == ".cephalo"
        lines = [*base["before_script"], *spec["script"]]
        values = {**base["variables"], **spec["variables"], **variables}
        env = _environment(
            stack, CEPHALO_SERVER=stack.gateway_url, CEPHALO_API_KEY=stack.api_key, **values
        )
        return subprocess.run(
            ["bash", "-e", "-c", "\n".join(lines)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )

    created = job(".cephalo-create-release", CEPHALO_PROJECT=project["name"])
    assert created.returncode == 0, created.stdout + created.stderr
    assert (tmp_path / "cephalo-release.json").exists()
    deployed = job(
        ".cephalo-deploy-release",
        CEPHALO_PROJECT=project["name"],
        CEPHALO_ENVIRONMENT=environment["name"],
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "from gitlab" in deployed.stdout
    bash_n = subprocess.run(
        ["bash", "-n", "-c", "\n".join(template[".cephalo-push-package"]["script"])], timeout=30
    )
    assert bash_n.returncode == 0
