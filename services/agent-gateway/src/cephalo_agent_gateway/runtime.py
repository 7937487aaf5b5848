"""What the running gateway holds beyond the common runtime, started and stopped by hooks."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from nats.aio.msg import Msg

from cephalo_agent_gateway.clients.release import ReleaseServiceClient
from cephalo_agent_gateway.domain.health import (
    HealthChecker,
    HealthMonitor,
    HealthSettings,
)
from cephalo_agent_gateway.domain.script_runs import RunSettings, ScriptRunDriver
from cephalo_agent_gateway.domain.ssh_service import SshTargets, account_cipher
from cephalo_agent_gateway.domain.ssh_targets import SshSettings
from cephalo_agent_gateway.domain.supervisor import ScriptRunSupervisor, SupervisorSettings
from cephalo_agent_gateway.events.contracts import (
    TARGET_DELETED,
    TARGET_REGISTERED,
    TargetDeletedV1,
)
from cephalo_agent_gateway.identity import ServerIdentity, load_server_identity
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.transport.agents import AgentTransport, MachineDirectory
from cephalo_agent_gateway.transport.bus import AgentBus
from cephalo_agent_gateway.transport.file_relay import FileRelay
from cephalo_agent_gateway.transport.listener import ListenerOptions, PollingListener
from cephalo_agent_gateway.transport.listening import ListeningOptions, ListeningTransport
from cephalo_agent_gateway.transport.polling import ConnectionRegistry
from cephalo_agent_gateway.transport.routing import NatsRoute, RouteSettings
from cephalo_common.http.app import Runtime
from cephalo_common.logging import get_logger
from cephalo_common.messaging.artifacts import TaskArtifactStore
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.urls import OutboundPolicy

log = get_logger(__name__)
GATEWAY_KEY = "agent_gateway"


@dataclass
class Gateway:
    settings: AgentGatewaySettings
    identity: ServerIdentity
    connections: ConnectionRegistry
    listener: PollingListener
    bus: AgentBus
    route: NatsRoute
    listening: ListeningTransport
    directory: MachineDirectory
    transport: AgentTransport
    driver: ScriptRunDriver
    supervisor: ScriptRunSupervisor
    health: HealthMonitor
    release_service: ReleaseServiceClient
    ssh: SshTargets

    @property
    def outbound(self) -> OutboundPolicy:
        """Where a user-supplied listening URL may lead (the operator's `outbound.allow`)."""
        return OutboundPolicy.from_settings(self.settings.outbound)

    def machine_changed(self, machine_id: uuid.UUID) -> None:
        """Forget what is cached about the machine (endpoint, client, capabilities)."""
        self.directory.forget(machine_id)
        self.driver.capabilities.forget(machine_id)

    async def machine_deleted(self, machine_id: uuid.UUID) -> None:
        self.machine_changed(machine_id)
        await self.listening.forget(machine_id)
        await self.connections.disconnect(machine_id, "machine deregistered")

    async def on_target_registered(self, message: Msg) -> None:
        """Another replica registered a machine: trust it here too, now."""
        with contextlib.suppress(Exception):
            await self.listener.reload_trust()

    async def on_target_deleted(self, message: Msg) -> None:
        """A machine was deleted anywhere: drop its connection here too."""
        try:
            data = Envelope.from_bytes(message.data).payload(TargetDeletedV1)
            await self.machine_deleted(uuid.UUID(data.machine_id))
        except Exception as error:  # noqa: BLE001 - a malformed notice changes nothing
            log.warning("ignored a malformed target.deleted notice", error=str(error))


def find_gateway(runtime: Runtime) -> Gateway | None:
    gateway = runtime.extras.get(GATEWAY_KEY)
    return gateway if isinstance(gateway, Gateway) else None


def gateway_of(runtime: Runtime) -> Gateway:
    gateway = find_gateway(runtime)
    if gateway is None:
        raise RuntimeError("the agent gateway has not started")
    return gateway


def build_gateway(runtime: Runtime, settings: AgentGatewaySettings) -> Gateway:
    identity = load_server_identity(settings.data_dir)
    sessionmaker = runtime.sessionmaker
    connections = ConnectionRegistry(rpc_timeout_seconds=settings.rpc_timeout_seconds)
    listener = PollingListener(
        identity,
        connections,
        sessionmaker,
        ListenerOptions(
            host=settings.polling_host,
            port=settings.polling_port,
            ping_interval_seconds=settings.polling_ping_interval_seconds,
            ping_timeout_seconds=settings.polling_ping_timeout_seconds,
            max_message_bytes=settings.polling_max_message_bytes,
            max_connections_per_thumbprint=settings.polling_max_connections_per_thumbprint,
            backlog=settings.polling_backlog,
        ),
    )
    bus = AgentBus(settings.nats, name=f"agent-gateway-route-{settings.replica_name}")
    route = NatsRoute(
        bus,
        connections,
        RouteSettings(
            replica=settings.replica_name,
            rpc_timeout_seconds=settings.rpc_timeout_seconds,
            heartbeat_seconds=settings.route_heartbeat_seconds,
            peer_timeout_seconds=settings.route_peer_timeout_seconds,
        ),
        FileRelay(bus, ttl_seconds=settings.route_file_ttl_seconds),
    )
    listening = ListeningTransport(
        identity,
        ListeningOptions(
            connect_timeout_seconds=settings.listening_connect_timeout_seconds,
            rpc_timeout_seconds=settings.rpc_timeout_seconds,
            keepalive_seconds=settings.listening_keepalive_seconds,
            max_connections_per_machine=settings.listening_max_connections_per_machine,
            outbound=OutboundPolicy.from_settings(settings.outbound),
        ),
    )
    directory = MachineDirectory(sessionmaker)
    ssh = SshTargets(
        sessionmaker,
        account_cipher(settings.ssh_account_key_text()),
        SshSettings(
            max_concurrent=settings.ssh_max_concurrent_sessions,
            connect_timeout_seconds=settings.ssh_connect_timeout_seconds,
            remote_base=settings.ssh_remote_base,
            python=settings.ssh_python,
            shell_fast_path=settings.ssh_shell_fast_path,
        ),
    )
    transport = AgentTransport(
        directory, connections, route, listening, probe_seconds=settings.route_probe_seconds
    )
    driver = ScriptRunDriver(
        sessionmaker,
        transport,
        RunSettings(
            pickup_timeout_seconds=settings.pickup_timeout_seconds,
            status_poll_seconds=settings.status_poll_seconds,
            start_wait_seconds=settings.start_wait_seconds,
            status_wait_seconds=settings.status_wait_seconds,
            capabilities_cache_seconds=settings.capabilities_cache_seconds,
            isolation_mutex_timeout_seconds=settings.script_isolation_mutex_timeout_seconds,
        ),
        ssh,
        TaskArtifactStore(settings.nats, name=f"agent-gateway-artifacts-{settings.replica_name}"),
    )
    supervisor = ScriptRunSupervisor(
        sessionmaker,
        driver,
        SupervisorSettings(
            replica=settings.replica_name,
            scan_seconds=settings.run_scan_seconds,
            gather_seconds=settings.run_claim_gather_seconds,
            lease_seconds=settings.run_lease_seconds,
            heartbeat_seconds=settings.run_heartbeat_seconds,
        ),
    )
    health = HealthMonitor(
        sessionmaker,
        HealthChecker(transport, ssh),
        HealthSettings(
            scan_seconds=settings.health_scan_seconds,
            max_concurrency=settings.health_max_concurrency,
            history_limit=settings.health_history_limit,
        ),
    )
    return Gateway(
        settings=settings,
        identity=identity,
        connections=connections,
        listener=listener,
        bus=bus,
        route=route,
        listening=listening,
        directory=directory,
        transport=transport,
        driver=driver,
        supervisor=supervisor,
        health=health,
        release_service=ReleaseServiceClient(
            settings.release_service_url, timeout_seconds=settings.release_service_timeout_seconds
        ),
        ssh=ssh,
    )


async def start_gateway(runtime: Runtime) -> None:
    """Identity, trust store, listener, NATS routing, script-run supervisor, health checks."""
    settings = runtime.settings
    assert isinstance(settings, AgentGatewaySettings)
    gateway = build_gateway(runtime, settings)
    runtime.extras[GATEWAY_KEY] = gateway
    gateway.bus.start()
    await gateway.bus.standing_subscription(
        TARGET_REGISTERED.filter_subject, gateway.on_target_registered
    )
    await gateway.bus.standing_subscription(
        TARGET_DELETED.filter_subject, gateway.on_target_deleted
    )
    tasks = {
        "polling-listener": gateway.listener.run(),
        "agent-route": _announce_connections(gateway),
        "trust-reload": _reload_trust(gateway),
        "script-run-supervisor": gateway.supervisor.run(),
        "health-monitor": gateway.health.run(),
    }
    for name, coroutine in tasks.items():
        runtime.tasks.append(asyncio.create_task(coroutine, name=name))


async def stop_gateway(runtime: Runtime) -> None:
    """Drivers first (their leases are released), so a closing socket is not mistaken for an
    agent that went away."""
    gateway = find_gateway(runtime)
    if gateway is None:
        return
    await gateway.supervisor.stop()
    await gateway.listener.close()
    await gateway.route.close()
    await gateway.bus.close()
    await gateway.listening.aclose()
    await gateway.release_service.aclose()
    await gateway.ssh.aclose()
    await gateway.driver.aclose()


async def _announce_connections(gateway: Gateway) -> None:
    """Once NATS is reachable, subscribe for the connections that arrived before it."""
    while True:
        with contextlib.suppress(TimeoutError):
            await gateway.bus.wait_connected(3600)
            await gateway.route.resubscribe_all()
            return


async def _reload_trust(gateway: Gateway) -> None:
    """The polling fallback for `target.registered` notices that NATS may have lost."""
    while True:
        await asyncio.sleep(gateway.settings.trust_reload_seconds)
        if not gateway.listener.serving.is_set():
            continue
        try:
            added = await gateway.listener.reload_trust()
        except Exception as error:  # noqa: BLE001 - Postgres may be down; next time
            log.warning("could not reload the trust store", error=str(error))
            continue
        if added:
            log.info("trusted certificates registered elsewhere", count=added)


async def polling_listener(runtime: Runtime) -> None:
    """Readiness: the polling port is accepting agents."""
    gateway = find_gateway(runtime)
    if gateway is None or not gateway.listener.serving.is_set():
        raise RuntimeError("the polling listener is not serving")


async def agent_bus(runtime: Runtime) -> None:
    """Readiness: calls can be routed to and from other replicas."""
    gateway = find_gateway(runtime)
    if gateway is None or not gateway.bus.connected:
        raise RuntimeError("not connected to NATS for agent routing")
