"""Alembic, one history per service, each in its own Postgres schema and version table.

A service keeps `db/migrations/{env.py, script.py.mako, versions/}`; its env.py calls
`run_env(metadata)`. Tests and the Helm hook call `upgrade()`; nothing migrates at app start.

Developer use: `python -m cephalo_common.db.migrations <package> revision --autogenerate -m "…"`
(with `CEPHALO_MIGRATIONS_URL` pointing at a database).
"""

from __future__ import annotations

import asyncio
import os
import sys

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cephalo_common.settings import DEFAULT_DATABASE_URL


def alembic_config(package: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:db/migrations")
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["url"] = url
    return config


def upgrade(package: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(package, url), revision)


def _do_run(connection: Connection, metadata: MetaData) -> None:
    schema = metadata.schema
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=lambda name, type_, _: type_ != "schema" or name == schema,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_do_run, metadata)
        await connection.commit()
    await engine.dispose()


def run_env(metadata: MetaData) -> None:
    """The body of every service's env.py (online mode only: Postgres is always there)."""
    url = context.config.attributes.get("url") or os.environ.get(
        "CEPHALO_MIGRATIONS_URL", DEFAULT_DATABASE_URL
    )
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _do_run(connection, metadata)
        return
    asyncio.run(_run_online(url, metadata))


def main(argv: list[str]) -> None:
    """`<package> <alembic command> [args]`, e.g. `cephalo_release revision --autogenerate -m x`."""
    from alembic.config import CommandLine

    package, rest = argv[0], argv[1:]
    url = os.environ.get("CEPHALO_MIGRATIONS_URL", DEFAULT_DATABASE_URL)
    cli = CommandLine()
    options = cli.parser.parse_args(rest)
    config = alembic_config(package, url)
    cli.run_cmd(config, options)


if __name__ == "__main__":
    main(sys.argv[1:])
