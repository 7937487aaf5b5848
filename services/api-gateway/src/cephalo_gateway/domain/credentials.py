"""Passwords, API keys, session cookies and CSRF tokens: making and checking them.

Passwords get a slow, salted hash: argon2id when `argon2-cffi` is installed, else the
standard library's scrypt. Each hash names its algorithm and cost, so a login whose hash
uses another algorithm or cost is rehashed (`needs_rehash`). API keys are 256 random bits,
so one SHA-256 is enough and every request stays cheap (argon2 per call would be a
self-inflicted denial of service). Only hashes are stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import secrets
from dataclasses import dataclass
from typing import Any

API_KEY_PREFIX = "API-"  # pragma: allowlist secret
API_KEY_BYTES = 32
API_KEY_DISPLAY_CHARS = 8
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32


def _load_argon2() -> Any:
    """argon2id is the goal; the stdlib's scrypt keeps the gateway working without it."""
    try:
        return importlib.import_module("argon2")
    except ImportError:  # pragma: no cover - depends on the installed packages
        return None


_argon2: Any = _load_argon2()
ARGON2_AVAILABLE = _argon2 is not None


@dataclass(frozen=True)
class HashCost:
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    scrypt_log2_n: int = 15


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class PasswordHasher:
    """`hash`, `verify` and `needs_rehash` over self-describing hash strings."""

    def __init__(self, cost: HashCost, *, use_argon2: bool = ARGON2_AVAILABLE) -> None:
        self.cost = cost
        self._argon2: Any = None
        if use_argon2 and _argon2 is not None:
            self._argon2 = _argon2.PasswordHasher(
                time_cost=cost.argon2_time_cost,
                memory_cost=cost.argon2_memory_kib,
                parallelism=cost.argon2_parallelism,
                type=_argon2.Type.ID,
            )

    @property
    def algorithm(self) -> str:
        return "argon2id" if self._argon2 is not None else "scrypt"

    def hash(self, password: str) -> str:
        if self._argon2 is not None:
            return str(self._argon2.hash(password))
        return self._scrypt_hash(password, secrets.token_bytes(SALT_BYTES), self.cost.scrypt_log2_n)

    def verify(self, encoded: str, password: str) -> bool:
        """Constant-time for a given hash; False for a wrong password or an unknown format."""
        if encoded.startswith("$argon2"):
            return self._verify_argon2(encoded, password)
        if encoded.startswith("$scrypt$"):
            return self._verify_scrypt(encoded, password)
        return False

    def needs_rehash(self, encoded: str) -> bool:
        if self._argon2 is not None:
            return not encoded.startswith("$argon2id$") or bool(
                self._argon2.check_needs_rehash(encoded)
            )
        return _scrypt_log2_n(encoded) != self.cost.scrypt_log2_n

    def _verify_argon2(self, encoded: str, password: str) -> bool:
        if _argon2 is None:
            return False
        checker = self._argon2 or _argon2.PasswordHasher()
        try:
            return bool(checker.verify(encoded, password))
        except _argon2.exceptions.Argon2Error:
            return False

    @staticmethod
    def _scrypt_hash(password: str, salt: bytes, log2_n: int) -> str:
        digest = hashlib.scrypt(
            password.encode(),
            salt=salt,
            n=2**log2_n,
            r=SCRYPT_R,
            p=SCRYPT_P,
            maxmem=2**log2_n * SCRYPT_R * 128 * 2 + 2**20,
            dklen=HASH_BYTES,
        )
        return f"$scrypt$ln={log2_n},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"

    def _verify_scrypt(self, encoded: str, password: str) -> bool:
        try:
            _, _, params, salt, digest = encoded.split("$")
            log2_n = _scrypt_log2_n(encoded)
            if params != f"ln={log2_n},r={SCRYPT_R},p={SCRYPT_P}" or not 4 <= log2_n <= 22:
                return False
            expected = self._scrypt_hash(password, _unb64(salt), log2_n)
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)


def _scrypt_log2_n(encoded: str) -> int:
    try:
        params = encoded.split("$")[2]
        return int(params.split(",")[0].removeprefix("ln="))
    except (IndexError, ValueError):
        return -1


# API keys --------------------------------------------------------------------------------


def new_api_key() -> str:
    """`API-` and 256 random bits in base32 (52 upper-case letters and digits)."""
    random = base64.b32encode(secrets.token_bytes(API_KEY_BYTES)).decode("ascii").rstrip("=")
    return API_KEY_PREFIX + random


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_display(key: str) -> str:
    """What lists show: enough to tell keys apart, far too little to guess one."""
    return key[: len(API_KEY_PREFIX) + API_KEY_DISPLAY_CHARS] + "…"


def looks_like_api_key(value: str) -> bool:
    body = value[len(API_KEY_PREFIX) :]
    return (
        value.startswith(API_KEY_PREFIX)
        and 16 <= len(body) <= 128
        and body.isascii()
        and body.isalnum()
    )


# Session cookies and CSRF tokens ---------------------------------------------------------


def derive_key(master: bytes, purpose: str) -> bytes:
    """One independent 256-bit key per purpose from one configured secret."""
    return hmac.new(master, b"cephalo-gateway:" + purpose.encode(), hashlib.sha256).digest()


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def session_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(key: bytes, session_id: str) -> str:
    """Bound to one session and derivable, so nothing more is stored for it."""
    mac = hmac.new(key, b"csrf:" + session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def csrf_matches(key: bytes, session_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), presented.encode())
