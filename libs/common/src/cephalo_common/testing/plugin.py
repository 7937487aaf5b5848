"""pytest plugin (loaded from the root config): real servers once per test session.

`--database-url` and `--nats-url` point the suite at external servers instead.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cephalo")
    group.addoption(
        "--database-url", default=None, help="Use this Postgres instead of one started here."
    )
    group.addoption("--nats-url", default=None, help="Use this NATS instead of one started here.")


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    """A world-traversable temp dir (Postgres runs as another user when we are root)."""
    path = Path(tempfile.mkdtemp(prefix="cephalo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(
    request: pytest.FixtureRequest, scratch_dir: Path
) -> Iterator[EmbeddedPostgres | None]:
    if request.config.getoption("--database-url"):
        yield None
        return
    server = EmbeddedPostgres(scratch_dir / "postgres", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, postgres_server: EmbeddedPostgres | None) -> str:
    external = request.config.getoption("--database-url")
    if external:
        return str(external)
    assert postgres_server is not None
    return postgres_server.url()


@pytest.fixture(scope="session")
def nats_server(request: pytest.FixtureRequest, scratch_dir: Path) -> Iterator[EmbeddedNats | None]:
    if request.config.getoption("--nats-url"):
        yield None
        return
    server = EmbeddedNats(scratch_dir / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(request: pytest.FixtureRequest, nats_server: EmbeddedNats | None) -> str:
    external = request.config.getoption("--nats-url")
    if external:
        return str(external)
    assert nats_server is not None
    return nats_server.url


@pytest.fixture(scope="session")
def migrate(database_url: str) -> Callable[[str], str]:
    """`migrate("cephalo_release")` builds that service's schema once; returns the URL."""
    done: set[str] = set()

    def run(package: str) -> str:
        if package not in done:
            upgrade(package, database_url)
            done.add(package)
        return database_url

    return run


@pytest.fixture(scope="session")
def new_database(database_url: str) -> Callable[[str], str]:
    """`new_database("cli")` creates a database of its own on the session's server (once per
    name) and returns its URL.

    A whole stack gets one: release-service refuses to start beside sensitive values sealed
    with a master key it does not hold, so stacks with their own keys must not share tables.
    """
    made: dict[str, str] = {}

    def create(name: str) -> str:
        if name not in made:
            database = f"{re.sub(r'[^a-z0-9_]', '_', name.lower())}_{uuid.uuid4().hex[:8]}"
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _create_database(database_url, database)).result()
            made[name] = (
                make_url(database_url).set(database=database).render_as_string(hide_password=False)
            )
        return made[name]

    return create


async def _create_database(database_url: str, database: str) -> None:
    url = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def new_nats(scratch_dir: Path) -> Iterator[Callable[[str], str]]:
    """`new_nats("cli")` starts a NATS server of its own (once per name) and returns its URL.

    A whole stack gets one beside its own database: services of two stacks on one NATS share
    durable consumers and would take each other's messages.
    """
    servers: dict[str, EmbeddedNats] = {}

    def start(name: str) -> str:
        if name not in servers:
            server = EmbeddedNats(scratch_dir / f"nats-{name}", free_port())
            server.start()
            servers[name] = server
        return servers[name].url

    yield start
    for server in servers.values():
        server.stop()
