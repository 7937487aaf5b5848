"""agent-gateway settings: env vars `CEPHALO_AGENT_GATEWAY_…`.

Every timeout of the agent protocol lives here with its default; the README's failure-mode
table refers to these names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from cephalo_common.agent_protocol import POLLING_PATH
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
        0.5, gt=0, description="Pause between two `get_status` calls of a running script."
    )
    rpc_timeout_seconds: float = Field(
        30.0, gt=0, description="How long one request waits for the agent's response."
    )
    run_scan_seconds: float = Field(
        5.0, gt=0, description="Safety-net rescan for script runs nobody drives."
    )
    polling_ping_interval_seconds: float = Field(
        20.0, gt=0, description="WebSocket keep-alive ping interval."
    )
    polling_ping_timeout_seconds: float = Field(
        20.0, gt=0, description="A connection whose ping goes unanswered this long is dropped."
    )
    polling_max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)

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
