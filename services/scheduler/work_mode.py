"""Which work mode a job can use here: STANDALONE needs every member's tasks on one spool directory.

A scheduler leaves a mark under its member's spool directory when it starts. At submit the
initiator looks for every other member's mark in its own spool: members on separate
machines, or on one machine with spools of their own, cannot see each other's files, and
a STANDALONE job among them would wait forever for messages that never arrive.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kernel.constants import WORK_MODE_CLUSTER
from services.scheduler.spec import JobSpec, SpecError
from services.scheduler.state import is_cluster

log = logging.getLogger("weft.scheduler")

MEMBERS_DIR = ".members"


def mark_member(spool_dir: Path, member_id: str) -> None:
    """Say in the spool directory that `member_id`'s tasks exchange STANDALONE messages there."""
    marks = spool_dir / MEMBERS_DIR
    try:
        marks.mkdir(parents=True, exist_ok=True)
        (marks / member_id).touch()
    except OSError as exc:  # a read-only or missing volume: STANDALONE jobs with peers are refused
        log.warning("cannot mark member %s in the spool directory %s: %s", member_id, spool_dir, exc)


def check_work_mode(spec: JobSpec, me: str, spool_dir: Path | None) -> None:
    """Refuse a STANDALONE job whose members do not all share this member's spool directory."""
    others = sorted(m for m in spec.members() if m != me)
    if is_cluster(spec.job_parameters) or not others or spool_dir is None:
        return
    marks = spool_dir / MEMBERS_DIR
    apart = [m for m in others if not (marks / m).exists()]
    if apart:
        raise SpecError(
            f"job_parameters.work_mode: STANDALONE (the default) exchanges messages through a spool directory "
            f"that every member shares on one machine, and member{'s' if len(apart) > 1 else ''} "
            f"{', '.join(apart)} {'do' if len(apart) > 1 else 'does'} not share this member's ({spool_dir}); "
            f'set "work_mode": "{WORK_MODE_CLUSTER}" so messages go through the transfer services'
        )
