"""Typed settings: pydantic-settings, env vars `CEPHALO_<SERVICE>_…`, defaults that run the
embedded stack. Built in `create_app(settings)`, never at import time."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cephalo_common.urls import OutboundSettings

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5433/cephalo"
DEFAULT_NATS_URL = "nats://127.0.0.1:4223"


class DatabaseSettings(BaseModel):
    url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy async URL (asyncpg).")
    pool_size: int = Field(10, ge=1, description="Connections kept per process.")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="Per connection attempt.")


class NatsSettings(BaseModel):
    url: str = Field(DEFAULT_NATS_URL, description="NATS server URL(s), comma separated.")
    connect_timeout_seconds: float = Field(2.0, gt=0)
    duplicate_window_seconds: float | None = Field(
        None,
        gt=0,
        description="Overrides every stream's de-duplication window (each stream's own, "
        "2 minutes, when unset). Every service must use the same value: each one "
        "re-applies its streams' settings when it connects.",
    )


class MessagingSettings(BaseModel):
    outbox_poll_seconds: float = Field(0.5, gt=0, description="Relay poll when not woken.")
    outbox_batch_size: int = Field(100, ge=1)
    consumer_max_deliver: int = Field(8, ge=1, description="Deliveries before dead-letter.")
    consumer_backoff_seconds: list[float] = Field(
        default_factory=lambda: [0.5, 2.0, 5.0, 15.0, 30.0],
        description="Redelivery delays after a handler failure.",
    )
    consumer_ack_wait_seconds: float = Field(30.0, gt=0)
    replay_after_store_loss_seconds: float = Field(
        900.0,
        ge=0,
        description="When NATS comes back without its store, outbox rows published this long "
        "before are published again (consumers apply each event once); 0: none.",
    )
    replay_before_disconnect_seconds: float = Field(
        5.0,
        ge=0,
        description="After a reconnect, outbox rows published this long before the connection "
        "dropped are published again: a killed server may lose what it acknowledged last "
        "(the stream or the consumers de-duplicate them); 0: none.",
    )


class ServiceSettings(BaseSettings):
    """Fields every service has; a service subclasses it and sets its env prefix."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP API binds.")
    port: int = Field(8080, ge=0, le=65535)
    log_json: bool = Field(False, description="JSON logs (production) or readable (dev).")
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    internal_token_secret: SecretStr = Field(
        SecretStr("cephalo-dev-internal-secret"),
        description="Shared secret that signs calls between services.",
    )
    run_workers: bool = Field(
        True, description="Run the outbox relay and consumers in this process."
    )
    outbound: OutboundSettings = Field(
        default_factory=OutboundSettings,
        description="Where user-supplied URLs may lead besides the public network.",
    )


def service_config(prefix: str) -> SettingsConfigDict:
    """The settings config for one service: `CEPHALO_<PREFIX>_` and nested `__`."""
    return SettingsConfigDict(
        env_prefix=f"CEPHALO_{prefix.upper()}_", env_nested_delimiter="__", extra="ignore"
    )
