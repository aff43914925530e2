"""The scheduler's tables (SQLAlchemy Core metadata) shared by MySQL/MariaDB and SQLite."""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from services.common.db.constants import (
    ID_LENGTH,
    MEMBER_ID_LENGTH,
    NAME_LENGTH,
    SHORT_LENGTH,
    USER_NAME_LENGTH,
)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: 64-bit auto-increment key; SQLite only auto-increments a column typed INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Times are epoch seconds as floating point: portable, sortable, microsecond-precise.
Epoch = sa.Double

flow_action_queue = sa.Table(
    "flow_action_queue",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("producer", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("action", sa.String(ID_LENGTH), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("claimed_by", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("claimed_at", Epoch, nullable=True),
    sa.Column("lease_until", Epoch, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Without AUTOINCREMENT SQLite hands a deleted row's id to the next insert, and
    # flow_action_log.action_id (unique) would refuse the second action with that id.
    sqlite_autoincrement=True,
)
# The claim query walks this index in its ORDER BY, so FOR UPDATE SKIP LOCKED locks one row
# instead of every candidate a filesort would read.
sa.Index(
    "ix_flow_action_queue_claim_order",
    flow_action_queue.c.priority.desc(),
    flow_action_queue.c.id,
)

flow_action_log = sa.Table(
    "flow_action_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("action_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("producer", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("action", sa.String(ID_LENGTH), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("consumer", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("claimed_at", Epoch, nullable=True),
    sa.Column("finished_at", Epoch, nullable=False, index=True),
)

job = sa.Table(
    "job",
    metadata,
    sa.Column("job_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False, server_default=""),
    # The member this database belongs to, and the roles it holds in the job.
    sa.Column("member_id", sa.String(MEMBER_ID_LENGTH), nullable=False),
    sa.Column("my_roles", sa.JSON, nullable=False),
    sa.Column("initiator_member_id", sa.String(MEMBER_ID_LENGTH), nullable=False),
    sa.Column("initiator_role", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("status", sa.String(SHORT_LENGTH), nullable=False, index=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("progress", sa.Double, nullable=False, server_default="0"),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("created_at", Epoch, nullable=False, index=True),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.Column("started_at", Epoch, nullable=True),
    sa.Column("ended_at", Epoch, nullable=True),
)

task = sa.Table(
    "task",
    metadata,
    sa.Column("task_id", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("job_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("component", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("module", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("role", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("member_id", sa.String(MEMBER_ID_LENGTH), nullable=False),
    sa.Column("status", sa.String(SHORT_LENGTH), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("executor", sa.String(NAME_LENGTH), nullable=True),
    # The federation session of the task's current run, and the automatic retries it used.
    sa.Column("session_id", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.Column("started_at", Epoch, nullable=True),
    sa.Column("ended_at", Epoch, nullable=True),
)

task_progress = sa.Table(
    "task_progress",
    metadata,
    sa.Column("task_id", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("job_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("progress", sa.Double, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("updated_at", Epoch, nullable=False),
)

task_result = sa.Table(
    "task_result",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("job_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("component", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("role", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("member_id", sa.String(MEMBER_ID_LENGTH), nullable=False),
    # data | model | metric, and the output's name (e.g. "train", "model", "auc").
    sa.Column("kind", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.UniqueConstraint("task_id", "kind", "name"),
)

data_set = sa.Table(
    "data_set",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("namespace", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("column_count", sa.Integer, nullable=False),
    # [{"name": ..., "type": ...}, ...] in file order.
    sa.Column("data_schema", sa.JSON, nullable=False),
    sa.Column("id_column", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("label_column", sa.String(NAME_LENGTH), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.UniqueConstraint("namespace", "name"),
)

member = sa.Table(
    "member",
    metadata,
    sa.Column("member_id", sa.String(MEMBER_ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(NAME_LENGTH), nullable=False, server_default=""),
    sa.Column("endpoint", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(USER_NAME_LENGTH), primary_key=True),
    sa.Column("role", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("created_by", sa.String(USER_NAME_LENGTH), nullable=False, server_default=""),
    # Set when the user is revoked: its tokens and certificates stop working.
    sa.Column("revoked_at", Epoch, nullable=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    # The token's public id; only the SHA-256 of its secret is stored.
    sa.Column("token_id", sa.String(SHORT_LENGTH), primary_key=True),
    sa.Column("user_name", sa.String(USER_NAME_LENGTH), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=True),
    sa.Column("revoked_at", Epoch, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Epoch, nullable=False, index=True),
    sa.Column("user_name", sa.String(USER_NAME_LENGTH), nullable=False),
    sa.Column("via", sa.String(SHORT_LENGTH), nullable=False),
    sa.Column("credential_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("method", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("target", sa.String(NAME_LENGTH), nullable=False, server_default=""),
    # The gRPC status name the call ended with (OK, PERMISSION_DENIED, ...).
    sa.Column("outcome", sa.String(SHORT_LENGTH), nullable=False),
    sqlite_autoincrement=True,
)

#: Every table name, for checks that the migrations built them all.
TABLE_NAMES: Final = frozenset(metadata.tables)
