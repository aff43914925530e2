"""Run the tasks of several parties in one process, as threads over the in-process federation.

Component tests and quick local checks use this; it runs the same `execute_task` path as a
task process, with the federation swapped for an `InProcessHub`.
"""

from __future__ import annotations

import threading
from typing import Any

from kernel.errors import WeftError
from kernel.federation.base import Party, RoleTable
from kernel.federation.inprocess import InProcessFederation, InProcessHub
from kernel.runtime_conf import parse_runtime_conf
from kernel.task_executor import TaskOptions, execute_task


class PartyFailed(WeftError):
    """One or more parties failed; the message names each with its error."""


def run_parties(
    tasks: list[tuple[dict[str, Any], TaskOptions]], computing: Any, join_timeout: float = 600.0
) -> dict[Party, dict[str, Any]]:
    """Run each (conf, options) in its own thread; returns each party's output record."""
    hub = InProcessHub()
    results: dict[Party, dict[str, Any]] = {}
    errors: dict[Party, BaseException] = {}

    def work(conf: dict[str, Any], options: TaskOptions) -> None:
        party = Party(options.role, options.member_id)
        try:
            roles = RoleTable.from_conf(parse_runtime_conf(conf).raw["role"])
            federation = InProcessFederation(hub, options.session_id, party, roles)
            results[party] = execute_task(conf, options, federation=federation, computing=computing)
        except BaseException as exc:  # reported to the caller below, per party
            errors[party] = exc

    threads = [threading.Thread(target=work, args=task, name=f"party-{task[1].role}") for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(join_timeout)
    if errors:
        detail = "; ".join(f"{party}: {type(exc).__name__}: {exc}" for party, exc in errors.items())
        raise PartyFailed(detail) from next(iter(errors.values()))
    return results
