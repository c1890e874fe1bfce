"""agents: conversations, whose turns are the runs that name them

Revision ID: agents_0003_conversations
Revises: agents_0002_owner
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'agents_0003_conversations'
down_revision = 'agents_0002_owner'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'agent_conversations',
        sa.Column('conversation_id', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=True),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    op.create_index('ix_agent_conversations_owner', 'agent_conversations', ['owner', 'created_at'])
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_id', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_agent_runs_conversation', ['conversation_id', 'created_at'])


def downgrade() -> None:
    with op.batch_alter_table('agent_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_runs_conversation')
        batch_op.drop_column('conversation_id')
    op.drop_index('ix_agent_conversations_owner', table_name='agent_conversations')
    op.drop_table('agent_conversations')
