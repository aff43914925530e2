"""Secure aggregation by pairwise masks: the aggregator learns the sum, never one member's vector.

Every pair of members (i, j) agrees on a key with X25519 and expands it, per round, into a
ChaCha20 keystream read as uint64 words. Member i adds the stream for every peer j > i and
subtracts it for every j < i (ids compared as strings). Values are fixed-point integers in
uint64, so all arithmetic is modulo 2**64 and the masks cancel exactly in the sum.

Dropouts: a member whose masked vector is missing leaves its pairwise masks in the sum, so
the round cannot be unmasked; `SecureAggregator.unmask_sum` refuses it with an error naming
the missing members (no recovery protocol: the round is run again with those who remain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kernel.errors import CryptoError, FederationError
from kernel.security.constants import (
    SECAGG_DEFAULT_PRECISION_BITS,
    SECAGG_KDF_INFO,
    SECAGG_KEY_BYTES,
    SECAGG_MAX_PRECISION_BITS,
)

U64Array = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]

# Each (pair, round) has its own derived key, so a fixed nonce never repeats under one key.
_ZERO_NONCE = bytes(16)


def _check_precision(precision_bits: int) -> int:
    if isinstance(precision_bits, bool) or not isinstance(precision_bits, int):
        raise CryptoError("precision_bits must be an integer")
    if not 0 <= precision_bits <= SECAGG_MAX_PRECISION_BITS:
        raise CryptoError(
            f"precision_bits must be in [0, {SECAGG_MAX_PRECISION_BITS}], got {precision_bits}"
        )
    return precision_bits


def encode_fixed(vector: Any, precision_bits: int, n_members: int) -> U64Array:
    """round(v * 2**precision_bits) as uint64 (two's complement), refusing sums that could overflow."""
    array = np.asarray(vector)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise CryptoError(f"vector must be a 1-D numeric array, got {array.dtype} {array.shape}")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise CryptoError("vector contains NaN or infinity")
    scaled = np.rint(values * 2.0**precision_bits)
    # The sum of n_members such values must stay inside int64.
    limit = 2.0**63 / max(1, n_members)
    if scaled.size and float(np.max(np.abs(scaled))) >= limit:
        raise CryptoError(
            f"vector: |value| * 2**{precision_bits} times {n_members} members exceeds 2**63; "
            "lower precision_bits or scale the values"
        )
    return scaled.astype(np.int64).astype(np.uint64)


def decode_sum(total: U64Array, precision_bits: int) -> FloatArray:
    """Floats from a sum of fixed-point uint64 words."""
    return np.ldexp(total.astype(np.int64).astype(np.float64), -precision_bits)


def _round_bytes(round_id: str | int) -> bytes:
    if isinstance(round_id, bool) or not isinstance(round_id, str | int):
        raise CryptoError(f"round_id must be a str or int, got {type(round_id).__name__}")
    return str(round_id).encode("utf-8")


class MaskingClient:
    """One member's side: its X25519 key, its peers' keys, and masking per round."""

    def __init__(
        self, member_id: str, *, precision_bits: int = SECAGG_DEFAULT_PRECISION_BITS
    ) -> None:
        if not member_id:
            raise CryptoError("member_id must be a non-empty string")
        self.member_id = member_id
        self.precision_bits = _check_precision(precision_bits)
        self._private = X25519PrivateKey.generate()
        self._peers: dict[str, X25519PublicKey] = {}
        self._used_rounds: set[bytes] = set()

    def public_key(self) -> bytes:
        """The 32 raw bytes to send to every other member."""
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def set_peer_keys(self, peer_keys: Mapping[str, bytes]) -> None:
        """Every other member's public key by member id (own id, if present, is checked)."""
        peers: dict[str, X25519PublicKey] = {}
        own = self.public_key()
        for member, key in peer_keys.items():
            if not isinstance(key, bytes) or len(key) != SECAGG_KEY_BYTES:
                raise CryptoError(f"public key of member {member!r} must be {SECAGG_KEY_BYTES} raw bytes")
            if member == self.member_id:
                if key != own:
                    raise CryptoError(f"the key given for this member {member!r} is not its own")
                continue
            if key == own:
                raise CryptoError(f"member {member!r} presents this member's own public key")
            peers[member] = X25519PublicKey.from_public_bytes(key)
        if not peers:
            raise CryptoError("secure aggregation needs at least one peer")
        self._peers = peers

    @property
    def members(self) -> list[str]:
        """All members of the group, this one included, sorted."""
        return sorted([self.member_id, *self._peers])

    def _pair_stream(self, peer: str, round_tag: bytes, length: int) -> U64Array:
        shared = self._private.exchange(self._peers[peer])
        low, high = sorted([self.member_id, peer])
        info = b"|".join([SECAGG_KDF_INFO, round_tag, low.encode(), high.encode()])
        key = HKDF(algorithm=hashes.SHA256(), length=SECAGG_KEY_BYTES, salt=None, info=info).derive(shared)
        encryptor = Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), mode=None).encryptor()
        stream = encryptor.update(bytes(8 * length))
        return np.frombuffer(stream, dtype="<u8").astype(np.uint64)

    def mask(self, vector: Any, round_id: str | int) -> U64Array:
        """The fixed-point vector plus this member's pairwise masks, modulo 2**64.

        A round id may be used once: reusing masks would let the aggregator subtract two
        rounds and see the difference of this member's vectors.
        """
        if not self._peers:
            raise CryptoError("set_peer_keys must be called before mask")
        tag = _round_bytes(round_id)
        if tag in self._used_rounds:
            raise CryptoError(f"round {round_id!r} was already masked by member {self.member_id!r}")
        encoded = encode_fixed(vector, self.precision_bits, len(self._peers) + 1)
        masked = encoded.copy()
        for peer in sorted(self._peers):
            stream = self._pair_stream(peer, tag, encoded.size)
            if self.member_id < peer:
                masked += stream
            else:
                masked -= stream
        self._used_rounds.add(tag)
        return masked


class SecureAggregator:
    """The aggregator's side: sums masked vectors and decodes the result."""

    def __init__(
        self, member_ids: Sequence[str], *, precision_bits: int = SECAGG_DEFAULT_PRECISION_BITS
    ) -> None:
        if len(set(member_ids)) != len(member_ids) or len(member_ids) < 2:
            raise CryptoError("secure aggregation needs at least two distinct member ids")
        self.member_ids = sorted(member_ids)
        self.precision_bits = _check_precision(precision_bits)

    def sum_masked(self, masked: Mapping[str, Any], round_id: str | int = "") -> U64Array:
        """The modulo-2**64 sum of every member's masked vector (masks cancel)."""
        where = f"secure aggregation round {round_id!r}" if round_id != "" else "secure aggregation"
        missing = [m for m in self.member_ids if m not in masked]
        if missing:
            raise FederationError(
                f"{where} failed: no masked vector from member(s) {', '.join(missing)}; their "
                "pairwise masks cannot be removed, so no sum is released. Run the round again "
                "with the members that remain."
            )
        unknown = sorted(set(masked) - set(self.member_ids))
        if unknown:
            raise CryptoError(f"{where}: vectors from members outside the group: {', '.join(unknown)}")
        vectors: list[U64Array] = []
        for member in self.member_ids:
            vec = np.asarray(masked[member])
            if vec.dtype != np.uint64 or vec.ndim != 1:
                raise CryptoError(
                    f"{where}: member {member!r} sent {vec.dtype} {vec.shape}, expected 1-D uint64"
                )
            if vectors and vec.shape != vectors[0].shape:
                raise CryptoError(
                    f"{where}: member {member!r} sent length {vec.size}, others {vectors[0].size}"
                )
            vectors.append(vec)
        total: U64Array = vectors[0].copy()
        for vec in vectors[1:]:
            total += vec
        return total

    def unmask_sum(self, masked: Mapping[str, Any], round_id: str | int = "") -> FloatArray:
        """The plain sum of the members' vectors, as floats."""
        return decode_sum(self.sum_masked(masked, round_id), self.precision_bits)
