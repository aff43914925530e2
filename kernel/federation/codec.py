"""The typed codec: the only way bytes cross a member boundary (no pickle, ever).

Wire format: the 4-byte magic ``WFT1`` followed by one encoded value. A value is one tag
byte followed by its body:

    NONE, FALSE, TRUE                     no body
    INT      u32 length + signed big-endian two's complement bytes (any size)
    FLOAT    8-byte IEEE double
    STR      u32 length + UTF-8
    BYTES    u64 length + raw bytes
    LIST / TUPLE   u32 count + values
    DICT     u32 count + (key value) pairs
    NDARRAY  dtype (u8 length + ascii) + u8 ndim + u64 per dim + raw C-order bytes
    NPSCALAR dtype + raw bytes of one element
    ARROW    u64 length + an Arrow IPC stream
    PAILLIER_PUBLIC_KEY, PAILLIER_VECTOR   a DICT produced by kernel.security.paillier.wire

Decoding checks every length against the bytes that remain and caps nesting depth, so a
peer cannot make us allocate or recurse without bound. Only the types above exist: an
object of any other type is refused at encode time with a message naming its type.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np
import pyarrow as pa

from kernel.errors import CodecError

MAGIC: Final = b"WFT1"
MAX_DEPTH: Final = 64

T_NONE: Final = 0x00
T_FALSE: Final = 0x01
T_TRUE: Final = 0x02
T_INT: Final = 0x03
T_FLOAT: Final = 0x04
T_STR: Final = 0x05
T_BYTES: Final = 0x06
T_LIST: Final = 0x07
T_TUPLE: Final = 0x08
T_DICT: Final = 0x09
T_NDARRAY: Final = 0x0A
T_NPSCALAR: Final = 0x0B
T_ARROW: Final = 0x0C
T_PAILLIER_PUBLIC_KEY: Final = 0x0D
T_PAILLIER_VECTOR: Final = 0x0E

# dtypes a peer may send: fixed-size numbers and booleans only (never object arrays).
ALLOWED_DTYPES: Final[frozenset[str]] = frozenset(
    {
        "|b1", "|i1", "|u1",
        "<i2", "<i4", "<i8", "<u2", "<u4", "<u8",
        "<f2", "<f4", "<f8", "<c8", "<c16",
    }
)

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")


def encode(obj: Any) -> bytes:
    """Encode one object of a supported type; raises CodecError for anything else."""
    out = bytearray(MAGIC)
    _encode_into(out, obj, 0)
    return bytes(out)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode bytes made by `encode`; raises CodecError on anything malformed."""
    view = memoryview(data)
    if len(view) < len(MAGIC) or bytes(view[: len(MAGIC)]) != MAGIC:
        raise CodecError("not a Weft codec message (bad magic header)")
    reader = _Reader(view, len(MAGIC))
    value = reader.value(0)
    if reader.pos != len(view):
        raise CodecError(f"{len(view) - reader.pos} trailing bytes after the encoded value")
    return value


def _dtype_code(dtype: np.dtype[Any]) -> str:
    code = dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str
    if code.startswith("="):
        code = "<" + code[1:]
    if code not in ALLOWED_DTYPES:
        raise CodecError(f"numpy dtype {dtype} cannot cross a member boundary")
    return code


def _encode_into(out: bytearray, obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"object nested deeper than {MAX_DEPTH} levels")
    # bool before int: bool is a subclass of int.
    if obj is None:
        out.append(T_NONE)
    elif obj is True:
        out.append(T_TRUE)
    elif obj is False:
        out.append(T_FALSE)
    elif type(obj) is int:
        raw = obj.to_bytes((obj.bit_length() + 8) // 8 or 1, "big", signed=True)
        out.append(T_INT)
        out += _U32.pack(len(raw))
        out += raw
    elif type(obj) is float:
        out.append(T_FLOAT)
        out += _F64.pack(obj)
    elif type(obj) is str:
        raw = obj.encode("utf-8")
        out.append(T_STR)
        out += _U32.pack(len(raw))
        out += raw
    elif type(obj) in (bytes, bytearray, memoryview):
        raw = bytes(obj)
        out.append(T_BYTES)
        out += _U64.pack(len(raw))
        out += raw
    elif type(obj) in (list, tuple):
        out.append(T_LIST if type(obj) is list else T_TUPLE)
        out += _U32.pack(len(obj))
        for item in obj:
            _encode_into(out, item, depth + 1)
    elif type(obj) is dict:
        out.append(T_DICT)
        out += _U32.pack(len(obj))
        for key, value in obj.items():
            _encode_into(out, key, depth + 1)
            _encode_into(out, value, depth + 1)
    elif isinstance(obj, np.ndarray):
        code = _dtype_code(obj.dtype)
        arr = np.asarray(obj, dtype=np.dtype(code), order="C")
        out.append(T_NDARRAY)
        _put_dtype(out, code)
        if arr.ndim > 32:
            raise CodecError(f"numpy array with {arr.ndim} dimensions (at most 32)")
        out += _U8.pack(arr.ndim)
        for dim in arr.shape:
            out += _U64.pack(dim)
        out += arr.tobytes()
    elif isinstance(obj, np.generic):
        code = _dtype_code(obj.dtype)
        out.append(T_NPSCALAR)
        _put_dtype(out, code)
        out += np.asarray(obj, dtype=np.dtype(code)).tobytes()
    elif isinstance(obj, pa.Table | pa.RecordBatch):
        table = pa.Table.from_batches([obj]) if isinstance(obj, pa.RecordBatch) else obj
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        raw_buf = sink.getvalue()
        out.append(T_ARROW)
        out += _U64.pack(raw_buf.size)
        out += memoryview(raw_buf)
    else:
        _encode_extension(out, obj, depth)


def _encode_extension(out: bytearray, obj: Any, depth: int) -> None:
    """Paillier keys and ciphertext vectors: encoded as a dict their own module defines."""
    try:
        from kernel.security.paillier import EncryptedVector, PaillierPublicKey, wire
    except ImportError:  # the security package is not installed in this build
        raise CodecError(f"type {type(obj).__name__} cannot cross a member boundary") from None
    if isinstance(obj, PaillierPublicKey):
        out.append(T_PAILLIER_PUBLIC_KEY)
        _encode_into(out, wire.public_key_to_wire(obj), depth + 1)
    elif isinstance(obj, EncryptedVector):
        out.append(T_PAILLIER_VECTOR)
        _encode_into(out, wire.encrypted_vector_to_wire(obj), depth + 1)
    else:
        raise CodecError(f"type {type(obj).__name__} cannot cross a member boundary")


def _put_dtype(out: bytearray, code: str) -> None:
    raw = code.encode("ascii")
    out += _U8.pack(len(raw))
    out += raw


class _Reader:
    """Walks a buffer, checking every length against what is left."""

    def __init__(self, view: memoryview, pos: int) -> None:
        self.view = view
        self.pos = pos

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.view):
            raise CodecError(
                f"truncated message: needs {n} bytes at offset {self.pos}, "
                f"{len(self.view) - self.pos} left"
            )
        chunk = self.view[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return int(_U8.unpack(self.take(1))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def count(self) -> int:
        n = self.u32()
        # every item costs at least one byte: a count larger than what is left is a lie.
        if n > len(self.view) - self.pos:
            raise CodecError(f"declared {n} items but only {len(self.view) - self.pos} bytes left")
        return n

    def dtype(self) -> np.dtype[Any]:
        code = bytes(self.take(self.u8())).decode("ascii", errors="replace")
        if code not in ALLOWED_DTYPES:
            raise CodecError(f"numpy dtype {code!r} is not accepted from a peer")
        return np.dtype(code)

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CodecError(f"message nested deeper than {MAX_DEPTH} levels")
        tag = self.u8()
        if tag == T_NONE:
            return None
        if tag == T_TRUE:
            return True
        if tag == T_FALSE:
            return False
        if tag == T_INT:
            return int.from_bytes(self.take(self.u32()), "big", signed=True)
        if tag == T_FLOAT:
            return float(_F64.unpack(self.take(8))[0])
        if tag == T_STR:
            try:
                return str(self.take(self.u32()), "utf-8")
            except UnicodeDecodeError as exc:
                raise CodecError(f"string is not valid UTF-8: {exc}") from None
        if tag == T_BYTES:
            return bytes(self.take(self.u64()))
        if tag in (T_LIST, T_TUPLE):
            items = [self.value(depth + 1) for _ in range(self.count())]
            return items if tag == T_LIST else tuple(items)
        if tag == T_DICT:
            result: dict[Any, Any] = {}
            for _ in range(self.count()):
                key = self.value(depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise CodecError(f"unhashable dict key of type {type(key).__name__}") from None
                result[key] = self.value(depth + 1)
            return result
        if tag == T_NDARRAY:
            dtype = self.dtype()
            ndim = self.u8()
            shape = tuple(self.u64() for _ in range(ndim))
            size = int(np.prod(shape, dtype=np.uint64)) if shape else 1
            raw = self.take(size * dtype.itemsize)
            return np.reshape(np.frombuffer(raw, dtype=dtype), shape).copy()
        if tag == T_NPSCALAR:
            dtype = self.dtype()
            return np.frombuffer(self.take(dtype.itemsize), dtype=dtype)[0]
        if tag == T_ARROW:
            raw = self.take(self.u64())
            # Copy into an Arrow-allocated (64-byte aligned) buffer: columns read straight out
            # of the message would be misaligned, which Arrow kernels warn about and copy anyway.
            aligned = pa.allocate_buffer(len(raw))
            np.frombuffer(aligned, dtype=np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
            try:
                return pa.ipc.open_stream(aligned).read_all()
            except (pa.ArrowInvalid, OSError) as exc:
                raise CodecError(f"malformed Arrow stream: {exc}") from None
        if tag in (T_PAILLIER_PUBLIC_KEY, T_PAILLIER_VECTOR):
            fields = self.value(depth + 1)
            if not isinstance(fields, dict):
                raise CodecError("Paillier payload is not a dict")
            from kernel.security.paillier import wire

            if tag == T_PAILLIER_PUBLIC_KEY:
                return wire.public_key_from_wire(fields)
            return wire.encrypted_vector_from_wire(fields)
        raise CodecError(f"unknown type tag 0x{tag:02x} at offset {self.pos - 1}")
