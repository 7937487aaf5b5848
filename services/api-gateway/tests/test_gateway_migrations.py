from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

from cephalo_common.db.migrations import alembic_config


def test_api_gateway_has_a_single_migration_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config("cephalo_gateway", database_url))
    assert len(script.get_heads()) == 1


def test_gateway_models_and_migrations_agree(gateway_database_url: str) -> None:
    command.check(alembic_config("cephalo_gateway", gateway_database_url))
