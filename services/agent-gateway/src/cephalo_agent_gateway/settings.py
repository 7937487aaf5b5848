"""agent-gateway settings: env vars `CEPHALO_AGENT_GATEWAY_…`.

Every timeout of the agent protocol lives here with its default; the README's failure-mode
table refers to these names.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from cephalo_common.agent_protocol import MAX_WAIT_SECONDS, POLLING_PATH
from cephalo_common.settings import ServiceSettings, service_config

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


class AgentGatewaySettings(ServiceSettings):
    model_config = service_config("agent_gateway")

    port: int = Field(8084, ge=0, le=65535)
    data_dir: Path = Field(
        Path(".cephalo/agent-gateway"),
        description="Holds the server identity (certificate and key), created on first start.",
    )
    polling_host: str = Field("127.0.0.1", description="Address the polling listener binds.")
    polling_port: int = Field(10943, ge=0, le=65535, description="Port polling agents dial.")
    public_polling_endpoint: str | None = Field(
        None,
        description="The wss:// URL agents are told to dial; derived from host and port if unset.",
    )
    release_service_url: str = Field(
        "http://127.0.0.1:8081", description="Resolves environments at registration."
    )
    release_service_timeout_seconds: float = Field(10.0, gt=0)
    pickup_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a script run waits for its machine to (re)connect before failing.",
    )
    status_poll_seconds: float = Field(
        0.5,
        gt=0,
        description="Least time between two `get_status` calls of a running script (without "
        "the status-wait feature: the pause between them).",
    )
    start_wait_seconds: float = Field(
        2.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Agents with the status-wait feature answer `start_script` once the script "
        "completed, or after this long: a short script costs one call. 0 turns waiting off.",
    )
    status_wait_seconds: float = Field(
        10.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Agents with the status-wait feature hold `get_status` open this long "
        "unless a line or the end comes first (below `rpc_timeout_seconds`).",
    )
    rpc_timeout_seconds: float = Field(
        30.0, gt=0, description="How long one request waits for the agent's response."
    )
    run_scan_seconds: float = Field(
        5.0, gt=0, description="Safety-net rescan for script runs nobody drives."
    )
    run_claim_gather_seconds: float = Field(
        0.1,
        ge=0,
        description="After a dispatch wakes the supervisor, wait this long for more before "
        "claiming: a burst of dispatches is claimed in a few statements, not one each.",
    )
    polling_ping_interval_seconds: float = Field(
        20.0, gt=0, description="WebSocket keep-alive ping interval."
    )
    polling_ping_timeout_seconds: float = Field(
        20.0, gt=0, description="A connection whose ping goes unanswered this long is dropped."
    )
    polling_max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    polling_backlog: int = Field(
        1024,
        ge=1,
        description="Pending TCP connections the polling port queues (a reconnecting fleet "
        "arrives at once; the kernel's somaxconn caps it).",
    )
    polling_max_connections_per_thumbprint: int = Field(
        4,
        ge=1,
        description="TLS connections one agent certificate may hold open on the polling port; "
        "more are dropped right after the handshake, before any lookup.",
    )
    listening_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Listening agents: TCP + TLS connect timeout for each dial."
    )
    listening_keepalive_seconds: float = Field(
        30.0, gt=0, description="Listening agents: an idle pooled connection is closed after this."
    )
    listening_max_connections_per_machine: int = Field(
        4, ge=1, description="Listening agents: concurrent connections to one agent."
    )
    replica_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="This replica's name in run leases and routed calls (unique per process).",
    )
    route_heartbeat_seconds: float = Field(
        2.0, gt=0, description="A replica serving a routed call for a peer heartbeats this often."
    )
    route_peer_timeout_seconds: float = Field(
        6.0,
        gt=0,
        description="A routed call fails (ConnectionLost) after this long without a heartbeat.",
    )
    route_file_ttl_seconds: float = Field(
        3600.0,
        gt=0,
        description="A file stream relayed between replicas is dropped from NATS after this.",
    )
    route_probe_seconds: float = Field(
        1.0, gt=0, description="While waiting for a polling machine, ask peers this often."
    )
    trust_reload_seconds: float = Field(
        10.0,
        gt=0,
        description="Reload certificates registered through other replicas (also on NATS news).",
    )
    run_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="A replica's claim on a script run; a dead replica's runs move after this.",
    )
    run_heartbeat_seconds: float = Field(
        2.0, gt=0, description="Renew run leases and pick up cancellations this often."
    )
    capabilities_cache_seconds: float = Field(
        60.0, ge=0, description="How long an agent's capabilities answer is reused."
    )
    script_isolation_mutex_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="A deployment step waits this long for the target's isolation mutex.",
    )
    health_scan_seconds: float = Field(
        10.0, gt=0, description="How often due health checks are looked for."
    )
    health_max_concurrency: int = Field(
        50, ge=1, description="Health checks running at once in this replica."
    )
    health_history_limit: int = Field(
        100, ge=1, description="Health check results kept per machine."
    )
    max_pending_registrations_per_space: int = Field(
        1000, ge=1, description="Unapproved agents remembered per space (oldest are dropped)."
    )
    ssh_account_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes: seals SSH accounts (AES-256-GCM). Needed to "
        "register SSH targets and run steps on them; keep it stable across replicas.",
    )
    ssh_account_key_file: Path | None = Field(
        None, description="A file holding the SSH account key (used when the key is not set)."
    )
    ssh_max_concurrent_sessions: int = Field(
        200, ge=1, description="SSH sessions (steps, health checks) open at once in this replica."
    )
    ssh_connect_timeout_seconds: float = Field(
        15.0, gt=0, description="SSH targets: TCP + handshake timeout, and the host key capture."
    )
    ssh_remote_base: str = Field(
        ".cephalo",
        min_length=1,
        description="Where on an SSH target the runner and work files live (relative: home).",
    )
    ssh_python: str = Field("python3", min_length=1, description="The Python on SSH targets.")
    ssh_shell_fast_path: bool = Field(
        True,
        description="Run plain bash/sh script steps on SSH targets with one shell exec instead "
        "of the pushed step runner (same variables, output variables, masking, cancel).",
    )

    def ssh_account_key_text(self) -> str | None:
        """The configured SSH account key, from the setting or its file; None when neither."""
        if self.ssh_account_key is not None:
            return self.ssh_account_key.get_secret_value().strip()
        if self.ssh_account_key_file is not None:
            return self.ssh_account_key_file.read_text().strip()
        return None

    @model_validator(mode="after")
    def _waits_below_rpc_timeout(self) -> AgentGatewaySettings:
        longest = max(self.start_wait_seconds, self.status_wait_seconds)
        if longest >= self.rpc_timeout_seconds:
            raise ValueError(
                f"start/status waits ({longest:g} s) must stay below rpc_timeout_seconds "
                f"({self.rpc_timeout_seconds:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _derive_polling_endpoint(self) -> AgentGatewaySettings:
        if not self.public_polling_endpoint:
            host = "127.0.0.1" if self.polling_host in _WILDCARD_HOSTS else self.polling_host
            if ":" in host:
                host = f"[{host}]"
            self.public_polling_endpoint = f"wss://{host}:{self.polling_port}{POLLING_PATH}"
        return self

    @property
    def polling_endpoint(self) -> str:
        assert self.public_polling_endpoint is not None
        return self.public_polling_endpoint
