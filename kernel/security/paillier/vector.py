"""EncryptedVector: a numpy-facing array of Paillier ciphertexts with homomorphic operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.errors import CryptoError
from kernel.security.constants import (
    DEFAULT_PACK_HEADROOM_BITS,
    DEFAULT_PRECISION_BITS,
    ENCRYPT_PROCESS_MIN_VALUES,
)
from kernel.security.paillier import encoding
from kernel.security.paillier.keys import (
    PaillierPrivateKey,
    PaillierPublicKey,
    encrypt_on_processes,
)
from kernel.security.paillier.multiexp import multi_exponentiate
from kernel.security.paillier.packing import PackingLayout, pack_rows, unpack_rows
from kernel.security.paillier.parallel import map_chunks

FloatArray = npt.NDArray[np.float64]
Key = PaillierPublicKey | PaillierPrivateKey


def _public(key: Key) -> PaillierPublicKey:
    return key.public_key if isinstance(key, PaillierPrivateKey) else key


def _max_abs(values: Sequence[int]) -> int:
    return max(max(values), -min(values)) if values else 0


class EncryptedVector:
    """A 1-D vector of Paillier ciphertexts of fixed-point numbers.

    Each ciphertext holds round(x * 2**frac_bits). `bound` is an upper bound on every
    |plaintext integer| (per slot when packed); every operation updates it and refuses,
    before computing, a result that could leave the plaintext space, so nothing wraps
    silently. Loops over single ciphertexts live inside this module's helpers only.
    """

    __slots__ = ("public_key", "_ciphertexts", "frac_bits", "bound", "layout")
    # numpy must hand `array + vector` to our reflected operators, not iterate the vector.
    __array_ufunc__ = None

    def __init__(
        self,
        public_key: PaillierPublicKey,
        ciphertexts: list[mpz],
        frac_bits: int,
        bound: int,
        layout: PackingLayout | None = None,
    ) -> None:
        """Wrap ciphertexts of integers scaled by 2**frac_bits, each |integer| <= bound."""
        if frac_bits < 0 or bound < 0:
            raise CryptoError(f"frac_bits and bound must be non-negative, got {frac_bits}, {bound}")
        self.public_key = public_key
        self._ciphertexts = ciphertexts
        self.frac_bits = int(frac_bits)
        self.bound = int(bound)
        self.layout = layout
        self._check_bound(self.bound, "vector")

    # ------------------------------------------------------------------ construction
    @classmethod
    def encrypt(
        cls,
        key: Key,
        values: Any,
        *,
        precision_bits: int = DEFAULT_PRECISION_BITS,
        workers: int | None = None,
    ) -> EncryptedVector:
        """Encrypt a 1-D array (CRT encryption when `key` is the private key)."""
        array = encoding.as_numeric_array(values, "values")
        if array.ndim != 1:
            raise CryptoError(f"values must be 1-D, got shape {array.shape}")
        # Integer input stays exact (no fractional bits); floats get precision_bits.
        integer_input = np.issubdtype(array.dtype, np.integer)
        frac = 0 if integer_input else encoding.check_precision(precision_bits)
        plaintexts = encoding.encode(array, frac)
        cts = key.encrypt_integers(plaintexts, workers)
        return cls(_public(key), cts, frac, _max_abs(plaintexts))

    @classmethod
    def encrypt_packed(
        cls,
        key: Key,
        values: Any,
        *,
        precision_bits: int = DEFAULT_PRECISION_BITS,
        slot_bits: int | None = None,
        headroom_bits: int = DEFAULT_PACK_HEADROOM_BITS,
        workers: int | None = None,
        processes: int = 1,
    ) -> EncryptedVector:
        """Encrypt a (rows, slots) array with each row packed into one ciphertext.

        Default slot width: the bits the largest value needs, plus a sign bit, plus
        `headroom_bits` so that up to 2**headroom_bits such vectors can be summed (or a
        matvec with that much weight taken) before a slot could overflow. With `processes`
        > 1 and at least ENCRYPT_PROCESS_MIN_VALUES rows, the rows are encrypted on that many
        worker processes (`workers` threads otherwise).
        """
        array = encoding.as_numeric_array(values, "values")
        if array.ndim != 2 or array.shape[1] < 1:
            raise CryptoError(f"values must have shape (rows, slots), got {array.shape}")
        integer_input = np.issubdtype(array.dtype, np.integer)
        frac = 0 if integer_input else encoding.check_precision(precision_bits)
        flat = encoding.encode(array, frac)
        bound = _max_abs(flat)
        if slot_bits is None:
            slot_bits = bound.bit_length() + 1 + max(0, int(headroom_bits))
        layout = PackingLayout(max(2, int(slot_bits)), int(array.shape[1]))
        pk = _public(key)
        layout.check_fits(pk.n_bits)
        packed = pack_rows(flat, layout)
        if processes > 1 and len(packed) >= ENCRYPT_PROCESS_MIN_VALUES:
            cts = encrypt_on_processes(key, packed, processes)
        else:
            cts = key.encrypt_integers(packed, workers)
        return cls(pk, cts, frac, bound, layout)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self._ciphertexts)

    def __repr__(self) -> str:
        packed = f", layout={self.layout}" if self.layout else ""
        return (
            f"EncryptedVector(len={len(self)}, key_id={self.public_key.key_id!r}, "
            f"frac_bits={self.frac_bits}, bound_bits={self.bound.bit_length()}{packed})"
        )

    @property
    def ciphertexts(self) -> Sequence[mpz]:
        """The raw ciphertexts (read only by convention)."""
        return self._ciphertexts

    def _limit(self) -> int:
        return self.layout.slot_limit if self.layout else int(self.public_key.max_int)

    def _check_bound(self, bound: int, op: str) -> None:
        limit = self._limit()
        if bound > limit:
            where = f"a {self.layout.slot_bits}-bit slot" if self.layout else (
                f"the plaintext space of a {self.public_key.n_bits}-bit key"
            )
            raise CryptoError(
                f"{op}: the result could need {bound.bit_length()} bits, more than {where} "
                f"({limit.bit_length()} bits); lower precision_bits, scale the inputs"
                + (", widen slot_bits" if self.layout else " or use a larger key")
            )

    def _derive(self, cts: list[mpz], frac_bits: int, bound: int, op: str) -> EncryptedVector:
        self._check_bound(bound, op)
        return EncryptedVector(self.public_key, cts, frac_bits, bound, self.layout)

    def _require_unflat(self, op: str) -> None:
        if self.layout is not None and self.layout.flat_length is not None:
            raise CryptoError(
                f"{op} is not defined on a vector packed after encryption; "
                f"decrypt it or operate before packing"
            )

    def _require_same_key(self, other: EncryptedVector, op: str) -> None:
        if other.public_key.n != self.public_key.n:
            raise CryptoError(
                f"{op}: vectors are under different keys "
                f"({self.public_key.key_id} vs {other.public_key.key_id})"
            )

    def __getitem__(self, index: int | slice | Any) -> EncryptedVector:
        """Select ciphertexts by int, slice, integer array or boolean mask."""
        self._require_unflat("indexing")
        if isinstance(index, slice):
            chosen = self._ciphertexts[index]
        else:
            idx = np.asarray(index)
            if idx.dtype == np.bool_:
                if idx.shape != (len(self),):
                    raise CryptoError(f"mask has shape {idx.shape}, vector has {len(self)}")
                idx = np.flatnonzero(idx)
            if not np.issubdtype(idx.dtype, np.integer):
                raise CryptoError(f"index must be integers or a boolean mask, got {idx.dtype}")
            flat = idx.ravel()
            if flat.size and (flat.max() >= len(self) or flat.min() < -len(self)):
                raise CryptoError(f"index out of range for a vector of length {len(self)}")
            cts = self._ciphertexts
            chosen = [cts[i] for i in flat.tolist()]
        return EncryptedVector(self.public_key, chosen, self.frac_bits, self.bound, self.layout)

    @staticmethod
    def concatenate(vectors: Sequence[EncryptedVector]) -> EncryptedVector:
        """One vector from several under the same key (precisions are aligned upward)."""
        if not vectors:
            raise CryptoError("concatenate needs at least one vector")
        first = vectors[0]
        frac = max(v.frac_bits for v in vectors)
        parts: list[mpz] = []
        bound = 0
        for v in vectors:
            first._require_same_key(v, "concatenate")
            v._require_unflat("concatenate")
            if v.layout != first.layout:
                raise CryptoError("concatenate: vectors have different packing layouts")
            aligned = v.with_frac_bits(frac)
            parts.extend(aligned._ciphertexts)
            bound = max(bound, aligned.bound)
        return EncryptedVector(first.public_key, parts, frac, bound, first.layout)

    def with_frac_bits(self, frac_bits: int, workers: int | None = None) -> EncryptedVector:
        """The same values with more fractional bits (ciphertexts raised to 2**delta)."""
        delta = frac_bits - self.frac_bits
        if delta < 0:
            raise CryptoError(
                f"cannot lower the precision of ciphertexts from {self.frac_bits} to {frac_bits} bits"
            )
        if delta == 0:
            return self
        cts = _pow_all(self._ciphertexts, mpz(1) << delta, self.public_key.nsquare, workers)
        return self._derive(cts, frac_bits, self.bound << delta, "raising precision")

    # ------------------------------------------------------------------ decryption
    def decrypt_integers(self, private_key: PaillierPrivateKey, workers: int | None = None) -> list[int]:
        """The signed plaintext integers (scaled by 2**frac_bits; packed rows unpacked)."""
        if private_key.public_key.n != self.public_key.n:
            raise CryptoError(
                f"decrypt: vector is under key {self.public_key.key_id}, the private key is "
                f"for {private_key.public_key.key_id}"
            )
        if self.layout is None:
            return private_key.decrypt_integers(self._ciphertexts, self.bound, workers)
        packed = private_key.decrypt_integers(
            self._ciphertexts, self.layout.plaintext_bound(self.bound), workers
        )
        return unpack_rows(packed, self.layout)

    def decrypt(self, private_key: PaillierPrivateKey, workers: int | None = None) -> FloatArray:
        """Floats: shape (len,), or (len, slots) for row-packed vectors."""
        values = encoding.decode(self.decrypt_integers(private_key, workers), self.frac_bits)
        if self.layout is None:
            return values
        if self.layout.flat_length is not None:
            return values[: self.layout.flat_length]
        return values.reshape(len(self), self.layout.slots)

    # ------------------------------------------------------------------ arithmetic
    def _plain_integers(self, other: Any, op: str) -> tuple[list[int], int]:
        """A plaintext operand at this vector's precision (one int per ciphertext) and max |value|."""
        array = encoding.as_numeric_array(other, op)
        want: tuple[int, ...] = (len(self),) if self.layout is None else (len(self), self.layout.slots)
        if array.ndim == 0:
            array = np.full(want, array)
        if array.shape != want:
            raise CryptoError(f"{op}: plaintext has shape {array.shape}, expected {want}")
        flat = encoding.encode(array, self.frac_bits, op)
        largest = _max_abs(flat)
        if self.layout is None:
            return flat, largest
        return pack_rows(flat, self.layout), largest

    def add(self, other: EncryptedVector | Any, workers: int | None = None) -> EncryptedVector:
        """ct + ct (elementwise) or ct + plaintext (array or scalar)."""
        nsquare = self.public_key.nsquare
        if isinstance(other, EncryptedVector):
            self._require_same_key(other, "addition")
            if len(other) != len(self):
                raise CryptoError(f"addition: lengths differ ({len(self)} vs {len(other)})")
            if other.layout != self.layout:
                raise CryptoError("addition: vectors have different packing layouts")
            frac = max(self.frac_bits, other.frac_bits)
            a, b = self.with_frac_bits(frac, workers), other.with_frac_bits(frac, workers)
            cts = [x * y % nsquare for x, y in zip(a._ciphertexts, b._ciphertexts, strict=True)]
            return self._derive(cts, frac, a.bound + b.bound, "addition")
        self._require_unflat("adding a plaintext")
        array = encoding.as_numeric_array(other, "addition")
        base = self
        if np.issubdtype(array.dtype, np.floating) and self.frac_bits < DEFAULT_PRECISION_BITS:
            # Floats added to an integer-valued vector must not be rounded to integers.
            base = self.with_frac_bits(DEFAULT_PRECISION_BITS, workers)
        plain, extra = base._plain_integers(array, "addition")
        base._check_bound(base.bound + extra, "addition")
        trivial = self.public_key.trivial_integers(plain)
        cts = [x * y % nsquare for x, y in zip(base._ciphertexts, trivial, strict=True)]
        return base._derive(cts, base.frac_bits, base.bound + extra, "addition")

    def __add__(self, other: EncryptedVector | Any) -> EncryptedVector:
        return self.add(other)

    def __radd__(self, other: Any) -> EncryptedVector:
        return self.add(other)

    def __neg__(self) -> EncryptedVector:
        cts = _pow_all(self._ciphertexts, mpz(-1), self.public_key.nsquare, None)
        return self._derive(cts, self.frac_bits, self.bound, "negation")

    def __sub__(self, other: EncryptedVector | Any) -> EncryptedVector:
        if isinstance(other, EncryptedVector):
            return self.add(-other)
        return self.add(-encoding.as_numeric_array(other, "subtraction"))

    def __rsub__(self, other: Any) -> EncryptedVector:
        return (-self).add(other)

    def mul(
        self, other: Any, *, precision_bits: int = DEFAULT_PRECISION_BITS, workers: int | None = None
    ) -> EncryptedVector:
        """ct * scalar or ct * plaintext vector (elementwise); ints are exact."""
        self._require_unflat("multiplication")
        nsquare = self.public_key.nsquare
        if np.ndim(other) == 0:
            k, bits = encoding.encode_scalar(
                other.item() if isinstance(other, np.ndarray) else other, precision_bits, "scalar"
            )
            self._check_bound(self.bound * abs(k), "multiplication by a scalar")
            cts = _pow_all(self._ciphertexts, mpz(k), nsquare, workers)
            return self._derive(cts, self.frac_bits + bits, self.bound * abs(k), "multiplication")
        exps, bits = encoding.encode_exponents(other, precision_bits, "multiplier")
        if exps.shape != (len(self),):
            raise CryptoError(f"multiplier has shape {exps.shape}, vector has {len(self)}")
        largest = int(np.abs(exps).max()) if exps.size else 0
        self._check_bound(self.bound * largest, "elementwise multiplication")
        pairs = list(zip(self._ciphertexts, exps.tolist(), strict=True))

        def chunk(items: Sequence[tuple[mpz, int]]) -> list[mpz]:
            return [gmpy2.powmod(c, e, nsquare) for c, e in items]

        cts = map_chunks(chunk, pairs, workers)
        return self._derive(cts, self.frac_bits + bits, self.bound * largest, "multiplication")

    def __mul__(self, other: Any) -> EncryptedVector:
        return self.mul(other)

    def __rmul__(self, other: Any) -> EncryptedVector:
        return self.mul(other)

    def sum(self, workers: int | None = None) -> EncryptedVector:
        """The sum of all elements, as a vector of length 1 (one packed row when packed)."""
        return self.group_sum(np.zeros(len(self), dtype=np.int64), 1, workers)

    def group_sum(
        self, group_ids: Any, n_groups: int, workers: int | None = None
    ) -> EncryptedVector:
        """Sums per group (histogram bins): result[g] = sum of elements with group_ids == g.

        An empty group holds the trivial encryption of 0 (ciphertext 1): call `rerandomize`
        before sending such a result to the key holder.
        """
        self._require_unflat("group_sum")
        ids = np.asarray(group_ids)
        if ids.shape != (len(self),) or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise CryptoError(f"group_ids must be {len(self)} integers, got shape {ids.shape}")
        if n_groups < 1:
            raise CryptoError(f"n_groups must be at least 1, got {n_groups}")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= n_groups):
            raise CryptoError(f"group_ids must lie in [0, {n_groups})")
        counts = np.bincount(ids, minlength=n_groups)
        largest = int(counts.max()) if counts.size else 0
        self._check_bound(self.bound * largest, "group_sum")
        order = np.argsort(ids, kind="stable").tolist()
        bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
        cts, nsquare = self._ciphertexts, self.public_key.nsquare

        def chunk(groups: Sequence[int]) -> list[mpz]:
            out = []
            for g in groups:
                acc = mpz(1)
                for k in range(bounds[g], bounds[g + 1]):
                    acc = acc * cts[order[k]] % nsquare
                out.append(acc)
            return out

        sums = map_chunks(chunk, range(n_groups), workers, min_per_worker=1)
        return self._derive(sums, self.frac_bits, self.bound * largest, "group_sum")

    def rmatvec(
        self,
        matrix: Any,
        *,
        precision_bits: int = DEFAULT_PRECISION_BITS,
        workers: int | None = None,
    ) -> EncryptedVector:
        """matrix.T @ self for a (len, m) plaintext matrix: m ciphertexts (X^T [[d]]).

        One multi-exponentiation per output over all rows (Pippenger buckets); negative
        entries use the ciphertext's inverse rather than modulus-sized exponents.
        """
        self._require_unflat("rmatvec")
        exps, bits = encoding.encode_exponents(matrix, precision_bits, "matrix")
        if exps.ndim != 2 or exps.shape[0] != len(self):
            raise CryptoError(
                f"rmatvec: matrix must have shape ({len(self)}, m), got {exps.shape}"
            )
        if exps.shape[1] == 0:
            return self._derive([], self.frac_bits + bits, 0, "rmatvec")
        # Column weight sum_i |x_ij| bounds the growth; float64 with a margin stays an upper bound.
        weight = float(np.abs(exps).astype(np.float64).sum(axis=0).max()) if exps.size else 0.0
        growth = int(weight * (1 + 2.0**-40)) + 1
        self._check_bound(self.bound * growth, "rmatvec")
        cts = multi_exponentiate(self._ciphertexts, exps, self.public_key.nsquare, workers)
        return self._derive(cts, self.frac_bits + bits, self.bound * growth, "rmatvec")

    def matvec(
        self,
        matrix: Any,
        *,
        precision_bits: int = DEFAULT_PRECISION_BITS,
        workers: int | None = None,
    ) -> EncryptedVector:
        """matrix @ self for an (m, len) plaintext matrix: m ciphertexts."""
        array = encoding.as_numeric_array(matrix, "matrix")
        if array.ndim != 2:
            raise CryptoError(f"matvec: matrix must be 2-D, got shape {array.shape}")
        return self.rmatvec(array.T, precision_bits=precision_bits, workers=workers)

    def dot(
        self, weights: Any, *, precision_bits: int = DEFAULT_PRECISION_BITS, workers: int | None = None
    ) -> EncryptedVector:
        """sum_i weights[i] * self[i], as a vector of length 1."""
        array = encoding.as_numeric_array(weights, "weights")
        if array.ndim != 1:
            raise CryptoError(f"dot: weights must be 1-D, got shape {array.shape}")
        return self.rmatvec(array[:, None], precision_bits=precision_bits, workers=workers)

    # ------------------------------------------------------------------ randomness, packing
    def rerandomize(self, workers: int | None = None) -> EncryptedVector:
        """The same plaintexts under fresh randomness (hides how a result was computed)."""
        obf = self.public_key.obfuscators(len(self), workers)
        nsquare = self.public_key.nsquare
        cts = [c * r % nsquare for c, r in zip(self._ciphertexts, obf, strict=True)]
        return EncryptedVector(self.public_key, cts, self.frac_bits, self.bound, self.layout)

    def pack(
        self, slots: int | None = None, *, headroom_bits: int = 0, workers: int | None = None
    ) -> EncryptedVector:
        """Compress `slots` ciphertexts into one (fewer decryptions, fewer bytes on the wire).

        The slot width comes from the tracked bound, so the packed values cannot overlap;
        decryption returns the original 1-D order.
        """
        if self.layout is not None:
            raise CryptoError("pack: the vector is already packed")
        slot_bits = self.bound.bit_length() + 1 + max(0, int(headroom_bits))
        slot_bits = max(2, slot_bits)
        most = (self.public_key.n_bits - 2) // slot_bits
        if most < 1:
            raise CryptoError(f"pack: values of {slot_bits} bits do not fit any slot")
        k = most if slots is None else int(slots)
        k = max(1, min(k, len(self) or 1))
        layout = PackingLayout(slot_bits, k, len(self))
        layout.check_fits(self.public_key.n_bits)
        nsquare = self.public_key.nsquare
        rows = -(-len(self) // k)
        padded = list(self._ciphertexts) + [mpz(1)] * (rows * k - len(self))
        # Horner over slots: acc = (...(c_{k-1})**(2**b) * c_{k-2})**(2**b) ... * c_0.
        acc = padded[k - 1 :: k]
        shift = mpz(1) << slot_bits
        for s in range(k - 2, -1, -1):
            raised = _pow_all(acc, shift, nsquare, workers)
            acc = [x * y % nsquare for x, y in zip(raised, padded[s::k], strict=True)]
        return EncryptedVector(self.public_key, acc, self.frac_bits, self.bound, layout)


def _pow_all(cts: Sequence[mpz], exponent: mpz, modulus: mpz, workers: int | None) -> list[mpz]:
    """Every ciphertext to the same power (negative means the inverse), GIL-free in chunks."""

    def chunk(items: Sequence[mpz]) -> list[mpz]:
        return list(gmpy2.powmod_base_list(list(items), exponent, modulus))

    return map_chunks(chunk, cts, workers)
