from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory

from cephalo_common.db.migrations import alembic_config


def test_release_service_has_a_single_migration_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config("cephalo_release", database_url))
    assert len(script.get_heads()) == 1


def test_models_and_migrations_agree(migrate: Callable[[str], str]) -> None:
    command.check(alembic_config("cephalo_release", migrate("cephalo_release")))


def test_existing_rows_are_backfilled_by_the_lifecycle_migration(database_url: str) -> None:
    """A database holding a project, an environment, a release and a deployment from the
    first revision keeps them: each gets a slug, a lifecycle, a group and a channel."""
    import asyncio
    import uuid

    import asyncpg

    from cephalo_common.db.migrations import upgrade

    name = f"migration_{uuid.uuid4().hex[:8]}"
    base, _, _ = database_url.rpartition("/")
    url = f"{base}/{name}"
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    admin = database_url.replace("postgresql+asyncpg://", "postgresql://")

    async def sql(target: str, *statements: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(target)
        try:
            rows: list[asyncpg.Record] = []
            for statement in statements:
                rows = await connection.fetch(statement)
            return rows
        finally:
            await connection.close()

    asyncio.run(sql(admin, f'CREATE DATABASE "{name}"'))
    upgrade("cephalo_release", url, "a94bac356a51")
    space, env, project, release = (uuid.uuid4() for _ in range(4))
    asyncio.run(
        sql(
            plain,
            f"UPDATE release.spaces SET id = '{space}'",
            f"INSERT INTO release.environments (id, space_id, name, description, sort_order, "
            f"use_guided_failure, allow_dynamic_infrastructure) VALUES "
            f"('{env}', '{space}', 'Pre Prod!', '', 0, false, false)",
            f"INSERT INTO release.projects (id, space_id, name, slug, description) VALUES "
            f"('{project}', '{space}', 'Shop', 'shop', '')",
            f"INSERT INTO release.releases (id, space_id, project_id, version, release_notes, "
            f"process_snapshot, process_version) VALUES ('{release}', '{space}', '{project}', "
            f"""'1.0', '', '[{{"id": "{uuid.uuid4()}", "name": "s", "target_roles": ["web"], """
            f"""\"script_body": "echo", "syntax": "bash"}}]'::jsonb, 1)""",
            f"INSERT INTO release.deployments (id, space_id, project_id, release_id, "
            f"environment_id, state) VALUES ('{uuid.uuid4()}', '{space}', '{project}', "
            f"'{release}', '{env}', 'Success')",
        )
    )
    upgrade("cephalo_release", url)
    rows = asyncio.run(
        sql(
            plain,
            "SELECT e.slug, p.lifecycle_id IS NOT NULL AS has_lifecycle, "
            "p.project_group_id IS NOT NULL AS has_group, r.channel_id = c.id AS in_channel, "
            "d.channel_id = c.id AS deployment_channel, l.phases->0->>'name' AS phase "
            "FROM release.environments e, release.projects p "
            "JOIN release.releases r ON r.project_id = p.id "
            "JOIN release.channels c ON c.project_id = p.id AND c.is_default "
            "JOIN release.deployments d ON d.release_id = r.id "
            "JOIN release.lifecycles l ON l.id = p.lifecycle_id",
        )
    )
    asyncio.run(sql(admin, f'DROP DATABASE "{name}" WITH (FORCE)'))
    assert [tuple(row) for row in rows] == [("pre-prod", True, True, True, True, "Any environment")]
