"""The `python -m cephalo_agent` command line, including `run` as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from cephalo_agent.cli import main
from cephalo_agent.config import AgentConfig, AgentPaths, save_config
from cephalo_agent.scripts import ADOPTED_MESSAGE, EXIT_CANCELLED, ScriptService, ScriptSettings
from cephalo_common.agent_protocol import (
    POLLING_PATH,
    ProcessState,
    ResponseMessage,
    ScriptTicketRequest,
    StartScriptCommand,
)
from cephalo_common.security.tls import (
    CERT_FILE,
    KEY_FILE,
    server_context,
    thumbprint,
    write_identity,
)


def agent_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "cephalo_agent", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "CEPHALO_API_KEY": ""},
    )


def in_process(
    capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str
) -> tuple[int, str, str]:
    """`main()` in this process (a second of interpreter start-up saved per call)."""
    code = main(["--data-dir", str(data_dir), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_module_entry_point_creates_and_shows_the_certificate(tmp_path: Path) -> None:
    home = tmp_path / "home"

    created = agent_cli(home, "new-certificate")

    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == thumbprint((home / CERT_FILE).read_text())
    assert (home / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_new_certificate_is_idempotent_and_force_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"

    first = in_process(capsys, home, "new-certificate")
    again = in_process(capsys, home, "new-certificate")
    shown = in_process(capsys, home, "show-thumbprint")
    replaced = in_process(capsys, home, "new-certificate", "--force")

    assert [first[0], again[0], shown[0], replaced[0]] == [0, 0, 0, 0]
    assert first[1] == again[1] == shown[1]
    assert "already exists" in again[2]
    assert replaced[1] != first[1] and len(first[1].strip()) == 64


def test_configure_trust_then_status_prints_the_pin_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"

    configured = in_process(capsys, home, "configure", "--trust", "ab" * 32)
    bad = in_process(capsys, home, "configure", "--trust", "not-a-thumbprint")
    code, out, _ = in_process(capsys, home, "status")

    assert configured[0] == 0 and bad[0] == 2 and code == 0
    assert json.loads(out)["server_thumbprint"] == "AB" * 32
    assert json.loads(out)["machine_id"] is None


def test_register_refuses_inconsistent_listening_and_worker_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    server = ("register", "--server", "http://127.0.0.1:9")
    port_without_mode = in_process(capsys, home, *server, "--listen-port", "10933")
    bad_url = in_process(
        capsys, home, *server, "--mode", "listening", "--listen-url", "http://host:10933"
    )
    both = in_process(capsys, home, *server, "--worker-pool", "P", "--environment", "E")

    assert port_without_mode[0] == 2 and "--mode listening" in port_without_mode[2]
    assert bad_url[0] == 2 and "https://host:10933" in bad_url[2]
    assert both[0] == 2 and "worker pools, not environments" in both[2]


def test_run_without_registration_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = in_process(capsys, tmp_path / "home", "run")

    assert code == 1
    assert "not registered" in err


@asynccontextmanager
async def registered_agent_home(tmp_path: Path, handler: Any) -> AsyncIterator[Path]:
    """A data directory registered with a live stand-in gateway."""
    server_dir, home = tmp_path / "server", tmp_path / "home"
    write_identity(server_dir, "server")
    write_identity(home, "agent")
    server_pem = (server_dir / CERT_FILE).read_text()
    context = server_context(
        server_dir / CERT_FILE, server_dir / KEY_FILE, [(home / CERT_FILE).read_text()]
    )
    async with serve(handler, "127.0.0.1", 0, ssl=context) as listener:
        port = listener.sockets[0].getsockname()[1]
        paths = AgentPaths(home)
        paths.server_certificate.write_text(server_pem)
        save_config(
            paths,
            AgentConfig(
                server_url="http://127.0.0.1:1",
                space="default",
                machine_id="Machines-1",
                machine_name="web-01",
                server_thumbprint=thumbprint(server_pem),
                mode="polling",
                polling_endpoint=f"wss://127.0.0.1:{port}{POLLING_PATH}",
            ),
        )
        yield home


async def start_agent(home: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cephalo_agent",
        "--data-dir",
        str(home),
        "run",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def rpc(ws: ServerConnection, method: str, **params: Any) -> ResponseMessage:
    service = "CapabilitiesService" if method == "get_capabilities" else "ScriptService"
    await ws.send(
        json.dumps({"id": method, "service": service, "method": method, "params": params})
    )
    return ResponseMessage.model_validate_json(await ws.recv())


async def test_run_serves_the_gateway_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    answered = asyncio.Event()

    async def gateway(ws: ServerConnection) -> None:
        if (await rpc(ws, "get_capabilities")).error is None:
            answered.set()
        await ws.wait_closed()

    async with registered_agent_home(tmp_path, gateway) as home:
        agent = await start_agent(home)
        try:
            await asyncio.wait_for(answered.wait(), 10)
            agent.send_signal(signal.SIGTERM)
            await asyncio.wait_for(agent.wait(), 5)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
        assert agent.stderr is not None
        stderr = (await agent.stderr.read()).decode()

    assert agent.returncode == 0, stderr
    assert "connected to wss://127.0.0.1" in stderr
    assert "agent stopped" in stderr


async def test_killed_agent_answers_from_its_journal_and_never_reruns_the_script(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "runs.txt"
    script = f"echo run >> {marker}; echo begun; sleep 30"
    command = StartScriptCommand(ticket="kill-1", script_body=script)
    connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def gateway(ws: ServerConnection) -> None:
        await connections.put(ws)
        await ws.wait_closed()

    async with registered_agent_home(tmp_path, gateway) as home:
        agent = await start_agent(home)
        try:
            ws = await asyncio.wait_for(connections.get(), 10)
            started = await rpc(ws, "start_script", **command.model_dump(mode="json"))
            assert started.error is None, started.error
            async with asyncio.timeout(5):
                while not marker.exists():
                    await asyncio.sleep(0.05)
        finally:
            agent.kill()  # SIGKILL: no chance to tidy up
            await agent.wait()

    # The next agent process, in this one to save a start-up: same data directory.
    restarted = ScriptService.for_paths(AgentPaths(home), ScriptSettings(orphan_poll_seconds=0.05))
    try:
        recovered = await restarted.recover()
        again = await restarted.start_script(command)
        cancelled = await restarted.cancel_script(ScriptTicketRequest(ticket="kill-1"))
    finally:
        await restarted.aclose()

    assert recovered == ["kill-1"]
    assert again.state is ProcessState.RUNNING
    assert again.logs[-1].text == ADOPTED_MESSAGE
    assert cancelled.exit_code == EXIT_CANCELLED
    assert marker.read_text().splitlines() == ["run"]
