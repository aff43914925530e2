"""Distinct counts that merge across blocks: exact sets up to a limit, then HyperLogLog.

A block reports the set of its distinct values while it is small; two sets merge by union.
Once a merged set passes the limit it becomes a HyperLogLog sketch (2**14 registers of the
highest leading-zero rank seen, about 0.8% relative error), and sketches merge by the
elementwise maximum. So what reaches the driver is bounded by the limit, whatever the rows.
Every value is first a 64-bit key: a number's float64 bits (-0.0 read as 0.0), a string's
XXH3-64 digest; keys are hashed with the SplitMix64 finaliser. Missing values are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from kernel.stats.constants import HLL_PRECISION

U64 = npt.NDArray[np.uint64]

_REGISTERS = 1 << HLL_PRECISION
_TAIL_BITS = 64 - HLL_PRECISION


def splitmix64(bits: U64) -> U64:
    """SplitMix64's finaliser: a well-spread 64-bit hash of each 64-bit word."""
    with np.errstate(over="ignore"):
        z = bits + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def _bit_length(words: U64) -> npt.NDArray[np.int64]:
    """Number of significant bits of each word (0 for 0)."""
    length = np.zeros(words.shape, dtype=np.int64)
    rest = words.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = rest >= (np.uint64(1) << np.uint64(shift))
        length[big] += shift
        rest[big] >>= np.uint64(shift)
    return length + (rest > 0)


def value_keys(column: pa.Array | pa.ChunkedArray) -> U64:
    """The distinct 64-bit keys of a column's present values (numbers or strings)."""
    present = pc.drop_null(column)
    if pa.types.is_string(present.type) or pa.types.is_large_string(present.type) \
            or pa.types.is_binary(present.type):
        unique = pc.unique(present).to_pylist()
        digests = [xxhash.xxh3_64_intdigest(v.encode("utf-8") if isinstance(v, str) else v) for v in unique]
        return np.unique(np.asarray(digests, dtype=np.uint64))
    values = np.asarray(pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    values = values[~np.isnan(values)] + 0.0  # + 0.0 turns -0.0 into 0.0
    return np.unique(np.ascontiguousarray(values).view(np.uint64))


def _registers(keys: U64) -> npt.NDArray[np.uint8]:
    hashed = splitmix64(np.asarray(keys, dtype=np.uint64))
    index = (hashed >> np.uint64(_TAIL_BITS)).astype(np.int64)
    tail = hashed & np.uint64((1 << _TAIL_BITS) - 1)
    rank = (_TAIL_BITS - _bit_length(tail) + 1).astype(np.uint8)
    registers = np.zeros(_REGISTERS, dtype=np.uint8)
    np.maximum.at(registers, index, rank)
    return registers


def _estimate(registers: npt.NDArray[np.uint8]) -> float:
    """The HyperLogLog estimate with the small-range (linear counting) correction."""
    m = float(_REGISTERS)
    alpha = 0.7213 / (1.0 + 1.079 / m)
    raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -registers.astype(np.int64))))
    zeros = int(np.count_nonzero(registers == 0))
    if raw <= 2.5 * m and zeros:
        return m * float(np.log(m / zeros))
    return raw


@dataclass(frozen=True)
class DistinctSketch:
    """Distinct present values of a column: an exact set of keys, or HyperLogLog registers."""

    values: U64 | None
    registers: npt.NDArray[np.uint8] | None
    limit: int

    @classmethod
    def of_column(cls, column: pa.Array | pa.ChunkedArray, limit: int) -> DistinctSketch:
        distinct = value_keys(column)
        if len(distinct) > limit:
            return cls(None, _registers(distinct), limit)
        return cls(distinct, None, limit)

    def merge(self, other: DistinctSketch) -> DistinctSketch:
        if self.values is not None and other.values is not None:
            union = np.union1d(self.values, other.values)
            if len(union) <= self.limit:
                return DistinctSketch(union, None, self.limit)
            return DistinctSketch(None, _registers(union), self.limit)
        mine = self.registers if self.registers is not None else _registers(self._values())
        theirs = other.registers if other.registers is not None else _registers(other._values())
        return DistinctSketch(None, np.maximum(mine, theirs), self.limit)

    def _values(self) -> U64:
        assert self.values is not None
        return self.values

    @property
    def exact(self) -> bool:
        return self.values is not None

    def count(self) -> int:
        """The number of distinct values: exact, or HyperLogLog's estimate rounded."""
        if self.values is not None:
            return int(len(self.values))
        assert self.registers is not None
        return int(round(_estimate(self.registers)))
