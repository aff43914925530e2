"""Benchmark: flow_action_queue actions claimed and completed per second, 1 and 2 replicas.

Each replica is a separate process with its own engine and connection pool, as scheduler
replicas sharing one MariaDB would be. Every replica runs one claim loop, like the
scheduler's consumer: it claims as many actions as it has free handler slots (at most
HANDLERS_PER_REPLICA), hands each to a handler task that completes (logs) it, and claims
again as slots free up; until the queue is empty. The rate is the number of actions over
the time from the first replica's start to the last replica's end.

    python benchmarks/queue_claim.py [--mysql mysql+aiomysql://root@127.0.0.1:3306/] [--actions N]

The benchmark creates its own database on the server and drops it afterwards. Each
measurement prints when done with the CPU seconds of this process and its replicas and the
load average. The last line printed is JSON: {"actions_per_s_1_replica": ..., "actions_per_s_2_replicas": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, report, span  # noqa: E402

from services.common.db import (
    claim_next_actions,
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
HANDLERS_PER_REPLICA = 8
# Generous: a replica process imports SQLAlchemy and opens its pool before it is ready.
REPLICA_START_TIMEOUT_S = 120.0
REPLICA_RUN_TIMEOUT_S = 3600.0
READY = "ready"
URL_ENV = "WEFT_QUEUE_BENCH_DB_URL"


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


async def _replica(url: str, name: str, handler_slots: int) -> None:
    """One replica process: open the pool, say ready, wait for go, drain the queue, report."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:  # open the pool before the clock starts
            await conn.execute(sa.select(1))
        print(READY, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.time()
        done = 0
        lost = 0
        handlers: set[asyncio.Task[None]] = set()

        async def handle(action_id: int) -> None:
            nonlocal lost
            if not await complete_action(engine, action_id, name, OUTCOME_SUCCESS):
                lost += 1

        while True:
            free = handler_slots - len(handlers)
            if free == 0:
                await asyncio.wait(set(handlers), return_when=asyncio.FIRST_COMPLETED)
                continue
            claimed = await claim_next_actions(engine, name, LEASE_S, free)
            if not claimed:
                break
            for action in claimed:
                handler = asyncio.create_task(handle(action.id))
                handlers.add(handler)
                handler.add_done_callback(handlers.discard)
            done += len(claimed)
        await asyncio.gather(*handlers)
        ended = time.time()
        print(
            json.dumps({"started": started, "ended": ended, "done": done, "lost": lost}), flush=True
        )
    finally:
        await engine.dispose()


async def _start_replica(url: str, name: str, handler_slots: int) -> asyncio.subprocess.Process:
    # The URL travels in the environment, not argv, so a password does not show in `ps`.
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--replica",
        name,
        "--handler-slots",
        str(handler_slots),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, URL_ENV: url},
    )


async def _read_line(process: asyncio.subprocess.Process, timeout: float) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not line:
        raise RuntimeError(f"replica process {process.pid} exited with {await process.wait()}")
    return line.decode().strip()


async def measure_claim_rate(
    url: str, replicas: int, actions: int, handler_slots: int = HANDLERS_PER_REPLICA
) -> float:
    """Actions claimed and completed per second by `replicas` processes sharing `url`.

    Each replica completes up to `handler_slots` actions concurrently (1: claim, complete,
    claim, ... strictly one after the other). `url` must name a database used only by
    benchmarks: its queue and log are emptied first.
    """
    if replicas < 1 or actions < 1 or handler_slots < 1:
        raise ValueError(
            f"need replicas, actions and handler_slots >= 1, got {replicas}, {actions}, {handler_slots}"
        )
    await _prepare_queue(url, actions)
    processes = [await _start_replica(url, f"replica-{n}", handler_slots) for n in range(replicas)]
    try:
        for process in processes:
            if await _read_line(process, REPLICA_START_TIMEOUT_S) != READY:
                raise RuntimeError(f"replica process {process.pid} did not report ready")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        reports = [json.loads(await _read_line(p, REPLICA_RUN_TIMEOUT_S)) for p in processes]
        for process in processes:
            await process.wait()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    consumed = sum(report["done"] for report in reports)
    lost = sum(report["lost"] for report in reports)
    if consumed != actions or lost:
        raise RuntimeError(f"replicas consumed {consumed} of {actions} actions, lost {lost} leases")
    elapsed = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
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
    parser.add_argument(
        "--handler-slots",
        type=int,
        default=HANDLERS_PER_REPLICA,
        help="concurrent handlers per replica",
    )
    parser.add_argument("--replica", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        await _replica(os.environ[URL_ENV], args.replica, args.handler_slots)
        return
    actions = 500 if args.quick else args.actions

    async with scratch_database(args.mysql) as url:
        with span() as one_span:
            one = await measure_claim_rate(url, 1, actions, args.handler_slots)
        report("1 replica", f"{one:.0f} actions/s; {one_span.text()} (replica processes; MariaDB's own CPU "
               "is not counted)")
        with span() as two_span:
            two = await measure_claim_rate(url, 2, actions, args.handler_slots)
        report("2 replicas", f"{two:.0f} actions/s; {two_span.text()}")

    print(f"actions per measurement : {actions}")
    print(f"1 replica               : {one:8.0f} actions/s  (target >= {TARGET_ACTIONS_PER_S:.0f})")
    print(f"2 replicas              : {two:8.0f} actions/s  ({two / one:.2f}x one replica)")
    print(
        json.dumps(
            {"actions_per_s_1_replica": round(one, 1), "actions_per_s_2_replicas": round(two, 1),
             "cpu_s_1_replica": round(one_span.cpu_s, 2), "cpu_s_2_replicas": round(two_span.cpu_s, 2),
             "load": list(load_average())}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
