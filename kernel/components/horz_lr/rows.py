"""HorzLR's training rows where they are: statistics, scaling, loss and gradients as per-partition sums.

A member's rows never reach its driver. Every pass over the table is a `Table.reduce` of
fixed-size partial sums: (rows, feature sums, bad labels) once, the squared deviations
once with standard scaling, and per local epoch or mini-batch (X^T residual, sum of
residuals, log-loss sum, rows) at the current weights, the scaling applied block by block.

Mini-batches: every row is keyed by a 64-bit hash of its id (`ROW_KEY_COLUMN`, computed
once); in (round, epoch) the key is mixed with (seed, round, epoch) and the row belongs to
batch `mixed key mod batches`. The rows are grouped by batch once a local epoch
(`Table.group_blocks`), so each batch's gradient reads that batch's rows only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.link import log_loss_sum, sigmoid
from kernel.blocks.row_keys import keyed_rows, mix64
from kernel.computing import Table
from kernel.computing.table import BlockGroups
from kernel.features import feature_matrix

FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.uint64]

COMPONENT: Final = "HorzLR"
# Name of the per-row key column added to the training rows for mini-batches (never output).
ROW_KEY_COLUMN: Final = "__weft_horz_lr_row_key"
_MASK64: Final = (1 << 64) - 1
_GOLDEN64: Final = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class Columns:
    """The label and feature columns of the training rows, and their centring and scale."""

    label: str
    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray

    def matrix(self, block: pa.Table) -> FloatArray:
        result: FloatArray = (feature_matrix(block, list(self.features), COMPONENT) - self.mean) / self.scale
        return result

    def labels(self, block: pa.Table) -> FloatArray:
        return np.asarray(pc.cast(block.column(self.label), pa.float64()).to_numpy(zero_copy_only=False),
                          dtype=np.float64)


# -- statistics --------------------------------------------------------------------------

Stats = tuple[int, FloatArray, int]


def _stats(columns: Columns, block: pa.Table) -> Stats:
    """(rows, raw feature sums, rows whose label is not 0/1)."""
    labels = columns.labels(block)
    sums = feature_matrix(block, list(columns.features), COMPONENT).sum(axis=0)
    return block.num_rows, sums, int((~np.isin(labels, (0.0, 1.0))).sum())


def _add_stats(a: Stats, b: Stats) -> Stats:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def table_stats(table: Table, label: str, features: tuple[str, ...]) -> Stats:
    """Rows, the sum of every raw feature, and the count of labels other than 0 and 1."""
    width = len(features)
    columns = Columns(label, features, np.zeros(width), np.ones(width))
    return table.reduce(functools.partial(_stats, columns), _add_stats)


def _squares(features: tuple[str, ...], mean: FloatArray, block: pa.Table) -> FloatArray:
    result: FloatArray = ((feature_matrix(block, list(features), COMPONENT) - mean) ** 2).sum(axis=0)
    return result


def squared_deviations(table: Table, features: tuple[str, ...], mean: FloatArray) -> FloatArray:
    """Sum over rows of (x - mean)^2, feature by feature."""
    result: FloatArray = table.reduce(functools.partial(_squares, features, mean), np.add)
    return result


# -- loss and gradient -------------------------------------------------------------------

Sums = tuple[FloatArray, float, float, int]


def _logits(x: FloatArray, weights: FloatArray, width: int) -> FloatArray:
    z: FloatArray = x @ weights[:width]
    return z + weights[width] if len(weights) > width else z


def _gradient_sums(columns: Columns, weights: FloatArray, block: pa.Table) -> Sums:
    """(X^T residual, sum of residuals, log-loss sum, rows) of the block at `weights`."""
    x, y = columns.matrix(block), columns.labels(block)
    z = _logits(x, weights, x.shape[1])
    residual = sigmoid(z) - y
    return x.T @ residual, float(residual.sum()), log_loss_sum(z, y), block.num_rows


def _add_sums(a: Sums, b: Sums) -> Sums:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def table_sums(table: Table, columns: Columns, weights: FloatArray) -> Sums:
    """The gradient and loss sums over every row of `table`."""
    return table.reduce(functools.partial(_gradient_sums, columns, weights), _add_sums)


def batch_sums(grouped: BlockGroups, batch: int, columns: Columns, weights: FloatArray) -> Sums:
    """The gradient and loss sums over the rows of one mini-batch."""
    return grouped.reduce(batch, functools.partial(_gradient_sums, columns, weights), _add_sums)


def mean_gradient(sums: Sums, intercept: bool) -> FloatArray:
    """The mean log-loss gradient of the rows the sums cover (intercept last)."""
    product, residual, _, rows = sums
    gradient: FloatArray = product / rows
    return np.append(gradient, residual / rows) if intercept else gradient


# -- mini-batches ------------------------------------------------------------------------


def with_row_keys(table: Table) -> Table:
    """`table` plus the row key of every row, cached (every epoch groups it again)."""
    return keyed_rows(table, ROW_KEY_COLUMN)


def _salt(seed: int, round_index: int, epoch: int) -> np.uint64:
    words = np.array([seed & _MASK64, round_index, epoch], dtype=np.uint64)
    salt = np.uint64(_GOLDEN64)
    for word in words:
        salt = mix64(np.array([salt ^ word], dtype=np.uint64))[0]
    return np.uint64(salt)


def _batch_numbers(salt: np.uint64, batches: int, block: pa.Table) -> npt.NDArray[np.int64]:
    keys = np.asarray(block.column(ROW_KEY_COLUMN).to_numpy(), dtype=np.int64).view(np.uint64)
    result: npt.NDArray[np.int64] = (mix64(keys ^ salt) % np.uint64(batches)).astype(np.int64)
    return result


def batch_count(rows: int, batch_size: int) -> int:
    """The number of mini-batches of an epoch: rows / batch_size rounded up (1: full batch)."""
    if batch_size == -1 or batch_size >= rows:
        return 1
    return -(-rows // batch_size)


def epoch_batches(table: Table, seed: int, round_index: int, epoch: int, batches: int) -> BlockGroups:
    """The rows of `table` (with row keys) grouped by their batch in (round, epoch); release
    it at the end of the epoch."""
    return table.group_blocks(functools.partial(_batch_numbers, _salt(seed, round_index, epoch), batches), batches)
