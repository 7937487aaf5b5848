"""SSH targets against a real OpenSSH `sshd` and an asyncssh server, both on 127.0.0.1.

The sshd runs as the current user with key-only auth and its own host key; the asyncssh
server (password auth, exec through the local shell, SFTP) shows the same client code works
with a password account. Nothing is written to the real home directory: the runner's remote
base is a temporary directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from cephalo_agent_gateway.domain.ssh_accounts import (
    AccountCipher,
    AccountUnreadable,
    SshAccount,
)
from cephalo_agent_gateway.domain.ssh_steps import run_ssh_step
from cephalo_agent_gateway.domain.ssh_targets import (
    HostKeyChanged,
    SshConnections,
    SshEndpoint,
    SshSettings,
    SshStepRunner,
    SshUnavailable,
    capture_host_key,
    fingerprint,
    runner_bundle,
)
from cephalo_agent_gateway.domain.step_actions import StepResults
from cephalo_agent_gateway.testing.sshd import Sshd
from cephalo_common.agent_protocol import LogSource, ProcessOutput
from cephalo_common.contracts import ArtifactV1, PackageAcquisitionV1, StepDispatchV1
from cephalo_common.embedded import free_port

SECRET = "ssh-Pa55-w0rd-42"


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[tuple[SshConnections, list[tuple[str, str]]]]:
    """The runner path for every step (the shell fast path has its own tests)."""
    audit: list[tuple[str, str]] = []

    async def record(endpoint: SshEndpoint, presented: str) -> None:
        audit.append((endpoint.name, presented))

    settings = SshSettings(
        max_concurrent=2, remote_base=str(tmp_path / "remote-home"), shell_fast_path=False
    )
    connections = SshConnections(settings, on_host_key_changed=record)
    yield connections, audit
    await connections.aclose()


async def endpoint_for(sshd: Sshd, key: asyncssh.SSHKey) -> SshEndpoint:
    private = key.export_private_key("openssh").decode()
    account = SshAccount(getpass.getuser(), private_key=private)
    pinned = await capture_host_key("127.0.0.1", sshd.port)
    return SshEndpoint("web-01", "127.0.0.1", sshd.port, account, pinned)


class Collected:
    def __init__(self) -> None:
        self.raw: list[ProcessOutput] = []

    def __call__(self, source: LogSource, text: str) -> None:
        self.raw.append(
            ProcessOutput(sequence=len(self.raw) + 1, source=source, text=text, time="")
        )

    def results(self) -> tuple[StepResults, list[str]]:
        results = StepResults()
        return results, [line.text for line in results.absorb(self.raw)]


SCRIPT_ACTION = {
    "action_type": "cephalo.script",
    "syntax": "bash",
    "script_body": 'echo "on $(hostname) as $(whoami), tty: $(tty || true)"\n'
    'echo "secret: $(get_cephalovariable Password)"\n'
    "set_cephalovariable Where ssh\n",
    "variables": {"Password": SECRET},
    "sensitive_variables": ["Password"],
}


async def test_a_step_runs_on_real_sshd_and_the_runner_is_pushed_once(
    sshd: Sshd, client_key: asyncssh.SSHKey, pool: tuple[SshConnections, list[tuple[str, str]]]
) -> None:
    connections, _ = pool
    endpoint = await endpoint_for(sshd, client_key)
    runner = SshStepRunner(connections)
    outputs = []
    for ticket in ("ticket-1", "ticket-2"):
        collected = Collected()
        exit_code = await runner.run_action(endpoint, ticket, SCRIPT_ACTION, collected)
        results, lines = collected.results()
        assert exit_code == 0, lines
        outputs.append(results.output_variables)
        assert "secret: ********" in lines
        assert any(line.endswith("tty: not a tty") for line in lines), lines
        assert not any(SECRET in line for line in lines)
    assert outputs == [{"Where": "ssh"}, {"Where": "ssh"}]
    version, bundle = runner_bundle()
    pushed = Path(connections.settings.remote_base) / "runner" / version / "runner.pyz"
    assert pushed.read_bytes() == bundle
    assert connections.runner_uploads == 1
    work = Path(connections.settings.remote_base) / "work"
    assert not list(work.glob("*/action.json")), "the runner consumed the action files"


async def test_concurrent_steps_share_one_connection_within_the_limit(
    sshd: Sshd, client_key: asyncssh.SSHKey, pool: tuple[SshConnections, list[tuple[str, str]]]
) -> None:
    connections, _ = pool
    endpoint = await endpoint_for(sshd, client_key)
    runner = SshStepRunner(connections)
    action = {**SCRIPT_ACTION, "script_body": "sleep 0.2; echo done"}
    codes = await asyncio.gather(
        *(runner.run_action(endpoint, f"par-{n}", action, Collected()) for n in range(5))
    )
    assert codes == [0] * 5
    assert connections.peak_sessions == 2
    assert len(connections._connections) == 1
    assert 1 <= connections.runner_uploads <= 2, "first steps may both push; none fails"
    version, _ = runner_bundle()
    directory = Path(connections.settings.remote_base) / "runner" / version
    assert [p.name for p in directory.iterdir()] == ["runner.pyz"]


async def test_a_changed_host_key_refuses_the_connection_and_is_audited(
    sshd: Sshd, client_key: asyncssh.SSHKey, pool: tuple[SshConnections, list[tuple[str, str]]]
) -> None:
    connections, audit = pool
    endpoint = await endpoint_for(sshd, client_key)
    runner = SshStepRunner(connections)
    assert (await runner.health(endpoint)).healthy
    await connections.aclose()
    await sshd.restart_with_new_host_key()
    with pytest.raises(HostKeyChanged) as refused:
        await runner.run_action(endpoint, "after-change", SCRIPT_ACTION, Collected())
    new_key = await capture_host_key("127.0.0.1", sshd.port)
    assert fingerprint(new_key) in str(refused.value)
    assert fingerprint(endpoint.host_key) in str(refused.value)
    assert "capture the host key again" in str(refused.value)
    assert audit == [("web-01", new_key)]
    health = await runner.health(endpoint)
    assert not health.healthy and "different host key" in health.message


async def test_health_reports_python_and_refused_accounts(
    sshd: Sshd, client_key: asyncssh.SSHKey, pool: tuple[SshConnections, list[tuple[str, str]]]
) -> None:
    connections, _ = pool
    endpoint = await endpoint_for(sshd, client_key)
    health = await SshStepRunner(connections).health(endpoint)
    assert health.healthy and health.python_version is not None
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    refused = SshEndpoint(
        "web-02",
        "127.0.0.1",
        sshd.port,
        SshAccount(getpass.getuser(), private_key=stranger),
        endpoint.host_key,
    )
    health = await SshStepRunner(connections).health(refused)
    assert not health.healthy and "was refused" in health.message
    with pytest.raises(SshUnavailable, match="cannot read the host key"):
        await capture_host_key("127.0.0.1", free_port(), timeout=5)


class _PasswordServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "deployer" and password == SECRET


async def _shell(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run the exec request through the local shell: stdin in, its output back."""
    local = await asyncio.create_subprocess_shell(
        process.command or "true",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def copy(source: asyncio.StreamReader, target: asyncssh.SSHWriter[bytes]) -> None:
        while chunk := await source.read(65536):
            target.write(chunk)

    async def feed(source: asyncssh.SSHReader[bytes], target: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # the command did not read it all
            while chunk := await source.read(65536):
                target.write(chunk)
                await target.drain()
        target.close()

    assert local.stdin is not None and local.stdout is not None and local.stderr is not None
    await asyncio.gather(
        feed(process.stdin, local.stdin),
        copy(local.stdout, process.stdout),
        copy(local.stderr, process.stderr),
    )
    process.exit(await local.wait())


@pytest.fixture
async def asyncssh_server() -> AsyncIterator[tuple[int, str]]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    port = free_port()
    server = await asyncssh.create_server(
        _PasswordServer,
        "127.0.0.1",
        port,
        server_host_keys=[host_key],
        process_factory=_shell,
        sftp_factory=True,
        encoding=None,
    )
    yield port, host_key.export_public_key("openssh").decode().strip()
    server.close()
    await server.wait_closed()


async def test_a_password_account_on_an_asyncssh_server(
    asyncssh_server: tuple[int, str], pool: tuple[SshConnections, list[tuple[str, str]]]
) -> None:
    port, expected_key = asyncssh_server
    connections, _ = pool
    pinned = await capture_host_key("127.0.0.1", port)
    assert pinned == expected_key
    endpoint = SshEndpoint(
        "app-01", "127.0.0.1", port, SshAccount("deployer", password=SECRET), pinned
    )
    collected = Collected()
    exit_code = await SshStepRunner(connections).run_action(
        endpoint,
        "pw-1",
        {**SCRIPT_ACTION, "script_body": "fail_step 'stopped on purpose'"},
        collected,
    )
    _, lines = collected.results()
    assert exit_code == 1
    assert lines == ["stopped on purpose", "Step results: 0 output variable(s), 0 artifact(s)."]
    wrong = SshEndpoint(
        "app-01", "127.0.0.1", port, SshAccount("deployer", password="nope"), pinned
    )
    with pytest.raises(SshUnavailable, match="deployer was refused"):
        await SshStepRunner(connections).run_action(wrong, "pw-2", SCRIPT_ACTION, Collected())


def test_accounts_are_sealed_and_bound_to_their_machine() -> None:
    cipher = AccountCipher.from_setting(base64.b64encode(os.urandom(32)).decode())
    account = SshAccount("deployer", password=SECRET)
    sealed = cipher.seal(account, context="machine-1")
    assert SECRET.encode() not in sealed and b"deployer" not in sealed
    assert cipher.open(sealed, context="machine-1") == account
    assert SECRET not in repr(account)
    with pytest.raises(AccountUnreadable):
        cipher.open(sealed, context="machine-2")
    other = AccountCipher(os.urandom(32))
    with pytest.raises(AccountUnreadable):
        other.open(sealed, context="machine-1")
    with pytest.raises(ValueError, match="either a password or a private key"):
        SshAccount("deployer")


def test_host_key_checking_is_never_disabled_anywhere_in_the_repository() -> None:
    """Passing None as asyncssh's known_hosts turns its host-key check off: never allowed."""
    root = Path(__file__).resolve().parents[3]
    needle = "known_hosts" + "=None"
    offenders = []
    for path in root.rglob("*.py"):
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        text = path.read_text("utf-8", errors="replace").replace(" ", "")
        if needle in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


async def test_a_package_is_deployed_over_ssh_from_dispatch_to_step_finished(
    sshd: Sshd,
    client_key: asyncssh.SSHKey,
    pool: tuple[SshConnections, list[tuple[str, str]]],
    package_server: tuple[str, Path],
) -> None:
    connections, _ = pool
    endpoint = await endpoint_for(sshd, client_key)
    base_url, root = package_server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appsettings.json", json.dumps({"Db": {"Password": "old"}}))
        archive.writestr(
            "Deploy.sh",
            'echo "deploying as $(whoami)"\ncp appsettings.json report.json\n'
            "new_cephaloartifact report.json\nset_cephalovariable Deployed yes\n",
        )
    data = buffer.getvalue()
    (root / "shop.zip").write_bytes(data)
    dispatch = StepDispatchV1(
        ticket="ssh-deploy-1",
        task_id="task-1",
        step_run_id="step-1",
        machine_id="machine-1",
        script_body="",
        action_type="cephalo.deploy-package",
        action_properties={"Octopus.Action.Package.JsonConfigurationVariablesTargets": "*.json"},
        packages=[
            PackageAcquisitionV1(
                package_id="Shop",
                version="1.2.3",
                url=f"{base_url}/shop.zip",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        ],
        variables={"Octopus.Environment.Name": "Staging", "Db:Password": SECRET},
        sensitive_variables=["Db:Password"],
    )
    published: list[ProcessOutput] = []

    async def publish(lines: list[ProcessOutput]) -> None:
        published.extend(lines)

    runner = SshStepRunner(connections)
    kept: list[tuple[int, str, bytes]] = []

    async def keep(index: int, path: str, artifact: ArtifactV1) -> ArtifactV1:
        kept.append((index, path, await runner.fetch(endpoint, path, 1024)))
        return artifact.model_copy(update={"object_name": f"kept/{index}"})

    # Lines reach `publish` (and the results) only at the end: artifacts are kept after that.
    finished = await run_ssh_step(
        runner, endpoint, dispatch, publish, flush_seconds=3600, keep=keep
    )
    texts = [line.text for line in published]
    assert (finished.exit_code, finished.error) == (0, None), texts
    folder = Path(connections.settings.remote_base) / "apps" / "Staging" / "Shop" / "1.2.3"
    assert json.loads((folder / "appsettings.json").read_text()) == {"Db": {"Password": SECRET}}
    assert f"deploying as {getpass.getuser()}" in texts
    assert not any(SECRET in text or "##cephalo" in text for text in texts)
    assert [line.sequence for line in published] == list(range(1, len(published) + 1))
    assert finished.last_log_sequence == len(published)
    assert finished.output_variables["Deployed"] == "yes"
    assert [a.name for a in finished.artifacts] == ["report.json"]
    assert finished.artifacts[0].object_name == "kept/0"
    snapshot = Path(connections.settings.remote_base) / "work" / "ssh-deploy-1" / "artifacts" / "0"
    assert kept == [(0, str(snapshot / "report.json"), (folder / "report.json").read_bytes())]
