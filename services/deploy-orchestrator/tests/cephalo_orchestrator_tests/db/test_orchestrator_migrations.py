from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory

from cephalo_common.db.migrations import alembic_config


def test_orchestrator_has_a_single_migration_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config("cephalo_orchestrator", database_url))
    assert len(script.get_heads()) == 1


def test_orchestrator_models_and_migrations_agree(migrate: Callable[[str], str]) -> None:
    command.check(alembic_config("cephalo_orchestrator", migrate("cephalo_orchestrator")))
