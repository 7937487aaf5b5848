from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory

from cephalo_common.db.migrations import alembic_config

PACKAGE = "cephalo_agent_gateway"


def test_migrations_have_a_single_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(PACKAGE, database_url))
    assert len(script.get_heads()) == 1


def test_models_match_the_migrations(migrate: Callable[[str], str]) -> None:
    url = migrate(PACKAGE)
    command.check(alembic_config(PACKAGE, url))
