"""Vertically aligned rows in shared chunks: a per-row vector crosses members one chunk at a time.

Every member keys each row by the first 8 bytes of SHA-256 of its id (`ROW_KEY_COLUMN`,
computed on the workers). Chunk c of C holds the rows whose key mod C is c, ordered by
key. Members holding the same ids therefore draw the same chunks in the same order without
exchanging or collecting ids; the id set itself is checked first by an order-free digest
(`id_digest`: the row count and the sum of SHA-256(id) mod 2**256).

What reaches a driver: per chunk, the chunk's keys and the values sent for it (about
`CHUNK_VALUES` values or ciphertexts, whatever the table's size), and per table pass a
fixed-size aggregate
(the digest, a sum of per-partition encrypted products). A partition picks its rows'
values out of the chunk vector by position (`ChunkPlan.positions`).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.row_keys import ids_text, keyed_rows
from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.security.paillier import EncryptedVector

FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.uint64]

# Name of the per-row key column added to the rows (dropped before any output).
ROW_KEY_COLUMN: Final = "__weft_row_key"
# Values per chunk, about (rows times values a row): what one message and one driver hold
# of a per-row vector (32,768 ciphertexts of a 2048-bit key are 8 MB).
CHUNK_VALUES: Final = 1 << 15
_DIGEST_MODULUS: Final = 1 << 256


def with_row_keys(table: Table, columns: list[str]) -> Table:
    """`columns` of `table` plus the row key, cached (every chunk reads it again)."""
    return keyed_rows(table, ROW_KEY_COLUMN, columns)


def _digest(id_column: str, block: pa.Table) -> tuple[int, int]:
    total = sum(int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
                for text in ids_text(block, id_column)) % _DIGEST_MODULUS
    return block.num_rows, total


def _add_digests(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], (a[1] + b[1]) % _DIGEST_MODULUS


def id_digest(table: Table) -> tuple[int, str]:
    """The row count and a digest of the id set, equal at members holding the same ids in any order."""
    rows, total = table.select([]).reduce(functools.partial(_digest, table.id_column), _add_digests)
    return rows, f"{rows}:{total:064x}"


def chunk_count(rows: int, width: int = 1) -> int:
    """How many chunks `rows` rows of `width` values each are sent in."""
    return max(1, math.ceil(rows * max(width, 1) / CHUNK_VALUES))


@dataclass(frozen=True)
class ChunkPlan:
    """Which rows form chunk `chunk` of `chunks`: row key mod `chunks`."""

    chunks: int
    chunk: int

    def select(self, block: pa.Table) -> tuple[pa.Table, KeyArray]:
        """The block's rows in this chunk and their keys (as unsigned words)."""
        keys = np.asarray(block.column(ROW_KEY_COLUMN).to_numpy(), dtype=np.int64).view(np.uint64)
        mask = keys % np.uint64(self.chunks) == np.uint64(self.chunk)
        return block.filter(pa.array(mask)), keys[mask]

    def positions(self, keys: KeyArray, block: pa.Table) -> tuple[pa.Table, npt.NDArray[np.int64]]:
        """The block's rows in this chunk and where each sits in the chunk's sorted `keys`."""
        rows, own = self.select(block)
        positions = np.searchsorted(keys, own)
        if len(own) and (positions.max() >= len(keys) or bool((keys[positions] != own).any())):
            raise InvalidArgument("a row of this chunk has no value in the chunk vector")
        return rows, positions.astype(np.int64)


Gathered = tuple[KeyArray, FloatArray]


def _gather(plan: ChunkPlan, values: Callable[[pa.Table], FloatArray], block: pa.Table) -> Gathered:
    rows, keys = plan.select(block)
    return keys, values(rows)


def _concat(a: Gathered, b: Gathered) -> Gathered:
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def gather_chunk(table: Table, plan: ChunkPlan, values: Callable[[pa.Table], FloatArray],
                 what: str) -> Gathered:
    """The chunk's keys (ascending) and `values(rows)` (a (rows, k) matrix) in that order.

    `values` runs on the workers and must be picklable (a module function or a partial).
    """
    keys, matrix = table.reduce(functools.partial(_gather, plan, values), _concat)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
        raise InvalidArgument(f"{what}: two rows share one row key (duplicate ids); run Intersection first")
    return keys, matrix[order]


def no_values(rows: pa.Table) -> FloatArray:
    """A (rows, 0) matrix: for gathering a chunk's keys alone."""
    return np.zeros((rows.num_rows, 0))


PartialProduct = Callable[[pa.Table, npt.NDArray[np.int64]], EncryptedVector | None]


def _partial(plan: ChunkPlan, keys: KeyArray, product: PartialProduct, block: pa.Table) -> EncryptedVector | None:
    rows, positions = plan.positions(keys, block)
    if not rows.num_rows:
        return None
    return product(rows, positions)


def _add_encrypted(a: EncryptedVector | None, b: EncryptedVector | None) -> EncryptedVector | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def encrypted_chunk_sum(table: Table, plan: ChunkPlan, keys: KeyArray,
                        product: PartialProduct) -> EncryptedVector | None:
    """The sum over partitions of `product(rows, positions)`: each partition's rows of the chunk
    and their positions in `keys` (None when no partition holds a row of it)."""
    result: EncryptedVector | None = table.reduce(functools.partial(_partial, plan, keys, product),
                                                  _add_encrypted)
    return result
