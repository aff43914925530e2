"""VertLR's training data where the rows are: row keys, statistics, mini-batches and per-batch sums.

Every member keys each row by a 64-bit hash of its id (`ROW_KEY_COLUMN`), computed once
on the workers. In epoch e a row's *order key* mixes that key with (seed, e); the row
belongs to batch `order key mod batches`, and inside a batch the rows are ordered by
order key. Members that hold the same ids therefore draw the same batches, in the same
order, without exchanging or collecting ids.

Once an epoch, the rows are grouped by batch (`epoch_batches`, one pass over the table),
so that each batch's gather and gradient read that batch's rows only: an epoch reads the
table a bounded number of times, whatever the number of batches.

What reaches a driver: per batch, the batch's order keys and scores (and the promoter's
labels), sized by `batch_size`; per table pass, a vector of one value per feature (sums,
the plaintext gradient, the encrypted X^T [[d]] as a sum of per-partition products).
Nothing here grows with the table's rows beyond the batch.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.row_keys import ids_text, keyed_rows, mix64
from kernel.computing import Table
from kernel.computing.table import BlockGroups
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.security.paillier import EncryptedVector

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.uint64]

# Name of the per-row key column added to the training rows (dropped before any output).
ROW_KEY_COLUMN: Final = "__weft_vert_lr_row_key"
_DIGEST_MODULUS: Final = 1 << 256
_MASK64: Final = (1 << 64) - 1
_GOLDEN64: Final = 0x9E3779B97F4A7C15


def with_row_keys(table: Table, columns: list[str]) -> Table:
    """`columns` of `table` plus the row key, cached (every batch reads it again)."""
    return keyed_rows(table, ROW_KEY_COLUMN, columns)


def order_keys(row_keys: npt.NDArray[np.int64], seed: int, epoch: int) -> KeyArray:
    """The rows' order keys in `epoch`: the same at every member for the same ids and seed."""
    salt = np.array([(seed * _GOLDEN64 + epoch + 1) & _MASK64], dtype=np.uint64)
    return mix64(row_keys.astype(np.int64).view(np.uint64) ^ mix64(salt)[0])


@dataclass(frozen=True)
class BatchPlan:
    """Which rows form batch `batch` of `epoch`: order key mod `batches`."""

    seed: int
    epoch: int
    batches: int
    batch: int

    def select(self, block: pa.Table) -> tuple[npt.NDArray[np.bool_], KeyArray]:
        """The block's rows in this batch (a mask) and their order keys."""
        row_keys = np.asarray(block.column(ROW_KEY_COLUMN).to_numpy(), dtype=np.int64)
        keys = order_keys(row_keys, self.seed, self.epoch)
        mask: npt.NDArray[np.bool_] = keys % np.uint64(self.batches) == np.uint64(self.batch)
        return mask, keys[mask]


def _batch_numbers(seed: int, epoch: int, batches: int, block: pa.Table) -> npt.NDArray[np.int64]:
    row_keys = np.asarray(block.column(ROW_KEY_COLUMN).to_numpy(), dtype=np.int64)
    result: npt.NDArray[np.int64] = (order_keys(row_keys, seed, epoch) % np.uint64(batches)).astype(np.int64)
    return result


class _WholeTable(BlockGroups):
    """The one batch of a full-batch epoch: the table itself, no grouping pass."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.schema = table.schema
        self.groups = 1

    def reduce(self, group: int, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        return self._table.reduce(map_fn, reduce_fn)

    def release(self) -> None:
        pass


def epoch_batches(table: Table, seed: int, epoch: int, batches: int) -> BlockGroups:
    """The rows of `table` grouped by their batch in `epoch` (group b: batch b); release
    it at the end of the epoch."""
    if batches == 1:
        return _WholeTable(table)
    return table.group_blocks(functools.partial(_batch_numbers, seed, epoch, batches), batches)


@dataclass(frozen=True)
class Scaling:
    """A member's feature columns and their centring and scale: a block's X, as trained on."""

    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray

    def matrix(self, block: pa.Table) -> FloatArray:
        result: FloatArray = (feature_matrix(block, list(self.features), "VertLR") - self.mean) / self.scale
        return result


# -- statistics of the whole table -------------------------------------------------------

Stats = tuple[int, int, FloatArray, int]


def _stats(id_column: str, features: tuple[str, ...], label: str | None, block: pa.Table) -> Stats:
    """(rows, sum of SHA-256(id) mod 2**256, column sums, rows whose label is not 0/1)."""
    digest = sum(int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
                 for text in ids_text(block, id_column)) % _DIGEST_MODULUS
    sums = feature_matrix(block, list(features), "VertLR").sum(axis=0)
    bad = 0
    if label is not None:
        labels = np.asarray(pc.cast(block.column(label), pa.float64()).to_numpy(zero_copy_only=False))
        bad = int((~np.isin(labels, (0.0, 1.0))).sum())
    return block.num_rows, digest, sums, bad


def _add_stats(a: Stats, b: Stats) -> Stats:
    return a[0] + b[0], (a[1] + b[1]) % _DIGEST_MODULUS, a[2] + b[2], a[3] + b[3]


def _squares(features: tuple[str, ...], mean: FloatArray, block: pa.Table) -> FloatArray:
    result: FloatArray = ((feature_matrix(block, list(features), "VertLR") - mean) ** 2).sum(axis=0)
    return result


def table_stats(table: Table, features: tuple[str, ...], label: str | None) -> tuple[int, str, FloatArray, int]:
    """Rows, a digest of the id set (equal at members holding the same ids, in any order),
    column means and the count of bad labels."""
    rows, digest, sums, bad = table.reduce(functools.partial(_stats, table.id_column, features, label), _add_stats)
    return rows, f"{rows}:{digest:064x}", sums / max(rows, 1), bad


def column_std(table: Table, features: tuple[str, ...], mean: FloatArray, rows: int) -> FloatArray:
    """The population standard deviation of each feature (a second pass, around `mean`)."""
    squares: FloatArray = table.reduce(functools.partial(_squares, features, mean), np.add)
    result: FloatArray = np.sqrt(squares / max(rows, 1))
    return result


# -- one batch --------------------------------------------------------------------------

Gathered = tuple[KeyArray, FloatArray, FloatArray]


def _gather(plan: BatchPlan, scaling: Scaling, weights: FloatArray, offset: float, label: str | None,
            block: pa.Table) -> Gathered:
    mask, keys = plan.select(block)
    rows = block.filter(pa.array(mask))
    scores: FloatArray = scaling.matrix(rows) @ weights + offset
    labels = np.zeros(0)
    if label is not None:
        labels = np.asarray(pc.cast(rows.column(label), pa.float64()).to_numpy(zero_copy_only=False))
    return keys, scores, labels


def _concat(a: Gathered, b: Gathered) -> Gathered:
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]])


def gather_batch(grouped: BlockGroups, plan: BatchPlan, scaling: Scaling, weights: FloatArray, offset: float,
                 label: str | None) -> Gathered:
    """The batch's order keys (ascending), its rows' X w + offset in that order, and labels."""
    keys, scores, labels = grouped.reduce(
        plan.batch, functools.partial(_gather, plan, scaling, weights, offset, label), _concat)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
        raise InvalidArgument("VertLR: two rows share one batch key (duplicate ids); run Intersection first")
    return keys, scores[order], labels[order] if label is not None else labels


def _positions(plan: BatchPlan, keys: KeyArray, block: pa.Table) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    mask, own = plan.select(block)
    positions = np.searchsorted(keys, own)
    if len(own) and (positions.max() >= len(keys) or bool((keys[positions] != own).any())):
        raise InvalidArgument("VertLR: a row of this batch has no value in the batch vector")
    return block.filter(pa.array(mask)), positions.astype(np.int64)


def _plain_product(plan: BatchPlan, scaling: Scaling, keys: KeyArray, residual: FloatArray,
                   block: pa.Table) -> FloatArray:
    rows, positions = _positions(plan, keys, block)
    result: FloatArray = scaling.matrix(rows).T @ residual[positions]
    return result


def plain_gradient_sum(grouped: BlockGroups, plan: BatchPlan, scaling: Scaling, keys: KeyArray,
                       residual: FloatArray) -> FloatArray:
    """X_batch^T residual, summed partition by partition (`residual` in order-key order)."""
    result: FloatArray = grouped.reduce(
        plan.batch, functools.partial(_plain_product, plan, scaling, keys, residual), np.add)
    return result


def _encrypted_product(plan: BatchPlan, scaling: Scaling, keys: KeyArray, residual: EncryptedVector,
                       bits: int, workers: int | None, block: pa.Table) -> EncryptedVector | None:
    rows, positions = _positions(plan, keys, block)
    if not rows.num_rows:
        return None
    return residual[positions].rmatvec(scaling.matrix(rows), precision_bits=bits, workers=workers)


def _add_encrypted(a: EncryptedVector | None, b: EncryptedVector | None) -> EncryptedVector | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def encrypted_gradient_sum(grouped: BlockGroups, plan: BatchPlan, scaling: Scaling, keys: KeyArray,
                           residual: EncryptedVector, bits: int, workers: int | None) -> EncryptedVector:
    """X_batch^T [[d]]: each partition multiplies its rows into the ciphertexts, the partial
    products (one ciphertext per feature) are added."""
    product = grouped.reduce(
        plan.batch, functools.partial(_encrypted_product, plan, scaling, keys, residual, bits, workers), _add_encrypted)
    if product is None:
        raise InvalidArgument("VertLR: the batch has no rows at this member")
    return product
