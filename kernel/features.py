"""Feature columns of an Arrow block as one float64 matrix, the form every model computes on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.errors import InvalidArgument

FloatMatrix = npt.NDArray[np.float64]


def feature_matrix(rows: pa.Table, features: list[str], refuse_missing: str | None = None) -> FloatMatrix:
    """`rows[features]` as float64 (n, len(features)); missing values become NaN.

    With `refuse_missing` set to a component name, a missing value is an error naming that
    component and the feature, since a model cannot train on it.
    """
    if not features:
        return np.zeros((rows.num_rows, 0))
    columns = []
    for name in features:
        values = np.asarray(pc.cast(rows.column(name), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        if refuse_missing is not None and np.isnan(values).any():
            raise InvalidArgument(
                f"{refuse_missing}: feature {name!r} has missing values; fill them first (DataIO missing_fill_method)"
            )
        columns.append(values)
    return np.column_stack(columns)
