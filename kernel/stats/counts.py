"""Value counts of columns that merge across blocks, refused past a limit of distinct values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kernel.errors import InvalidArgument

ValueCounts = dict[str, Counter[Any]]


def block_value_counts(block: pa.Table, columns: Sequence[str], limit: int, what: str) -> ValueCounts:
    """How often each present value occurs in each column of one block (nulls and NaN left out)."""
    counts: ValueCounts = {}
    for name in columns:
        column = block.column(name)
        present = column.filter(pc.invert(pc.is_null(column, nan_is_null=True)))
        pairs = pc.value_counts(present).to_pylist()
        counts[name] = Counter({pair["values"]: int(pair["counts"]) for pair in pairs})
        _check_limit(counts[name], name, limit, what)
    return counts


def merge_value_counts(a: ValueCounts, b: ValueCounts, limit: int, what: str) -> ValueCounts:
    merged: ValueCounts = {}
    for name in a:
        merged[name] = a[name] + b[name]
        _check_limit(merged[name], name, limit, what)
    return merged


def _check_limit(counts: Counter[Any], name: str, limit: int, what: str) -> None:
    if len(counts) > limit:
        raise InvalidArgument(
            f"{what}: column {name!r} has more than {limit} distinct values; "
            "it is not categorical (bin it first) or raise the limit"
        )


def most_common(counts: Counter[Any], k: int | None = None) -> list[tuple[Any, int]]:
    """Values by falling count, ties broken by the value itself (so every member agrees)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], _order_key(item[0])))
    return ranked if k is None else ranked[:k]


def _order_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))
