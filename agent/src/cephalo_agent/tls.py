"""TLS contexts that trust exactly the pinned peer certificate, and nothing else.

`ssl.create_default_context` (under `cephalo_common.security.tls`) also loads the system's
public CA certificates, so a certificate from any public CA would pass the handshake and
only the thumbprint check after it would stop it. These contexts start empty: the pinned
certificate is the only trust anchor, TLS 1.2 is the minimum, a peer certificate is required.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path


def _pinned(
    protocol: int, cert_file: Path, key_file: Path, trusted: Iterable[str]
) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_cert_chain(str(cert_file), str(key_file))
    for pem in trusted:
        context.load_verify_locations(cadata=pem)
    return context


def pinned_client_context(cert_file: Path, key_file: Path, peer_pem: str) -> ssl.SSLContext:
    """Dial a peer presenting our certificate; accept only the pinned peer certificate."""
    return _pinned(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, [peer_pem])


def pinned_server_context(
    cert_file: Path, key_file: Path, client_pems: Iterable[str]
) -> ssl.SSLContext:
    """Serve with our certificate; require a client certificate from `client_pems`."""
    return _pinned(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, client_pems)
