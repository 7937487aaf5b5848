"""Typed steps on a real agent: a zip package from the real package-feed, deployed by the
step runner, its output variables and artifacts back in `step.finished`, the artifacts'
bytes fetched from the agent into the task artifact store (and nothing outside the step's
work directory handed out).

The gateway, the agent (polling, real mTLS) and the feed are all real and on loopback; the
feed serves a signed download URL exactly as the orchestrator will hand it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_agent.config import AgentPaths, load_config
from cephalo_agent.files import FileTransferService, StreamStore
from cephalo_agent.polling import PollingClient, PollingSettings
from cephalo_agent.registration import register
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.domain.files import FileTransferClient
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed
from cephalo_agent_gateway.runtime import Gateway, gateway_of
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.harness import Orchestrator, Space, StepEvents, unique
from cephalo_common.contracts import PackageAcquisitionV1
from cephalo_common.embedded import free_port
from cephalo_common.messaging.artifacts import MAX_ARTIFACT_BYTES, TaskArtifactStore
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import serving
from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings

FAST = PollingSettings(initial_backoff_seconds=0.05, max_backoff_seconds=0.2)
SECRET = "db-Pa55w0rd-xyz"


def package_zip(deploy: str) -> bytes:
    files = {
        "appsettings.json": json.dumps({"ConnectionStrings": {"Db": "old"}, "Mode": "dev"}),
        "PreDeploy.sh": 'echo "PreDeploy in $(basename "$PWD")"\n',
        "Deploy.sh": deploy,
        "PostDeploy.sh": "echo PostDeploy\n",
        "DeployFailed.sh": "echo DeployFailed ran\n",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


GOOD_DEPLOY = """echo "Deploy with $(get_octopusvariable ConnectionStrings:Db)"
cp appsettings.json published-settings.json
new_cephaloartifact published-settings.json
set_cephalovariable Release "shop-$(get_cephalovariable Octopus.Release.Number)"
set_cephalovariable DbCopy "$(get_cephalovariable ConnectionStrings:Db)" -sensitive
"""


@asynccontextmanager
async def served_gateway(settings: AgentGatewaySettings) -> AsyncIterator[tuple[str, Gateway]]:
    app = create_app(settings)
    async with serving(app, port=settings.port, lifespan="on") as url:
        gateway = gateway_of(app.state.runtime)
        await asyncio.wait_for(gateway.listener.serving.wait(), 20)
        yield url, gateway


@pytest.fixture
def feed_settings(migrate: Callable[[str], str], nats_url: str, tmp_path: Path) -> FeedSettings:
    """Sync: `migrate` runs its own event loop."""
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        nats={"url": nats_url},
        storage_dir=tmp_path / "feed-packages",
    )


@pytest.fixture
async def feed_url(feed_settings: FeedSettings) -> AsyncIterator[str]:
    async with serving(create_feed_app(feed_settings), lifespan="on") as url:
        yield url


async def publish(feed_url: str, space: Space, version: str, data: bytes) -> dict[str, Any]:
    """Push the zip and ask for a signed download URL, as the orchestrator does."""
    async with httpx.AsyncClient(base_url=feed_url) as http:
        pushed = await http.post(
            f"/api/v1/spaces/{space.id}/packages",
            files={"file": (f"Shop.Web.{version}.zip", data, "application/zip")},
        )
        assert pushed.status_code == 201, pushed.text
        base = f"/api/v1/spaces/{space.id}/packages/Shop.Web/versions/{version}"
        signed = await http.post(f"{base}/download-url")
        assert signed.status_code == 200, signed.text
    body = pushed.json()
    return {
        "package_id": "Shop.Web",
        "version": version,
        "url": feed_url + signed.json()["path"],
        "sha256": body["sha256"],
        "size": len(data),
    }


@asynccontextmanager
async def polling_agent(paths: AgentPaths, url: str, space: Space) -> AsyncIterator[str]:
    registered = await asyncio.to_thread(
        register,
        paths,
        server_url=url,
        space=str(space.id),
        name=unique("deploy-target"),
        environments=["Production"],
        roles=["web"],
    )
    machine_id = registered.config.machine_id
    assert machine_id is not None
    scripts = ScriptService.for_paths(paths)
    streams = StreamStore(paths.streams)
    files = FileTransferService(paths.files, streams, paths.work)
    client = PollingClient.from_config(
        paths, load_config(paths), AgentService(scripts, files=files), FAST, streams=streams
    )
    polling = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 20)
        yield machine_id
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await client.aclose()
        await scripts.aclose()


async def refused_outside_the_work_directory(
    gateway: Gateway, machine_id: str, ticket: str, tmp_path: Path
) -> None:
    """The gateway asks the real agent, over polling mTLS, for files outside the step's work
    directory: each is refused by the agent and nothing is written."""
    files = FileTransferClient(gateway.transport, uuid.UUID(machine_id))
    destination = tmp_path / "fetched"
    for path in ("/etc/passwd", "../../config.json", str(tmp_path / "agent" / "config.json")):
        with pytest.raises(RemoteCallFailed) as refused:
            await files.download_artifact(ticket, path, destination, MAX_ARTIFACT_BYTES)
        assert refused.value.type == "InvalidPath", refused.value
        assert not destination.exists()


async def test_a_zip_from_the_feed_is_deployed_by_the_step_runner_on_a_real_agent(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    feed_url: str,
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "target-home"
    monkeypatch.setenv("CEPHALO_HOME", str(home))  # the agent's scripts inherit it
    variables = {
        "Octopus.Environment.Name": "Production",
        "Octopus.Release.Number": "1.0.0",
        "ConnectionStrings:Db": SECRET,
        "Mode": "production",
    }
    properties = {
        "Octopus.Action.Package.JsonConfigurationVariablesTargets": "appsettings.json",
        "Octopus.Action.Package.SkipIfAlreadyInstalled": True,
    }
    first = await publish(feed_url, space, "1.0.0", package_zip(GOOD_DEPLOY))
    broken = await publish(feed_url, space, "2.0.0", package_zip("echo failing; exit 4\n"))
    async with (
        served_gateway(gateway_settings(port=free_port())) as (url, gateway),
        polling_agent(AgentPaths(tmp_path / "agent"), url, space) as machine_id,
    ):

        async def deploy(package: dict[str, Any]) -> tuple[str, Any]:
            envelope = await orchestrator.dispatch(
                space,
                machine_id,
                script_body="",
                action_type="cephalo.deploy-package",
                action_properties=properties,
                packages=[PackageAcquisitionV1(**package)],
                variables=variables,
                sensitive_variables=["ConnectionStrings:Db"],
            )
            ticket = envelope.data["ticket"]
            return ticket, await events.wait_finished(ticket)

        ticket, finished = await deploy(first)
        lines = events.lines(ticket)
        assert (finished.exit_code, finished.error) == (0, None), lines
        folder = home / "apps" / "Production" / "Shop.Web" / "1.0.0"
        settings = json.loads((folder / "appsettings.json").read_text())
        assert settings == {"ConnectionStrings": {"Db": SECRET}, "Mode": "production"}
        assert "PreDeploy in 1.0.0" in lines and "PostDeploy" in lines
        assert "Deploy with ********" in lines
        assert not any(SECRET in line for line in lines)
        assert not any("##cephalo" in line for line in lines)
        assert finished.output_variables["Release"] == "shop-1.0.0"
        assert finished.output_variables["DbCopy"] == SECRET
        assert finished.output_variables["Package.InstallationDirectoryPath"] == str(folder)
        assert finished.sensitive_output_variables == ["DbCopy"]
        published = (folder / "published-settings.json").read_bytes()
        [artifact] = finished.artifacts
        assert (artifact.name, artifact.size) == ("published-settings.json", len(published))
        assert artifact.sha256 == hashlib.sha256(published).hexdigest()
        assert artifact.object_name is not None
        store = TaskArtifactStore(NatsSettings(url=nats_url), name="test-agent-artifacts")
        try:
            assert await store.get(artifact.object_name) == published
        finally:
            await store.aclose()
        assert finished.last_log_sequence == max(events.sequences(ticket))

        await refused_outside_the_work_directory(gateway, machine_id, ticket, tmp_path)

        ticket, failed = await deploy(broken)
        assert failed.exit_code == 1
        failed_lines = events.lines(ticket)
        assert "DeployFailed ran" in failed_lines
        assert "The deployment of Shop.Web 2.0.0 failed." in failed_lines
        assert json.loads((folder / "appsettings.json").read_text()) == settings

        ticket, skipped = await deploy(first)
        assert skipped.exit_code == 0
        assert skipped.output_variables["Package.Skipped"] == "True"
        assert not any(line.startswith("Deploy with") for line in events.lines(ticket))
