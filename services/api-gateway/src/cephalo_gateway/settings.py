"""api-gateway settings: env vars `CEPHALO_GATEWAY_…`."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from cephalo_common.settings import ServiceSettings, service_config
from cephalo_gateway.domain.routing import Upstream


class PasswordHashSettings(BaseModel):
    """argon2id cost (used when argon2-cffi is installed) and the scrypt fallback's.

    Raising them makes the next successful login rehash the password."""

    argon2_time_cost: int = Field(3, ge=1, le=100)
    argon2_memory_kib: int = Field(65536, ge=8, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=64)
    scrypt_log2_n: int = Field(15, ge=4, le=22, description="scrypt N = 2**value.")


class RateLimitSettings(BaseModel):
    """Token buckets held in this process (each replica counts on its own)."""

    per_ip_per_minute: float = Field(600, gt=0, description="Requests per client address.")
    per_ip_burst: int = Field(200, ge=1)
    per_user_per_minute: float = Field(600, gt=0, description="Requests per user or key.")
    per_user_burst: int = Field(200, ge=1)
    failed_logins_per_minute: float = Field(
        10, gt=0, description="Failed logins per address and per username before 429."
    )
    webhooks_per_minute: float = Field(60, gt=0, description="Deliveries per webhook.")
    webhook_burst: int = Field(30, ge=1)


class GatewaySettings(ServiceSettings):
    model_config = service_config("gateway")

    port: int = Field(8080, ge=0, le=65535)
    release_service_url: str = Field(
        "http://127.0.0.1:8081", description="Internal base URL of release-service."
    )
    orchestrator_url: str = Field(
        "http://127.0.0.1:8082", description="Internal base URL of deploy-orchestrator."
    )
    package_feed_url: str = Field(
        "http://127.0.0.1:8083", description="Internal base URL of package-feed."
    )
    agent_gateway_url: str = Field(
        "http://127.0.0.1:8084", description="Internal base URL of agent-gateway's HTTP API."
    )
    upstream_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Connect, and each read or write of a forwarded request (not the whole "
        "transfer, so large package uploads and downloads are not cut short).",
    )
    space_cache_seconds: float = Field(
        30.0, ge=0, description="How long a space slug → id lookup is reused (0 disables)."
    )

    auth_required: bool = Field(
        True,
        description="Refuse /api/v1 requests without credentials. False (dev stack only) "
        "treats them as an administrator: never in production.",
    )
    bootstrap_api_key: SecretStr | None = Field(
        None,
        description="An API key (`API-…`) registered at startup for a `bootstrap` "
        "administrator service account, unless a key with that hash is already known.",
    )
    initial_admin_username: str | None = Field(
        None,
        description="With the password below: an administrator created at startup "
        "when no administrator exists (there is no default password).",
    )
    initial_admin_password: SecretStr | None = None
    session_secret: SecretStr | None = Field(
        None,
        description="Signs session cookies and CSRF tokens, and encrypts webhook secrets; "
        "derived from INTERNAL_TOKEN_SECRET when unset.",
    )
    session_hours: float = Field(12.0, gt=0, description="How long a login session lasts.")
    session_cookie_secure: bool = Field(
        True, description="Mark the session cookie `Secure` (browsers send it over HTTPS only)."
    )
    api_key_default_expiry_days: int | None = Field(
        180, ge=1, description="Expiry of a new API key that asks for none (None: never)."
    )
    internal_token_ttl_seconds: int = Field(
        60, ge=1, le=3600, description="Life of the `X-Cephalo-Identity` token sent upstream."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges whose `X-Forwarded-For` is believed.",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS (none: CORS off)."
    )
    hsts_seconds: int = Field(
        31_536_000, ge=0, description="`Strict-Transport-Security` max-age on HTTPS requests."
    )
    scope_cache_seconds: float = Field(
        30.0, ge=0, description="How long an object's project/environment lookup is reused."
    )
    octopus_task_wait_seconds: float = Field(
        5.0, ge=0, description="How long a build-server deployment waits for its task id."
    )
    webhook_max_age_seconds: int = Field(
        300, ge=1, description="Signed webhook deliveries older than this are refused."
    )
    passwords: PasswordHashSettings = Field(default_factory=PasswordHashSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)

    def upstream_urls(self) -> dict[Upstream, str]:
        return {
            Upstream.RELEASE_SERVICE: self.release_service_url,
            Upstream.DEPLOY_ORCHESTRATOR: self.orchestrator_url,
            Upstream.PACKAGE_FEED: self.package_feed_url,
            Upstream.AGENT_GATEWAY: self.agent_gateway_url,
        }
