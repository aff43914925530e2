"""The scheduler's database: schema, migrations, the action queue and typed repository helpers."""

from services.common.db.engine import create_engine, db_now, write_transaction
from services.common.db.migrate import current_revision, head_revision, migrate, migrate_engine
from services.common.db.queue import (
    ActionNotifier,
    ClaimedAction,
    action_notifier,
    claim_next_action,
    claim_next_actions,
    complete_action,
    enqueue_action,
    extend_lease,
    insert_action,
    release_action,
    wait_for_action,
)
from services.common.db.schema import metadata

__all__ = [
    "ActionNotifier",
    "ClaimedAction",
    "action_notifier",
    "claim_next_action",
    "claim_next_actions",
    "complete_action",
    "create_engine",
    "current_revision",
    "db_now",
    "enqueue_action",
    "extend_lease",
    "head_revision",
    "insert_action",
    "metadata",
    "migrate",
    "migrate_engine",
    "release_action",
    "wait_for_action",
    "write_transaction",
]
