"""agents: the OpenTelemetry trace id a run was started in

Revision ID: agents_0003_trace
Revises: agents_0003_conversations
Create Date: 2026-12-05 08:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'agents_0003_trace'
down_revision = 'agents_0003_conversations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.drop_column('trace_id')
