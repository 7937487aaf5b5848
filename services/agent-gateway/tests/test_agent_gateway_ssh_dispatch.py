"""SSH targets through the whole gateway: registered over the API, steps from `step.dispatch`.

Real Postgres, real NATS JetStream (the dispatch is a command envelope; `step.log`,
`step.finished` and `target.host-key-changed` are read back from NATS), a real OpenSSH sshd
on 127.0.0.1 (key-only auth as the current user). The runner's remote base is a temporary
directory, so nothing is written to the real home directory.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import io
import json
import os
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import nats
import pytest
from nats.aio.msg import Msg
from sqlalchemy import update

from cephalo_agent_gateway.db.models import ScriptRun
from cephalo_agent_gateway.domain.ssh_service import account_cipher
from cephalo_agent_gateway.domain.ssh_targets import capture_host_key, fingerprint
from cephalo_agent_gateway.events.contracts import TARGET_HOST_KEY_CHANGED, TargetHostKeyChangedV1
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    eventually,
    gateway_running,
    unique,
)
from cephalo_agent_gateway.testing.sshd import Sshd
from cephalo_common.agent_protocol import ExitCodes
from cephalo_common.contracts import PackageAcquisitionV1
from cephalo_common.db.session import unit_of_work
from cephalo_common.embedded import free_port
from cephalo_common.messaging.artifacts import TaskArtifactStore
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.settings import NatsSettings

SECRET = "ssh-dispatch-Pa55"
SCRIPT = (
    'echo "hello from $(whoami)"\n'
    'echo "secret: $(get_cephalovariable Password)"\n'
    "echo warning >&2\n"
    "set_cephalovariable Where ssh\n"
    "exit 3\n"
)


@pytest.fixture
async def ssh_gateway(
    gateway_settings: Callable[..., AgentGatewaySettings],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[RunningGateway]:
    """A gateway with an SSH account key (from a file) and a temporary remote base; plain
    scripts take the shell fast path unless the test is parametrized with "runner"."""
    key_file = tmp_path / "ssh-account.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    settings = gateway_settings(
        ssh_account_key_file=key_file,
        ssh_remote_base=str(tmp_path / "remote-home"),
        ssh_shell_fast_path=getattr(request, "param", "fast") == "fast",
    )
    async with gateway_running(settings) as running:
        yield running


@pytest.fixture
async def host_key_changes(nats_url: str, space: Space) -> AsyncIterator[list[Envelope]]:
    received: list[Envelope] = []
    connection = await nats.connect(nats_url)

    async def on_change(message: Msg) -> None:
        received.append(Envelope.from_bytes(message.data))

    try:
        await connection.subscribe(TARGET_HOST_KEY_CHANGED.subject(str(space.id)), cb=on_change)
        await connection.flush()
        yield received
    finally:
        await connection.close()


def ssh_body(sshd: Sshd, key: asyncssh.SSHKey, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique("ssh"),
        "environments": ["Production"],
        "roles": ["web"],
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": getpass.getuser(),
        "private_key": key.export_private_key("openssh").decode(),
    }
    body.update(overrides)
    return body


async def register_ssh(
    gateway: RunningGateway, space: Space, sshd: Sshd, key: asyncssh.SSHKey, **overrides: Any
) -> dict[str, Any]:
    response = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/ssh", json=ssh_body(sshd, key, **overrides)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def script_run(gateway: RunningGateway, ticket: str) -> ScriptRun | None:
    async with gateway.app.state.runtime.sessionmaker() as session:
        run: ScriptRun | None = await session.get(ScriptRun, ticket)
        return run


async def dispatch_script(
    orchestrator: Orchestrator, space: Space, machine_id: str, script: str = SCRIPT
) -> str:
    envelope = await orchestrator.dispatch(
        space,
        machine_id,
        script_body=script,
        variables={"Password": SECRET},
        sensitive_variables=["Password"],
    )
    ticket: str = envelope.data["ticket"]
    return ticket


@pytest.mark.parametrize("ssh_gateway", ["fast", "runner"], indirect=True)
async def test_a_dispatched_step_runs_on_an_ssh_target_and_streams_its_log(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    body = ssh_body(sshd, client_key)
    response = await ssh_gateway.client.post(f"/api/v1/spaces/{space.id}/machines/ssh", json=body)
    assert response.status_code == 201, response.text
    machine = response.json()
    pinned = await capture_host_key("127.0.0.1", sshd.port)
    assert machine["mode"] == "ssh"
    assert machine["ssh"]["host_key_fingerprint"] == fingerprint(pinned)
    assert machine["ssh"]["auth"] == "private_key"
    assert "PRIVATE KEY" not in response.text
    assert machine["environment_ids"] == [str(space.environments["Production"])]

    ticket = await dispatch_script(orchestrator, space, machine["id"])
    finished = await events.wait_finished(ticket)

    lines = events.lines(ticket)
    assert finished.exit_code == 3, (finished.error, lines)
    assert finished.error is None
    assert f"hello from {getpass.getuser()}" in lines
    assert "secret: ********" in lines and "warning" in lines
    assert not any(SECRET in line for line in lines)
    assert events.sequences(ticket) == list(range(1, len(lines) + 1))
    assert finished.last_log_sequence == len(lines)
    assert finished.output_variables == {"Where": "ssh"}
    run = await script_run(ssh_gateway, ticket)
    assert run is not None
    assert (run.state, run.outcome, run.exit_code) == ("Complete", "Failed", 3)
    assert run.last_log_sequence == len(lines)
    assert run.dispatch["variables"] == {"Password": "********"}

    second = await dispatch_script(orchestrator, space, machine["id"], "echo again")
    again = await events.wait_finished(second)
    assert (again.exit_code, events.lines(second)) == (0, ["again"])
    fast = ssh_gateway.gateway.settings.ssh_shell_fast_path
    assert ssh_gateway.gateway.ssh.pool.runner_uploads == (0 if fast else 1)


async def test_a_changed_host_key_fails_the_next_step_and_is_audited(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
    host_key_changes: list[Envelope],
) -> None:
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    old = machine["ssh"]["host_key_fingerprint"]
    base = f"/api/v1/spaces/{space.id}/machines/{machine['id']}"
    first = await dispatch_script(orchestrator, space, machine["id"], "echo before")
    assert (await events.wait_finished(first)).exit_code == 0

    await ssh_gateway.gateway.ssh.pool.aclose()
    await sshd.restart_with_new_host_key()
    new = fingerprint(await capture_host_key("127.0.0.1", sshd.port))
    ticket = await dispatch_script(orchestrator, space, machine["id"], "echo after")
    finished = await events.wait_finished(ticket)

    assert finished.exit_code is None
    assert finished.error is not None
    assert old in finished.error and new in finished.error, finished.error
    assert "different host key" in finished.error
    assert events.lines(ticket) == []
    run = await script_run(ssh_gateway, ticket)
    assert run is not None and run.outcome == "Error"
    audit = (await ssh_gateway.client.get(f"{base}/ssh/host-key-events")).json()
    assert [event["action"] for event in audit] == ["Refused", "Pinned"]
    assert (audit[0]["pinned_fingerprint"], audit[0]["presented_fingerprint"]) == (old, new)
    announced = await eventually(lambda: host_key_changes)
    change = announced[0].payload(TargetHostKeyChangedV1)
    assert (change.machine_id, change.pinned_fingerprint) == (machine["id"], old)
    assert change.presented_fingerprint == new
    health = (await ssh_gateway.client.post(f"{base}/health-checks")).json()
    assert health["status"] == "Unavailable" and new in health["message"]

    wrong = await ssh_gateway.client.post(f"{base}/ssh/host-key", json={"fingerprint": old})
    assert wrong.status_code == 422, wrong.text
    assert new in wrong.text
    still = (await ssh_gateway.client.get(f"{base}/ssh")).json()
    assert still["ssh"]["host_key_fingerprint"] == old
    repinned = await ssh_gateway.client.post(f"{base}/ssh/host-key", json={"fingerprint": new})
    assert repinned.status_code == 200, repinned.text
    assert repinned.json()["ssh"]["host_key_fingerprint"] == new
    later = await dispatch_script(orchestrator, space, machine["id"], "echo repinned")
    assert (await events.wait_finished(later)).exit_code == 0
    assert events.lines(later) == ["repinned"]
    audit = (await ssh_gateway.client.get(f"{base}/ssh/host-key-events")).json()
    assert [event["action"] for event in audit][:2] == ["Repinned", "Refused"]


async def test_an_ssh_target_is_health_checked_over_ssh(
    ssh_gateway: RunningGateway, space: Space, sshd: Sshd, client_key: asyncssh.SSHKey
) -> None:
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    response = await ssh_gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/{machine['id']}/health-checks"
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "Healthy", result
    assert "Python 3." in result["message"]


async def test_an_expected_fingerprint_must_match_at_registration(
    ssh_gateway: RunningGateway, space: Space, sshd: Sshd, client_key: asyncssh.SSHKey
) -> None:
    actual = fingerprint(await capture_host_key("127.0.0.1", sshd.port))
    other = fingerprint(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())
    url = f"/api/v1/spaces/{space.id}/machines/ssh"
    name = unique("pinned")
    mismatch = await ssh_gateway.client.post(
        url, json=ssh_body(sshd, client_key, name=name, host_key_fingerprint=other)
    )
    assert mismatch.status_code == 422, mismatch.text
    assert actual in mismatch.text and other in mismatch.text
    listed = await ssh_gateway.client.get(f"/api/v1/spaces/{space.id}/machines")
    assert name not in {machine["name"] for machine in listed.json()}, "nothing half-written"
    bare = actual.removeprefix("SHA256:")
    machine = await register_ssh(
        ssh_gateway, space, sshd, client_key, name=name, host_key_fingerprint=bare
    )
    assert machine["ssh"]["host_key_fingerprint"] == actual


async def test_registration_failures(
    ssh_gateway: RunningGateway, space: Space, sshd: Sshd, client_key: asyncssh.SSHKey
) -> None:
    client = ssh_gateway.client
    url = f"/api/v1/spaces/{space.id}/machines/ssh"
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)

    duplicate = await client.post(
        url, json=ssh_body(sshd, client_key, name=machine["name"].upper())
    )
    assert duplicate.status_code == 409, duplicate.text
    both = await client.post(url, json=ssh_body(sshd, client_key, password="pw"))
    assert both.status_code == 422
    neither = ssh_body(sshd, client_key)
    del neither["private_key"]
    assert (await client.post(url, json=neither)).status_code == 422
    garbage = await client.post(url, json=ssh_body(sshd, client_key, private_key="not a key"))
    assert garbage.status_code == 422 and "private key" in garbage.text
    unknown_env = await client.post(url, json=ssh_body(sshd, client_key, environments=["Mars"]))
    assert unknown_env.status_code == 422 and "Mars" in unknown_env.text
    unreachable = await client.post(url, json=ssh_body(sshd, client_key, port=free_port()))
    assert unreachable.status_code == 422 and "host key" in unreachable.text
    bad_host = await client.post(url, json=ssh_body(sshd, client_key, host="a b"))
    assert bad_host.status_code == 422
    no_space = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/machines/ssh", json=ssh_body(sshd, client_key)
    )
    assert no_space.status_code == 404, no_space.text


async def test_ssh_routes_are_scoped_to_their_space_and_to_ssh_targets(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    agent: FakeAgent,
) -> None:
    client = ssh_gateway.client
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    elsewhere = f"/api/v1/spaces/{uuid.uuid4()}/machines/{machine['id']}"
    assert (await client.get(f"{elsewhere}/ssh")).status_code == 404
    assert (await client.get(f"{elsewhere}/ssh/host-key-events")).status_code == 404
    repin = await client.post(f"{elsewhere}/ssh/host-key", json={"fingerprint": "SHA256:x"})
    assert repin.status_code == 404
    agent_machine = await ssh_gateway.register(agent, space)
    not_ssh = f"/api/v1/spaces/{space.id}/machines/{agent_machine['id']}/ssh"
    assert (await client.get(not_ssh)).status_code == 404
    empty = await client.post(
        f"/api/v1/spaces/{space.id}/machines/{machine['id']}/ssh/host-key",
        json={"fingerprint": ""},
    )
    assert empty.status_code == 422
    deleted = await client.delete(f"/api/v1/spaces/{space.id}/machines/{machine['id']}")
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/spaces/{space.id}/machines/{machine['id']}/ssh")
    assert gone.status_code == 404


async def test_without_an_account_key_ssh_targets_are_refused_clearly(
    gateway: RunningGateway, space: Space, sshd: Sshd, client_key: asyncssh.SSHKey
) -> None:
    response = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/ssh", json=ssh_body(sshd, client_key)
    )
    assert response.status_code == 503, response.text
    assert "CEPHALO_AGENT_GATEWAY_SSH_ACCOUNT_KEY" in response.text


def test_a_malformed_account_key_is_refused_at_start() -> None:
    assert account_cipher(None) is None
    with pytest.raises(ValueError, match="SSH_ACCOUNT_KEY"):
        account_cipher(base64.b64encode(b"too short").decode())
    assert account_cipher(base64.b64encode(os.urandom(32)).decode()) is not None


@pytest.mark.parametrize("ssh_gateway", ["fast", "runner"], indirect=True)
async def test_an_ssh_step_times_out_or_is_cancelled_frees_its_session_and_stops_its_processes(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    slow_pid = tmp_path / "slow.pid"
    slow = await orchestrator.dispatch(
        space,
        machine["id"],
        script_body=f"sleep 60 & echo $! > {slow_pid}; echo started; wait",
        timeout_seconds=6,  # the runner starts slowly on a loaded machine
    )
    timed_out = await events.wait_finished(slow.data["ticket"])
    assert timed_out.exit_code == ExitCodes.TIMED_OUT
    assert timed_out.error is not None and "TimedOut" in timed_out.error
    assert events.lines(slow.data["ticket"]) == ["started"]
    await eventually(lambda: not alive(int(slow_pid.read_text())))

    waiting_pid = tmp_path / "waiting.pid"
    ticket = await dispatch_script(
        orchestrator,
        space,
        machine["id"],
        f"sleep 60 & echo $! > {waiting_pid}; echo waiting; wait",
    )
    await eventually(lambda: events.lines(ticket) == ["waiting"])
    cancel = await ssh_gateway.client.post(f"/api/v1/spaces/{space.id}/script-runs/{ticket}/cancel")
    assert cancel.status_code == 202, cancel.text
    cancelled = await events.wait_finished(ticket)
    assert cancelled.error is not None and cancelled.error.startswith("Canceled")
    run = await script_run(ssh_gateway, ticket)
    assert run is not None and run.outcome == "Canceled"
    assert ssh_gateway.gateway.ssh.pool._active == 0
    await eventually(lambda: not alive(int(waiting_pid.read_text())))

    after = await dispatch_script(orchestrator, space, machine["id"], "echo still fine")
    assert (await events.wait_finished(after)).exit_code == 0


def alive(pid: int) -> bool:
    """The remote (loopback) process still exists; a zombie counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_a_package_step_is_deployed_on_an_ssh_target_from_step_dispatch(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
    package_server: tuple[str, Path],
    tmp_path: Path,
    nats_url: str,
) -> None:
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    base_url, root = package_server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appsettings.json", json.dumps({"Db": {"Password": "old"}}))
        archive.writestr(
            "Deploy.sh",
            'echo "deploying $(basename "$PWD")"\ncp appsettings.json report.json\n'
            "new_cephaloartifact report.json\nset_cephalovariable Deployed yes\n",
        )
    data = buffer.getvalue()
    (root / "shop.zip").write_bytes(data)
    package = PackageAcquisitionV1(
        package_id="Shop",
        version="1.2.3",
        url=f"{base_url}/shop.zip",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    envelope = await orchestrator.dispatch(
        space,
        machine["id"],
        script_body="",
        action_type="cephalo.deploy-package",
        action_properties={"Octopus.Action.Package.JsonConfigurationVariablesTargets": "*.json"},
        packages=[package.model_dump(mode="json")],
        variables={"Octopus.Environment.Name": "Staging", "Db:Password": SECRET},
        sensitive_variables=["Db:Password"],
    )
    ticket = envelope.data["ticket"]
    finished = await events.wait_finished(ticket)

    lines = events.lines(ticket)
    assert (finished.exit_code, finished.error) == (0, None), lines
    assert "deploying 1.2.3" in lines
    assert not any(SECRET in line or "##cephalo" in line for line in lines)
    folder = tmp_path / "remote-home" / "apps" / "Staging" / "Shop" / "1.2.3"
    assert json.loads((folder / "appsettings.json").read_text()) == {"Db": {"Password": SECRET}}
    assert finished.output_variables == {
        "Deployed": "yes",
        "Package.InstallationDirectoryPath": str(folder),
    }
    [artifact] = finished.artifacts
    assert artifact.name == "report.json" and artifact.object_name is not None
    store = TaskArtifactStore(NatsSettings(url=nats_url), name="test-artifacts")
    try:
        kept = await store.get(artifact.object_name)
    finally:
        await store.aclose()
    assert kept == (folder / "report.json").read_bytes()
    assert artifact.sha256 == hashlib.sha256(kept).hexdigest()


async def test_deployment_steps_on_one_ssh_target_run_one_at_a_time(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    marker = tmp_path / "in-step"
    script = (
        f'if [ -e "{marker}" ]; then echo overlap; fi\n'
        f'touch "{marker}"; sleep 0.5; rm "{marker}"; echo done\n'
    )
    tickets = [await dispatch_script(orchestrator, space, machine["id"], script) for _ in range(3)]
    for ticket in tickets:
        finished = await events.wait_finished(ticket)
        assert finished.exit_code == 0, finished.error
        assert events.lines(ticket) == ["done"]


async def test_a_fast_step_found_running_after_a_restart_reports_what_the_target_recorded(
    ssh_gateway: RunningGateway,
    space: Space,
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    """A run left Running (as by a gateway that stopped mid-step) is not run again; the
    exit code the fast path recorded on the host is named in its error."""
    machine = await register_ssh(ssh_gateway, space, sshd, client_key)
    ticket = await dispatch_script(orchestrator, space, machine["id"], "echo once; exit 5")
    assert (await events.wait_finished(ticket)).exit_code == 5
    async with unit_of_work(ssh_gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(ScriptRun)
            .where(ScriptRun.ticket == ticket)
            .values(
                state="Running",
                outcome=None,
                exit_code=None,
                error=None,
                finished_at=None,
                driver=None,
                lease_until=None,
            )
        )
    ssh_gateway.gateway.supervisor.wake()

    async def noted() -> bool:
        run = await script_run(ssh_gateway, ticket)
        return run is not None and run.state == "Complete" and run.error is not None

    await eventually(noted)
    run = await script_run(ssh_gateway, ticket)
    assert run is not None and run.error is not None
    assert "outcome is unknown (the target recorded exit code 5;" in run.error
    assert events.lines(ticket).count("once") == 1
