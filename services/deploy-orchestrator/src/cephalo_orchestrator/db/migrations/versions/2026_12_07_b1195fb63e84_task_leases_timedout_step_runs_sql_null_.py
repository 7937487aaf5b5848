"""task leases, TimedOut step runs, SQL NULL for no held verdict

Revision ID: b1195fb63e84
Revises: 5af63158063e
Create Date: 2026-12-07 14:40:23.144097
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b1195fb63e84'
down_revision: str | None = '5af63158063e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUN_STATES = "'Pending', 'Running', 'Success', 'Failed', 'Canceled'"
_RUN_STATES_WITH_TIMED_OUT = _RUN_STATES + ", 'TimedOut'"


def _replace_run_state_check(states: str) -> None:
    """Autogenerate does not see a changed CHECK: drop and re-create the state check."""
    name = op.f('ck_step_runs__state')
    op.drop_constraint(name, 'step_runs', type_='check', schema='orchestrator')
    op.create_check_constraint(name, 'step_runs', f'state IN ({states})', schema='orchestrator')


def upgrade() -> None:
    op.add_column('server_tasks', sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True), schema='orchestrator')
    op.create_index('ix_server_tasks__lease_expires_at', 'server_tasks', ['lease_expires_at'], unique=False, schema='orchestrator', postgresql_where=sa.text("state IN ('Executing', 'Paused', 'Cancelling')"))
    _replace_run_state_check(_RUN_STATES_WITH_TIMED_OUT)
    op.execute("UPDATE orchestrator.step_runs SET reported = NULL WHERE reported = 'null'::jsonb")


def downgrade() -> None:
    op.execute("UPDATE orchestrator.step_runs SET state = 'Failed' WHERE state = 'TimedOut'")
    _replace_run_state_check(_RUN_STATES)
    op.drop_index('ix_server_tasks__lease_expires_at', table_name='server_tasks', schema='orchestrator', postgresql_where=sa.text("state IN ('Executing', 'Paused', 'Cancelling')"))
    op.drop_column('server_tasks', 'lease_expires_at', schema='orchestrator')
