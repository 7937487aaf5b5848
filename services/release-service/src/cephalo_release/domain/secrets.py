"""Sensitive values at rest: AES-GCM with the row's identity as associated data.

A ciphertext is bound to `owner_id:variable_id`, so a value copied onto another row does
not decrypt. Keys come from settings or a file, never from the database; each is known by
an id derived from it, stored beside every ciphertext, so old keys can stay configured for
decryption while `rotate` re-encrypts everything with the current one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.errors import CephaloError
from cephalo_release.db.models import SensitiveValue
from cephalo_release.db.variable_repositories import SensitiveValueRepository

NONCE_BYTES = 12
ROTATION_BATCH = 500


class SecretsUnavailable(CephaloError):
    """No master key is configured, or a stored value does not decrypt with the keys."""

    status_code = 503
    title = "Sensitive values unavailable"
    type_slug = "secrets-unavailable"


class KeyConfigurationError(ValueError):
    """A configured master key is unusable (not base64 of 32 bytes, unreadable file)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"cephalo-release-master-key:" + key).hexdigest()[:16]


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyConfigurationError(f"{where} is not valid base64") from error
    if len(key) != 32:
        raise KeyConfigurationError(f"{where} must be base64 of 32 bytes, not {len(key)}")
    return key


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class Keyring:
    """The current key (encrypts) and every configured key by id (decrypt)."""

    current_id: str | None = None
    keys: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def load(
        cls, current: str | None, current_file: Path | None, previous: Sequence[str] = ()
    ) -> Keyring:
        if current is not None and current_file is not None:
            raise KeyConfigurationError("set the master key or the master key file, not both")
        if current_file is not None:
            try:
                current = current_file.read_text()
            except OSError as error:
                raise KeyConfigurationError(
                    f"master key file {current_file} cannot be read: {error}"
                ) from error
        keys: dict[str, bytes] = {}
        for index, text in enumerate(previous):
            key = decode_key(text, f"previous master key #{index + 1}")
            keys[key_id(key)] = key
        current_id = None
        if current is not None:
            key = decode_key(current, "the master key")
            current_id = key_id(key)
            keys[current_id] = key
        return cls(current_id, keys)

    def seal(self, plaintext: str, associated: str) -> Sealed:
        if self.current_id is None:
            raise SecretsUnavailable(
                "sensitive values need a master key: set CEPHALO_RELEASE_MASTER_KEY "
                "(base64 of 32 bytes) or CEPHALO_RELEASE_MASTER_KEY_FILE"
            )
        nonce = os.urandom(NONCE_BYTES)
        cipher = AESGCM(self.keys[self.current_id])
        data = cipher.encrypt(nonce, plaintext.encode(), associated.encode())
        return Sealed(self.current_id, nonce, data)

    def open(self, sealed: Sealed, associated: str) -> str:
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise SecretsUnavailable(
                f"a sensitive value is encrypted with master key {sealed.key_id}, which is not "
                "configured (add it to CEPHALO_RELEASE_PREVIOUS_MASTER_KEYS)"
            )
        try:
            data = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, associated.encode())
        except InvalidTag as error:
            raise SecretsUnavailable(
                f"a sensitive value does not decrypt with master key {sealed.key_id}: the key "
                "is wrong or the value was tampered with"
            ) from error
        return data.decode()


_installed = Keyring()


def install_keyring(keyring: Keyring) -> None:
    """One master key configuration per process: every session of it encrypts alike."""
    global _installed
    _installed = keyring


def keyring() -> Keyring:
    return _installed


def _associated(owner_id: uuid.UUID, variable_id: str) -> str:
    return f"{owner_id}:{variable_id}"


def _sealed(row: SensitiveValue) -> Sealed:
    return Sealed(row.key_id, row.nonce, row.ciphertext)


async def store(session: AsyncSession, owner_id: uuid.UUID, values: Mapping[str, str]) -> None:
    """Encrypt and upsert `variable_id → plaintext` for one owner."""
    ring, rows = keyring(), []
    for variable_id, plaintext in values.items():
        sealed = ring.seal(plaintext, _associated(owner_id, variable_id))
        rows.append(
            {
                "owner_id": owner_id,
                "variable_id": variable_id,
                "key_id": sealed.key_id,
                "nonce": sealed.nonce,
                "ciphertext": sealed.ciphertext,
            }
        )
    if rows:
        await SensitiveValueRepository(session).upsert(rows)


async def stored_ids(session: AsyncSession, owner_id: uuid.UUID) -> set[str]:
    return await SensitiveValueRepository(session).ids_of_owner(owner_id)


async def load(session: AsyncSession, owner_id: uuid.UUID) -> dict[str, str]:
    """Every value of one owner, decrypted."""
    ring = keyring()
    return {
        row.variable_id: ring.open(_sealed(row), _associated(owner_id, row.variable_id))
        for row in await SensitiveValueRepository(session).of_owner(owner_id)
    }


async def keep_only(session: AsyncSession, owner_id: uuid.UUID, keep: Iterable[str]) -> None:
    """Forget the owner's values whose variables are gone."""
    await SensitiveValueRepository(session).delete_except(owner_id, keep)


async def check_decryptable(session: AsyncSession) -> int:
    """One stored value per key id must decrypt with the configured keys (startup canary)."""
    ring = keyring()
    rows = await SensitiveValueRepository(session).one_per_key()
    for row in rows:
        try:
            ring.open(_sealed(row), _associated(row.owner_id, row.variable_id))
        except SecretsUnavailable as error:
            raise SecretsUnavailable(
                f"release-service cannot start: {error.detail}. Configure the master key the "
                "values were stored with (CEPHALO_RELEASE_MASTER_KEY or _FILE, and "
                "CEPHALO_RELEASE_PREVIOUS_MASTER_KEYS)"
            ) from error
    return len(rows)


async def rotate(sessions: async_sessionmaker[AsyncSession], batch: int = ROTATION_BATCH) -> int:
    """Re-encrypt every value not under the current key, `batch` rows per transaction.

    Rows are locked with SKIP LOCKED, so a concurrent writer or a second rotation is never
    blocked for long; the loop is bounded by the count taken at the start.
    """
    ring = keyring()
    current = ring.current_id
    if current is None:
        raise SecretsUnavailable("rotation needs a current master key (CEPHALO_RELEASE_MASTER_KEY)")
    async with sessions() as session:
        remaining = await SensitiveValueRepository(session).count_not_under(current)
    rotated = 0
    for _ in range(remaining // batch + 2):
        async with sessions() as session, session.begin():
            rows = await SensitiveValueRepository(session).lock_batch_not_under(current, batch)
            for row in rows:
                associated = _associated(row.owner_id, row.variable_id)
                sealed = ring.seal(ring.open(_sealed(row), associated), associated)
                row.key_id, row.nonce, row.ciphertext = (
                    sealed.key_id,
                    sealed.nonce,
                    sealed.ciphertext,
                )
        rotated += len(rows)
        if not rows:
            break
    return rotated
