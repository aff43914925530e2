"""Table streams: bounded messages one partition at a time, written to scratch, read back whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from kernel.blocks.table_stream import receive_table, send_table
from kernel.computing import ComputingSession, Table, local_session
from kernel.errors import InvalidArgument
from kernel.storage import DataStore
from kernel.storage.scratch import ScratchArea

ROWS = 250
SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("value", pa.float64())])


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_workers=2, num_partitions=3)
    yield session
    session.stop()


@pytest.fixture()
def scratch(tmp_path: Path) -> ScratchArea:
    return DataStore(str(tmp_path / "data")).scratch("task_0.promoter.member")


def values(computing: ComputingSession) -> Table:
    ids = [f"r{i:04d}" for i in range(ROWS)]
    return computing.from_arrow(pa.table({"id": ids, "value": np.arange(ROWS, dtype=np.float64)}), "id")


def test_a_table_goes_in_bounded_messages_and_comes_back_whole(
    computing: ComputingSession, scratch: ScratchArea
) -> None:
    # Prepare
    table = values(computing)
    messages: dict[int, pa.Table] = {}

    # Execute
    sent = send_table(messages.__setitem__, table, 40)
    received, rows = receive_table(messages.__getitem__, lambda message, index: message, scratch, computing,
                                   "values", SCHEMA)

    # Assert: every partition is cut into messages of at most 40 rows, the stream ends with
    # an empty table, and the rows read back from scratch are the table's.
    expected = sum(-(-block.num_rows // 40) for block in table.iter_blocks())
    assert sent == expected and sent > table.num_partitions
    assert sorted(messages) == list(range(sent + 1))
    assert all(0 < messages[i].num_rows <= 40 for i in range(sent)) and messages[sent].num_rows == 0
    assert rows == ROWS
    back = received.to_pandas().sort_values("id").reset_index(drop=True)
    assert back.equals(table.to_pandas().sort_values("id").reset_index(drop=True))
    assert received.id_column == "id"


def test_an_empty_table_is_one_empty_message_and_reads_back_empty(
    computing: ComputingSession, scratch: ScratchArea
) -> None:
    messages: dict[int, pa.Table] = {}
    empty = computing.from_arrow(SCHEMA.empty_table(), "id")

    assert send_table(messages.__setitem__, empty, 40) == 0
    received, rows = receive_table(messages.__getitem__, lambda message, index: message, scratch, computing,
                                   "nothing", SCHEMA)

    assert list(messages) == [0] and rows == 0 and received.count() == 0
    assert received.schema.names == SCHEMA.names


def test_every_message_passes_the_check_and_a_bad_one_stops_the_stream(
    computing: ComputingSession, scratch: ScratchArea
) -> None:
    # Prepare: a stream whose third message has a column too many.
    messages: dict[int, pa.Table] = {}
    send_table(messages.__setitem__, values(computing), 40)
    messages[2] = messages[2].append_column("extra", pa.array(np.zeros(messages[2].num_rows)))
    checked: list[int] = []

    def check(message: pa.Table, index: int) -> pa.Table:
        checked.append(index)
        if message.schema.names != SCHEMA.names:
            raise InvalidArgument(f"message {index} has columns {', '.join(message.schema.names)}")
        return message

    # Execute / Assert: the check names the message, and no message after it is read.
    with pytest.raises(InvalidArgument, match="message 2 has columns id, value, extra"):
        receive_table(messages.__getitem__, check, scratch, computing, "values", SCHEMA)
    assert checked == [0, 1, 2]


def test_a_stream_needs_messages_of_at_least_one_row(computing: ComputingSession) -> None:
    with pytest.raises(InvalidArgument, match="at least one row"):
        send_table(lambda index, block: None, values(computing), 0)
