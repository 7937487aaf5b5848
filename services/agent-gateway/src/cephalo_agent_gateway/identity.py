"""The gateway's own TLS identity: a self-signed certificate agents pin by thumbprint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cephalo_common.security.tls import CERT_FILE, KEY_FILE, write_identity

COMMON_NAME = "cephalo-agent-gateway"


@dataclass(frozen=True)
class ServerIdentity:
    cert_file: Path
    key_file: Path
    certificate_pem: str
    thumbprint: str


def load_server_identity(data_dir: Path) -> ServerIdentity:
    """Create the certificate and key in `data_dir` on first start; reuse them afterwards.

    Every agent pins this certificate: losing `data_dir` means re-registering every agent.
    """
    directory = data_dir.expanduser()
    thumbprint = write_identity(directory, COMMON_NAME)
    (directory / KEY_FILE).chmod(0o600)
    return ServerIdentity(
        cert_file=directory / CERT_FILE,
        key_file=directory / KEY_FILE,
        certificate_pem=(directory / CERT_FILE).read_text(),
        thumbprint=thumbprint,
    )
