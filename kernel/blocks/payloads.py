"""Checks of what a peer sends: every received payload is validated before it is used.

A `PayloadCheck` is bound to the component name that prefixes its error messages, so a
malformed message fails with InvalidArgument naming the component and the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class PayloadCheck:
    """Validators of received payloads whose errors name `component`."""

    def __init__(self, component: str) -> None:
        self.component = component

    def fields(self, value: Any, what: str, *names: str) -> dict[str, Any]:
        """`value` as a dict that has every key in `names`."""
        if not isinstance(value, dict):
            raise InvalidArgument(f"{self.component}: {what} must be a dict, got {type(value).__name__}")
        missing = [n for n in names if n not in value]
        if missing:
            raise InvalidArgument(f"{self.component}: {what} lacks {', '.join(missing)}")
        return value

    def count(self, value: Any, what: str, low: int = 0, high: int | None = None) -> int:
        """A plain integer within [low, high]."""
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise InvalidArgument(f"{self.component}: {what} must be an integer")
        number = int(value)
        if number < low or (high is not None and number > high):
            raise InvalidArgument(
                f"{self.component}: {what} must lie in [{low}, {high if high is not None else 'inf'}]"
            )
        return number

    def int_array(self, value: Any, what: str, low: int, high: int, length: int | None = None) -> IntArray:
        """A 1-D integer numpy array with values in [low, high) (and `length` entries, when given)."""
        if not isinstance(value, np.ndarray) or value.ndim != 1 or (value.size and value.dtype.kind not in "iu"):
            raise InvalidArgument(f"{self.component}: {what} must be a 1-D integer array")
        if length is not None and len(value) != length:
            raise InvalidArgument(f"{self.component}: {what} must have {length} entries, got {len(value)}")
        array = value.astype(np.int64)
        if array.size and (array.min() < low or array.max() >= high):
            raise InvalidArgument(f"{self.component}: {what} must lie in [{low}, {high})")
        return array

    def bool_array(self, value: Any, what: str, length: int) -> npt.NDArray[np.bool_]:
        """A 1-D boolean numpy array of `length` entries."""
        if not isinstance(value, np.ndarray) or value.ndim != 1 or (value.size and value.dtype != np.bool_):
            raise InvalidArgument(f"{self.component}: {what} must be a 1-D boolean array")
        if len(value) != length:
            raise InvalidArgument(f"{self.component}: {what} must have {length} entries, got {len(value)}")
        return value.astype(np.bool_)

    def sorted_unique(self, array: IntArray, what: str) -> IntArray:
        """Refuse indices that are not strictly increasing."""
        if array.size > 1 and not (np.diff(array) > 0).all():
            raise InvalidArgument(f"{self.component}: {what} must be strictly increasing indices")
        return array

    def finite_floats(self, value: Any, length: int, what: str) -> FloatArray:
        """A float numpy vector of `length` finite entries, as float64."""
        if not isinstance(value, np.ndarray) or value.shape != (length,) or value.dtype.kind != "f" \
                or not np.all(np.isfinite(value)):
            raise InvalidArgument(f"{self.component}: {what} must be {length} finite floats")
        return value.astype(np.float64)
