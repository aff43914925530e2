"""Per-row keys that every member computes alike from the ids alone.

A row's key is the first 8 bytes of SHA-256 of its id (as text), read as a signed 64-bit
integer: members holding the same ids get the same keys without exchanging them. `mix64`
spreads a key (or a key mixed with a salt) over all 64 bits, for drawing batches or chunks
by `key mod n`.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.computing import Table

KeyArray = npt.NDArray[np.uint64]


def ids_text(block: pa.Table, id_column: str) -> list[str]:
    """The block's ids as text."""
    return [str(v) for v in pc.cast(block.column(id_column), pa.string()).to_pylist()]


def id_keys(id_column: str, block: pa.Table) -> npt.NDArray[np.int64]:
    """Each row's key: the first 8 bytes of SHA-256 of its id, a signed integer."""
    return np.array([int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little", signed=True)
                     for text in ids_text(block, id_column)], dtype=np.int64)


def _add_row_keys(key_column: str, id_column: str, block: pa.Table) -> pa.Table:
    return block.append_column(key_column, pa.array(id_keys(id_column, block), pa.int64()))


def keyed_rows(table: Table, key_column: str, columns: list[str] | None = None) -> Table:
    """`columns` of `table` (all when None) plus the row key as `key_column`, cached (the
    callers read it again and again)."""
    selected = table if columns is None else table.select(columns)
    schema = selected.schema.append(pa.field(key_column, pa.int64()))
    return selected.map_partitions(functools.partial(_add_row_keys, key_column, table.id_column),
                                   schema=schema).cache()


def mix64(values: KeyArray) -> KeyArray:
    """SplitMix64's finaliser on every value (a bijection of 64-bit words that spreads bits)."""
    with np.errstate(over="ignore"):
        x = values ^ (values >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        result: KeyArray = x ^ (x >> np.uint64(31))
        return result
