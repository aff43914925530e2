"""flow_action_queue: enqueue, atomic claim with a lease, completion logged exactly once."""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.errors import InvalidArgument
from services.common.db.constants import MAX_ACTION_ATTEMPTS, OUTCOME_ABANDONED
from services.common.db.engine import db_now, is_sqlite, retry_transient, write_transaction
from services.common.db.schema import flow_action_log, flow_action_queue


@dataclass(frozen=True)
class ClaimedAction:
    """An action a consumer holds until `lease_until` (epoch seconds, database clock)."""

    id: int
    action: str
    params: dict[str, Any]
    producer: str
    priority: int
    created_at: float
    claimed_by: str
    claimed_at: float
    lease_until: float
    #: How many times the action has been claimed, this claim included.
    attempts: int


WOKEN_BY_ENQUEUE = "enqueue"
WOKEN_FOR_MORE = "more"
WOKEN_BY_TIMEOUT = "timeout"


class ActionNotifier:
    """Wakes this process's consumers when this process enqueues or releases an action.

    It is the hot path: a consumer that found the queue empty sleeps on it and is woken the
    moment an action is written. Actions written by other processes or replicas, and
    leases of dead consumers that expire, are not signalled; a consumer picks those up
    when its `wait` times out, so the timeout is a fallback, not a poll interval that the
    latency of a local submission depends on.

    Use `mark()` before claiming and `wait(mark, timeout)` after an empty claim: an
    enqueue that happens in between is never missed.
    """

    def __init__(self) -> None:
        self._version = 0
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._handed: collections.deque[ClaimedAction] = collections.deque()
        #: Whether one idle consumer of this process already checks the queue on a timer.
        self._polling = False

    def mark(self) -> int:
        """A token for `wait`: the number of notifications so far."""
        return self._version

    def notify(self, *, more: bool = False) -> None:
        """Wake one sleeping waiter (called after an enqueue commits).

        `more`: a consumer found work it was not told of (another process's); the waiter
        woken looks for more and, finding some, passes the word on in turn.

        One action needs one consumer: waking every idle consumer would have all but one
        run an empty claim transaction while the one that matters is claiming. A consumer
        that is not asleep (claiming or running an action) sees the new mark and claims
        again before it sleeps, so no action waits for the fallback.
        """
        self._version += 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(more)
                return

    def take_poll(self) -> bool:
        """Become the one idle consumer of this process that checks the queue on a timer.

        The others sleep until notified: idle consumers polling side by side would each run
        an empty claim transaction every fallback period. False when another holds the role;
        `drop_poll` gives it back.
        """
        if self._polling:
            return False
        self._polling = True
        return True

    def drop_poll(self) -> None:
        self._polling = False

    def idle(self) -> bool:
        """Whether a consumer of this process sleeps on the notifier right now."""
        return any(not waiter.done() for waiter in self._waiters)

    def hand_over(self, action: ClaimedAction) -> None:
        """Give an action this process enqueued already claimed (see `insert_action`) to a consumer.

        The consumer skips the claim transaction: the action's row already names its holder
        and lease, so a crash before it completes leaves it to be claimed again like any other.
        """
        self._handed.append(action)
        self.notify()

    def take(self) -> ClaimedAction | None:
        """The oldest action handed over whose lease is less than half spent, if any.

        One older than that (every consumer was busy for long) is dropped here: its lease
        runs out and it is claimed from the database like an abandoned one, so it is never
        run by two consumers at once.
        """
        now = time.time()
        while self._handed:
            action = self._handed.popleft()
            if now < (action.claimed_at + action.lease_until) / 2:
                return action
        return None

    async def wait(self, mark: int, timeout: float | None) -> bool:
        """Wait for a notification after `mark`; False when `timeout` seconds passed first."""
        return await self.wait_why(mark, timeout) != WOKEN_BY_TIMEOUT

    async def wait_why(self, mark: int, timeout: float | None) -> str:
        """As `wait`, saying why it returned: an enqueue, `notify(more=True)`, or the timeout."""
        if self._version != mark:
            return WOKEN_BY_ENQUEUE
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            more = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return WOKEN_BY_ENQUEUE if self._version != mark else WOKEN_BY_TIMEOUT
        finally:
            if not waiter.done():
                waiter.cancel()
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass  # notify() took it
        return WOKEN_FOR_MORE if more else WOKEN_BY_ENQUEUE


_notifiers: weakref.WeakKeyDictionary[sa.Engine, ActionNotifier] = weakref.WeakKeyDictionary()


def action_notifier(engine: AsyncEngine) -> ActionNotifier:
    """The notifier every enqueue through `engine` sets (one per engine)."""
    notifier = _notifiers.get(engine.sync_engine)
    if notifier is None:
        notifier = _notifiers[engine.sync_engine] = ActionNotifier()
    return notifier


async def enqueue_action(
    engine: AsyncEngine,
    action: str,
    params: Mapping[str, Any],
    producer: str,
    priority: int = 0,
) -> int:
    """Append `action` to the queue and wake local consumers; returns the action id."""
    if not action:
        raise InvalidArgument("action must be a non-empty name such as 'run_job'")
    if not producer:
        raise InvalidArgument("producer must name who enqueues the action")

    async def insert() -> int:
        async with write_transaction(engine) as conn:
            return await insert_action(conn, action, params, producer, priority)

    action_id = await retry_transient(insert)
    action_notifier(engine).notify()
    return action_id


async def insert_action(
    conn: AsyncConnection,
    action: str,
    params: Mapping[str, Any],
    producer: str,
    priority: int = 0,
    *,
    claimed_by: str | None = None,
    lease_seconds: float = 0.0,
) -> int:
    """Insert an action inside the caller's transaction (e.g. together with a job's rows).

    The caller commits and then calls `action_notifier(engine).notify()`. With `claimed_by`
    the row is written already claimed by that consumer for `lease_seconds` (its first
    attempt): the caller then hands it to a local consumer with
    `action_notifier(engine).hand_over(...)` instead, which saves the claim transaction.
    """
    values = {"action": action, "params": dict(params), "producer": producer, "priority": priority}
    if claimed_by is None:
        result = await conn.execute(_INSERT, values)
    else:
        if lease_seconds <= 0:
            raise InvalidArgument(f"lease_seconds must be > 0 for an action inserted claimed, got {lease_seconds}")
        result = await conn.execute(
            _INSERT_CLAIMED, {**values, "claimed_by": claimed_by, "lease_seconds": lease_seconds}
        )
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for the enqueued action")
    return int(key[0])


# Statements are built once: the claim and complete paths run thousands of times a second.
_queue = flow_action_queue
_INSERT = _queue.insert().values(created_at=db_now(), attempts=0)
_INSERT_CLAIMED = _queue.insert().values(
    created_at=db_now(),
    claimed_by=sa.bindparam("claimed_by"),
    claimed_at=db_now(),
    lease_until=db_now() + sa.bindparam("lease_seconds", type_=sa.Double()),
    attempts=1,
)
_CANDIDATE = (
    sa.select(
        _queue.c.id,
        _queue.c.action,
        _queue.c.params,
        _queue.c.producer,
        _queue.c.priority,
        _queue.c.created_at,
        _queue.c.attempts,
        db_now().label("now"),
    )
    .where(sa.or_(_queue.c.claimed_by.is_(None), _queue.c.lease_until <= db_now()))
    .order_by(_queue.c.priority.desc(), _queue.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_CANDIDATE_SKIP_LOCKED = _CANDIDATE.with_for_update(skip_locked=True)
_CLAIM = (
    _queue.update()
    .where(_queue.c.id.in_(sa.bindparam("action_ids", expanding=True)))
    .values(
        claimed_by=sa.bindparam("consumer"),
        claimed_at=sa.bindparam("now"),
        lease_until=sa.bindparam("lease_until"),
        attempts=_queue.c.attempts + 1,
    )
)
_IS_ACTION = _queue.c.id == sa.bindparam("action_id")
_IS_HELD = sa.and_(_IS_ACTION, _queue.c.claimed_by == sa.bindparam("holder"))


def _copy_to_log(condition: sa.ColumnElement[bool]) -> sa.Insert:
    """INSERT INTO flow_action_log SELECT ... FROM flow_action_queue WHERE `condition`."""
    source = sa.select(
        _queue.c.id,
        _queue.c.producer,
        _queue.c.priority,
        _queue.c.action,
        _queue.c.params,
        _queue.c.claimed_by,
        _queue.c.attempts,
        sa.bindparam("outcome", type_=sa.String()),
        sa.bindparam("error", type_=sa.Text()),
        _queue.c.created_at,
        _queue.c.claimed_at,
        db_now(),
    ).where(condition)
    columns = [
        "action_id",
        "producer",
        "priority",
        "action",
        "params",
        "consumer",
        "attempts",
        "outcome",
        "error",
        "created_at",
        "claimed_at",
        "finished_at",
    ]
    return flow_action_log.insert().from_select(columns, source)


_LOG_HELD = _copy_to_log(_IS_HELD)
_LOG_ANY = _copy_to_log(_IS_ACTION)
_DELETE_HELD = _queue.delete().where(_IS_HELD)
_DELETE_ANY = _queue.delete().where(_IS_ACTION)


class _LeaseLost(Exception):
    """Rolls back a completion whose action was taken over while it ran."""


async def claim_next_action(
    engine: AsyncEngine,
    consumer: str,
    lease_seconds: float,
    *,
    max_attempts: int = MAX_ACTION_ATTEMPTS,
) -> ClaimedAction | None:
    """Claim the highest-priority, oldest claimable action for `consumer`, or None.

    Claimable: never claimed, or its lease expired (its consumer died or stalled; the
    action is taken over). The claim is atomic across consumers and replicas: on
    MySQL/MariaDB the row is read with FOR UPDATE SKIP LOCKED, on SQLite inside one write
    transaction. An action already claimed `max_attempts` times is logged as abandoned
    instead of being handed out again.
    """
    claimed = await claim_next_actions(
        engine, consumer, lease_seconds, 1, max_attempts=max_attempts
    )
    return claimed[0] if claimed else None


async def claim_next_actions(
    engine: AsyncEngine,
    consumer: str,
    lease_seconds: float,
    limit: int,
    *,
    max_attempts: int = MAX_ACTION_ATTEMPTS,
) -> list[ClaimedAction]:
    """Claim up to `limit` actions in one transaction, in claim order (see claim_next_action).

    A consumer with several free handler slots claims as many at once: one round of
    statements and one commit instead of one per action.
    """
    if lease_seconds < 0:
        raise InvalidArgument(f"lease_seconds must be >= 0, got {lease_seconds}")
    if not consumer:
        raise InvalidArgument("consumer must name the claiming replica")
    if limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {limit}")

    async def claim() -> list[ClaimedAction]:
        async with write_transaction(engine) as conn:
            return await _claim_in(conn, consumer, lease_seconds, limit, max_attempts)

    return await retry_transient(claim)


async def _claim_in(
    conn: AsyncConnection, consumer: str, lease_seconds: float, limit: int, max_attempts: int
) -> list[ClaimedAction]:
    candidates = _CANDIDATE if is_sqlite(conn) else _CANDIDATE_SKIP_LOCKED
    while True:
        rows = (await conn.execute(candidates, {"limit": limit})).all()
        if not rows:
            return []
        fresh = []
        for row in rows:
            if row.attempts < max_attempts:
                fresh.append(row)
                continue
            # The row is locked (or the database is): log it under its last holder.
            error = f"claimed {row.attempts} times without completing; giving up"
            await conn.execute(
                _LOG_ANY, {"action_id": row.id, "outcome": OUTCOME_ABANDONED, "error": error}
            )
            await conn.execute(_DELETE_ANY, {"action_id": row.id})
        if not fresh:
            continue
        now = float(fresh[0].now)
        lease_until = now + lease_seconds
        await conn.execute(
            _CLAIM,
            {
                "action_ids": [row.id for row in fresh],
                "consumer": consumer,
                "now": now,
                "lease_until": lease_until,
            },
        )
        return [
            ClaimedAction(
                id=int(row.id),
                action=row.action,
                params=dict(row.params),
                producer=row.producer,
                priority=int(row.priority),
                created_at=float(row.created_at),
                claimed_by=consumer,
                claimed_at=now,
                lease_until=lease_until,
                attempts=int(row.attempts) + 1,
            )
            for row in fresh
        ]


async def complete_action(
    engine: AsyncEngine,
    action_id: int,
    consumer: str,
    outcome: str,
    error: str | None = None,
) -> bool:
    """Remove a claimed action from the queue and log its outcome, in one transaction.

    Returns False, writing nothing, when `consumer` no longer holds the action (its lease
    expired and another consumer took it over, or it was already completed): only the
    current holder logs, so every action is logged exactly once (flow_action_log.action_id
    is unique as well).
    """
    if not outcome:
        raise InvalidArgument("outcome must say how the action ended, e.g. 'success'")
    held = {"action_id": action_id, "holder": consumer}

    async def complete() -> bool:
        try:
            async with write_transaction(engine) as conn:
                copied = await conn.execute(_LOG_HELD, {**held, "outcome": outcome, "error": error})
                if copied.rowcount == 0:
                    return False
                # On MySQL under READ COMMITTED the copy read the last committed row without
                # locking it; the delete locks it and re-checks the holder, and a takeover
                # that committed meanwhile makes it match nothing: undo the copy.
                deleted = await conn.execute(_DELETE_HELD, held)
                if deleted.rowcount != 1:
                    raise _LeaseLost
                return True
        except _LeaseLost:
            return False

    return await retry_transient(complete)


async def extend_lease(
    engine: AsyncEngine, action_id: int, consumer: str, lease_seconds: float
) -> bool:
    """Push the lease of a held action to now + `lease_seconds`; False if it is no longer held.

    A consumer working longer than its lease calls this periodically; after a False it must
    stop working on the action (another consumer owns it now).
    """
    if lease_seconds < 0:
        raise InvalidArgument(f"lease_seconds must be >= 0, got {lease_seconds}")

    async def extend() -> bool:
        async with write_transaction(engine) as conn:
            result = await conn.execute(
                flow_action_queue.update()
                .where(
                    flow_action_queue.c.id == action_id,
                    flow_action_queue.c.claimed_by == consumer,
                )
                .values(lease_until=db_now() + lease_seconds)
            )
            return result.rowcount == 1

    return await retry_transient(extend)


async def release_action(engine: AsyncEngine, action_id: int, consumer: str) -> bool:
    """Hand a held action back unfinished (e.g. on shutdown) so another consumer claims it now.

    Its attempt still counts. Returns False if `consumer` no longer held it.
    """

    async def release() -> bool:
        async with write_transaction(engine) as conn:
            result = await conn.execute(
                flow_action_queue.update()
                .where(
                    flow_action_queue.c.id == action_id,
                    flow_action_queue.c.claimed_by == consumer,
                )
                .values(claimed_by=None, claimed_at=None, lease_until=None)
            )
            return result.rowcount == 1

    released = await retry_transient(release)
    if released:
        action_notifier(engine).notify()
    return released


async def wait_for_action(
    engine: AsyncEngine,
    consumer: str,
    lease_seconds: float,
    fallback_seconds: float,
    *,
    max_attempts: int = MAX_ACTION_ATTEMPTS,
) -> ClaimedAction:
    """Claim the next action, sleeping on the engine's notifier while the queue is empty.

    An action this process handed over already claimed comes first (its holder is then the
    name it was inserted with, `ClaimedAction.claimed_by`, not `consumer`). Local enqueues
    wake the wait at once; every `fallback_seconds` the queue is checked
    anyway for actions from other processes and for expired leases, by one idle consumer
    of the process at a time; one that finds an action that way wakes another consumer to
    look for more, so a burst from elsewhere is drained at once.
    """
    notifier = action_notifier(engine)
    why = WOKEN_BY_ENQUEUE
    while True:
        handed = notifier.take()
        if handed is not None:
            return handed
        mark = notifier.mark()
        claimed = await claim_next_action(
            engine, consumer, lease_seconds, max_attempts=max_attempts
        )
        if claimed is not None:
            if why != WOKEN_BY_ENQUEUE:
                notifier.notify(more=True)  # found by looking: there may be more
            return claimed
        poller = notifier.take_poll()
        try:
            why = await notifier.wait_why(mark, fallback_seconds if poller else None)
        finally:
            if poller:
                notifier.drop_poll()


async def queued_action_count(engine: AsyncEngine) -> int:
    """How many actions are waiting or held (not yet completed)."""
    async with engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(flow_action_queue))
    return int(count or 0)
