"""Task federation session and automatic-retry count; queue ids never reused on SQLite.

Each task records the federation session its current run uses (a rerun starts a new
one at every member, an automatic retry keeps it) and how many automatic retries its
current run has used. On SQLite, flow_action_queue is rebuilt with AUTOINCREMENT: without
it the id of a completed (deleted) action is handed to the next one, which the unique
flow_action_log.action_id then refuses.

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
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "flow_action_queue", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
        # The rebuild reflects the claim index without its DESC: put it back as 0001 made it.
        op.drop_index("ix_flow_action_queue_claim_order", table_name="flow_action_queue")
        op.create_index(
            "ix_flow_action_queue_claim_order", "flow_action_queue", [sa.text("priority DESC"), "id"]
        )
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("session_id", sa.String(NAME), nullable=True))
        batch.add_column(sa.Column("retries", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("retries")
        batch.drop_column("session_id")
