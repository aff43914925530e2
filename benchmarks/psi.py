"""ECDH PSI on X25519: ids blinded per second on one core, and a 1M x 1M intersection.

First the blinding rate of one core (`workers=1`, in this process). Then both members run
the protocol at once, each in its own thread of this process as two tasks would on one
machine, handing each other their points through queues (no network): each hashes and
blinds its own ids, sends them, re-blinds the peer's points, sends them back and matches.
Their blinding runs on the security kernel's worker processes (`workers` = cores), so the
two members' work overlaps and fills every core. `psi_1m_s` is the wall time from the
start until both members know the intersection.

`psi_limit_s` is what the cores alone allow: four X25519 multiplications per pair of ids
(each member blinds its ids and re-blinds the peer's) at the one-core rate measured in
this run, spread over every core. Everything else (hashing, matching, hand-offs) shows as
the gap between the two. Each step prints as it ends, with wall and CPU seconds (this
process and its worker processes) and the load average; the last line printed is JSON.

    python benchmarks/psi.py               # 1M x 1M ids, half of them shared
    python benchmarks/psi.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, load_text, report, span  # noqa: E402

from kernel.security.processes import SHARED_PROCESSES  # noqa: E402
from kernel.security.psi import PsiBlinder, hash_ids, intersect_indices  # noqa: E402

MULTIPLICATIONS_PER_PAIR = 4
Points = Any


class Member(threading.Thread):
    """One member's side of the protocol; its steps are timed as they end.

    Each member re-blinds the peer's points and gets its own back re-blinded, so both hold
    both doubly blinded sets and match them (in the Intersection component the promoter
    matches and tells the provider the positions; the multiplications are the same).
    """

    def __init__(self, name: str, ids: list[str], outbox: queue.Queue[Points], inbox: queue.Queue[Points],
                 workers: int, begin: float) -> None:
        super().__init__(name=name)
        self.ids, self.outbox, self.inbox, self.workers, self.begin = ids, outbox, inbox, workers, begin
        self.found: np.ndarray | None = None
        self.error: BaseException | None = None

    def step(self, label: str, fn: Callable[[], Points]) -> Points:
        wall = time.perf_counter()
        out = fn()
        report(f"{self.name} {label}", f"{time.perf_counter() - wall:.2f}s, done at "
               f"{time.perf_counter() - self.begin:.1f}s; {load_text()}")
        return out

    def run(self) -> None:
        try:
            blinder = PsiBlinder()
            own = self.step("hashes + blinds own ids", lambda: blinder.blind_ids(self.ids, self.workers))
            self.outbox.put(own)
            peer = self.step("waits for the peer's points", self.inbox.get)
            peer_twice = self.step("re-blinds the peer's points", lambda: blinder.blind(peer, self.workers))
            self.outbox.put(peer_twice)
            own_twice = self.step("waits for its own points back", self.inbox.get)
            self.found = self.step("matches", lambda: intersect_indices(own_twice, peer_twice))
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            self.error = exc


def run_members(ids_a: list[str], ids_b: list[str], workers: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Both members at once; returns each member's matched row indices and the wall seconds."""
    a_to_b: queue.Queue[Points] = queue.Queue()
    b_to_a: queue.Queue[Points] = queue.Queue()
    begin = time.perf_counter()
    alice = Member("member A", ids_a, a_to_b, b_to_a, workers, begin)
    bob = Member("member B", ids_b, b_to_a, a_to_b, workers, begin)
    alice.start()
    bob.start()
    alice.join()
    bob.join()
    for member in (alice, bob):
        if member.error is not None:
            raise member.error
    assert alice.found is not None and bob.found is not None
    return alice.found, bob.found, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ids per member")
    parser.add_argument("--blind-sample", type=int, default=40_000, help="ids for the per-core rate")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    report("psi", f"{args.rows:,} ids per member on {cores} cores; {load_text()}")

    sample = hash_ids(range(args.blind_sample))
    blinder = PsiBlinder()
    with span() as rate_span:
        start = time.process_time()
        blinder.blind(sample, workers=1)
        blind_cpu = time.process_time() - start
    # CPU seconds, not wall: other work on the machine must not lower the rate (and the limit).
    per_core = args.blind_sample / blind_cpu
    rows = args.rows
    limit = MULTIPLICATIONS_PER_PAIR * rows / (cores * per_core)
    report("blind on one core", f"{per_core:,.0f} ids per CPU-second ({args.blind_sample:,} ids, {rate_span.text()}); "
           f"two-core limit for {rows:,} x {rows:,}: {limit:.1f}s")

    shared = rows // 2
    ids_a = [f"user-{i}" for i in range(rows)]
    ids_b = [f"user-{i}" for i in range(rows - shared, 2 * rows - shared)]
    SHARED_PROCESSES.start(cores)  # spawned before the clock, as a task's are after its first use
    with span() as whole:
        found_a, found_b, total = run_members(ids_a, ids_b, cores)
    ok = len(found_a) == len(found_b) == shared and np.array_equal(
        np.asarray(ids_a, dtype=object)[found_a], np.asarray(ids_b, dtype=object)[found_b]
    )
    report("psi", f"{rows:,} x {rows:,} ids: {total:.1f}s end to end ({whole.cpu_s:.1f} CPU-s, "
           f"{whole.cpu_s / total:.2f} cores busy), limit {limit:.1f}s, ratio {total / limit:.2f} (target <= 1.2); "
           f"{len(found_a):,} shared, correct={ok}; {load_text()}")
    SHARED_PROCESSES.shutdown()
    print(json.dumps({
        "blind_per_s_per_core": round(per_core, 1),
        "psi_1m_s" if rows == 1_000_000 else f"psi_{rows}_s": round(total, 2),
        "psi_limit_s": round(limit, 2),
        "psi_over_limit": round(total / limit, 3),
        "psi_cpu_s": round(whole.cpu_s, 2),
        "rows": rows,
        "cores": cores,
        "correct": bool(ok),
        "load": list(load_average()),
    }))


if __name__ == "__main__":
    main()
