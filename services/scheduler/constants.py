"""Constants of the scheduler: spec limits, action names, peer methods, timeouts."""

from __future__ import annotations

import re
from typing import Final

# Job spec ----------------------------------------------------------------------------------

#: Keys a job spec may hold at its top level.
SPEC_KEYS: Final = frozenset(
    {"name", "initiator", "role", "job_parameters", "job_args", "components"}
)
#: Keys one component of a job spec may hold.
COMPONENT_KEYS: Final = frozenset({"module", "input", "output", "params", "role_params", "roles"})
#: A component name: a letter, then letters, digits or "_" (it becomes part of output names).
COMPONENT_NAME_PATTERN: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: An output name: letters, digits, "_" or "-".
OUTPUT_NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
#: Member ids are 32 lowercase hex characters.
MEMBER_ID_PATTERN: Final = re.compile(r"^[0-9a-f]{32}$")
#: The prefix of references to the job's raw data sets (`args.<name>`).
ARGS_SOURCE: Final = "args"
MAX_JOB_NAME_LENGTH: Final = 191
MAX_COMPONENTS: Final = 200

# Runtime conf keys the scheduler adds to the seed format.
CONF_JOB_ID: Final = "job_id"
CONF_TASK_ID: Final = "task_id"
CONF_COMPONENT_NAME: Final = "component_name"
CONF_SESSION_ID: Final = "federation_session_id"

# Queue -------------------------------------------------------------------------------------

#: Producer name the scheduler writes into flow_action_queue rows.
PRODUCER: Final = "scheduler"
#: Priority of actions that start or stop work (higher is claimed first).
PRIORITY_STOP: Final = 10
PRIORITY_RUN: Final = 0
#: A consumer with an empty queue checks anyway after this long (other replicas' enqueues,
#: expired leases); local enqueues wake it at once.
QUEUE_FALLBACK_S: Final = 1.0

# Peers -------------------------------------------------------------------------------------

PEER_SERVICE: Final = "weft.v1.SchedulerPeerService"
#: Retries of a member-to-member call that found the peer unavailable.
PEER_RETRY_ATTEMPTS: Final = 8
PEER_RETRY_BASE_S: Final = 0.2
PEER_RETRY_MAX_S: Final = 5.0

# Executors ---------------------------------------------------------------------------------

#: Longest pause between attempts to re-attach to an executor that went away (the wait as a
#: whole is `executor.restart_wait_s`).
EXECUTOR_RETRY_MAX_S: Final = 2.0

# Listing -----------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500

# Uploads -----------------------------------------------------------------------------------

#: Largest chunk accepted in one UploadDataSet message.
MAX_UPLOAD_CHUNK_BYTES: Final = 4 * 1024 * 1024
#: gRPC message limit of the scheduler's server (chunks plus framing).
MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024

# Watching ----------------------------------------------------------------------------------

#: Events buffered per WatchJob client before the slowest one is cut off.
WATCH_QUEUE_SIZE: Final = 10_000

#: How long shutdown waits for in-flight handlers.
SHUTDOWN_GRACE_S: Final = 2.0

#: Where a new member's first admin token is written, under its data_dir (mode 0600).
BOOTSTRAP_TOKEN_FILE: Final = "admin.token"
#: The most audit rows one ListAudit call returns.
MAX_AUDIT_ROWS: Final = 10_000
#: How deeply a job spec's JSON may nest objects and lists (the deepest real spec needs 6).
MAX_SPEC_DEPTH: Final = 32
#: Integers in a job spec must fit a signed 64-bit integer (what every member can store).
MAX_SPEC_INTEGER: Final = 2**63 - 1
#: The longest spec_json accepted, in characters.
MAX_SPEC_CHARS: Final = 4 * 1024 * 1024
