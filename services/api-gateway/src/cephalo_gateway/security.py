"""What the gateway holds for authenticating, limiting and signing (built once per app)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cephalo_common.security import internal_token
from cephalo_gateway.domain import credentials
from cephalo_gateway.domain.client_ip import Network, parse_networks
from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.domain.ratelimit import TokenBucket
from cephalo_gateway.settings import GatewaySettings

IDENTITY_HEADER = internal_token.HEADER.lower()
GATEWAY_IDENTITY = {"sub": None, "name": "api-gateway", "service_account": True, "via": "gateway"}
"""Who the gateway's own look-ups (slugs, scopes) are made as."""
SIGNED_LINK_IDENTITY = {
    "sub": None,
    "name": "signed-link",
    "service_account": False,
    "via": "signed-link",
}
"""Who a keyless signed download is forwarded as: nobody, holding only the link."""
NONCE_BYTES = 12


@dataclass
class Limits:
    per_ip: TokenBucket
    per_user: TokenBucket
    failed_logins: TokenBucket
    webhooks: TokenBucket

    @classmethod
    def of(cls, settings: GatewaySettings) -> Limits:
        r = settings.rate_limits
        failed_burst = max(1, int(r.failed_logins_per_minute))
        return cls(
            per_ip=TokenBucket(r.per_ip_per_minute, r.per_ip_burst),
            per_user=TokenBucket(r.per_user_per_minute, r.per_user_burst),
            failed_logins=TokenBucket(r.failed_logins_per_minute, failed_burst),
            webhooks=TokenBucket(r.webhooks_per_minute, r.webhook_burst),
        )


class Security:
    """Keys, hasher, limits and trusted proxies; `runtime.extras["security"]`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.internal_secret = settings.internal_token_secret.get_secret_value().encode()
        master = (
            settings.session_secret.get_secret_value().encode()
            if settings.session_secret is not None
            else self.internal_secret
        )
        self.session_key = credentials.derive_key(master, "session")
        self._webhook_key = credentials.derive_key(master, "webhook-secrets")
        p = settings.passwords
        self.hasher = credentials.PasswordHasher(
            credentials.HashCost(
                argon2_time_cost=p.argon2_time_cost,
                argon2_memory_kib=p.argon2_memory_kib,
                argon2_parallelism=p.argon2_parallelism,
                scrypt_log2_n=p.scrypt_log2_n,
            )
        )
        self.limits = Limits.of(settings)
        self.trusted_proxies: tuple[Network, ...] = parse_networks(settings.trusted_proxies)

    def identity_token(self, principal: Principal | None, audience: str) -> str:
        identity = principal.identity() if principal is not None else GATEWAY_IDENTITY
        return internal_token.sign(
            identity,
            audience,
            self.internal_secret,
            ttl_seconds=self.settings.internal_token_ttl_seconds,
        )

    def identity_header(self, principal: Principal | None, audience: str) -> tuple[str, str]:
        return IDENTITY_HEADER, self.identity_token(principal, audience)

    def signed_link_header(self, audience: str) -> tuple[str, str]:
        token = internal_token.sign(
            SIGNED_LINK_IDENTITY,
            audience,
            self.internal_secret,
            ttl_seconds=self.settings.internal_token_ttl_seconds,
        )
        return IDENTITY_HEADER, token

    def seal(self, secret: str, associated: bytes) -> bytes:
        """Encrypt a webhook secret; `associated` (the hook id) binds it to its row."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._webhook_key).encrypt(nonce, secret.encode(), associated)

    def unseal(self, sealed: bytes, associated: bytes) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return AESGCM(self._webhook_key).decrypt(nonce, ciphertext, associated).decode()
