"""Client access: users, their API tokens (hashed) and the audit log of client calls.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Epoch = sa.Double
USER = 64
NAME = 191
SHORT = 32


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(USER), nullable=False),
        sa.Column("role", sa.String(SHORT), nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("created_by", sa.String(USER), nullable=False, server_default=""),
        sa.Column("revoked_at", Epoch, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(SHORT), nullable=False),
        sa.Column("user_name", sa.String(USER), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("expires_at", Epoch, nullable=True),
        sa.Column("revoked_at", Epoch, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
    )
    op.create_index("ix_api_tokens_user_name", "api_tokens", ["user_name"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", Epoch, nullable=False),
        sa.Column("user_name", sa.String(USER), nullable=False),
        sa.Column("via", sa.String(SHORT), nullable=False),
        sa.Column("credential_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("method", sa.String(NAME), nullable=False),
        sa.Column("target", sa.String(NAME), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(SHORT), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_api_tokens_user_name", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
