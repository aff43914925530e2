"""The typed codec: round trips, refusals, and malformed input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernel.errors import CodecError
from kernel.federation.codec import MAGIC, decode, encode

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**4096), max_value=2**4096),
    st.floats(allow_nan=False), st.text(), st.binary(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=5),
    ),
    max_leaves=30,
)
dtypes = st.sampled_from(["bool", "int8", "int16", "int32", "int64", "uint8", "uint64", "float32", "float64"])


@given(values)
@settings(max_examples=200, deadline=None)
def test_values_round_trip(value: Any) -> None:
    assert decode(encode(value)) == value


@given(dtypes.flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, max_side=6))))
@settings(max_examples=100, deadline=None)
def test_arrays_round_trip_with_dtype_and_shape(array: np.ndarray) -> None:
    decoded = decode(encode(array))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def test_array_costs_raw_bytes_plus_small_header() -> None:
    array = np.arange(100_000, dtype=np.float64)
    assert len(encode(array)) - array.nbytes < 64


def test_big_endian_and_non_contiguous_arrays_decode_to_equal_values() -> None:
    swapped = np.arange(10, dtype=">i4")
    strided = np.arange(20, dtype=np.int64)[::2]
    np.testing.assert_array_equal(decode(encode(swapped)), swapped)
    np.testing.assert_array_equal(decode(encode(strided)), strided)


def test_numpy_scalars_and_nan_round_trip() -> None:
    assert decode(encode(np.float32(1.5))) == np.float32(1.5)
    assert decode(encode(np.int64(-7))).dtype == np.int64
    assert math.isnan(decode(encode(float("nan"))))


def test_arrow_table_round_trips() -> None:
    table = pa.table({"id": ["a", "b"], "x": [1.0, None], "n": [1, 2]})
    assert decode(encode(table)).equals(table)


class _Strange:
    pass


@pytest.mark.parametrize(
    "obj",
    [_Strange(), {1, 2}, np.array([object()], dtype=object), np.array(["a"]), lambda: 1, 1 + 2j, {"k": _Strange()}],
)
def test_unknown_types_are_refused(obj: Any) -> None:
    with pytest.raises(CodecError):
        encode(obj)


@pytest.mark.parametrize(
    "payload",
    [
        b"", b"PICK", MAGIC, MAGIC + b"\xff", MAGIC + b"\x05\x00\x00\x00\x10abc",
        MAGIC + b"\x07\xff\xff\xff\xff", MAGIC + b"\x0a\x02|O\x00",
        MAGIC + b"\x00\x00", MAGIC + b"\x0c" + b"\x00" * 7 + b"\x03abc",
    ],
)
def test_malformed_bytes_are_refused(payload: bytes) -> None:
    with pytest.raises(CodecError):
        decode(payload)


def test_deep_nesting_is_refused_both_ways() -> None:
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(CodecError):
        encode(nested)
    with pytest.raises(CodecError):
        decode(MAGIC + b"\x07\x00\x00\x00\x01" * 100 + b"\x00")


def test_pickle_bytes_are_not_executed() -> None:
    import pickle

    with pytest.raises(CodecError):
        decode(pickle.dumps({"a": 1}))
