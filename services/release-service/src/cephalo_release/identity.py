"""Who asked: the person or build server the api-gateway vouches for in `X-Cephalo-Identity`.

A request without the header (a direct call inside the trusted network, or a test) has no
known requester; a header that does not verify is a 401, never silently ignored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cephalo_common.errors import Unauthorized
from cephalo_common.security import internal_token

AUDIENCE = "release-service"
MAX_NAME = 200


async def requester(request: Request) -> str | None:
    """The verified identity's user name (else its subject), or None without a header."""
    token = request.headers.get(internal_token.HEADER)
    if token is None:
        return None
    secret = request.app.state.runtime.settings.internal_token_secret.get_secret_value()
    try:
        identity = internal_token.verify(token, AUDIENCE, secret.encode())
    except internal_token.InvalidToken as error:
        raise Unauthorized(f"the caller's identity cannot be trusted: {error}") from error
    name = identity.get("name") or identity.get("sub")
    return str(name)[:MAX_NAME] if name else None


RequesterDep = Annotated[str | None, Depends(requester)]
