"""The whole life of a real agent in both modes: register, trust, run, stream, cancel, complete.

Polling: the agent dials the gateway's WebSocket. Listening: the gateway dials the agent's
HTTPS port. The calling code is the same (`Transport.invoke`); so is every assertion here.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent_gateway.domain.files import FileTransferClient
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed
from cephalo_agent_gateway.events.contracts import STEP_CANCEL, StepCancelV1
from cephalo_agent_gateway.testing.harness import Orchestrator, Space, StepEvents, eventually
from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_common.messaging.envelope import new_envelope
from cephalo_common.security.tls import (
    CERT_FILE,
    KEY_FILE,
    client_context,
    thumbprint,
    write_identity,
)

MODES = ["polling", "listening"]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.mark.parametrize("mode", MODES)
async def test_register_trust_run_stream_and_complete(
    mode: str,
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    agent = await real_agents(served, space, mode=mode)
    config = agent.agent.config
    async with served.client() as http:
        machine = (await http.get(f"/api/v1/spaces/{space.id}/machines/{agent.machine_id}")).json()
    assert machine["mode"] == mode
    assert machine["thumbprint"] == thumbprint(agent.paths.certificate.read_bytes())
    assert config.server_thumbprint == served.gateway.identity.thumbprint
    assert (machine["uri"] is not None) is (mode == "listening")

    envelope = await orchestrator.dispatch(
        space,
        agent.machine_id,
        script_body='for i in 1 2 3 4 5; do echo "line $i $CEPHALO_VAR_GREETING"; done; exit 4',
        syntax=ScriptSyntax.BASH,
        variables={"Greeting": "hi"},
    )
    ticket = envelope.data["ticket"]
    finished = await events.wait_finished(ticket)

    assert (finished.exit_code, finished.error) == (4, None)
    assert events.lines(ticket) == [f"line {i} hi" for i in range(1, 6)]
    assert events.sequences(ticket) == [1, 2, 3, 4, 5]
    assert not (agent.paths.work / ticket).exists()  # complete_script cleaned up
    async with served.client() as http:
        run = (await http.get(f"/api/v1/spaces/{space.id}/script-runs/{ticket}")).json()
    assert (run["state"], run["outcome"], run["exit_code"]) == ("Complete", "Failed", 4)


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_kills_the_process_tree_and_reports_canceled(
    mode: str,
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    agent = await real_agents(served, space, mode=mode)
    pids = tmp_path / f"pids-{mode}"
    script = (
        f"sleep 300 & echo $! >> {pids}\n"
        f"bash -c 'sleep 300 & echo $! >> {pids}; wait' &\n"
        f"echo $$ >> {pids}\n"
        "echo started\n"
        "wait\n"
    )
    envelope = await orchestrator.dispatch(space, agent.machine_id, script_body=script)
    ticket = envelope.data["ticket"]
    await eventually(lambda: events.lines(ticket) == ["started"])
    await eventually(lambda: pids.exists() and len(pids.read_text().split()) == 3)
    started = [int(pid) for pid in pids.read_text().split()]
    assert all(alive(pid) for pid in started)

    async with served.client() as http:
        response = await http.post(f"/api/v1/spaces/{space.id}/script-runs/{ticket}/cancel")
        assert response.status_code == 202, response.text
        finished = await events.wait_finished(ticket)
        run = (await http.get(f"/api/v1/spaces/{space.id}/script-runs/{ticket}")).json()
        again = await http.post(f"/api/v1/spaces/{space.id}/script-runs/{ticket}/cancel")

    assert (finished.exit_code, finished.error) == (-1, "Canceled")
    assert (run["state"], run["outcome"], run["exit_code"]) == ("Complete", "Canceled", -1)
    assert again.status_code == 409
    await eventually(lambda: not any(alive(pid) for pid in started))
    assert events.lines(ticket)[-1] == "The script was cancelled."


async def test_a_cancel_command_before_the_machine_connects_never_starts_the_script(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    agent = await real_agents(served, space, start=False)
    envelope = await orchestrator.dispatch(space, agent.machine_id, script_body="echo ran")
    ticket = envelope.data["ticket"]
    cancel = new_envelope(
        source="cephalo://test-orchestrator",
        type=STEP_CANCEL.type,
        space=str(space.id),
        data=StepCancelV1(ticket=ticket, reason="user"),
    )
    await orchestrator.broker.publish(STEP_CANCEL.subject(str(space.id)), cancel)
    finished = await events.wait_finished(ticket)

    assert finished.exit_code is None
    assert finished.error == "Canceled before the script started"
    assert not (agent.paths.tickets / ticket).exists()


async def test_listening_agent_refuses_a_server_that_is_not_pinned(
    served: Any, space: Space, real_agents: Any, tmp_path: Path
) -> None:
    """The agent's TLS context trusts only the pinned server certificate."""
    agent = await real_agents(served, space, mode="listening")
    write_identity(tmp_path / "impostor", "cephalo-agent-gateway")
    context = client_context(
        tmp_path / "impostor" / CERT_FILE,
        tmp_path / "impostor" / KEY_FILE,
        agent.paths.certificate.read_text(),
    )
    port = agent.agent.listening.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(b"POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
        data = await asyncio.wait_for(reader.read(100), 5)
        if not data:
            raise ConnectionResetError("closed without an answer")
    writer.close()
    assert os.path.exists(agent.paths.config)


@pytest.mark.parametrize("mode", MODES)
async def test_files_go_up_and_down_as_streams(
    mode: str, served: Any, space: Space, real_agents: Any, tmp_path: Path
) -> None:
    agent = await real_agents(served, space, mode=mode)
    if mode == "polling":
        await eventually(
            lambda: served.gateway.connections.is_connected(uuid.UUID(agent.machine_id))
        )
    source = tmp_path / "package.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    client = FileTransferClient(served.gateway.transport, uuid.UUID(agent.machine_id))

    uploaded = await client.upload(source, "packages/app/1.0.0.bin")
    back = tmp_path / "back.bin"
    downloaded = await client.download("packages/app/1.0.0.bin", back)

    assert (agent.paths.files / "packages/app/1.0.0.bin").read_bytes() == source.read_bytes()
    assert back.read_bytes() == source.read_bytes()
    assert uploaded.sha256 == downloaded.sha256 and downloaded.size == source.stat().st_size
    with pytest.raises(RemoteCallFailed, match="InvalidPath"):
        await client.upload(source, "../../etc/evil")
