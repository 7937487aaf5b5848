"""Pinned mutual TLS under attack: unknown, impostor and old-protocol peers are refused.

An unknown agent certificate is refused and, when the agent asks, listed as a pending
registration that an operator can approve; an agent with the same subject but another key
is refused; TLS 1.1 is refused on both listening ports; one certificate cannot hold more
than its share of connections.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage

from cephalo_agent.runner import build_agent
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    eventually,
    unique,
)
from cephalo_common.security.tls import (
    CERT_FILE,
    KEY_FILE,
    client_context,
    thumbprint,
    write_identity,
)


def pending_url(space: Space) -> str:
    return f"/api/v1/spaces/{space.id}/machines/pending"


async def test_an_unknown_agent_is_refused_and_listed_for_approval_then_approved(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    """The agent replaced its certificate: TLS refuses it, it asks, an operator approves."""
    agent = await real_agents(served, space, start=False)
    for name in (CERT_FILE, KEY_FILE):
        (agent.paths.root / name).unlink()
    write_identity(agent.paths.root, "cephalo-agent")
    agent.agent = build_agent(agent.paths, agent.agent_settings)
    new_thumbprint = thumbprint(agent.paths.certificate.read_bytes())
    agent.task = asyncio.create_task(agent.agent.serve())

    async with served.client() as http:

        async def listed() -> list[dict[str, Any]]:
            pending: list[dict[str, Any]] = (await http.get(pending_url(space))).json()
            return [p for p in pending if p["thumbprint"] == new_thumbprint]

        (pending,) = await eventually(listed)
        assert not agent.agent.polling.connected.is_set()
        assert pending["name"] == agent.agent.config.machine_name
        assert (pending["kind"], pending["mode"]) == ("target", "polling")
        approved = await http.post(
            f"{pending_url(space)}/{pending['id']}/approve",
            json={"name": unique("approved"), "environments": ["Production"], "roles": ["web"]},
        )
        assert approved.status_code == 201, approved.text
        machine = approved.json()
        assert machine["thumbprint"] == new_thumbprint
        assert await listed() == []
    await asyncio.wait_for(agent.agent.polling.connected.wait(), 20)

    envelope = await orchestrator.dispatch(space, machine["id"], script_body="echo approved")
    finished = await events.wait_finished(envelope.data["ticket"])
    assert (finished.exit_code, events.lines(envelope.data["ticket"])) == (0, ["approved"])


async def test_pending_registrations_are_bounded_and_validated(
    gateway: RunningGateway, space: Space, agent: FakeAgent, tmp_path: Path
) -> None:
    url = pending_url(space)
    body = {"name": "stranger", "certificate_pem": agent.certificate_pem}
    first = await gateway.client.post(url, json=body)
    again = await gateway.client.post(url, json=body)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["attempts"] == 2

    bad = [
        {**body, "certificate_pem": "nope"},
        {**body, "mode": "listening"},
        {**body, "mode": "listening", "listening_url": "http://host:10933"},
        {**body, "kind": "robot"},
        {**body, "extra": 1},
    ]
    for case in bad:
        response = await gateway.client.post(url, json=case)
        assert response.status_code == 422, (case, response.text)

    pending_id = first.json()["id"]
    other_space = f"/api/v1/spaces/{uuid.uuid4()}/machines/pending/{pending_id}"
    assert (await gateway.client.get(other_space)).status_code == 404
    assert (await gateway.client.post(f"{other_space}/approve", json={})).status_code == 404
    unknown_env = await gateway.client.post(
        f"{url}/{pending_id}/approve", json={"environments": ["Nowhere"]}
    )
    assert unknown_env.status_code == 422
    no_env = await gateway.client.post(f"{url}/{pending_id}/approve", json={})
    assert no_env.status_code == 422
    assert (await gateway.client.delete(f"{url}/{pending_id}")).status_code == 204
    assert (await gateway.client.delete(f"{url}/{pending_id}")).status_code == 404

    registered = await gateway.register(agent, space)
    known = await gateway.client.post(url, json=body)
    assert (known.status_code, known.json()) == (200, None)
    assert registered["thumbprint"] == agent.thumbprint

    gateway.gateway.settings.max_pending_registrations_per_space = 2
    for n in range(3):
        stranger = FakeAgent(tmp_path / f"stranger-{n}")
        response = await gateway.client.post(
            url, json={"name": f"stranger-{n}", "certificate_pem": stranger.certificate_pem}
        )
        assert response.status_code == 202
    kept = (await gateway.client.get(url)).json()
    assert [p["name"] for p in kept] == ["stranger-2", "stranger-1"]


async def test_same_subject_with_another_key_is_refused_by_the_polling_port(
    gateway: RunningGateway, space: Space, agent: FakeAgent, tmp_path: Path
) -> None:
    await gateway.register(agent, space)
    twin = FakeAgent(tmp_path / "twin")  # same subject CN=fake-agent, another key
    assert twin.thumbprint != agent.thumbprint
    with pytest.raises((ssl.SSLError, ConnectionError, ConnectionClosed, InvalidMessage)):
        websocket = await twin.open(gateway.endpoint, gateway.server_pem)
        await websocket.recv()
    registered = await agent.open(gateway.endpoint, gateway.server_pem)
    await registered.close()


async def test_a_listening_agent_with_another_key_is_refused_without_retry(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    """Same address, same subject, another key: the gateway refuses it and does not retry."""
    agent = await real_agents(served, space, mode="listening")
    await agent.stop()
    for name in (CERT_FILE, KEY_FILE):
        (agent.paths.root / name).unlink()
    write_identity(agent.paths.root, "cephalo-agent")
    agent.agent = build_agent(agent.paths, agent.agent_settings)
    await agent.start()

    envelope = await orchestrator.dispatch(space, agent.machine_id, script_body="echo nope")
    finished = await events.wait_finished(envelope.data["ticket"])

    assert finished.exit_code is None
    assert finished.error is not None
    assert "not its registered one" in finished.error
    assert not agent.agent.scripts.active_tickets()
    assert not (agent.paths.tickets / envelope.data["ticket"]).exists()


def tls11_context(cert_dir: Path, trusted_pem: str | None = None) -> ssl.SSLContext:
    """A client that offers only TLS 1.1 (OpenSSL's security level lowered so it can)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.load_cert_chain(str(cert_dir / CERT_FILE), str(cert_dir / KEY_FILE))
    return context


async def tls11_server(tmp_path: Path) -> tuple[asyncio.Server, int]:
    """A deliberately permissive server: proves the TLS 1.1 client really can connect."""
    write_identity(tmp_path / "old", "old-server")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.load_cert_chain(str(tmp_path / "old" / CERT_FILE), str(tmp_path / "old" / KEY_FILE))

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


async def test_tls_1_1_is_refused_on_both_listening_ports(
    served: Any, space: Space, real_agents: Any, tmp_path: Path
) -> None:
    agent = await real_agents(served, space, mode="listening")
    context = tls11_context(agent.paths.root)
    control, control_port = await tls11_server(tmp_path)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", control_port, ssl=context)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()
    finally:
        control.close()

    polling_port = served.settings.polling_port
    listening_port = agent.agent.listening.port
    for port in (polling_port, listening_port):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.open_connection("127.0.0.1", port, ssl=context)


async def test_one_certificate_cannot_hold_more_connections_than_the_cap(
    gateway_settings: Any, space: Space, agent: FakeAgent, serve_another_gateway: Any
) -> None:
    cap = 3
    async with serve_another_gateway(polling_max_connections_per_thumbprint=cap) as served:
        async with served.client() as http:
            response = await http.post(
                f"/api/v1/spaces/{space.id}/machines/register",
                json={
                    "name": unique("capped"),
                    "certificate_pem": agent.certificate_pem,
                    "environments": ["Production"],
                },
            )
            assert response.status_code == 201, response.text
        context = client_context(
            agent.directory / CERT_FILE,
            agent.directory / KEY_FILE,
            served.gateway.identity.certificate_pem,
        )
        port = served.settings.polling_port
        guard = served.gateway.listener.guard
        held = []
        for _ in range(cap):
            held.append(await asyncio.open_connection("127.0.0.1", port, ssl=context))
        await eventually(lambda: guard.open.get(agent.thumbprint) == cap)

        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        with pytest.raises((ConnectionError, ssl.SSLError)):
            if not await asyncio.wait_for(reader.read(1), 5):
                raise ConnectionResetError("closed by the gateway")
        writer.close()
        assert guard.refused >= 1
        assert guard.open.get(agent.thumbprint) == cap
        for _, open_writer in held:
            assert not open_writer.is_closing()

        _, first = held.pop()
        first.close()
        await eventually(lambda: guard.open.get(agent.thumbprint) == cap - 1)
        held.append(await asyncio.open_connection("127.0.0.1", port, ssl=context))
        await eventually(lambda: guard.open.get(agent.thumbprint) == cap)
        for _, open_writer in held:
            open_writer.close()


async def test_the_gateway_trusts_registered_certificates_and_no_public_ca(
    gateway: RunningGateway, space: Space, agent: FakeAgent, tmp_path: Path
) -> None:
    identity = gateway.gateway.identity
    listener = gateway.gateway.listener
    before = listener.context.cert_store_stats()["x509"]
    await gateway.register(agent, space)
    assert listener.context.cert_store_stats()["x509"] == before + 1
    dial = client_context(identity.cert_file, identity.key_file, agent.certificate_pem)
    assert dial.cert_store_stats()["x509"] == 1
