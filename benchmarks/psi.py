"""ECDH PSI on X25519: ids blinded per second on one core, and an end-to-end intersection.

Both members run on this machine one after the other (each step uses every core through
the process pool), so `psi_1m_s` is the sum of both sides' work: hash and blind own ids,
re-blind the peer's points, match. The last line printed is JSON.

    python benchmarks/psi.py               # 1M x 1M ids, half of them shared
    python benchmarks/psi.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from kernel.security.psi import PsiBlinder, hash_ids, intersect_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ids per member")
    parser.add_argument("--blind-sample", type=int, default=40_000, help="ids for the per-core rate")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))

    sample = hash_ids(range(args.blind_sample))
    blinder = PsiBlinder()
    start = time.perf_counter()
    blinder.blind(sample, workers=1)
    per_core = args.blind_sample / (time.perf_counter() - start)
    print(f"blind on one core: {per_core:,.0f} ids/s")

    rows = args.rows
    shared = rows // 2
    ids_a = [f"user-{i}" for i in range(rows)]
    ids_b = [f"user-{i}" for i in range(rows - shared, 2 * rows - shared)]
    alice, bob = PsiBlinder(), PsiBlinder()
    steps: dict[str, float] = {}
    begin = time.perf_counter()

    def step(name: str, fn):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = fn()
        steps[name] = time.perf_counter() - t
        return out

    a_once = step("A hash+blind", lambda: alice.blind_ids(ids_a))
    b_once = step("B hash+blind", lambda: bob.blind_ids(ids_b))
    a_twice = step("B re-blinds A", lambda: bob.blind(a_once))
    b_twice = step("A re-blinds B", lambda: alice.blind(b_once))
    found_a = step("A matches", lambda: intersect_indices(a_twice, b_twice))
    found_b = step("B matches", lambda: intersect_indices(b_twice, a_twice))
    total = time.perf_counter() - begin
    for name, seconds in steps.items():
        print(f"{name:>16}: {seconds:8.2f}s")
    ok = len(found_a) == len(found_b) == shared and np.array_equal(
        np.asarray(ids_a, dtype=object)[found_a], np.asarray(ids_b, dtype=object)[found_b]
    )
    print(f"{rows:,} x {rows:,} ids on {cores} cores: {total:.1f}s, {len(found_a):,} shared, correct={ok}")
    print(json.dumps({
        "blind_per_s_per_core": round(per_core, 1),
        "psi_1m_s" if rows == 1_000_000 else f"psi_{rows}_s": round(total, 2),
        "rows": rows,
        "cores": cores,
        "correct": bool(ok),
    }))


if __name__ == "__main__":
    main()
