"""flow_action_queue on MariaDB and SQLite: atomic claims, leases, takeover, logging once."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import InvalidArgument
from services.common.db import (
    ActionNotifier,
    claim_next_action,
    claim_next_actions,
    complete_action,
    create_engine,
    enqueue_action,
    extend_lease,
    migrate,
    release_action,
    wait_for_action,
)
from services.common.db.constants import OUTCOME_ABANDONED, OUTCOME_SUCCESS
from services.common.db.queue import (
    ClaimedAction,
    action_notifier,
    insert_action,
    queued_action_count,
)
from services.common.db.schema import flow_action_log

LONG_LEASE_S = 60.0


@pytest.fixture(params=["sqlite", "mariadb"])
async def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/weft.db"
    else:
        url = request.getfixturevalue("mysql_url")
    await migrate(url)
    return url


@pytest.fixture()
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def logged(engine: AsyncEngine) -> list[sa.RowMapping]:
    async with engine.connect() as conn:
        statement = sa.select(flow_action_log).order_by(flow_action_log.c.action_id)
        return list((await conn.execute(statement)).mappings().all())


async def test_claim_returns_the_action_with_its_params_and_a_lease(engine: AsyncEngine) -> None:
    # Prepare
    action_id = await enqueue_action(engine, "run_job", {"job_id": "j1", "n": [1, 2]}, "api")

    # Execute
    claimed = await claim_next_action(engine, "replica-a", LONG_LEASE_S)

    # Assert
    assert claimed is not None
    assert (claimed.id, claimed.action, claimed.params) == (
        action_id,
        "run_job",
        {"job_id": "j1", "n": [1, 2]},
    )
    assert (claimed.producer, claimed.claimed_by, claimed.attempts) == ("api", "replica-a", 1)
    assert claimed.lease_until == pytest.approx(claimed.claimed_at + LONG_LEASE_S)
    assert await claim_next_action(engine, "replica-b", LONG_LEASE_S) is None


async def test_claims_follow_priority_then_arrival(engine: AsyncEngine) -> None:
    # Prepare
    low_first = await enqueue_action(engine, "run_job", {}, "api", priority=0)
    high = await enqueue_action(engine, "stop_job", {}, "api", priority=10)
    low_second = await enqueue_action(engine, "run_job", {}, "api", priority=0)
    middle = await enqueue_action(engine, "rerun_job", {}, "api", priority=5)

    # Execute
    order = []
    while (claimed := await claim_next_action(engine, "c", LONG_LEASE_S)) is not None:
        order.append(claimed.id)

    # Assert
    assert order == [high, middle, low_first, low_second]


async def test_four_consumers_claim_and_log_each_of_1000_actions_exactly_once(db_url: str) -> None:
    # Prepare
    producer = create_engine(db_url)
    expected = [await enqueue_action(producer, "run_job", {"i": i}, "api") for i in range(1000)]
    await producer.dispose()

    async def consume(name: str, batch: int) -> list[int]:
        engine = create_engine(db_url)  # each consumer its own pool, like a replica
        taken: list[int] = []
        try:
            while claimed := await claim_next_actions(engine, name, LONG_LEASE_S, batch):
                for action in claimed:
                    taken.append(action.id)
                    assert await complete_action(engine, action.id, name, OUTCOME_SUCCESS)
        finally:
            await engine.dispose()
        return taken

    # Execute
    # Two consumers claim one action at a time, two claim batches of up to 5.
    per_consumer = await asyncio.gather(
        *(consume(f"consumer-{n}", 1 + 4 * (n % 2)) for n in range(4))
    )

    # Assert
    claimed_ids = [i for taken in per_consumer for i in taken]
    assert sorted(claimed_ids) == expected  # every action claimed, none twice
    engine = create_engine(db_url)
    try:
        log = await logged(engine)
        assert [row["action_id"] for row in log] == expected
        assert {row["outcome"] for row in log} == {OUTCOME_SUCCESS}
        owner = {i: f"consumer-{n}" for n, taken in enumerate(per_consumer) for i in taken}
        assert all(row["consumer"] == owner[row["action_id"]] for row in log)
        assert await queued_action_count(engine) == 0
    finally:
        await engine.dispose()


HOLD_AND_HANG = """
import asyncio, sys
from services.common.db import claim_next_action, create_engine

async def main() -> None:
    engine = create_engine(sys.argv[1])
    claimed = await claim_next_action(engine, "doomed", float(sys.argv[2]))
    print(claimed.id if claimed else "none", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_action_of_a_killed_consumer_is_taken_over_after_its_lease(
    db_url: str, engine: AsyncEngine
) -> None:
    # Prepare: a separate process claims with a short lease, then is killed with SIGKILL.
    lease_s = 1.0
    action_id = await enqueue_action(engine, "run_job", {"job_id": "j"}, "api")
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_AND_HANG, db_url, str(lease_s), stdout=asyncio.subprocess.PIPE
    )
    assert doomed.stdout is not None
    line = await asyncio.wait_for(doomed.stdout.readline(), 60)
    assert line.decode().strip() == str(action_id)
    doomed.send_signal(signal.SIGKILL)
    await doomed.wait()

    # Execute
    await asyncio.sleep(lease_s + 0.2)
    taken = await claim_next_action(engine, "survivor", LONG_LEASE_S)
    assert taken is not None
    completed_by_survivor = await complete_action(engine, taken.id, "survivor", OUTCOME_SUCCESS)
    completed_by_doomed = await complete_action(engine, taken.id, "doomed", OUTCOME_SUCCESS)

    # Assert
    assert (taken.id, taken.attempts) == (action_id, 2)
    assert (completed_by_survivor, completed_by_doomed) == (True, False)
    log = await logged(engine)
    assert [(row["action_id"], row["consumer"], row["attempts"]) for row in log] == [
        (action_id, "survivor", 2)
    ]


async def test_ids_of_completed_actions_are_never_reused(engine: AsyncEngine) -> None:
    # Prepare: the queue is emptied, so its highest id is gone from the table.
    first = await enqueue_action(engine, "run_job", {}, "api")
    assert await claim_next_action(engine, "c", LONG_LEASE_S) is not None
    assert await complete_action(engine, first, "c", OUTCOME_SUCCESS)

    # Execute
    second = await enqueue_action(engine, "run_job", {}, "api")
    assert await claim_next_action(engine, "c", LONG_LEASE_S) is not None
    logged_second = await complete_action(engine, second, "c", OUTCOME_SUCCESS)

    # Assert
    assert second > first
    assert logged_second is True
    assert [row["action_id"] for row in await logged(engine)] == [first, second]


async def test_batch_claim_takes_the_next_actions_in_order(engine: AsyncEngine) -> None:
    # Prepare
    ids = [await enqueue_action(engine, "run_job", {"i": i}, "api") for i in range(5)]
    urgent = await enqueue_action(engine, "stop_job", {}, "api", priority=1)

    # Execute
    first = await claim_next_actions(engine, "a", LONG_LEASE_S, 3)
    second = await claim_next_actions(engine, "b", LONG_LEASE_S, 10)
    third = await claim_next_actions(engine, "c", LONG_LEASE_S, 10)

    # Assert
    assert [a.id for a in first] == [urgent, ids[0], ids[1]]
    assert [a.id for a in second] == ids[2:]
    assert {a.claimed_by for a in second} == {"b"}
    assert third == []


async def test_held_lease_is_not_taken_over_and_a_late_holder_does_not_log_twice(
    engine: AsyncEngine,
) -> None:
    # Prepare: "slow" claims an already-expired lease, "fast" takes it over.
    action_id = await enqueue_action(engine, "run_job", {}, "api")
    slow = await claim_next_action(engine, "slow", 0.0)
    assert slow is not None

    # Execute
    fast = await claim_next_action(engine, "fast", LONG_LEASE_S)
    second_look = await claim_next_action(engine, "third", LONG_LEASE_S)
    slow_extends = await extend_lease(engine, action_id, "slow", LONG_LEASE_S)
    slow_completes = await complete_action(engine, action_id, "slow", OUTCOME_SUCCESS)
    fast_completes = await complete_action(engine, action_id, "fast", OUTCOME_SUCCESS)

    # Assert
    assert fast is not None and fast.id == action_id
    assert second_look is None
    assert (slow_extends, slow_completes, fast_completes) == (False, False, True)
    assert [row["consumer"] for row in await logged(engine)] == ["fast"]


async def test_extended_lease_keeps_the_action_from_others(engine: AsyncEngine) -> None:
    # Prepare
    await enqueue_action(engine, "run_job", {}, "api")
    held = await claim_next_action(engine, "holder", 0.0)
    assert held is not None

    # Execute
    extended = await extend_lease(engine, held.id, "holder", LONG_LEASE_S)
    other = await claim_next_action(engine, "other", LONG_LEASE_S)

    # Assert
    assert extended is True
    assert other is None


async def test_released_action_is_claimable_at_once(engine: AsyncEngine) -> None:
    # Prepare
    action_id = await enqueue_action(engine, "stop_job", {}, "api")
    assert await claim_next_action(engine, "leaving", LONG_LEASE_S) is not None

    # Execute
    released = await release_action(engine, action_id, "leaving")
    taken = await claim_next_action(engine, "staying", LONG_LEASE_S)

    # Assert
    assert released is True
    assert taken is not None and (taken.id, taken.attempts) == (action_id, 2)


async def test_action_claimed_too_often_is_logged_as_abandoned(engine: AsyncEngine) -> None:
    # Prepare: two consumers each claim with an instantly expiring lease and never finish.
    action_id = await enqueue_action(engine, "run_job", {"job_id": "poison"}, "api")
    assert await claim_next_action(engine, "c1", 0.0, max_attempts=2) is not None
    assert await claim_next_action(engine, "c2", 0.0, max_attempts=2) is not None

    # Execute
    third = await claim_next_action(engine, "c3", 0.0, max_attempts=2)

    # Assert
    assert third is None
    log = await logged(engine)
    assert [(r["action_id"], r["outcome"], r["attempts"]) for r in log] == [
        (action_id, OUTCOME_ABANDONED, 2)
    ]
    assert await queued_action_count(engine) == 0


async def test_enqueue_wakes_a_waiting_consumer(engine: AsyncEngine) -> None:
    # Prepare: the fallback is far longer than the test's own deadline.
    waiter = asyncio.create_task(wait_for_action(engine, "c", LONG_LEASE_S, fallback_seconds=3600))
    await asyncio.sleep(0)

    # Execute
    action_id = await enqueue_action(engine, "run_job", {}, "api")
    claimed = await asyncio.wait_for(waiter, 30)

    # Assert
    assert claimed.id == action_id


async def test_notifier_keeps_a_notification_that_lands_between_mark_and_wait() -> None:
    # Prepare
    notifier = ActionNotifier()
    mark = notifier.mark()

    # Execute
    notifier.notify()
    woken = await notifier.wait(mark, timeout=3600)
    quiet = await notifier.wait(notifier.mark(), timeout=0.01)

    # Assert
    assert (woken, quiet) == (True, False)


async def test_one_notification_wakes_one_sleeping_consumer() -> None:
    # Prepare: three consumers asleep on the notifier
    notifier = ActionNotifier()
    mark = notifier.mark()
    sleepers = [asyncio.create_task(notifier.wait(mark, timeout=3600)) for _ in range(3)]
    for _ in range(3):
        await asyncio.sleep(0)

    # Execute
    notifier.notify()
    for _ in range(3):
        await asyncio.sleep(0)
    woken_after_one = sum(s.done() for s in sleepers)
    notifier.notify()
    notifier.notify()
    results = await asyncio.wait_for(asyncio.gather(*sleepers), 30)

    # Assert
    assert woken_after_one == 1
    assert results == [True, True, True]
    assert not notifier.idle()


async def test_actions_written_by_another_process_are_found_by_one_poller_and_drained(
    engine: AsyncEngine,
) -> None:
    # Prepare: three idle consumers of this process; five actions written without a local
    # notification (as another process's enqueues are)
    done: list[int] = []

    async def consumer(name: str) -> None:
        while True:
            action = await wait_for_action(engine, name, LONG_LEASE_S, fallback_seconds=0.2)
            assert await complete_action(engine, action.id, action.claimed_by, OUTCOME_SUCCESS)
            done.append(action.id)

    consumers = [asyncio.create_task(consumer(f"c{i}")) for i in range(3)]
    notifier = action_notifier(engine)
    while sum(not w.done() for w in notifier._waiters) < 3:
        await asyncio.sleep(0.01)

    # Execute
    async with engine.begin() as conn:
        ids = [await insert_action(conn, "run_job", {"n": n}, "other-process") for n in range(5)]

    async def drained() -> None:
        while len(done) < len(ids):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(drained(), 30)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

    # Assert: each logged once
    assert sorted(done) == ids
    assert sorted(r["action_id"] for r in await logged(engine)) == ids


async def _insert_claimed(engine: AsyncEngine, holder: str, lease_seconds: float) -> int:
    async with engine.begin() as conn:
        return await insert_action(conn, "run_job", {"job_id": "j1"}, "api",
                                   claimed_by=holder, lease_seconds=lease_seconds)


async def test_an_action_handed_over_claimed_reaches_a_consumer_without_a_claim(engine: AsyncEngine) -> None:
    # Prepare: a consumer asleep, and an action written already claimed by the hand-over's name
    notifier = action_notifier(engine)
    waiter = asyncio.create_task(wait_for_action(engine, "c", LONG_LEASE_S, fallback_seconds=3600))
    while not notifier.idle():
        await asyncio.sleep(0.01)
    action_id = await _insert_claimed(engine, "replica-submit", LONG_LEASE_S)
    now = time.time()

    # Execute
    notifier.hand_over(ClaimedAction(id=action_id, action="run_job", params={"job_id": "j1"}, producer="api",
                                     priority=0, created_at=now, claimed_by="replica-submit", claimed_at=now,
                                     lease_until=now + LONG_LEASE_S, attempts=1))
    handed = await asyncio.wait_for(waiter, 30)
    others = await claim_next_action(engine, "other-replica", LONG_LEASE_S)
    completed = await complete_action(engine, handed.id, handed.claimed_by, OUTCOME_SUCCESS)

    # Assert: the row was held from its insert (no other replica could claim it), and its
    # holder logged it once
    assert (handed.id, handed.claimed_by) == (action_id, "replica-submit")
    assert others is None
    assert completed
    assert [(r["action_id"], r["consumer"], r["attempts"]) for r in await logged(engine)] == [
        (action_id, "replica-submit", 1)]


async def test_a_hand_over_left_past_half_its_lease_is_claimed_from_the_database_instead(
    engine: AsyncEngine,
) -> None:
    # Prepare: an action handed over while every consumer was busy, for longer than half its lease
    notifier = action_notifier(engine)
    lease = 0.5
    action_id = await _insert_claimed(engine, "replica-submit", lease)
    then = time.time() - lease
    notifier.hand_over(ClaimedAction(id=action_id, action="run_job", params={}, producer="api", priority=0,
                                     created_at=then, claimed_by="replica-submit", claimed_at=then,
                                     lease_until=then + lease, attempts=1))

    # Execute: a consumer comes back; the stale hand-over is dropped and the row claimed once its
    # lease ran out
    claimed = await asyncio.wait_for(wait_for_action(engine, "c", LONG_LEASE_S, fallback_seconds=0.1), 30)

    # Assert
    assert (claimed.id, claimed.claimed_by, claimed.attempts) == (action_id, "c", 2)


async def test_an_action_inserted_claimed_needs_a_lease(engine: AsyncEngine) -> None:
    # Execute / Assert
    with pytest.raises(InvalidArgument, match="lease_seconds"):
        await _insert_claimed(engine, "replica-submit", 0.0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: enqueue_action(e, "", {}, "api"), "action"),
        (lambda e: enqueue_action(e, "run_job", {}, ""), "producer"),
        (lambda e: claim_next_action(e, "c", -1.0), "lease_seconds"),
        (lambda e: claim_next_action(e, "", 1.0), "consumer"),
        (lambda e: complete_action(e, 1, "c", ""), "outcome"),
        (lambda e: claim_next_actions(e, "c", 1.0, 0), "limit"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_field(
    engine: AsyncEngine, call: object, field: str
) -> None:
    # Execute / Assert
    with pytest.raises(InvalidArgument, match=field):
        await call(engine)  # type: ignore[operator]
