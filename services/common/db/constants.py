"""Constants of the scheduler's database layer: statuses, outcomes, limits and SQLite pragmas."""

from __future__ import annotations

from typing import Final

# Job and task statuses (the same five words for both).
STATUS_WAITING: Final = "waiting"
STATUS_RUNNING: Final = "running"
STATUS_SUCCESS: Final = "success"
STATUS_FAILED: Final = "failed"
STATUS_STOPPED: Final = "stopped"
STATUSES: Final = frozenset(
    {STATUS_WAITING, STATUS_RUNNING, STATUS_SUCCESS, STATUS_FAILED, STATUS_STOPPED}
)
TERMINAL_STATUSES: Final = frozenset({STATUS_SUCCESS, STATUS_FAILED, STATUS_STOPPED})
UNFINISHED_STATUSES: Final = frozenset({STATUS_WAITING, STATUS_RUNNING})

# Actions the scheduler puts in flow_action_queue.
ACTION_RUN_JOB: Final = "run_job"
ACTION_STOP_JOB: Final = "stop_job"
ACTION_RERUN_JOB: Final = "rerun_job"

# Outcomes written to flow_action_log.
OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILED: Final = "failed"
#: An action claimed this many times without being completed is logged as abandoned
#: instead of being handed out again (it keeps killing its consumers).
OUTCOME_ABANDONED: Final = "abandoned"
MAX_ACTION_ATTEMPTS: Final = 5

# Kinds of task outputs in task_result.
RESULT_DATA: Final = "data"
RESULT_MODEL: Final = "model"
RESULT_METRIC: Final = "metric"
RESULT_KINDS: Final = frozenset({RESULT_DATA, RESULT_MODEL, RESULT_METRIC})

# Column widths (VARCHAR lengths MySQL needs; 191 keeps utf8mb4 keys under 767 bytes).
ID_LENGTH: Final = 64
MEMBER_ID_LENGTH: Final = 32
NAME_LENGTH: Final = 191
SHORT_LENGTH: Final = 32
USER_NAME_LENGTH: Final = 64

# SQLite: wait this long for the write lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

# Transient database errors (deadlock, lock wait timeout, busy) are retried this often.
TRANSIENT_RETRIES: Final = 8
TRANSIENT_BACKOFF_BASE_S: Final = 0.005
TRANSIENT_BACKOFF_MAX_S: Final = 0.5

#: MySQL/MariaDB error codes worth retrying: deadlock found, lock wait timeout.
MYSQL_TRANSIENT_CODES: Final = frozenset({1213, 1205})

#: Default page size of list queries.
DEFAULT_PAGE_SIZE: Final = 100

#: The Alembic revision this code expects (the head of alembic/versions).
HEAD_REVISION: Final = "0003"
