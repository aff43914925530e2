"""Fixed-point encoding of numpy arrays to signed integers and back (value = int / 2**bits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.errors import CryptoError
from kernel.security.constants import MAX_EXPONENT_BITS, MAX_PRECISION_BITS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_precision(precision_bits: int, name: str = "precision_bits") -> int:
    """Validate a number of fractional bits."""
    if isinstance(precision_bits, bool) or not isinstance(precision_bits, int | np.integer):
        raise CryptoError(f"{name} must be an integer, got {type(precision_bits).__name__}")
    if not 0 <= int(precision_bits) <= MAX_PRECISION_BITS:
        raise CryptoError(f"{name} must be in [0, {MAX_PRECISION_BITS}], got {precision_bits}")
    return int(precision_bits)


def as_numeric_array(values: Any, name: str) -> npt.NDArray[Any]:
    """A numpy array of ints/floats/bools; anything else (strings, objects) is refused."""
    array = np.asarray(values)
    if array.dtype == np.bool_:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.unsignedinteger):
        # Signed from here on, so that negation and differences cannot wrap around.
        if array.size and int(array.max()) >= 2**63:
            raise CryptoError(f"{name} holds unsigned integers of 2**63 or more")
        array = array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise CryptoError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def encode(values: Any, precision_bits: int, name: str = "values") -> list[int]:
    """Flattened signed integers round(v * 2**precision_bits); exact for integer input."""
    bits = check_precision(precision_bits)
    array = as_numeric_array(values, name).ravel()
    if np.issubdtype(array.dtype, np.integer):
        return [v << bits for v in array.tolist()]
    if not np.all(np.isfinite(array)):
        raise CryptoError(f"{name} contains NaN or infinity, which cannot be encrypted")
    scaled = np.rint(array.astype(np.float64) * np.ldexp(1.0, bits))
    if scaled.size and float(np.max(np.abs(scaled))) < 2.0**62:
        integers: list[int] = scaled.astype(np.int64).tolist()
        return integers
    # Beyond int64: every float64 this large is an exact integer already.
    return [int(v) for v in scaled.tolist()]


def decode(integers: Sequence[int], precision_bits: int) -> FloatArray:
    """Floats from signed fixed-point integers (correctly rounded)."""
    try:
        as_int = np.array(integers, dtype=np.int64)
    except OverflowError:
        scale = 1 << precision_bits
        return np.array([v / scale for v in integers], dtype=np.float64)
    return np.ldexp(as_int.astype(np.float64), -precision_bits)


def encode_exponents(values: Any, precision_bits: int, name: str) -> tuple[IntArray, int]:
    """Plaintext multipliers as int64 (for ct * pt and matvec) and their fractional bits.

    Integer input is used exactly (0 fractional bits); floats get `precision_bits`.
    """
    bits = check_precision(precision_bits)
    array = as_numeric_array(values, name)
    limit = 2.0**MAX_EXPONENT_BITS
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (int(array.max()) >= limit or int(array.min()) <= -limit):
            raise CryptoError(f"{name} has an integer beyond +-2**{MAX_EXPONENT_BITS}")
        return array.astype(np.int64), 0
    if not np.all(np.isfinite(array)):
        raise CryptoError(f"{name} contains NaN or infinity")
    scaled = np.rint(array.astype(np.float64) * np.ldexp(1.0, bits))
    if scaled.size and float(np.max(np.abs(scaled))) >= limit:
        raise CryptoError(
            f"{name}: |value| * 2**{bits} must stay below 2**{MAX_EXPONENT_BITS}; "
            f"lower precision_bits or scale {name}"
        )
    return scaled.astype(np.int64), bits


def encode_scalar(value: Any, precision_bits: int, name: str) -> tuple[int, int]:
    """One plaintext multiplier: exact for ints and integral floats, else fixed point."""
    if isinstance(value, bool | np.bool_):
        return int(value), 0
    if isinstance(value, int | np.integer):
        return int(value), 0
    if isinstance(value, float | np.floating):
        as_float = float(value)
        if not np.isfinite(as_float):
            raise CryptoError(f"{name} is NaN or infinite")
        if as_float.is_integer():
            return int(as_float), 0
        bits = check_precision(precision_bits)
        return round(as_float * 2.0**bits), bits
    raise CryptoError(f"{name} must be a number, got {type(value).__name__}")
