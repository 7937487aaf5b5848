"""Polling over real mutual TLS: the agent serves a pinned server, and only that server."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from cephalo_agent.polling import (
    UNTRUSTED_SERVER,
    PollingClient,
    PollingSettings,
    UntrustedServer,
    backoff_delay,
    describe_failure,
)
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    POLLING_PATH,
    ProcessState,
    ResponseMessage,
    ScriptStatusResponse,
)
from cephalo_common.security.tls import (
    CERT_FILE,
    KEY_FILE,
    server_context,
    thumbprint,
    write_identity,
)

FAST = PollingSettings(
    initial_backoff_seconds=0.05, max_backoff_seconds=0.2, open_timeout_seconds=2
)


@dataclass
class Identity:
    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def pem(self) -> str:
        return self.cert.read_text()

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.pem)


@pytest.fixture
def identities(tmp_path: Path) -> dict[str, Identity]:
    made = {}
    for name in ("server", "agent", "stranger"):
        write_identity(tmp_path / name, name)
        made[name] = Identity(tmp_path / name)
    return made


Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def gateway(
    server: Identity, trusted_agents: list[str], handler: Handler
) -> AsyncIterator[str]:
    """A stand-in for agent-gateway's polling listener; yields its wss:// endpoint."""
    context = server_context(server.cert, server.key, trusted_agents)
    async with serve(handler, "127.0.0.1", 0, ssl=context) as listener:
        port = listener.sockets[0].getsockname()[1]
        yield f"wss://127.0.0.1:{port}{POLLING_PATH}"


def client(
    endpoint: str, agent: Identity, pinned: Identity, scripts: ScriptService, **overrides: Any
) -> PollingClient:
    options: dict[str, Any] = {
        "certificate": agent.cert,
        "private_key": agent.key,
        "server_certificate_pem": pinned.pem,
        "server_thumbprint": pinned.thumbprint,
        "service": AgentService(scripts),
        "settings": FAST,
    }
    options.update(overrides)
    return PollingClient(endpoint, **options)


async def rpc(
    ws: ServerConnection, request_id: str, service: str, method: str, **params: Any
) -> ResponseMessage:
    await ws.send(
        json.dumps({"id": request_id, "service": service, "method": method, "params": params})
    )
    return ResponseMessage.model_validate_json(await ws.recv())


async def test_polling_agent_answers_requests_over_mutual_tls(
    identities: dict[str, Identity], scripts: ScriptService
) -> None:
    results: asyncio.Future[list[ResponseMessage]] = asyncio.get_running_loop().create_future()

    async def server_side(ws: ServerConnection) -> None:
        caps = await rpc(ws, "1", "CapabilitiesService", "get_capabilities")
        start = await rpc(
            ws,
            "2",
            "ScriptService",
            "start_script",
            ticket="poll-1",
            script_body="echo over the wire",
        )
        status = start
        while ScriptStatusResponse.model_validate(status.result).state is not ProcessState.COMPLETE:
            status = await rpc(ws, "3", "ScriptService", "get_status", ticket="poll-1")
        unknown = await rpc(ws, "4", "ScriptService", "format_disk")
        results.set_result([caps, start, status, unknown])

    agent, server = identities["agent"], identities["server"]
    async with gateway(server, [agent.pem], server_side) as endpoint:
        polling = client(endpoint, agent, server, scripts)
        task = asyncio.create_task(polling.run_forever())
        try:
            caps, start, status, unknown = await asyncio.wait_for(results, 4)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await polling.aclose()

    assert caps.id == "1" and caps.result is not None
    assert caps.result["contract_versions"][0] == CONTRACT_VERSION
    assert start.id == "2" and start.error is None
    final = ScriptStatusResponse.model_validate(status.result)
    assert final.exit_code == 0
    assert "over the wire" in [line.text for line in final.logs]
    assert unknown.error is not None and unknown.error.type == "UnknownMethod"


async def test_agent_pinned_to_another_server_certificate_cannot_connect(
    identities: dict[str, Identity], scripts: ScriptService, caplog: pytest.LogCaptureFixture
) -> None:
    reached: list[ServerConnection] = []

    async def server_side(ws: ServerConnection) -> None:
        reached.append(ws)

    agent, server, stranger = identities["agent"], identities["server"], identities["stranger"]
    async with gateway(server, [agent.pem], server_side) as endpoint:
        polling = client(endpoint, agent, stranger, scripts)
        with pytest.raises(ssl.SSLCertVerificationError):
            await polling.run_once()

        caplog.set_level(logging.WARNING, logger="cephalo_agent.polling")
        task = asyncio.create_task(polling.run_forever())
        await asyncio.sleep(0.4)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    retries = [r for r in caplog.records if UNTRUSTED_SERVER in r.getMessage()]
    assert len(retries) >= 2  # logged clearly, and retried with back-off rather than given up
    assert all("reconnecting" in r.getMessage() for r in retries)
    assert reached == []


async def test_agent_closes_a_connection_whose_thumbprint_is_not_the_pinned_one(
    identities: dict[str, Identity], scripts: ScriptService
) -> None:
    agent, server, stranger = identities["agent"], identities["server"], identities["stranger"]

    async def server_side(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with gateway(server, [agent.pem], server_side) as endpoint:
        # The TLS trust store holds the right certificate, but config pins another thumbprint.
        polling = client(endpoint, agent, server, scripts, server_thumbprint=stranger.thumbprint)
        with pytest.raises(UntrustedServer, match=UNTRUSTED_SERVER):
            await polling.run_once()


async def test_server_that_does_not_trust_the_agent_certificate_rejects_it(
    identities: dict[str, Identity], scripts: ScriptService
) -> None:
    reached: list[ServerConnection] = []

    async def server_side(ws: ServerConnection) -> None:
        reached.append(ws)

    agent, server, stranger = identities["agent"], identities["server"], identities["stranger"]
    async with gateway(server, [stranger.pem], server_side) as endpoint:
        polling = client(endpoint, agent, server, scripts)
        with pytest.raises(Exception) as failure:
            await polling.run_once()

    reason, _ = describe_failure(failure.value, agent.thumbprint)
    assert f"does the server trust this agent's certificate {agent.thumbprint}" in reason
    assert reached == []


async def test_agent_keeps_retrying_until_the_server_comes_up(
    identities: dict[str, Identity], scripts: ScriptService
) -> None:
    agent, server = identities["agent"], identities["server"]
    connected = asyncio.Event()

    async def server_side(ws: ServerConnection) -> None:
        response = await rpc(ws, "1", "CapabilitiesService", "get_capabilities")
        if response.error is None:
            connected.set()
        await ws.wait_closed()

    async with gateway(server, [agent.pem], server_side) as endpoint:
        pass  # now nothing listens on that port
    polling = client(endpoint, agent, server, scripts)
    task = asyncio.create_task(polling.run_forever())
    try:
        await asyncio.sleep(0.3)  # a few refused attempts
        port = int(endpoint.rsplit(":", 1)[1].split("/")[0])
        context = server_context(server.cert, server.key, [agent.pem])
        async with serve(server_side, "127.0.0.1", port, ssl=context):
            await asyncio.wait_for(connected.wait(), 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await polling.aclose()


def test_backoff_doubles_from_half_a_second_to_thirty_seconds_with_jitter() -> None:
    settings = PollingSettings()

    delays = [backoff_delay(attempt, settings) for attempt in range(12)]

    bases = [min(30.0, 0.5 * 2**attempt) for attempt in range(12)]
    assert all(base <= delay <= base * 1.25 for base, delay in zip(bases, delays, strict=True))
    assert bases[-1] == 30.0
