"""Constants of the computing package: backend names, default sizes, file names."""

from __future__ import annotations

from typing import Final

# Join kinds the Table API accepts (`outer` keeps the ids of both sides).
JOIN_KINDS: Final[tuple[str, ...]] = ("inner", "left", "right", "outer")

# LOCAL `save` writes one Parquet file per block, named like Spark's part files.
PART_FILE_TEMPLATE: Final = "part-{index:05d}.parquet"

# SPARK schema inference: when fn fails on an empty block, the driver tries it on this many rows.
INFER_SAMPLE_ROWS: Final = 64

DEFAULT_SPARK_MASTER: Final = "local[2]"
SPARK_APP_NAME: Final = "weft"

# Internal column names used by joins and reductions; a leading "__weft_" keeps them clear of users'.
JOIN_LEFT_INDEX: Final = "__weft_left_row"
JOIN_RIGHT_INDEX: Final = "__weft_right_row"
REDUCE_VALUE_COLUMN: Final = "__weft_partial"
