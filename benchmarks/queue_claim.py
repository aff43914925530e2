"""Benchmark: flow_action_queue actions claimed and completed per second, 1 and 2 replicas.

Each replica is a separate process with its own engine and connection pool, as scheduler
replicas sharing one MariaDB would be. Every replica runs one claim loop, like the
scheduler's consumer: it claims an action, hands it to a handler task that completes (logs)
it, and claims the next while up to HANDLERS_PER_REPLICA handlers run; until the queue is
empty. The rate is the number of actions over
the time from the first replica's start to the last replica's end.

    python benchmarks/queue_claim.py [--mysql mysql+aiomysql://root@127.0.0.1:3306/] [--actions N]

The benchmark creates its own database on the server and drops it afterwards. The last
line printed is JSON: {"actions_per_s_1_replica": ..., "actions_per_s_2_replicas": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.synchronize import Event as EventType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from services.common.db import (
    claim_next_action,
    complete_action,
    create_engine,
    insert_action,
    migrate,
    write_transaction,
)
from services.common.db.constants import ACTION_RUN_JOB, OUTCOME_SUCCESS
from services.common.db.schema import flow_action_log, flow_action_queue

DEFAULT_SERVER = "mysql+aiomysql://root@127.0.0.1:3306/"
TARGET_ACTIONS_PER_S = 500.0
LEASE_S = 60.0
HANDLERS_PER_REPLICA = 4
# Generous: a replica process imports SQLAlchemy and opens its pool before it is ready.
REPLICA_START_TIMEOUT_S = 120.0


async def _prepare_queue(url: str, actions: int) -> None:
    """Migrate, empty the queue and its log, then enqueue `actions` run_job actions."""
    await migrate(url)
    engine = create_engine(url)
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(sa.delete(flow_action_queue))
            await conn.execute(sa.delete(flow_action_log))
            for n in range(actions):
                await insert_action(conn, ACTION_RUN_JOB, {"job_id": f"bench-{n}"}, "benchmark")
    finally:
        await engine.dispose()


async def _consume_until_empty(
    url: str, name: str, ready: EventType, go: EventType
) -> tuple[float, float, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:  # open the pool before the clock starts
            await conn.execute(sa.select(1))
        ready.set()
        await asyncio.to_thread(go.wait)
        started = time.time()
        done = 0
        in_flight = asyncio.Semaphore(HANDLERS_PER_REPLICA)
        handlers: set[asyncio.Task[bool]] = set()

        async def handle(action_id: int) -> bool:
            try:
                return await complete_action(engine, action_id, name, OUTCOME_SUCCESS)
            finally:
                in_flight.release()

        while True:
            await in_flight.acquire()
            claimed = await claim_next_action(engine, name, LEASE_S)
            if claimed is None:
                in_flight.release()
                break
            handler = asyncio.create_task(handle(claimed.id))
            handlers.add(handler)
            handler.add_done_callback(handlers.discard)
            done += 1
        if not all(await asyncio.gather(*handlers)):
            raise RuntimeError(f"{name} lost a lease during the benchmark")
        return started, time.time(), done
    finally:
        await engine.dispose()


def _replica_main(url: str, name: str, ready: EventType, go: EventType, results: Any) -> None:
    results.put(asyncio.run(_consume_until_empty(url, name, ready, go)))


def _run_replicas(url: str, replicas: int) -> list[tuple[float, float, int]]:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    results = context.Queue()
    readies = [context.Event() for _ in range(replicas)]
    processes = [
        context.Process(target=_replica_main, args=(url, f"replica-{n}", readies[n], go, results))
        for n in range(replicas)
    ]
    for process in processes:
        process.start()
    try:
        for n, ready in enumerate(readies):
            if not ready.wait(REPLICA_START_TIMEOUT_S):
                raise RuntimeError(f"replica-{n} did not start within {REPLICA_START_TIMEOUT_S} s")
        go.set()
        outcomes = [results.get(timeout=REPLICA_START_TIMEOUT_S * 10) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return outcomes


async def measure_claim_rate(url: str, replicas: int, actions: int) -> float:
    """Actions claimed and completed per second by `replicas` processes sharing `url`.

    `url` must name a database used only by benchmarks: its queue and log are emptied.
    """
    if replicas < 1 or actions < 1:
        raise ValueError(f"need replicas >= 1 and actions >= 1, got {replicas}, {actions}")
    await _prepare_queue(url, actions)
    outcomes = await asyncio.to_thread(_run_replicas, url, replicas)
    consumed = sum(done for _, _, done in outcomes)
    if consumed != actions:
        raise RuntimeError(f"replicas consumed {consumed} actions, expected {actions}")
    elapsed = max(end for _, end, _ in outcomes) - min(start for start, _, _ in outcomes)
    return actions / elapsed


@asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `server_url`, dropped on exit."""
    server = make_url(server_url)
    name = f"weft_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database=None))
    try:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.begin() as conn:
                await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        await admin.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--mysql", default=DEFAULT_SERVER, help="server URL (a scratch database is created on it)"
    )
    parser.add_argument("--actions", type=int, default=2000, help="actions per measurement")
    parser.add_argument("--quick", action="store_true", help="500 actions, for a smoke check")
    args = parser.parse_args()
    actions = 500 if args.quick else args.actions

    async with scratch_database(args.mysql) as url:
        one = await measure_claim_rate(url, 1, actions)
        two = await measure_claim_rate(url, 2, actions)

    print(f"actions per measurement : {actions}")
    print(f"1 replica               : {one:8.0f} actions/s  (target >= {TARGET_ACTIONS_PER_S:.0f})")
    print(f"2 replicas              : {two:8.0f} actions/s  ({two / one:.2f}x one replica)")
    print(
        json.dumps(
            {"actions_per_s_1_replica": round(one, 1), "actions_per_s_2_replicas": round(two, 1)}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
