from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cephalo_common.db.migrations import alembic_config, upgrade

FIRST_REVISION = "1b462ec7d653"


def test_package_feed_has_a_single_migration_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config("cephalo_feed", database_url))
    assert len(script.get_heads()) == 1


def test_feed_models_and_migrations_agree(migrate: Callable[[str], str]) -> None:
    command.check(alembic_config("cephalo_feed", migrate("cephalo_feed")))


async def _execute(
    url: str, *statements: str, autocommit: bool = False
) -> list[tuple[object, ...]]:
    engine = create_async_engine(
        url, isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED"
    )
    rows: list[tuple[object, ...]] = []
    try:
        async with engine.begin() as connection:
            for statement in statements:
                result = await connection.execute(text(statement))
                if result.returns_rows:
                    rows.extend(tuple(row) for row in result.all())
    finally:
        await engine.dispose()
    return rows


def test_existing_packages_survive_the_blob_and_version_key_migration(database_url: str) -> None:
    """Rows from the first schema get a blob each (shared by equal hashes), a semantic
    version key and their extension."""
    name = f"feed_upgrade_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(database_url, f"CREATE DATABASE {name}", autocommit=True))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    upgrade("cephalo_feed", url, FIRST_REVISION)
    space = uuid.uuid4()
    insert = (
        "INSERT INTO feed.packages (id, space_id, package_id, version, size_bytes, sha256, "
        "storage_key, published_at) VALUES "
        f"(gen_random_uuid(), '{space}', 'Acme.Web', '1.0', 10, '{'a' * 64}', 'k/Acme.Web.1.0.zip', now()), "
        f"(gen_random_uuid(), '{space}', 'Acme.Web', '2.0.0.0', 10, '{'a' * 64}', 'k/Acme.Web.2.0.0.0.tar.gz', now())"
    )
    asyncio.run(_execute(url, insert))
    upgrade("cephalo_feed", url)
    rows = asyncio.run(
        _execute(
            url,
            "SELECT version, version_key, extension FROM feed.packages ORDER BY version",
            "SELECT count(*) FROM feed.blobs",
        )
    )
    assert rows == [("1.0", "1.0.0", ".zip"), ("2.0.0.0", "2.0.0", ".tar.gz"), (1,)]
    command.check(alembic_config("cephalo_feed", url))
