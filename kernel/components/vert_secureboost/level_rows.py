"""A level's rows between the members: node positions to the providers, split directions back.

Per level the promoter tells every provider which rows sit in which of the level's open
nodes (`node_rows`: row index and the node's position in the level) and every provider whose
splits the promoter chose answers, for each row of those nodes, whether it goes left
(`split_rows`: row index and a boolean). Both travel as streams of tables of at most
`ROW_STREAM_ROWS` rows a message, ended by an empty table; the receiver knows how many rows
to expect (node_plan's `rows`; the promoter knows the size of the nodes it chose) and checks
each message as it arrives. The promoter sends its rows in increasing row order; a SPARK
provider sends its answers one partition at a time, in the partitions' order.

On SPARK a provider writes each message to the task's scratch area and reads the parts back
as a table, joined with its cached rows by row index on the executors; on LOCAL it gathers
them into one vector.

A provider picks among the splits that tie for a node's gain by where each sends the node's
rows (`choose_among_ties`): the candidate whose left side comes first in row order. Where
the rows are in partitions, each partition sorts the candidates by their left sides over its
own rows of the node and reports, per candidate, its rank and, between neighbours of that
order, the first row where they differ (`tie_summary`); the first row where two candidates
differ over all the rows is the earliest of those over the partitions (`tie_pick`), so the
driver orders the candidates from a few numbers per candidate and partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.components.vert_secureboost import constants
from kernel.components.vert_secureboost.constants import COMPONENT, ROW_INDEX_COLUMN
from kernel.components.vert_secureboost.data import IntArray
from kernel.errors import InvalidArgument

BoolArray = npt.NDArray[np.bool_]

# Columns of the streams (beside the row index column of `rows`).
POSITION_COLUMN: Final = "__weft_secureboost_position"
LEFT_COLUMN: Final = "__weft_secureboost_left"
PAIR_COLUMN: Final = "__weft_secureboost_pair"
SPLIT_COLUMN: Final = "__weft_secureboost_split"
# Prediction, per level: (pair, row index, split id) to a provider, (pair, goes left) back.
REQUEST_SCHEMA: Final = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(ROW_INDEX_COLUMN, pa.int64()),
                                   pa.field(SPLIT_COLUMN, pa.int64())])
DIRECTION_SCHEMA: Final = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_())])
POSITION_SCHEMA: Final = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(POSITION_COLUMN, pa.int32())])
LEFT_SCHEMA: Final = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_())])

#: Sends message `index` of a stream.
Put = Callable[[int, pa.Table], None]
#: Receives message `index` of a stream.
Get = Callable[[int], Any]


def stream_rows() -> int:
    """Rows of one message of a level's streams."""
    return int(constants.ROW_STREAM_ROWS)


def send_arrays(put: Put, schema: pa.Schema, *columns: npt.NDArray[Any]) -> int:
    """Send `columns` (of equal length) as tables of `schema`, at most `ROW_STREAM_ROWS` rows
    a message, then an empty table; returns the messages that held rows."""
    step = stream_rows()
    index = 0
    for start in range(0, len(columns[0]), step):
        put(index, pa.table([pa.array(column[start:start + step], field.type)
                             for column, field in zip(columns, schema, strict=True)], schema=schema))
        index += 1
    put(index, schema.empty_table())
    return index


def send_blocks(put: Put, schema: pa.Schema, blocks: Iterable[pa.Table]) -> int:
    """Send `blocks` (at most `ROW_STREAM_ROWS` rows each) as tables of `schema`, then an empty
    table; returns the rows sent."""
    index = rows = 0
    for block in blocks:
        put(index, block.select(schema.names).cast(schema))
        index += 1
        rows += block.num_rows
    put(index, schema.empty_table())
    return rows


def _integers(message: pa.Table, column: int) -> IntArray:
    return np.asarray(message.column(column).to_numpy(), dtype=np.int64)


class StreamCheck:
    """Checks the messages of one stream of tables of `schema`: integer or boolean columns as
    the schema's, the first (a row index) in [0, rows), the message by `values`, and the rows
    received against `expected` (more is refused at once, fewer at the empty last message).
    With `increasing`, the first column must rise through the stream."""

    def __init__(self, what: str, schema: pa.Schema, rows: int, expected: int, increasing: bool,
                 values: Callable[[IntArray, pa.Table, str], None]) -> None:
        self.what, self.schema, self.rows, self.expected = what, schema, rows, expected
        self.increasing, self.values = increasing, values
        self.received, self.last = 0, -1

    def __call__(self, message: Any, index: int) -> pa.Table:
        where = f"{self.what} message {index}"
        kinds = [pa.types.is_boolean if field.type == pa.bool_() else pa.types.is_integer for field in self.schema]
        if not isinstance(message, pa.Table) or message.num_columns != len(kinds) \
                or not all(kind(field.type) for kind, field in zip(kinds, message.schema, strict=True)):
            names = ", ".join(self.schema.names)
            raise InvalidArgument(f"{COMPONENT}: {where} must be a table of {len(kinds)} columns ({names})")
        if not message.num_rows:
            if self.received != self.expected:
                raise InvalidArgument(f"{COMPONENT}: {self.what} brings {self.received} rows, "
                                      f"{self.expected} were expected")
            return self.schema.empty_table()
        if any(column.null_count for column in message.columns):
            raise InvalidArgument(f"{COMPONENT}: {where} has a missing value")
        rows = _integers(message, 0)
        if int(rows.min()) < 0 or int(rows.max()) >= self.rows:
            raise InvalidArgument(f"{COMPONENT}: {where} names a row outside [0, {self.rows})")
        if self.increasing and (int(rows[0]) <= self.last or (len(rows) > 1 and not (np.diff(rows) > 0).all())):
            raise InvalidArgument(f"{COMPONENT}: {where} names its rows out of order (each row index must be "
                                  f"above the one before, the previous message's last was {self.last})")
        self.received += len(rows)
        if self.received > self.expected:
            raise InvalidArgument(f"{COMPONENT}: {where} brings the rows to {self.received}, more than the "
                                  f"{self.expected} expected")
        self.last = int(rows[-1])
        self.values(rows, message, where)
        return pa.table([column.cast(field.type) for column, field in zip(message.columns, self.schema, strict=True)],
                        schema=self.schema)


def positions_in(nodes: int) -> Callable[[IntArray, pa.Table, str], None]:
    """A value check: node positions (the second column) in [0, nodes)."""

    def check(rows: IntArray, message: pa.Table, where: str) -> None:
        values = _integers(message, 1)
        if int(values.min()) < 0 or int(values.max()) >= nodes:
            raise InvalidArgument(f"{COMPONENT}: {where} names a node outside the level's {nodes}")

    return check


# -- ties between a provider's splits ------------------------------------------------------

TieSummary = tuple[IntArray, IntArray]


def tie_summary(masks: BoolArray, rows: IntArray) -> TieSummary:
    """One partition's part of ordering candidates by their left sides over a node's rows.

    `masks[:, j]` says which of the partition's rows of the node (row indices `rows`,
    increasing) candidate j sends left. Returns each candidate's rank among the distinct
    masks, sorted as `choose_among_ties` sorts them (a row going left first), and for each
    two neighbours of that order the first row (index) where they differ.
    """
    keys = np.packbits(~masks, axis=0)
    columns = [keys[:, j].tobytes() for j in range(masks.shape[1])]
    distinct = sorted(set(columns))
    rank_of = {key: r for r, key in enumerate(distinct)}
    rank = np.array([rank_of[key] for key in columns], dtype=np.int64)
    first_of_rank = np.zeros(len(distinct), dtype=np.int64)
    first_of_rank[rank[::-1]] = np.arange(len(rank))[::-1]
    firsts = np.zeros(max(len(distinct) - 1, 0), dtype=np.int64)
    for r in range(len(distinct) - 1):
        differ = masks[:, first_of_rank[r]] != masks[:, first_of_rank[r + 1]]
        firsts[r] = rows[int(np.argmax(differ))]
    return rank, firsts


def tie_pick(summaries: list[TieSummary], features: IntArray, bins: IntArray) -> int:
    """The candidate `choose_among_ties` picks, from every partition's `tie_summary`: the one
    whose left side comes first in row order, then the lowest feature, then the lowest bin."""

    def before(i: int, j: int) -> bool:
        earliest, i_left = -1, False
        for rank, firsts in summaries:
            ri, rj = int(rank[i]), int(rank[j])
            if ri == rj:
                continue
            row = int(firsts[min(ri, rj):max(ri, rj)].min())
            if earliest < 0 or row < earliest:
                # The lower rank sends the first differing row left.
                earliest, i_left = row, ri < rj
        if earliest < 0:
            return (int(features[i]), int(bins[i])) < (int(features[j]), int(bins[j]))
        return i_left

    pick = 0
    for j in range(1, len(features)):
        if before(j, pick):
            pick = j
    return pick
