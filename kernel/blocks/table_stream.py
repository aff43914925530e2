"""Tables sent to another member as a stream of bounded messages, never as one message.

The sender sends its table one partition at a time, in messages of at most `rows` rows,
and ends the stream with an empty table. The receiver checks each message, writes it as
one Parquet part of the task's scratch area and reads the parts back as a Table of its
backend: each member's driver holds one message at a time, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from kernel.computing import ComputingSession, Table
from kernel.errors import InvalidArgument
from kernel.storage.scratch import ScratchArea

#: Sends message `index` of a stream.
Put = Callable[[int, pa.Table], None]
#: Receives message `index` of a stream.
Get = Callable[[int], pa.Table]
#: Message `index`, checked and with the receiver's columns; raises InvalidArgument when malformed.
Check = Callable[[pa.Table, int], pa.Table]


def send_table(put: Put, table: Table, rows: int) -> int:
    """Send `table` as messages of at most `rows` rows, one partition at a time, then an empty
    table; returns the number of messages that held rows."""
    if rows < 1:
        raise InvalidArgument(f"a table stream needs messages of at least one row, got {rows}")
    index = 0
    for block in table.iter_blocks():
        for start in range(0, block.num_rows, rows):
            put(index, block.slice(start, rows))
            index += 1
    put(index, table.schema.empty_table())
    return index


def messages(get: Callable[[int], Any], check: Callable[[Any, int], pa.Table]) -> Iterator[pa.Table]:
    """The checked messages of a stream up to its empty last one (which is checked too)."""
    index = 0
    while True:
        message = check(get(index), index)
        if not message.num_rows:
            return
        yield message
        index += 1


def receive_table(
    get: Get, check: Check, scratch: ScratchArea, computing: ComputingSession, name: str, schema: pa.Schema,
) -> tuple[Table, int]:
    """The stream sent by `send_table`, every message (the empty last one too) passed through
    `check`, written to `scratch` as table `name` of `schema` and read back keyed by the
    schema's first column; with the number of rows received."""

    rows = scratch.write(name, schema, messages(get, check))
    return scratch.read(computing, name, schema.field(0).name), rows
