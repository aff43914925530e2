"""Columns of an Arrow block as float64 numpy vectors, missing values as NaN."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]


def float_column(block: pa.Table, name: str) -> FloatArray:
    """One column as float64; nulls become NaN. A non-numeric column is refused, naming it."""
    column = block.column(name)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_null(kind) or pa.types.is_decimal(kind)):
        raise InvalidArgument(f"column {name!r} is {kind}, not numeric")
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def float_columns(block: pa.Table, names: Sequence[str]) -> dict[str, FloatArray]:
    """Several columns as {name: float64 vector}."""
    return {name: float_column(block, name) for name in names}


def is_numeric(kind: pa.DataType) -> bool:
    """Whether a column of this Arrow type can be read as numbers."""
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
                or pa.types.is_decimal(kind))


def chosen_columns(names: Sequence[str], wanted: Sequence[str] | None, default: Sequence[str], field: str) -> list[str]:
    """`wanted` checked against the data's column `names` (an error names `field`), else `default`."""
    if wanted is None:
        return list(default)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise InvalidArgument(f"{field}: {', '.join(map(repr, unknown))} not among the data's columns")
    return list(wanted)
