"""Every command against a running stack, in this process: JSON shapes, errors, octo lines.

Each `--output json` answer is validated against the schema `cephalo schema` documents.
"""

from __future__ import annotations

import json
import shlex
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_cli.main import run
from cephalo_dev.agents import LocalAgent
from cephalo_dev.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

Cli = Callable[..., Any]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_list_and_show_commands_print_their_schemas(
    cli: Cli, validate: Callable[[str, Any], None], environment: dict[str, Any], agent: LocalAgent
) -> None:
    for noun, name in (("environment", environment["name"]), ("target", agent.name)):
        listed = cli("-o", "json", noun, "list")
        assert listed.code == 0, listed.stderr
        validate(f"{noun} list", listed.json())
        assert name in [item["name"] for item in listed.json()["items"]]
        shown = cli(noun, "show", name, "--output", "json")
        assert shown.code == 0, shown.stderr
        validate(f"{noun} show", shown.json())
        assert shown.json()["name"] == name
    text = cli("environment", "list")
    assert environment["name"] in text.stdout


def test_project_and_release_commands_print_their_schemas(
    cli: Cli, validate: Callable[[str, Any], None], script_project: Callable[..., dict[str, Any]]
) -> None:
    project = script_project("echo hi")
    listed = cli("project", "list", "-o", "json")
    validate("project list", listed.json())
    assert project["id"] in [item["id"] for item in listed.json()["items"]]
    validate("project show", cli("project", "show", project["name"], "-o", "json").json())
    created = cli(
        "release", "create", "--project", project["name"], "--version", "2.0.0", "-o", "json"
    )
    assert created.code == 0, created.stderr
    validate("release create", created.json())
    assert created.json()["created"] is True and created.json()["release"]["version"] == "2.0.0"
    releases = cli("release", "list", "-p", project["slug"], "-o", "json")
    validate("release list", releases.json())
    assert [r["version"] for r in releases.json()["items"]] == ["2.0.0"]


def test_package_commands_push_list_and_show_versions(
    cli: Cli, validate: Callable[[str, Any], None], make_package: Callable[..., Path]
) -> None:
    package_id = f"Cli.Pkg{uuid.uuid4().hex[:6]}"
    files = [make_package(package_id, "1.0.0"), make_package(package_id, "1.1.0-beta")]
    pushed = cli("package", "push", *map(str, files), "--output", "json")
    assert pushed.code == 0, pushed.stderr
    validate("package push", pushed.json())
    assert [(p["version"], p["stored"]) for p in pushed.json()["packages"]] == [
        ("1.0.0", True),
        ("1.1.0-beta", True),
    ]
    again = cli(
        "package", "push", str(files[0]), "--overwrite-mode", "IgnoreIfExists", "-o", "json"
    )
    assert again.code == 0 and again.json()["packages"][0]["stored"] is False
    exists = cli("package", "push", str(files[0]))
    assert exists.code == 1
    assert "already exists" in one_line(exists.stderr).lower()
    listed = cli("package", "list", "--filter", package_id, "-o", "json")
    validate("package list", listed.json())
    assert listed.json()["packages"][0]["version_count"] == 2
    versions = cli("package", "versions", package_id, "-o", "json")
    validate("package versions", versions.json())
    assert [v["version"] for v in versions.json()["versions"]] == ["1.1.0-beta", "1.0.0"]


def test_deploy_wait_and_task_commands_print_their_schemas(
    cli: Cli,
    api: httpx.Client,
    validate: Callable[[str, Any], None],
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project("echo from-json-mode")
    assert cli("release", "create", "-p", project["name"], "--version", "1.0.0").code == 0
    queued = cli(
        "release", "deploy", "-p", project["name"], "--to", environment["name"], "-o", "json"
    )
    assert queued.code == 0, queued.stderr
    validate("release deploy", queued.json())
    assert queued.json()["waited"] is False
    deployment_id = queued.json()["deployments"][0]["deployment_id"]
    task = _task_of(api, deployment_id)
    waited = cli("task", "wait", task, "--timeout", "120", "-o", "json")
    assert waited.code == 0, waited.stderr
    validate("task wait", waited.json())
    assert waited.json()["state"] == "Success"
    assert "from-json-mode" in [line["text"] for line in waited.json()["log"]]
    validate("task show", cli("task", "show", task, "-o", "json").json())
    log = cli("task", "log", task, "-o", "json")
    validate("task log", log.json())
    assert "from-json-mode" in cli("task", "log", task).stdout
    deployed = cli(
        "release", "deploy", "-p", project["name"], "--version", "1.0.0", "--to", environment["name"],
        "--wait", "--timeout", "120", "-o", "json",
    )  # fmt: skip
    assert deployed.code == 0, deployed.stderr
    validate("release deploy", deployed.json())
    assert deployed.json()["state"] == "Success"
    cancel = cli("task", "cancel", task)
    assert cancel.code == 1
    one_line(cancel.stderr)


def _task_of(api: httpx.Client, deployment_id: str) -> str:
    """The deployment's task id, once the orchestrator has made it (bounded)."""
    for _ in range(300):
        tasks = api.get("/tasks", params={"deployment_id": deployment_id}).json()
        if tasks:
            return str(tasks[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no task for deployment {deployment_id} within 30 s")


def test_promote_deploys_what_succeeded_in_the_source_environment(
    cli: Cli,
    api: httpx.Client,
    validate: Callable[[str, Any], None],
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project("echo promoted")
    for version in ("1.0.0", "1.0.1"):
        assert cli("release", "create", "-p", project["name"], "--version", version).code == 0
    first = cli(
        "release",
        "deploy",
        "-p",
        project["name"],
        "--version",
        "1.0.0",
        "--to",
        environment["name"],
        "--wait",
    )
    assert first.code == 0, first.stderr
    promoted = cli(
        "release", "promote", "-p", project["name"], "--from", environment["name"],
        "--to", environment["name"], "--wait", "-o", "json",
    )  # fmt: skip
    assert promoted.code == 0, promoted.stderr
    validate("release promote", promoted.json())
    assert promoted.json()["release"]["version"] == "1.0.0"


def test_login_checks_the_key_and_stores_it_privately(
    stack: Stack,
    isolated_config: Path,
    validate: Callable[[str, Any], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["--server", stack.gateway_url, "--api-key", "API-WRONG", "login"]) == 3
    assert not isolated_config.exists()
    capsys.readouterr()
    assert (
        run(["--server", stack.gateway_url, "--api-key", stack.api_key, "login", "-o", "json"]) == 0
    )
    validate("login", json.loads(capsys.readouterr().out))
    assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
    assert run(["environment", "list"]) == 0


def test_a_bad_api_key_is_one_line_and_exit_code_3(cli: Cli) -> None:
    result = cli("project", "list", key="API-NOT-A-REAL-KEY")
    assert result.code == 3
    assert "check the API key" in one_line(result.stderr)


def test_an_unknown_project_is_one_line_naming_it(cli: Cli, environment: dict[str, Any]) -> None:
    for argv in (
        ["release", "create", "--project", "No Such Project", "--version", "1.0.0"],
        ["release", "deploy", "--project", "No Such Project", "--to", environment["name"]],
    ):
        result = cli(*argv)
        assert result.code == 1
        assert "No Such Project" in one_line(result.stderr)


def test_an_existing_release_version_is_one_line_unless_ignored(
    cli: Cli, validate: Callable[[str, Any], None], script_project: Callable[..., dict[str, Any]]
) -> None:
    project = script_project("echo hi")
    assert cli("release", "create", "-p", project["name"], "--version", "4.0.0").code == 0
    again = cli("release", "create", "-p", project["name"], "--version", "4.0.0")
    assert again.code == 1
    assert "4.0.0" in one_line(again.stderr) and "already exists" in again.stderr
    ignored = cli(
        "release",
        "create",
        "-p",
        project["name"],
        "--version",
        "4.0.0",
        "--ignore-existing",
        "-o",
        "json",
    )
    assert ignored.code == 0, ignored.stderr
    validate("release create", ignored.json())
    assert ignored.json()["created"] is False


def test_an_unknown_environment_deploys_nowhere(
    cli: Cli,
    api: httpx.Client,
    environment: dict[str, Any],
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project("echo hi")
    assert cli("release", "create", "-p", project["name"], "--version", "1.0.0").code == 0
    result = cli(
        "release", "deploy", "-p", project["name"], "--to", environment["name"], "--to", "Nowhere"
    )
    assert result.code == 1 and "Nowhere" in one_line(result.stderr)
    assert api.get("/deployments", params={"project_id": project["id"]}).json()["total"] == 0


def test_agent_install_command_pins_the_server_thumbprint(
    cli: Cli,
    api: httpx.Client,
    stack: Stack,
    validate: Callable[[str, Any], None],
    environment: dict[str, Any],
) -> None:
    result = cli(
        "agent",
        "install-command",
        "--environment",
        environment["name"],
        "--tag",
        "web",
        "-o",
        "json",
    )
    assert result.code == 0, result.stderr
    validate("agent install-command", result.json())
    thumbprint = httpx.get(
        stack.gateway_url + "/api/v1/server-certificate", headers=stack.auth_headers
    ).json()["thumbprint"]
    assert f"python3 -m cephalo_agent configure --trust {thumbprint}" in result.json()["commands"]
    missing = cli("agent", "install-command", "--environment", "Nowhere")
    assert missing.code == 1 and "Nowhere" in one_line(missing.stderr)


def octo(line: str, stack: Stack, **names: str) -> list[str]:
    """An `octo …` line as Octopus documents it, pointed at this stack, as cephalo argv."""
    text = line.format(server=stack.gateway_url, key=stack.api_key, **names)
    argv = shlex.split(text)
    assert argv[0] == "octo"
    return argv[1:]


def test_octo_command_lines_from_the_documentation_run_unchanged(
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    validate: Callable[[str, Any], None],
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
    make_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    project = script_project("echo octo-was-here")
    package = make_package(f"Octo.Pkg{uuid.uuid4().hex[:6]}", "1.0.0")
    notes = tmp_path / "notes.md"
    notes.write_text("# Fixed everything\n")
    names = {
        "project": project["name"],
        "env": environment["name"],
        "package": str(package),
        "notes": str(notes),
    }
    lines = [
        ("push", "octo push --package {package} --replace-existing --server {server} --apiKey {key}"),
        ("push", "octo push --package={package} --overwrite-mode=IgnoreIfExists --server={server} --apiKey={key} --debug"),
        ("create-release", 'octo create-release --project "{project}" --version 1.0.3 --server {server} --apiKey {key}'),
        ("create-release", 'octo create-release --project "{project}" --releaseNumber 1.0.4 --releaseNotesFile "{notes}" --ignoreExisting --server {server} --apiKey {key} --space Spaces-1'),
        ("deploy-release", 'octo deploy-release --project "{project}" --releaseNumber 1.0.3 --deployto "{env}" --server {server} --apiKey {key} --progress'),
        ("deploy-release", 'octo deploy-release --project "{project}" --version latest --deployTo "{env}" --waitForDeployment --deploymentTimeout 00:05:00 --cancelOnTimeout --guidedFailure=False --server {server} --apiKey {key}'),
        ("create-release", 'octo create-release --project "{project}" --version 1.0.5 --deployTo "{env}" --waitForDeployment --server {server} --apiKey {key} --logLevel verbose'),
    ]  # fmt: skip
    for command, line in lines:
        capsys.readouterr()
        assert run([*octo(line, stack, **names), "--output", "json"]) == 0, capsys.readouterr().err
        validate(command, json.loads(capsys.readouterr().out))
    assert run(octo(lines[4][1], stack, **names)) == 0
    assert "octo-was-here" in capsys.readouterr().out


def test_octo_environment_variables_configure_the_aliases(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project("echo hi")
    monkeypatch.setenv("OCTOPUS_CLI_SERVER", stack.gateway_url)
    monkeypatch.setenv("OCTOPUS_CLI_API_KEY", stack.api_key)
    assert run(["create-release", "--project", project["name"], "--version", "7.0.0"]) == 0
    assert "Created release 7.0.0" in capsys.readouterr().out


def test_deploy_options_reach_the_deployment(
    cli: Cli,
    api: httpx.Client,
    environment: dict[str, Any],
    agent: LocalAgent,
    script_project: Callable[..., dict[str, Any]],
) -> None:
    project = script_project('echo "ran"', steps=2)
    assert cli("release", "create", "-p", project["name"], "--version", "1.0.0").code == 0
    result = cli(
        "release", "deploy", "-p", project["name"], "--to", environment["name"], "--wait",
        "--skip", "Step 2", "--target", agent.name, "--no-guided-failure", "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    row = result.json()["deployments"][0]
    assert {line["step"] for line in row["log"] if line["text"] == "ran"} == {"Step 1"}
    deployment = api.get(f"/deployments/{row['deployment_id']}").json()
    assert len(deployment["skip_actions"]) == 1
    assert deployment["specific_machine_ids"] == [agent_id(api, agent.name)]
    assert deployment["guided_failure_override"] is False
    unknown = cli("release", "deploy", "-p", project["name"], "--to", environment["name"],
                  "--target", "no-such-machine")  # fmt: skip
    assert unknown.code == 1 and "no-such-machine" in one_line(unknown.stderr)


def agent_id(api: httpx.Client, name: str) -> str:
    return str(next(m["id"] for m in api.get("/machines").json() if m["name"] == name))
