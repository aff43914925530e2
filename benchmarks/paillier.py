"""Weft Paillier against python-paillier (phe), side by side in one run, ratios printed.

Measures encrypt, decrypt, ct+ct, ct*scalar and X^T [[d]] at 1024 and 2048 bits on one
thread (the ratios), then Weft's encrypt and matvec again on every core. One-thread work is
timed in CPU seconds of this process (`time.process_time`), which other work on a shared
machine does not inflate; the all-core figures are wall time, with CPU seconds beside them.
Every ratio comes
from `--rounds` interleaved rounds (Weft, then phe, then Weft again...): the figure is the
median of the per-round ratios, printed with the smallest and largest. The phe matvec is a
plain loop of scalar multiplications and additions; over the full matrix it would run for
many minutes, so each round times it on a subset of rows and extrapolates linearly
(printed). Each section prints its result as soon as it is measured, with the load
average and CPU seconds; the last line printed is JSON.

    python benchmarks/paillier.py            # 10000 x 100 matrix
    python benchmarks/paillier.py --quick    # smaller sizes, about a minute
    python benchmarks/paillier.py --smoke --bits 1024   # tiny sizes, a few seconds (the tests)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import phe

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import MIN_ROUNDS, interleaved, load_average, load_text, ratio_keys, report, span  # noqa: E402

from kernel.security.paillier import EncryptedVector, WeakKeyWarning, generate_keypair  # noqa: E402
from kernel.security.paillier.keys import short_exponent_bits, window_bits_for  # noqa: E402


def bench_bits(bits: int, quick: bool, rounds: int, rng: np.random.Generator, smoke: bool = False) -> dict[str, float]:
    n_ours = 400 if quick else 2000
    n_phe = (40 if bits >= 2048 else 100) if quick else (100 if bits >= 2048 else 300)
    rows, cols = (4000, 20) if quick else (10000, 100)
    phe_rows = (20 if bits >= 2048 else 50) if quick else (100 if bits >= 2048 else 300)
    if smoke:
        n_ours, n_phe, rows, cols, phe_rows = 40, 10, 200, 5, 10

    print(f"\n== {bits}-bit keys ==", flush=True)
    phe_pk, phe_sk = phe.generate_paillier_keypair(n_length=bits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        pk, sk = generate_keypair(bits)
    values = rng.normal(size=n_ours)
    phe_values = values[:n_phe].tolist()

    # Tables are built once per key; time it separately and keep it out of the per-op rates.
    with span() as table:
        EncryptedVector.encrypt(pk, values[:2], workers=1)
    with span() as crt_table:
        EncryptedVector.encrypt(sk, values[:2], workers=1)
    report(f"fixed-base tables {bits}", f"exponent {short_exponent_bits(bits)} bits, window {window_bits_for(bits)}: "
           f"public {table.wall_s:.2f}s, CRT {crt_table.wall_s:.2f}s (once per key; {load_text()})")

    us_ours, us_phe = 1e6 / n_ours, 1e6 / n_phe  # seconds of a batch -> microseconds per operation
    out: dict[str, float] = {}
    figures: dict[str, float] = {}

    def compare(name: str, ours: Any, theirs: Any, label: str, repeat: int = 1) -> tuple[Any, Any]:
        measured, got_ours, got_theirs = interleaved(ours, theirs, rounds * repeat, us_ours, us_phe,
                                                     clock=time.process_time)
        out.update(ratio_keys(f"{name}_ratio_{bits}", measured))
        ours_us = float(np.median(measured.ours_s))
        figures[f"{name}_us"] = ours_us
        figures[f"phe_{name}_us"] = float(np.median(measured.theirs_s))
        report(f"{label} {bits}", f"Weft {ours_us:.2f} us, phe {figures[f'phe_{name}_us']:.2f} us per operation (CPU); "
               f"ratio {measured.text()}")
        return got_ours, got_theirs

    enc, phe_enc = compare("encrypt", lambda: EncryptedVector.encrypt(pk, values, workers=1),
                           lambda: [phe_pk.encrypt(v) for v in phe_values], "encrypt (public key)")
    compare("encrypt_crt", lambda: EncryptedVector.encrypt(sk, values, workers=1),
            lambda: [phe_pk.encrypt(v) for v in phe_values], "encrypt (CRT, key holder)")
    compare("decrypt", lambda: enc.decrypt(sk, workers=1), lambda: [phe_sk.decrypt(c) for c in phe_enc], "decrypt")
    # milliseconds each: more rounds cost nothing and steady the ratio
    compare("add", lambda: enc.add(enc, workers=1), lambda: [a + b for a, b in zip(phe_enc, phe_enc, strict=True)],
            "ct + ct", repeat=3)
    scalar = 1.7364
    compare("scalar_mul", lambda: enc.mul(scalar, workers=1), lambda: [a * scalar for a in phe_enc], "ct * scalar")

    # X^T [[d]]: Weft on the whole matrix, phe's loop on the first phe_rows rows (extrapolated).
    x = rng.normal(size=(rows, cols))
    d = rng.normal(size=rows)
    enc_d = EncryptedVector.encrypt(sk, d)
    phe_d = [phe_pk.encrypt(v) for v in d[:phe_rows].tolist()]

    def phe_loop() -> list[Any]:
        result = []
        for j in range(cols):
            acc = phe_d[0] * float(x[0, j])
            for i in range(1, phe_rows):
                acc = acc + phe_d[i] * float(x[i, j])
            result.append(acc)
        return result

    with span() as matvec_span:
        measured, result, _ = interleaved(lambda: enc_d.rmatvec(x, workers=1), phe_loop, rounds,
                                          theirs_scale=rows / phe_rows, clock=time.process_time)
    error = float(np.max(np.abs(result.decrypt(sk) - x.T @ d)))
    out.update(ratio_keys(f"matvec_ratio_{bits}", measured))
    t_matvec, t_phe_matvec = float(np.median(measured.ours_s)), float(np.median(measured.theirs_s))
    report(f"X^T [[d]] {bits}", f"{rows}x{cols}: Weft {t_matvec:.2f} CPU-s, phe loop timed on {phe_rows} of {rows} rows "
           f"and extrapolated to {t_phe_matvec:.1f} CPU-s; ratio {measured.text()}; max abs error {error:.3g}; "
           f"all rounds {matvec_span.cpu_s:.1f} CPU-s in {matvec_span.wall_s:.1f}s")

    workers = len(os.sched_getaffinity(0))
    with span() as enc_mc:
        EncryptedVector.encrypt(pk, values, workers=workers)
    with span() as matvec_mc:
        enc_d.rmatvec(x, workers=workers)
    report(f"all cores {bits}", f"{workers} workers: encrypt {n_ours / enc_mc.wall_s:.1f}/s ({enc_mc.text()}); "
           f"X^T [[d]] {matvec_mc.text()}")

    out.update({
        f"encrypt_per_s_{bits}": 1e6 / figures["encrypt_us"],
        f"encrypt_crt_per_s_{bits}": 1e6 / figures["encrypt_crt_us"],
        f"decrypt_per_s_{bits}": 1e6 / figures["decrypt_us"],
        f"matvec_s_{bits}": t_matvec,
        f"phe_matvec_s_extrapolated_{bits}": t_phe_matvec,
        f"encrypt_per_s_all_cores_{bits}": n_ours / enc_mc.wall_s,
        f"matvec_s_all_cores_{bits}": matvec_mc.wall_s,
        f"matvec_cpu_s_all_cores_{bits}": matvec_mc.cpu_s,
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks that the benchmark runs")
    parser.add_argument("--bits", type=int, nargs="*", default=[1024, 2048])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help="interleaved rounds per ratio (>= 3)")
    args = parser.parse_args()
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS}")
    rng = np.random.default_rng(2024)
    results: dict[str, Any] = {"quick": args.quick, "matrix": "4000x20" if args.quick else "10000x100",
                               "rounds": args.rounds}
    with span() as whole:
        for bits in args.bits:
            results.update(bench_bits(bits, args.quick, args.rounds, rng, args.smoke))
    report("paillier", f"whole run {whole.text()}")
    results.update({"wall_s": whole.wall_s, "cpu_s": whole.cpu_s, "load": list(load_average())})
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
