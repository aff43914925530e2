"""Weft's cryptography beside outside anchors: fate-utils (FATE 2.x's Rust crypto) and phe.

Paillier (encrypt, decrypt, ct + ct, ct * scalar, X^T [[d]]) and ECDH PSI blinding
(hash + blind own ids, re-blind a peer's points), all in this one process, one thread
each: Weft with `workers=1`, fate-utils with `RAYON_NUM_THREADS=1` (set before it is
imported), phe as it is (pure Python over gmpy2). Every figure is operations per
CPU-second of this process (`time.process_time`), so other work on the machine slows the
wall clock but not the figures. Each round runs Weft, fate-utils and phe one after the
other; a ratio is the median over `--rounds` rounds of the per-round ratios, printed with
its min and max. phe has no PSI; phe's X^T [[d]] is its plain loop (a scalar
multiplication and an addition per matrix entry) on a subset of rows.

Every section prints its result when measured (flushed); the last line printed is JSON.

    python benchmarks/anchors.py                  # 1024 and 2048 bits
    python benchmarks/anchors.py --quick          # small sizes, 1024 bits
    python benchmarks/anchors.py --smoke          # tiny sizes, a few seconds (the tests)
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # fate-utils' Rust thread pool: one thread, as ours

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import fate_utils.paillier as fate_paillier  # noqa: E402
import fate_utils.psi as fate_psi  # noqa: E402
import numpy as np  # noqa: E402
import phe  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import MIN_ROUNDS, load_average, load_text, report  # noqa: E402

from kernel.security.paillier import EncryptedVector, WeakKeyWarning, generate_keypair  # noqa: E402
from kernel.security.psi import PsiBlinder, hash_ids  # noqa: E402

SIDES = ("weft", "fate", "phe")
Job = Callable[[], Any]


def cpu_time(fn: Job) -> tuple[float, Any]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def side_by_side(name: str, jobs: dict[str, tuple[Job, int]], rounds: int) -> dict[str, Any]:
    """Round by round, each side's job (counting `ops` operations); ops per CPU-second and ratios."""
    rates: dict[str, list[float]] = {side: [] for side in jobs}
    loads: list[float] = []
    for _ in range(rounds):
        for side, (job, ops) in jobs.items():
            seconds, _ = cpu_time(job)
            rates[side].append(ops / max(seconds, 1e-9))
        loads.append(load_average()[0])
    out: dict[str, Any] = {}
    parts = []
    for side in jobs:
        out[f"{name}_per_cpu_s_{side}"] = round(statistics.median(rates[side]), 1)
        parts.append(f"{side} {out[f'{name}_per_cpu_s_{side}']:,.1f}/CPU-s")
    for other in jobs:
        if other == "weft":
            continue
        ratios = [w / o for w, o in zip(rates["weft"], rates[other], strict=True)]
        key = f"{name}_ratio_vs_{other}"
        out.update({key: round(statistics.median(ratios), 3), f"{key}_min": round(min(ratios), 3),
                    f"{key}_max": round(max(ratios), 3)})
        parts.append(f"Weft/{other} {out[key]:.2f}x (min {out[key + '_min']:.2f}, max {out[key + '_max']:.2f})")
    report(name, "; ".join(parts) + f"; {rounds} rounds, load {min(loads):.2f}-{max(loads):.2f}")
    return out


def paillier_section(bits: int, quick: bool, rounds: int, rng: np.random.Generator,
                     smoke: bool = False) -> dict[str, Any]:
    n_weft, n_fate = (400, 200) if quick else (2000, 1000)
    n_phe = (40 if bits >= 2048 else 100) if quick else (100 if bits >= 2048 else 300)
    rows, cols = (1000, 10) if quick else (5000, 50)
    phe_rows = 20 if quick else 100
    if smoke:
        n_weft, n_fate, n_phe, rows, cols, phe_rows = 40, 20, 10, 200, 5, 10
    print(f"\n== Paillier, {bits}-bit keys ==", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        pk, sk = generate_keypair(bits)
    fate_sk, fate_pk, coder = fate_paillier.keygen(bits)
    phe_pk, phe_sk = phe.generate_paillier_keypair(n_length=bits)
    values = rng.normal(size=max(n_weft, n_fate))
    EncryptedVector.encrypt(pk, values[:2], workers=1)  # builds the fixed-base table once per key, untimed

    weft_ct = EncryptedVector.encrypt(pk, values[:n_weft], workers=1)
    fate_ct = fate_pk.encrypt_encoded(coder.encode_f64_vec(values[:n_fate]), True)
    phe_ct = [phe_pk.encrypt(v) for v in values[:n_phe].tolist()]

    def fate_decrypt() -> Any:
        return coder.decode_f64_vec(fate_sk.decrypt_to_encoded(fate_ct))

    scalar = 1.7364
    fate_scalar = coder.encode_f64(scalar)
    out: dict[str, Any] = {}
    sections: dict[str, dict[str, tuple[Job, int]]] = {
        "encrypt": {
            "weft": (lambda: EncryptedVector.encrypt(pk, values[:n_weft], workers=1), n_weft),
            "fate": (lambda: fate_pk.encrypt_encoded(coder.encode_f64_vec(values[:n_fate]), True), n_fate),
            "phe": (lambda: [phe_pk.encrypt(v) for v in values[:n_phe].tolist()], n_phe),
        },
        "decrypt": {
            "weft": (lambda: weft_ct.decrypt(sk, workers=1), n_weft),
            "fate": (fate_decrypt, n_fate),
            "phe": (lambda: [phe_sk.decrypt(c) for c in phe_ct], n_phe),
        },
        "add": {
            "weft": (lambda: weft_ct.add(weft_ct, workers=1), n_weft),
            "fate": (lambda: fate_ct.add(fate_pk, fate_ct), n_fate),
            "phe": (lambda: [a + b for a, b in zip(phe_ct, phe_ct, strict=True)], n_phe),
        },
        "scalar_mul": {
            "weft": (lambda: weft_ct.mul(scalar, workers=1), n_weft),
            "fate": (lambda: fate_ct.mul_scalar(fate_pk, fate_scalar), n_fate),
            "phe": (lambda: [a * scalar for a in phe_ct], n_phe),
        },
    }
    for name, jobs in sections.items():
        out.update(side_by_side(f"{name}_{bits}", jobs, rounds))

    # X^T [[d]]: counted in matrix entries (one multiplication and addition each).
    x = rng.normal(size=(rows, cols))
    d = rng.normal(size=rows)
    weft_d = EncryptedVector.encrypt(pk, d, workers=1)
    fate_d = fate_pk.encrypt_encoded(coder.encode_f64_vec(d), True)
    fate_x = coder.encode_f64_vec(np.ascontiguousarray(x.T).ravel())
    phe_d = [phe_pk.encrypt(v) for v in d[:phe_rows].tolist()]

    def phe_loop() -> list[Any]:
        result = []
        for j in range(cols):
            acc = phe_d[0] * float(x[0, j])
            for i in range(1, phe_rows):
                acc = acc + phe_d[i] * float(x[i, j])
            result.append(acc)
        return result

    expected = x.T @ d
    weft_error = float(np.max(np.abs(weft_d.rmatvec(x, workers=1).decrypt(sk) - expected)))
    fate_result = fate_d.rmatmul(fate_pk, fate_x, [rows, 1], [cols, rows])
    fate_error = float(np.max(np.abs(coder.decode_f64_vec(fate_sk.decrypt_to_encoded(fate_result)) - expected)))
    report(f"matvec_{bits} check", f"{rows}x{cols}: max abs error Weft {weft_error:.3g}, fate-utils {fate_error:.3g}")
    out.update(side_by_side(f"matvec_{bits}", {
        "weft": (lambda: weft_d.rmatvec(x, workers=1), rows * cols),
        "fate": (lambda: fate_d.rmatmul(fate_pk, fate_x, [rows, 1], [cols, rows]), rows * cols),
        "phe": (phe_loop, phe_rows * cols),
    }, rounds))
    return out


def psi_section(quick: bool, rounds: int, smoke: bool = False) -> dict[str, Any]:
    """X25519 blinding: hash + blind own ids, and re-blind a peer's points, per id."""
    count = 500 if smoke else 5_000 if quick else 40_000
    print("\n== ECDH PSI (X25519) ==", flush=True)
    ids = [f"user-{i}" for i in range(count)]
    raw_ids = [value.encode() for value in ids]
    weft, weft_peer = PsiBlinder(), PsiBlinder()
    fate, fate_peer = fate_psi.Curve25519(), fate_psi.Curve25519()
    weft_points = weft_peer.blind(hash_ids(ids), workers=1)
    fate_points = fate_peer.encrypt_vec(raw_ids)
    # Both libraries must agree with themselves: a shared id meets the same double-blinded point.
    weft_ok = bool(np.array_equal(weft.blind(weft_points, workers=1), weft_peer.blind(weft.blind_ids(ids, workers=1),
                                                                                       workers=1)))
    fate_ok = fate.diffie_hellman_vec(fate_points) == fate_peer.diffie_hellman_vec(fate.encrypt_vec(raw_ids))
    report("psi check", f"{count:,} ids: double blinding commutes for Weft {weft_ok}, fate-utils {fate_ok}")
    out: dict[str, Any] = {"psi_commutes": weft_ok and fate_ok}
    out.update(side_by_side("psi_hash_blind", {
        "weft": (lambda: weft.blind_ids(ids, workers=1), count),
        "fate": (lambda: fate.encrypt_vec(raw_ids), count),
    }, rounds))
    out.update(side_by_side("psi_reblind", {
        "weft": (lambda: weft.blind(weft_points, workers=1), count),
        "fate": (lambda: fate.diffie_hellman_vec(fate_points), count),
    }, rounds))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes at 1024 bits (about a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes at 1024 bits: only checks that it runs")
    parser.add_argument("--bits", type=int, nargs="*", default=None, help="Paillier key sizes (default 1024 2048)")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help="interleaved rounds per ratio (>= 3)")
    args = parser.parse_args()
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS}")
    bits_list = args.bits if args.bits is not None else ([1024] if args.quick or args.smoke else [1024, 2048])
    rng = np.random.default_rng(2024)
    report("anchors", f"one thread each, figures per CPU-second of this process; {load_text()}")
    wall, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"quick": args.quick, "rounds": args.rounds, "bits": bits_list}
    for bits in bits_list:
        result.update(paillier_section(bits, args.quick, args.rounds, rng, args.smoke))
    result.update(psi_section(args.quick, args.rounds, args.smoke))
    result.update({"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                   "load": list(load_average())})
    report("anchors", f"whole run {result['wall_s']} s wall, {result['cpu_s']} CPU-s, {load_text()}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
