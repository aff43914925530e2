"""Initial schema: action queue and log, jobs, tasks, task progress and results, data sets, members.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types as of this revision (schema.py may move on).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Epoch = sa.Double
ID = 64
MEMBER_ID = 32
NAME = 191
SHORT = 32


def upgrade() -> None:
    op.create_table(
        "flow_action_queue",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("producer", sa.String(NAME), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("action", sa.String(ID), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("claimed_by", sa.String(NAME), nullable=True),
        sa.Column("claimed_at", Epoch, nullable=True),
        sa.Column("lease_until", Epoch, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_flow_action_queue"),
    )
    op.create_index(
        "ix_flow_action_queue_claim_order",
        "flow_action_queue",
        [sa.text("priority DESC"), "id"],
    )

    op.create_table(
        "flow_action_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.BigInteger, nullable=False),
        sa.Column("producer", sa.String(NAME), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("action", sa.String(ID), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("consumer", sa.String(NAME), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(SHORT), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("claimed_at", Epoch, nullable=True),
        sa.Column("finished_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_action_log"),
        sa.UniqueConstraint("action_id", name="uq_flow_action_log_action_id"),
    )
    op.create_index("ix_flow_action_log_finished_at", "flow_action_log", ["finished_at"])

    op.create_table(
        "job",
        sa.Column("job_id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False, server_default=""),
        sa.Column("member_id", sa.String(MEMBER_ID), nullable=False),
        sa.Column("my_roles", sa.JSON, nullable=False),
        sa.Column("initiator_member_id", sa.String(MEMBER_ID), nullable=False),
        sa.Column("initiator_role", sa.String(SHORT), nullable=False),
        sa.Column("status", sa.String(SHORT), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("progress", sa.Double, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.Column("started_at", Epoch, nullable=True),
        sa.Column("ended_at", Epoch, nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_job"),
    )
    op.create_index("ix_job_status", "job", ["status"])
    op.create_index("ix_job_created_at", "job", ["created_at"])

    op.create_table(
        "task",
        sa.Column("task_id", sa.String(NAME), nullable=False),
        sa.Column("job_id", sa.String(ID), nullable=False),
        sa.Column("component", sa.String(NAME), nullable=False),
        sa.Column("module", sa.String(NAME), nullable=False),
        sa.Column("role", sa.String(SHORT), nullable=False),
        sa.Column("member_id", sa.String(MEMBER_ID), nullable=False),
        sa.Column("status", sa.String(SHORT), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("executor", sa.String(NAME), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.Column("started_at", Epoch, nullable=True),
        sa.Column("ended_at", Epoch, nullable=True),
        sa.PrimaryKeyConstraint("task_id", name="pk_task"),
    )
    op.create_index("ix_task_job_id", "task", ["job_id"])
    op.create_index("ix_task_status", "task", ["status"])

    op.create_table(
        "task_progress",
        sa.Column("task_id", sa.String(NAME), nullable=False),
        sa.Column("job_id", sa.String(ID), nullable=False),
        sa.Column("progress", sa.Double, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_task_progress"),
    )
    op.create_index("ix_task_progress_job_id", "task_progress", ["job_id"])

    op.create_table(
        "task_result",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(NAME), nullable=False),
        sa.Column("job_id", sa.String(ID), nullable=False),
        sa.Column("component", sa.String(NAME), nullable=False),
        sa.Column("role", sa.String(SHORT), nullable=False),
        sa.Column("member_id", sa.String(MEMBER_ID), nullable=False),
        sa.Column("kind", sa.String(SHORT), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_result"),
        sa.UniqueConstraint("task_id", "kind", "name", name="uq_task_result_task_id_kind_name"),
    )
    op.create_index("ix_task_result_job_id", "task_result", ["job_id"])

    op.create_table(
        "data_set",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(NAME), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("column_count", sa.Integer, nullable=False),
        sa.Column("data_schema", sa.JSON, nullable=False),
        sa.Column("id_column", sa.String(NAME), nullable=True),
        sa.Column("label_column", sa.String(NAME), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_data_set"),
        sa.UniqueConstraint("namespace", "name", name="uq_data_set_namespace_name"),
    )

    op.create_table(
        "member",
        sa.Column("member_id", sa.String(MEMBER_ID), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False, server_default=""),
        sa.Column("endpoint", sa.String(NAME), nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name="pk_member"),
    )


def downgrade() -> None:
    for table in (
        "member",
        "data_set",
        "task_result",
        "task_progress",
        "task",
        "job",
        "flow_action_log",
        "flow_action_queue",
    ):
        op.drop_table(table)
