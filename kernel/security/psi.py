"""ECDH private set intersection on Curve25519: hash ids to points, blind, re-blind, match.

Member A holds secret a, member B secret b. Each hashes its ids to X25519 u-coordinates
H(x) and blinds them (a*H(x), b*H(y)); each re-blinds the other's points, giving
b*a*H(x) and a*b*H(y). X25519 scalar multiplication commutes, so an id both hold yields
the same 32 bytes on both sides, and nothing else can be compared: without a secret
scalar a blinded point says nothing about the id behind it.

Batches use processes: the X25519 call holds the GIL, so threads would not scale. They are
the security kernel's kept worker processes (`kernel.security.processes`), handed the points
in chunks: spawning is paid once per task process, and when both members' steps (or two
steps of one member) run at once their chunks interleave on the same processes, so every
core stays busy until the last chunk.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kernel.errors import CryptoError
from kernel.security.constants import (
    PSI_CHUNK_POINTS,
    PSI_HASH_DOMAIN,
    PSI_MIN_ITEMS_PER_PROCESS,
    PSI_POINT_BYTES,
)
from kernel.security.processes import SHARED_PROCESSES

PointArray = npt.NDArray[np.uint8]


def _id_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int | np.integer):
        return str(int(value)).encode("ascii")
    if isinstance(value, np.str_ | np.bytes_):
        return _id_bytes(value.item())
    raise CryptoError(f"PSI ids must be str, bytes or int, got {type(value).__name__}")


def _hashed(values: Iterable[Any]) -> bytes:
    digests = bytearray()
    for value in values:
        digests += hashlib.blake2b(
            _id_bytes(value), digest_size=PSI_POINT_BYTES, person=PSI_HASH_DOMAIN
        ).digest()
    return bytes(digests)


def _id_list(ids: Iterable[Any]) -> list[Any]:
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def hash_ids(ids: Iterable[Any]) -> PointArray:
    """Hash ids to X25519 u-coordinates, shape (n, 32).

    Ints hash as their decimal text, so 42 and "42" are the same id on both sides. About
    half of all u-coordinates lie on Curve25519's quadratic twist; X25519 is defined and
    commutative there too, and the curve was chosen to be secure on its twist.
    """
    return np.frombuffer(_hashed(_id_list(ids)), dtype=np.uint8).reshape(-1, PSI_POINT_BYTES)


def _blind_raw(secret: bytes, raw: bytes) -> bytes:
    """Scalar-multiply every 32-byte point in `raw` by the secret (one process's share)."""
    exchange = X25519PrivateKey.from_private_bytes(secret).exchange
    load = X25519PublicKey.from_public_bytes
    out = bytearray()
    width = PSI_POINT_BYTES
    for start in range(0, len(raw), width):
        try:
            out += exchange(load(raw[start : start + width]))
        except ValueError:
            # Only the handful of low-order points give an all-zero result.
            raise CryptoError(
                f"PSI point {start // width} is a low-order point and cannot be blinded"
            ) from None
    return bytes(out)


def _process_count(workers: int | None, count: int) -> int:
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:
            workers = os.cpu_count() or 1
    if workers < 1:
        raise CryptoError(f"workers must be at least 1, got {workers}")
    return max(1, min(workers, count // PSI_MIN_ITEMS_PER_PROCESS))


def _blind_on_processes(secret: bytes, chunks: Iterator[bytes], processes: int) -> bytes:
    """Blind each chunk of points on the kept worker processes, two chunks per process in flight.

    Chunks rather than one part per process: a core slowed by other work holds up one chunk,
    not half of the points, and another caller's chunks can run in between. `chunks` is read
    only as the processes need more work, so producing it (hashing ids) overlaps with them.
    """
    pool = SHARED_PROCESSES.pool(processes)
    parts: list[bytes] = []
    pending: deque[Future[bytes]] = deque()
    for chunk in chunks:
        if len(pending) >= 2 * processes:  # one queued behind each running chunk: no idle gap
            parts.append(pending.popleft().result())
        pending.append(pool.submit(_blind_raw, secret, chunk))
    while pending:
        parts.append(pending.popleft().result())
    return b"".join(parts)


def _chunk_points(count: int, processes: int) -> int:
    return max(1, min(PSI_CHUNK_POINTS, -(-count // processes)))


class PsiBlinder:
    """One member's PSI secret and the batch operations that use it."""

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is None:
            secret = secrets.token_bytes(PSI_POINT_BYTES)
        if len(secret) != PSI_POINT_BYTES:
            raise CryptoError(f"PSI secret must be {PSI_POINT_BYTES} bytes, got {len(secret)}")
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return "PsiBlinder(<secret>)"

    def blind_ids(self, ids: Iterable[Any], workers: int | None = None) -> PointArray:
        """Hash then blind own ids: the points to send to the peer, in the ids' order.

        On worker processes the ids are hashed chunk by chunk as the processes take work,
        so the first points are being blinded while the rest are still hashed.
        """
        values = _id_list(ids)
        processes = _process_count(workers, len(values))
        if processes == 1:
            return self.blind(hash_ids(values), 1)
        step = _chunk_points(len(values), processes)
        chunks = (_hashed(values[start : start + step]) for start in range(0, len(values), step))
        result = _blind_on_processes(self._secret, chunks, processes)
        return np.frombuffer(result, dtype=np.uint8).reshape(len(values), PSI_POINT_BYTES)

    def blind(self, points: PointArray, workers: int | None = None) -> PointArray:
        """Multiply every point by this member's secret (also re-blinds a peer's points)."""
        array = np.ascontiguousarray(points, dtype=np.uint8)
        if array.ndim != 2 or array.shape[1] != PSI_POINT_BYTES:
            raise CryptoError(f"PSI points must have shape (n, {PSI_POINT_BYTES}), got {array.shape}")
        count = array.shape[0]
        raw = array.tobytes()
        processes = _process_count(workers, count)
        if processes == 1:
            result = _blind_raw(self._secret, raw)
        else:
            width = _chunk_points(count, processes) * PSI_POINT_BYTES
            chunks = (raw[start : start + width] for start in range(0, len(raw), width))
            result = _blind_on_processes(self._secret, chunks, processes)
        return np.frombuffer(result, dtype=np.uint8).reshape(count, PSI_POINT_BYTES)


def intersect_indices(own: PointArray, peer: PointArray) -> npt.NDArray[np.int64]:
    """Indices (ascending) of rows of `own` whose doubly blinded point is also in `peer`."""
    for name, arr in (("own", own), ("peer", peer)):
        if arr.ndim != 2 or arr.shape[1] != PSI_POINT_BYTES or arr.dtype != np.uint8:
            raise CryptoError(
                f"{name} points must be uint8 of shape (n, {PSI_POINT_BYTES}), got {arr.dtype} {arr.shape}"
            )
    own_c, peer_c = np.ascontiguousarray(own), np.ascontiguousarray(peer)
    if own_c.shape[0] == 0 or peer_c.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # Each own point's 64-bit prefix is looked up among the peer's sorted prefixes, and the
    # peer point found there is compared in full: one sort, no Python loop per id.
    own_key = own_c.view(np.uint64)[:, 0]
    peer_key = peer_c.view(np.uint64)[:, 0]
    order = np.argsort(peer_key, kind="stable")
    sorted_keys = peer_key[order]
    at = np.minimum(np.searchsorted(sorted_keys, own_key), len(sorted_keys) - 1)
    candidates = np.flatnonzero(sorted_keys[at] == own_key)
    same = (own_c[candidates] == peer_c[order[at[candidates]]]).all(axis=1)
    unsure = candidates[~same]
    if unsure.size:
        # Two peer points share a prefix (chance about n^2 / 2^65): compare with all of them.
        shared = peer_c[np.isin(peer_key, own_key[unsure])]
        whole = {row.tobytes() for row in shared}
        same[~same] = [own_c[i].tobytes() in whole for i in unsure.tolist()]
    positions: npt.NDArray[np.int64] = candidates[same].astype(np.int64)
    return positions


def blinded_set_bytes(points: PointArray) -> Sequence[bytes]:
    """Each point as 32 bytes (for joins outside numpy, e.g. a Table keyed by blinded id)."""
    raw = np.ascontiguousarray(points, dtype=np.uint8).tobytes()
    return [raw[i : i + PSI_POINT_BYTES] for i in range(0, len(raw), PSI_POINT_BYTES)]
