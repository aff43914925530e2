"""The settings of one scheduler process."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SchedulerSettings:
    """What one scheduler process needs to know about itself."""

    member_id: str
    storage_root: Path
    lease_seconds: float = 30.0
    consumers: int = 1
    auto_retries: int = 0
    #: Members a submitted spec may name (this one and its peers); None: any.
    known_members: frozenset[str] | None = None
    #: The member's spool directory (STANDALONE work mode); None: no check of shared spools at submit.
    spool_dir: Path | None = None
    #: How long a task's executor may stay unreachable (restarting) before the task is failed.
    executor_wait_s: float = 90.0
    #: Names this process's queue consumers (unique per replica).
    consumer_name: str = f"{socket.gethostname()}-{os.getpid()}"
