"""Constants shared across the kernel: roles, flow ids, numeric codes of the seed conf."""

from __future__ import annotations

from typing import Final

PROMOTER: Final = "promoter"
PROVIDER: Final = "provider"
ARBITER: Final = "arbiter"
ROLES: Final[tuple[str, ...]] = (PROMOTER, PROVIDER, ARBITER)

# Flow ids: the first part of every transfer-variable tag, set by ModelBase.run.
FLOW_FIT: Final = "fit"
FLOW_VALIDATE: Final = "validate"
FLOW_PREDICT: Final = "predict"
FLOW_TRANSFORM: Final = "transform"

# The seed conf writes backend and work_mode as numbers.
BACKEND_LOCAL: Final = "LOCAL"
BACKEND_SPARK: Final = "SPARK"
BACKEND_CODES: Final[dict[int, str]] = {0: BACKEND_LOCAL, 1: BACKEND_SPARK}
WORK_MODE_STANDALONE: Final = "STANDALONE"
WORK_MODE_CLUSTER: Final = "CLUSTER"
WORK_MODE_CODES: Final[dict[int, str]] = {0: WORK_MODE_STANDALONE, 1: WORK_MODE_CLUSTER}

DB_TYPE_PARQUET: Final = "PARQUET"

# Where the component folders live, relative to the kernel package.
COMPONENTS_PACKAGE: Final = "kernel.components"
SETTING_FILE: Final = "setting.json"
DEFAULT_RUNTIME_FILE: Final = "default_runtime.json"
TRANSFER_VARIABLE_FILE: Final = "transfer_variable.json"

# Default seconds a federation `get` waits for a peer's message.
DEFAULT_GET_TIMEOUT_S: Final = 600.0

# Environment variables the task process reads (the executor sets them).
ENV_STORAGE_ROOT: Final = "WEFT_STORAGE_ROOT"
ENV_SPOOL_DIR: Final = "WEFT_SPOOL_DIR"
ENV_TRANSFER_ENDPOINT: Final = "WEFT_TRANSFER_ENDPOINT"
ENV_EVENT_SOCKET: Final = "WEFT_EVENT_SOCKET"
ENV_GET_TIMEOUT: Final = "WEFT_GET_TIMEOUT_S"

# The labels of a binary task: the learners that model log-odds accept these and no others.
BINARY_LABELS: Final[tuple[int, int]] = (0, 1)

# The runtime conf key listing the roles a component runs at in its job (written by the scheduler).
CONF_COMPONENT_ROLES: Final = "component_roles"
