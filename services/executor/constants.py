"""Constants of the executor service."""

from __future__ import annotations

from typing import Final

SERVICE_NAME: Final = "weft.v1.ExecutorService"

# Layout of the executor's state directory (<data_dir>/executor).
STATE_DIR_NAME: Final = "executor"
TASKS_DIR: Final = "tasks"
WORKERS_DIR: Final = "workers"
SOCKETS_DIR: Final = "sock"
PY_FILES_DIR: Final = "py-files"
RECORD_FILE: Final = "record.json"
LOCK_FILE: Final = "executor.lock"
CONF_FILE: Final = "conf.json"
STDOUT_LOG: Final = "stdout.log"
STDERR_LOG: Final = "stderr.log"
ROTATED_SUFFIX: Final = ".1"

# A unix socket path longer than this does not fit in sockaddr_un on Linux.
MAX_SOCKET_PATH: Final = 107

# Heartbeats: the task sends one every timeout / HEARTBEATS_PER_TIMEOUT seconds, at most
# every MAX_HEARTBEAT_INTERVAL_S, so a few may be lost before the task is declared dead.
HEARTBEATS_PER_TIMEOUT: Final = 4
MAX_HEARTBEAT_INTERVAL_S: Final = 5.0

# Longest event line a task may send (a metric with a large summary).
EVENT_LINE_LIMIT: Final = 16 * 1024 * 1024

# Warm pool: attempts to start a worker (its ready timeout is executor.worker_ready_timeout_s).
WORKER_START_ATTEMPTS: Final = 5

# Per subscriber, log lines beyond this many pending events are dropped (a slow reader
# must not grow the executor's memory); status events are never dropped.
SUBSCRIBER_LOG_BACKLOG: Final = 10_000

# TailTaskLog returns at most this many bytes per call.
TAIL_MAX_BYTES: Final = 64 * 1024

# Where a reason is needed and the task gave none.
STOPPED_BY_REQUEST: Final = "stopped by request"
