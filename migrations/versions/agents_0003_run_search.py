"""agents: the run list's indexes (newest first, by status or by key, paged by a cursor) and its input text

Revision ID: agents_0003_search
Revises: agents_0003_trace
Create Date: 2026-12-05 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'agents_0003_search'
down_revision = 'agents_0003_trace'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_runs_created_at')
        batch_op.drop_index('ix_agent_runs_status')
        batch_op.create_index('ix_agent_runs_created_run', ['created_at', 'run_id'], unique=False)
        batch_op.create_index('ix_agent_runs_status_created_run', ['status', 'created_at', 'run_id'], unique=False)
        batch_op.create_index('ix_agent_runs_owner_created_run', ['owner', 'created_at', 'run_id'], unique=False)
        batch_op.add_column(sa.Column('input_text', sa.Text(), nullable=True))
    # The input of the runs already stored, read once out of their request.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE agent_runs SET input_text = request::json ->> 'input'")
    else:
        op.execute("UPDATE agent_runs SET input_text = json_extract(request, '$.input')")


def downgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.drop_column('input_text')
        batch_op.drop_index('ix_agent_runs_owner_created_run')
        batch_op.drop_index('ix_agent_runs_status_created_run')
        batch_op.drop_index('ix_agent_runs_created_run')
        batch_op.create_index('ix_agent_runs_status', ['status'], unique=False)
        batch_op.create_index('ix_agent_runs_created_at', ['created_at'], unique=False)
