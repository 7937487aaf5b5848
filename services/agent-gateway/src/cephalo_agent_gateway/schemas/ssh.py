"""SSH targets in the API: the account goes in, never comes out."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, SecretStr, model_validator

from cephalo_agent_gateway.schemas.common import Name, ReadModel, Role, WriteModel
from cephalo_agent_gateway.schemas.machines import Machine

Fingerprint = Field(
    min_length=1,
    max_length=100,
    description="The host key's SHA-256 fingerprint as `ssh-keygen -lf` prints it (SHA256:…).",
)


class SshTargetRegister(WriteModel):
    """A host reached over SSH (only Python 3.11+ needed on it), with a key or a password."""

    name: Name
    environments: list[Name] = Field(
        min_length=1, max_length=100, description="Environment names or ids of this space."
    )
    roles: list[Role] = Field(default_factory=list, max_length=100)
    host: str = Field(min_length=1, max_length=255, pattern=r"^[^\s/@]+$")
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=200, pattern=r"^[^\s:@/]+$")
    password: SecretStr | None = Field(None, max_length=1024)
    private_key: SecretStr | None = Field(
        None, max_length=64 * 1024, description="OpenSSH or PEM private key."
    )
    passphrase: SecretStr | None = Field(None, max_length=1024)
    host_key_fingerprint: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Expected host key fingerprint; without it the key the host presents "
        "now is trusted (trust on first use).",
    )

    @model_validator(mode="after")
    def _one_secret(self) -> SshTargetRegister:
        if (self.password is None) == (self.private_key is None):
            raise ValueError("give either password or private_key")
        if self.passphrase is not None and self.private_key is None:
            raise ValueError("passphrase goes with private_key")
        return self


class SshHostKeyRepin(WriteModel):
    fingerprint: str = Fingerprint


class SshDetails(ReadModel):
    host: str
    port: int
    username: str
    auth: str = Field(description="password | private_key (the secret is never returned).")
    host_key_fingerprint: str
    host_key_pinned_at: datetime


class SshTarget(Machine):
    ssh: SshDetails


class SshHostKeyEvent(ReadModel):
    id: uuid.UUID
    action: str = Field(description="Pinned | Refused (the host key changed) | Repinned.")
    pinned_fingerprint: str | None
    presented_fingerprint: str | None
    created_at: datetime
