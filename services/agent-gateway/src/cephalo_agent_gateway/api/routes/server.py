from __future__ import annotations

from fastapi import APIRouter

from cephalo_agent_gateway.deps import GatewayDep
from cephalo_agent_gateway.schemas.machines import ServerCertificate

router = APIRouter(prefix="/api/v1", tags=["server"])


@router.get("/server-certificate")
async def server_certificate(gateway: GatewayDep) -> ServerCertificate:
    """What agents pin: compare this thumbprint out of band before trusting it."""
    identity = gateway.identity
    return ServerCertificate(
        thumbprint=identity.thumbprint, certificate_pem=identity.certificate_pem
    )
