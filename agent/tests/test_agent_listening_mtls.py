"""Listening mode over real mutual TLS: the agent serves its pinned server, and only it.

Also file transfer: streams beside the RPC (`PUT|GET /streams/<id>`), checked by size and
SHA-256, stored atomically under `files/`, never outside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_agent.config import AgentPaths
from cephalo_agent.files import FileTransferService, StreamStore
from cephalo_agent.listening import ListeningServer, ListeningSettings
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import (
    FILE_TRANSFER_FEATURE,
    LISTENING_PATH,
    ProcessState,
    RequestMessage,
    ResponseMessage,
)
from cephalo_common.security.tls import (
    CERT_FILE,
    KEY_FILE,
    client_context,
    server_context,
    thumbprint,
    write_identity,
)


@dataclass
class Served:
    server: ListeningServer
    url: str
    server_dir: Path
    agent_pem: str
    paths: AgentPaths

    def client(self, identity: Path | None = None) -> httpx.AsyncClient:
        directory = identity or self.server_dir
        context = client_context(directory / CERT_FILE, directory / KEY_FILE, self.agent_pem)
        return httpx.AsyncClient(base_url=self.url, verify=context, timeout=10)


@pytest.fixture
async def listening(
    paths: AgentPaths, scripts: ScriptService, tmp_path: Path
) -> AsyncIterator[Served]:
    write_identity(paths.root, "cephalo-agent")
    server_dir = tmp_path / "server"
    write_identity(server_dir, "cephalo-agent-gateway")
    server_pem = (server_dir / CERT_FILE).read_text()
    streams = StreamStore(paths.streams)
    server = ListeningServer(
        "127.0.0.1",
        0,
        certificate=paths.certificate,
        private_key=paths.private_key,
        server_certificate_pem=server_pem,
        server_thumbprint=thumbprint(server_pem),
        service=AgentService(scripts, files=FileTransferService(paths.files, streams)),
        streams=streams,
        settings=ListeningSettings(max_connections=3, max_request_bytes=64 * 1024),
    )
    await server.start()
    yield Served(
        server,
        f"https://127.0.0.1:{server.port}",
        server_dir,
        paths.certificate.read_text(),
        paths,
    )
    await server.aclose()


async def rpc(
    http: httpx.AsyncClient, method: str, service: str = "ScriptService", **params: Any
) -> ResponseMessage:
    request = RequestMessage(id=str(uuid.uuid4()), service=service, method=method, params=params)
    response = await http.post(LISTENING_PATH, content=request.model_dump_json())
    assert response.status_code == 200, response.text
    return ResponseMessage.model_validate_json(response.content)


async def test_the_pinned_server_runs_a_script_over_https(listening: Served) -> None:
    async with listening.client() as http:
        caps = await rpc(http, "get_capabilities", service="CapabilitiesService")
        start = await rpc(http, "start_script", ticket="l-1", script_body="echo hi; exit 2")
        status = start
        while status.result is not None and status.result["state"] != ProcessState.COMPLETE:
            await asyncio.sleep(0.02)
            status = await rpc(http, "get_status", ticket="l-1")
        hello = await http.get("/")
        missing = await http.get("/elsewhere")
        too_big = await http.post(LISTENING_PATH, content=b"x" * (65 * 1024))
    assert caps.result is not None and FILE_TRANSFER_FEATURE in caps.result["contract_versions"]
    assert status.result is not None and status.result["exit_code"] == 2
    assert [line["text"] for line in status.result["logs"]] == ["hi"]
    assert hello.status_code == 200 and "Cephalo agent" in hello.text
    assert (missing.status_code, too_big.status_code) == (404, 413)


async def test_a_server_that_is_not_pinned_is_refused(listening: Served, tmp_path: Path) -> None:
    write_identity(tmp_path / "impostor", "cephalo-agent-gateway")
    async with listening.client(tmp_path / "impostor") as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/")


async def test_the_connection_cap_holds(listening: Served) -> None:
    context = client_context(
        listening.server_dir / CERT_FILE, listening.server_dir / KEY_FILE, listening.agent_pem
    )
    port = listening.server.port
    held = [await asyncio.open_connection("127.0.0.1", port, ssl=context) for _ in range(3)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    with pytest.raises((ConnectionError, ssl.SSLError)):
        if not await asyncio.wait_for(reader.read(1), 5):
            raise ConnectionResetError("closed")
    assert listening.server.refused_connections == 1
    assert listening.server.open_connections == 3
    for _, open_writer in held:
        open_writer.close()
    writer.close()


async def test_files_travel_as_verified_streams_and_stay_inside_files(listening: Served) -> None:
    content = b"package bytes\n" * 10_000
    digest = hashlib.sha256(content).hexdigest()
    stream_id = uuid.uuid4().hex
    stream = {"id": stream_id, "size": len(content), "sha256": digest}
    async with listening.client() as http:
        put = await http.put(f"/streams/{stream_id}", content=content)
        uploaded = await rpc(
            http, "upload_file", service="FileTransferService", path="pkg/app.tar", stream=stream
        )
        replay = await rpc(
            http, "upload_file", service="FileTransferService", path="pkg/b.tar", stream=stream
        )
        escape = await rpc(
            http, "upload_file", service="FileTransferService", path="../evil", stream=stream
        )
        download = await rpc(
            http, "download_file", service="FileTransferService", path="pkg/app.tar"
        )
        assert download.result is not None
        fetched = await http.get(f"/streams/{download.result['stream']['id']}")
        again = await http.get(f"/streams/{download.result['stream']['id']}")
        wrong_id = uuid.uuid4().hex
        await http.put(f"/streams/{wrong_id}", content=b"short")
        mismatch = await rpc(
            http,
            "upload_file",
            service="FileTransferService",
            path="x",
            stream={**stream, "id": wrong_id},
        )
        missing = await rpc(http, "download_file", service="FileTransferService", path="nope")

    assert put.status_code == 204 and uploaded.error is None
    assert (listening.paths.files / "pkg" / "app.tar").read_bytes() == content
    assert replay.error is not None and replay.error.type == "StreamMismatch"
    assert escape.error is not None and escape.error.type == "InvalidPath"
    assert download.result["sha256"] == digest and fetched.content == content
    assert again.status_code == 404
    assert mismatch.error is not None and mismatch.error.type == "StreamMismatch"
    assert missing.error is not None and missing.error.type == "FileNotFoundError"
    assert not list(listening.paths.streams.glob("*.partial"))


def test_pinned_contexts_trust_the_pinned_certificate_and_no_public_ca(tmp_path: Path) -> None:
    write_identity(tmp_path / "me", "me")
    write_identity(tmp_path / "peer", "peer")
    peer = (tmp_path / "peer" / CERT_FILE).read_text()
    me = (tmp_path / "me" / CERT_FILE, tmp_path / "me" / KEY_FILE)
    for context in (client_context(*me, peer), server_context(*me, [peer])):
        assert context.cert_store_stats()["x509"] == 1
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
        assert context.verify_mode is ssl.CERT_REQUIRED
