"""The guarded httpx transport dials only admitted addresses, whatever the URL's host says."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.http.outbound import guarded_transport
from cephalo_common.testing import serving
from cephalo_common.urls import LOOPBACK, OutboundPolicy, OutboundSettings


def _hello_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_an_internal_address_is_not_dialled_unless_allow_listed(host: str) -> None:
    async with serving(_hello_app(), lifespan="off") as url:
        port = url.rsplit(":", 1)[1]
        target = f"http://{host}:{port}/hello"
        strict = guarded_transport(OutboundPolicy(schemes=frozenset({"http"})))
        async with httpx.AsyncClient(transport=strict) as client:
            with pytest.raises(httpx.ConnectError, match="outbound guard"):
                await client.get(target)
        allowed = OutboundPolicy.from_settings(
            OutboundSettings(allow=list(LOOPBACK)), schemes=("http",)
        )
        async with httpx.AsyncClient(transport=guarded_transport(allowed)) as client:
            response = await client.get(target)
        assert response.json() == {"hello": "world"}
