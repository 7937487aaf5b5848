"""Pinned mutual TLS between agent-gateway and agents, after Octopus's Halibut.

Each side owns a self-signed certificate and trusts exactly the peers whose certificates it
was given: the trust store holds those certificates and nothing else (no system CAs), so an
unknown or changed certificate fails the handshake; TLS 1.2 is the minimum. The SHA-256 thumbprint of the DER form is what
people compare and what the other side stores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "certificate.pem"
KEY_FILE = "private-key.pem"


def generate_self_signed(common_name: str, *, days: int = 3650) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for it, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_identity(directory: Path, common_name: str) -> str:
    """Create certificate and key files in `directory` unless present; return the thumbprint."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if not cert_path.exists() or not key_path.exists():
        cert_pem, key_pem = generate_self_signed(common_name)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        cert_path.write_bytes(cert_pem)
    return thumbprint(cert_path.read_bytes())


def thumbprint(cert_pem: bytes | str) -> str:
    """Upper-case hex SHA-256 of the certificate's DER encoding."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return der_thumbprint(der)


def der_thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest().upper()


def thumbprints_equal(a: str, b: str) -> bool:
    """Constant-time, case-insensitive comparison of two thumbprints."""
    return hmac.compare_digest(a.strip().upper().encode(), b.strip().upper().encode())


def _pinned(
    protocol: int, cert_file: Path, key_file: Path, trusted: Iterable[str]
) -> ssl.SSLContext:
    """A context whose only trust anchors are `trusted`: not `ssl.create_default_context`,
    which would also load the system's public CAs."""
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_cert_chain(str(cert_file), str(key_file))
    for pem in trusted:
        trust(context, pem)
    return context


def server_context(
    cert_file: Path, key_file: Path, trusted_client_pems: Iterable[str]
) -> ssl.SSLContext:
    """Serve with our certificate; require a client certificate from the trusted list."""
    return _pinned(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, trusted_client_pems)


def client_context(cert_file: Path, key_file: Path, trusted_server_pem: str) -> ssl.SSLContext:
    """Dial presenting our certificate; accept only the one pinned server certificate."""
    return _pinned(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, [trusted_server_pem])


def trust(context: ssl.SSLContext, pem: str) -> None:
    """Add one peer certificate to a context's trust store; new handshakes see it."""
    context.load_verify_locations(cadata=pem)
