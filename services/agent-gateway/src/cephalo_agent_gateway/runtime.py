"""What the running gateway holds beyond the common runtime, started and stopped by hooks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cephalo_agent_gateway.clients.release import ReleaseServiceClient
from cephalo_agent_gateway.domain.script_runs import RunSettings, ScriptRunDriver
from cephalo_agent_gateway.domain.supervisor import ScriptRunSupervisor
from cephalo_agent_gateway.identity import ServerIdentity, load_server_identity
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.transport.listener import ListenerOptions, PollingListener
from cephalo_agent_gateway.transport.polling import ConnectionRegistry
from cephalo_common.http.app import Runtime

GATEWAY_KEY = "agent_gateway"


@dataclass
class Gateway:
    settings: AgentGatewaySettings
    identity: ServerIdentity
    connections: ConnectionRegistry
    listener: PollingListener
    supervisor: ScriptRunSupervisor
    release_service: ReleaseServiceClient


def find_gateway(runtime: Runtime) -> Gateway | None:
    gateway = runtime.extras.get(GATEWAY_KEY)
    return gateway if isinstance(gateway, Gateway) else None


def gateway_of(runtime: Runtime) -> Gateway:
    gateway = find_gateway(runtime)
    if gateway is None:
        raise RuntimeError("the agent gateway has not started")
    return gateway


async def start_gateway(runtime: Runtime) -> None:
    """Identity, trust store, polling listener and script-run supervisor, in that order."""
    settings = runtime.settings
    assert isinstance(settings, AgentGatewaySettings)
    identity = load_server_identity(settings.data_dir)
    connections = ConnectionRegistry(rpc_timeout_seconds=settings.rpc_timeout_seconds)
    listener = PollingListener(
        identity,
        connections,
        runtime.sessionmaker,
        ListenerOptions(
            host=settings.polling_host,
            port=settings.polling_port,
            ping_interval_seconds=settings.polling_ping_interval_seconds,
            ping_timeout_seconds=settings.polling_ping_timeout_seconds,
            max_message_bytes=settings.polling_max_message_bytes,
        ),
    )
    driver = ScriptRunDriver(
        runtime.sessionmaker,
        connections,
        RunSettings(
            pickup_timeout_seconds=settings.pickup_timeout_seconds,
            status_poll_seconds=settings.status_poll_seconds,
        ),
    )
    supervisor = ScriptRunSupervisor(
        runtime.sessionmaker, driver, scan_seconds=settings.run_scan_seconds
    )
    runtime.extras[GATEWAY_KEY] = Gateway(
        settings=settings,
        identity=identity,
        connections=connections,
        listener=listener,
        supervisor=supervisor,
        release_service=ReleaseServiceClient(
            settings.release_service_url, timeout_seconds=settings.release_service_timeout_seconds
        ),
    )
    runtime.tasks.append(asyncio.create_task(listener.run(), name="polling-listener"))
    runtime.tasks.append(asyncio.create_task(supervisor.run(), name="script-run-supervisor"))


async def stop_gateway(runtime: Runtime) -> None:
    """Drivers first, so a closing socket is not mistaken for an agent that went away."""
    gateway = find_gateway(runtime)
    if gateway is None:
        return
    await gateway.supervisor.stop()
    await gateway.listener.close()
    await gateway.release_service.aclose()


async def polling_listener(runtime: Runtime) -> None:
    """Readiness: the polling port is accepting agents."""
    gateway = find_gateway(runtime)
    if gateway is None or not gateway.listener.serving.is_set():
        raise RuntimeError("the polling listener is not serving")
