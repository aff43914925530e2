"""The queue consumer: claim flow_action_queue actions and hand them to dispatch or stop."""

from __future__ import annotations

import asyncio
import logging

from kernel.errors import InvalidArgument
from services.common.db.constants import (
    ACTION_RERUN_JOB,
    ACTION_RUN_JOB,
    ACTION_STOP_JOB,
    OUTCOME_FAILED,
    OUTCOME_SUCCESS,
)
from services.common.db.engine import is_transient
from services.common.db.queue import ClaimedAction, complete_action, release_action, wait_for_action
from services.scheduler.constants import QUEUE_FALLBACK_S
from services.scheduler.dispatch import Dispatch
from services.scheduler.stop_and_rerun import StopAndRerun

log = logging.getLogger("weft.scheduler")


class QueueConsumer(Dispatch, StopAndRerun):
    """Claims run, rerun and stop actions from flow_action_queue and carries them out."""

    async def _consume(self, consumer: str) -> None:
        """Claim actions (woken by enqueues, no polling on the hot path) and run them.

        An action is completed or released under its holder's name: `consumer` for one it
        claimed, the submit hand-over's name for one written already claimed (see
        `store.insert_job_and_queue`).
        """
        while not self._closing:
            try:
                action = await wait_for_action(
                    self.engine, consumer, self.settings.lease_seconds, QUEUE_FALLBACK_S
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is unreachable: its lease rules make retrying safe.
                log.exception("claiming from flow_action_queue failed; retrying")
                await asyncio.sleep(QUEUE_FALLBACK_S)
                continue
            outcome, error = OUTCOME_SUCCESS, None
            try:
                await self._handle(action)
            except asyncio.CancelledError:
                await asyncio.shield(self._release(action.id, action.claimed_by))
                raise
            except Exception as exc:
                if is_transient(exc):
                    # The database stayed busy through its retries: hand the action back for
                    # another claim (its attempts are counted) instead of dropping the job's step.
                    log.warning("action %s %s met a busy database; releasing it for another attempt",
                                action.action, action.params)
                    await asyncio.sleep(QUEUE_FALLBACK_S)
                    await self._release(action.id, action.claimed_by)
                    continue
                log.exception("action %s %s failed", action.action, action.params)
                outcome, error = OUTCOME_FAILED, f"{type(exc).__name__}: {exc}"
            try:
                await complete_action(self.engine, action.id, action.claimed_by, outcome, error)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not completed: the lease expires and the action is claimed again.
                log.exception("completing action %d failed", action.id)

    async def _release(self, action_id: int, consumer: str) -> None:
        try:
            await release_action(self.engine, action_id, consumer)
        except Exception:
            # Not released: its lease expires and it is claimed again.
            log.exception("releasing action %d failed", action_id)

    async def _handle(self, action: ClaimedAction) -> None:
        job_id = str(action.params.get("job_id", ""))
        if action.action in (ACTION_RUN_JOB, ACTION_RERUN_JOB):
            if action.attempts > 1:
                # Claimed again: its holder died or stalled, perhaps between claiming a task and sending it.
                await self.recheck_claimed(job_id)
            await self.advance(job_id)
        elif action.action == ACTION_STOP_JOB:
            await self._stop_local_tasks(job_id, str(action.params.get("reason", "job stopped")))
        else:
            raise InvalidArgument(f"unknown action {action.action!r}")
