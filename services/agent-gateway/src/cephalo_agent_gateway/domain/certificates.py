"""Agent certificates as registered: exactly one parsed, currently valid X.509 certificate."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cephalo_common.errors import Invalid
from cephalo_common.ids import utc_now
from cephalo_common.security.tls import der_thumbprint


@dataclass(frozen=True)
class ClientCertificate:
    pem: str
    thumbprint: str


def parse_client_certificate(pem: str) -> ClientCertificate:
    """Normalise the PEM to its one certificate, so the trust store holds nothing else."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        raise Invalid(
            "certificate_pem is not a PEM-encoded X.509 certificate",
            errors=[{"field": "body.certificate_pem", "message": str(error), "code": "pem"}],
        ) from error
    now = utc_now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Invalid(
            "the certificate is not valid now "
            f"(valid from {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d})",
            errors=[{"field": "body.certificate_pem", "message": "expired", "code": "validity"}],
        )
    der = certificate.public_bytes(serialization.Encoding.DER)
    normalised = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return ClientCertificate(pem=normalised, thumbprint=der_thumbprint(der))
