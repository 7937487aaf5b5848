"""Signed download URLs: an HMAC over what is downloaded and until when.

The signature covers the space, the package version (by its keys) and the blob's SHA-256,
so a URL cannot be reused for another package, and stops working when the version is
overwritten or the expiry (Unix seconds) passes.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def _message(
    space_id: uuid.UUID, package_id_key: str, version_key: str, sha256: str, expires: int
) -> bytes:
    return "\n".join((str(space_id), package_id_key, version_key, sha256, str(expires))).encode()


def sign_download(
    secret: bytes,
    *,
    space_id: uuid.UUID,
    package_id_key: str,
    version_key: str,
    sha256: str,
    expires: int,
) -> str:
    message = _message(space_id, package_id_key, version_key, sha256, expires)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_download(
    secret: bytes,
    *,
    space_id: uuid.UUID,
    package_id_key: str,
    version_key: str,
    sha256: str,
    expires: int,
    signature: str,
    now: float,
) -> bool:
    if expires < now:
        return False
    expected = sign_download(
        secret,
        space_id=space_id,
        package_id_key=package_id_key,
        version_key=version_key,
        sha256=sha256,
        expires=expires,
    )
    return hmac.compare_digest(expected, signature)
