"""pytest plugin (loaded from the root config): real servers once per test session.

`--database-url` and `--nats-url` point the suite at external servers instead.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
