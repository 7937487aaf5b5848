"""SSH accounts (a username with a password or a private key), sealed at rest with AES-GCM.

The key comes from the gateway's settings; the associated data binds a sealed account to
the machine it belongs to, so a sealed blob copied onto another machine's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
VERSION = b"\x01"


class AccountUnreadable(Exception):
    """The sealed account does not open with this key and context."""


@dataclass(frozen=True)
class SshAccount:
    username: str
    password: str | None = None
    private_key: str | None = None
    passphrase: str | None = None

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("an SSH account needs a username")
        if (self.password is None) == (self.private_key is None):
            raise ValueError("an SSH account has either a password or a private key")

    def __repr__(self) -> str:
        kind = "password" if self.password is not None else "private key"
        return f"SshAccount(username={self.username!r}, {kind})"


class AccountCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the account key must be 32 bytes (AES-256-GCM)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, text: str) -> AccountCipher:
        """A key given as base64 (standard or URL-safe) of 32 random bytes."""
        try:
            key = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_"))
        except (binascii.Error, ValueError):
            raise ValueError("the account key is not base64") from None
        return cls(key)

    def seal(self, account: SshAccount, *, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(asdict(account)).encode()
        return VERSION + nonce + self._aead.encrypt(nonce, plain, context.encode())

    def open(self, sealed: bytes, *, context: str) -> SshAccount:
        if sealed[:1] != VERSION or len(sealed) <= 1 + NONCE_BYTES:
            raise AccountUnreadable("the sealed account has an unknown format")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise AccountUnreadable("the sealed account does not open with this key") from None
        return SshAccount(**json.loads(plain))
