"""Registration and the machines API, against the real release-service."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import RunningGateway, Space, gateway_running, unique
from cephalo_common.embedded import free_port
from cephalo_common.security.tls import thumbprint, thumbprints_equal


def expired_certificate_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def registration(agent: FakeAgent, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": unique("web"),
        "certificate_pem": agent.certificate_pem,
        "environments": ["Production"],
        "roles": ["web"],
        "mode": "polling",
    }
    body.update(overrides)
    return body


async def test_register_returns_the_machine_and_what_the_agent_must_pin(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    staging = str(space.environments["Staging"])
    response = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/register",
        json=registration(agent, environments=["production", staging], roles=["web", "db"]),
        headers={"X-Cephalo-Api-Key": "ignored-for-now"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert thumbprints_equal(body["thumbprint"], agent.thumbprint)
    assert body["environment_ids"] == [str(space.environments["Production"]), staging]
    assert body["roles"] == ["web", "db"]
    assert body["mode"] == "polling"
    assert body["connected"] is False
    assert body["polling_endpoint"] == f"wss://127.0.0.1:{gateway.settings.polling_port}/poll"
    assert thumbprint(body["server_certificate_pem"]) == body["server_thumbprint"]
    served = (await gateway.client.get("/api/v1/server-certificate")).json()
    assert served == {
        "thumbprint": body["server_thumbprint"],
        "certificate_pem": body["server_certificate_pem"],
    }


async def test_registering_the_same_agent_again_returns_the_same_machine(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    body = registration(agent)
    first = await gateway.client.post(f"/api/v1/spaces/{space.id}/machines/register", json=body)
    again = await gateway.client.post(f"/api/v1/spaces/{space.id}/machines/register", json=body)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_a_taken_name_or_certificate_is_a_conflict(
    gateway: RunningGateway, space: Space, agent: FakeAgent, tmp_path: Path
) -> None:
    url = f"/api/v1/spaces/{space.id}/machines/register"
    body = registration(agent)
    assert (await gateway.client.post(url, json=body)).status_code == 201
    other = FakeAgent(tmp_path / "other")
    same_name = await gateway.client.post(url, json=registration(other, name=body["name"]))
    assert same_name.status_code == 409
    assert "already exists" in same_name.json()["detail"]
    upper = str(body["name"]).upper()
    same_name_other_case = await gateway.client.post(url, json=registration(other, name=upper))
    assert same_name_other_case.status_code == 409
    same_certificate = await gateway.client.post(url, json=registration(agent))
    assert same_certificate.status_code == 409
    assert "certificate" in same_certificate.json()["detail"]


async def test_an_unknown_environment_is_named_in_a_422(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    response = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/machines/register",
        json=registration(agent, environments=["Production", "Narnia"]),
    )
    assert response.status_code == 422
    problem = response.json()
    assert "Narnia" in problem["detail"]
    assert problem["errors"][0]["field"] == "body.environments"


async def test_an_unknown_space_is_a_404(gateway: RunningGateway, agent: FakeAgent) -> None:
    response = await gateway.client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/machines/register", json=registration(agent)
    )
    assert response.status_code == 404


async def test_bad_registrations_are_422_problems(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    url = f"/api/v1/spaces/{space.id}/machines/register"
    cases = [
        registration(agent, certificate_pem="-----BEGIN CERTIFICATE-----\nnope\n"),
        registration(agent, certificate_pem=expired_certificate_pem()),
        registration(agent, environments=[]),
        registration(agent, mode="listening"),
        registration(agent, mode="carrier-pigeon"),
        registration(agent, name="  "),
        {**registration(agent), "extra": True},
    ]
    for body in cases:
        response = await gateway.client.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    not_a_space = await gateway.client.post(
        "/api/v1/spaces/default/machines/register", json=registration(agent)
    )
    assert not_a_space.status_code == 422
    listed = await gateway.client.get(f"/api/v1/spaces/{space.id}/machines")
    assert listed.json() == []


async def test_release_service_down_is_a_503_not_a_500(
    gateway_settings: Callable[..., AgentGatewaySettings], space: Space, agent: FakeAgent
) -> None:
    settings = gateway_settings(release_service_url=f"http://127.0.0.1:{free_port()}")
    async with gateway_running(settings) as gateway:
        response = await gateway.client.post(
            f"/api/v1/spaces/{space.id}/machines/register", json=registration(agent)
        )
    assert response.status_code == 503
    assert "release-service" in response.json()["detail"]


async def test_machines_are_found_by_environment_and_any_role(
    gateway: RunningGateway, space: Space, tmp_path: Path
) -> None:
    production, staging = space.environments["Production"], space.environments["Staging"]
    web = await gateway.register(FakeAgent(tmp_path / "a"), space, roles=["web"])
    db = await gateway.register(FakeAgent(tmp_path / "b"), space, roles=["db", "cache"])
    staged = await gateway.register(
        FakeAgent(tmp_path / "c"), space, environments=["Staging"], roles=["web"]
    )
    url = f"/api/v1/spaces/{space.id}/machines"

    async def names(**params: Any) -> set[str]:
        response = await gateway.client.get(url, params=params)
        assert response.status_code == 200, response.text
        return {machine["name"] for machine in response.json()}

    assert await names() == {web["name"], db["name"], staged["name"]}
    assert await names(environment_id=str(production)) == {web["name"], db["name"]}
    assert await names(environment_id=str(production), role="web") == {web["name"]}
    assert await names(environment_id=str(production), role=["web", "cache"]) == {
        web["name"],
        db["name"],
    }
    assert await names(environment_id=str(staging), role="db") == set()
    assert await names(environment_id=str(uuid.uuid4())) == set()
    assert (await gateway.client.get(url, params={"environment_id": "x"})).status_code == 422
    assert await names_in_other_space(gateway) == []


async def names_in_other_space(gateway: RunningGateway) -> list[object]:
    response = await gateway.client.get(f"/api/v1/spaces/{uuid.uuid4()}/machines")
    assert response.status_code == 200
    result: list[object] = response.json()
    return result


async def test_a_machine_is_only_visible_in_its_own_space(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    other = uuid.uuid4()
    assert (await gateway.machine(space, machine["id"]))["name"] == machine["name"]
    get = await gateway.client.get(f"/api/v1/spaces/{other}/machines/{machine['id']}")
    assert get.status_code == 404
    delete = await gateway.client.delete(f"/api/v1/spaces/{other}/machines/{machine['id']}")
    assert delete.status_code == 404
    bad_id = await gateway.client.get(f"/api/v1/spaces/{space.id}/machines/not-a-uuid")
    assert bad_id.status_code == 422


async def test_delete_removes_the_machine(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    url = f"/api/v1/spaces/{space.id}/machines/{machine['id']}"
    assert (await gateway.client.delete(url)).status_code == 204
    assert (await gateway.client.get(url)).status_code == 404
    assert (await gateway.client.delete(url)).status_code == 404
