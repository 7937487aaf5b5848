"""SSRF: a listening URL leading to an internal address is refused with a 422 problem and
nothing is written, unless the operator allow-listed it; and the dial itself is guarded too, so
a name that points elsewhere by then (DNS rebinding) is not followed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from cephalo_agent_gateway.domain.transport import MachineNotConnected
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import RunningGateway, Space, gateway_running, unique
from cephalo_agent_gateway.transport.listening import (
    Endpoint,
    ListeningOptions,
    ListeningTransport,
)
from cephalo_common.agent_protocol import RequestMessage, Services
from cephalo_common.embedded import free_port
from cephalo_common.urls import OutboundPolicy

INTERNAL_URLS = [
    "https://127.0.0.1:10933",
    "https://localhost:10933",
    "https://2130706433:10933",
    "https://169.254.169.254",
    "https://[fd00:ec2::254]",
    "https://10.1.2.3:10933",
    "https://[::ffff:127.0.0.1]:10933",
    "https://admin:secret@agent.example.com:10933",
    "https://[::1]x:10933",
]


async def _refused(gateway: RunningGateway, url: str, body: dict[str, object]) -> None:
    response = await gateway.client.post(url, json=body)
    assert response.status_code == 422, (body, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/url-refused"), problem
    assert problem["errors"][0]["field"] == "body.listening_url"


async def test_internal_listening_urls_are_refused_and_nothing_is_written(
    gateway_settings: Callable[..., AgentGatewaySettings], space: Space, agent: FakeAgent
) -> None:
    async with gateway_running(gateway_settings(outbound={"allow": []})) as gateway:
        base = f"/api/v1/spaces/{space.id}"
        for listening_url in INTERNAL_URLS:
            common = {
                "certificate_pem": agent.certificate_pem,
                "mode": "listening",
                "listening_url": listening_url,
            }
            target = {**common, "name": unique("web"), "environments": ["Production"]}
            await _refused(gateway, f"{base}/machines/register", target)
            await _refused(gateway, f"{base}/workers/register", {**common, "name": unique("w")})
            await _refused(gateway, f"{base}/machines/pending", {**common, "name": unique("p")})
        assert (await gateway.client.get(f"{base}/machines")).json() == []
        assert (await gateway.client.get(f"{base}/machines/pending")).json() == []


async def test_an_allow_listed_network_is_accepted(
    gateway_settings: Callable[..., AgentGatewaySettings], space: Space, agent: FakeAgent
) -> None:
    settings = gateway_settings(outbound={"allow": ["10.1.0.0/16"]})
    async with gateway_running(settings) as gateway:
        response = await gateway.client.post(
            f"/api/v1/spaces/{space.id}/machines/register",
            json={
                "name": unique("web"),
                "certificate_pem": agent.certificate_pem,
                "environments": ["Production"],
                "mode": "listening",
                "listening_url": "https://10.1.2.3:10933",
            },
        )
    assert response.status_code == 201, response.text
    assert response.json()["uri"] == "https://10.1.2.3:10933"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_dial_is_refused_when_the_address_is_internal_by_then(
    gateway: RunningGateway, agent: FakeAgent, host: str
) -> None:
    """The URL was accepted under an allow-list (or its name pointed elsewhere); the dial
    checks the addresses it connects to again and does not open a socket to them."""
    options = ListeningOptions(
        connect_timeout_seconds=2,
        rpc_timeout_seconds=2,
        keepalive_seconds=2,
        max_connections_per_machine=1,
        outbound=OutboundPolicy(),
    )
    transport = ListeningTransport(gateway.gateway.identity, options)
    endpoint = Endpoint(
        machine_id=uuid.uuid4(),
        name="rebound",
        uri=f"https://{host}:{free_port()}",
        certificate_pem=agent.certificate_pem,
        thumbprint=agent.thumbprint,
    )
    request = RequestMessage(id="1", service=Services.CAPABILITIES, method="get_capabilities")
    try:
        with pytest.raises(MachineNotConnected, match="outbound guard"):
            await transport.invoke(endpoint, request)
    finally:
        await transport.aclose()
