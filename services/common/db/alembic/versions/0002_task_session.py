"""Task federation session and automatic-retry count.

Each task records the federation session its current run uses (a rerun starts a new
one at every member, an automatic retry keeps it) and how many automatic retries its
current run has used.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

NAME = 191


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("session_id", sa.String(NAME), nullable=True))
        batch.add_column(sa.Column("retries", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("retries")
        batch.drop_column("session_id")
