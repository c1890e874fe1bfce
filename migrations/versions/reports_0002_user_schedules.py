"""schedules added at run time through the API and the CLI

Revision ID: reports_0002
Revises: reports_0001
Create Date: 2026-12-05 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'reports_0002'
down_revision = 'reports_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_schedules',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('task', sa.String(length=128), nullable=False),
    sa.Column('cron', sa.String(length=400), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('kwargs', sa.JSON(), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('user_schedules')
