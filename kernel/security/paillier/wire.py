"""Wire form of Paillier public keys and ciphertext vectors for the typed codec.

Values are only str/int/bool/bytes/dict; big integers travel as fixed-width big-endian
bytes, all ciphertexts of a vector packed into one bytes value. Decoding validates every
field and raises CodecError, so a malformed peer message never becomes a key or vector.
"""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz

from kernel.errors import CodecError, CryptoError
from kernel.security.constants import (
    PAILLIER_KEY_BITS,
    PAILLIER_MAX_WIRE_FRAC_BITS,
    PAILLIER_WIRE_SCHEME,
)
from kernel.security.paillier.keys import PaillierPublicKey
from kernel.security.paillier.packing import PackingLayout
from kernel.security.paillier.vector import EncryptedVector


def _int_field(d: dict[str, object], name: str, low: int, high: int) -> int:
    value = d.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"Paillier payload field {name!r} must be an integer")
    if not low <= value <= high:
        raise CodecError(f"Paillier payload field {name!r}={value} is outside [{low}, {high}]")
    return value


def _bytes_field(d: dict[str, object], name: str) -> bytes:
    value = d.get(name)
    if not isinstance(value, bytes | bytearray | memoryview):
        raise CodecError(f"Paillier payload field {name!r} must be bytes")
    return bytes(value)


def _check_scheme(d: dict[str, object]) -> None:
    if not isinstance(d, dict):
        raise CodecError("Paillier payload must be a dict")
    if d.get("scheme") != PAILLIER_WIRE_SCHEME:
        raise CodecError(
            f"Paillier payload scheme {d.get('scheme')!r} is not {PAILLIER_WIRE_SCHEME!r}"
        )


def public_key_to_wire(pk: PaillierPublicKey) -> dict[str, object]:
    """A public key as plain fields: n and h_s as fixed-width bytes, plus its id."""
    width = (pk.n_bits + 7) // 8
    return {
        "scheme": PAILLIER_WIRE_SCHEME,
        "key_id": pk.key_id,
        "n_bits": pk.n_bits,
        "n": pk.n.to_bytes(width, "big"),
        "h_s": pk.h_s.to_bytes(2 * width, "big"),
    }


def public_key_from_wire(d: dict[str, object]) -> PaillierPublicKey:
    """Rebuild and validate a public key sent by a peer."""
    _check_scheme(d)
    n_bits = _int_field(d, "n_bits", 0, max(PAILLIER_KEY_BITS))
    if n_bits not in PAILLIER_KEY_BITS:
        raise CodecError(f"Paillier key size {n_bits} is not one of {list(PAILLIER_KEY_BITS)}")
    width = n_bits // 8
    raw_n, raw_h = _bytes_field(d, "n"), _bytes_field(d, "h_s")
    if len(raw_n) != width or len(raw_h) != 2 * width:
        raise CodecError(
            f"Paillier key fields have {len(raw_n)}/{len(raw_h)} bytes, expected {width}/{2 * width}"
        )
    n, h_s = mpz.from_bytes(raw_n, "big"), mpz.from_bytes(raw_h, "big")
    if n.bit_length() != n_bits or n % 2 == 0:
        raise CodecError(f"Paillier modulus is not an odd {n_bits}-bit number")
    if not 0 < h_s < n * n or gmpy2.gcd(h_s, n) != 1:
        raise CodecError("Paillier h_s is not a unit modulo n**2")
    pk = PaillierPublicKey(n, h_s)
    if d.get("key_id") != pk.key_id:
        raise CodecError(f"Paillier key id {d.get('key_id')!r} does not match its modulus")
    return pk


def encrypted_vector_to_wire(v: EncryptedVector) -> dict[str, object]:
    """A vector as plain fields: its key, precision, bound, layout and packed ciphertexts."""
    width = v.public_key.ciphertext_bytes
    layout = v.layout
    return {
        "scheme": PAILLIER_WIRE_SCHEME,
        "key": public_key_to_wire(v.public_key),
        "count": len(v),
        "ciphertexts": b"".join(c.to_bytes(width, "big") for c in v.ciphertexts),
        "frac_bits": v.frac_bits,
        "bound": v.bound.to_bytes((v.bound.bit_length() + 7) // 8, "big"),
        "slot_bits": layout.slot_bits if layout else 0,
        "slots": layout.slots if layout else 0,
        "flat_length": layout.flat_length if layout and layout.flat_length is not None else -1,
    }


def encrypted_vector_from_wire(d: dict[str, object]) -> EncryptedVector:
    """Rebuild and validate a ciphertext vector sent by a peer."""
    _check_scheme(d)
    key_fields = d.get("key")
    if not isinstance(key_fields, dict):
        raise CodecError("Paillier vector payload has no 'key' dict")
    pk = public_key_from_wire(key_fields)
    width = pk.ciphertext_bytes
    raw = _bytes_field(d, "ciphertexts")
    count = _int_field(d, "count", 0, len(raw))
    if len(raw) != count * width:
        raise CodecError(
            f"Paillier vector declares {count} ciphertexts of {width} bytes but carries {len(raw)} bytes"
        )
    nsquare = pk.nsquare
    cts = [mpz.from_bytes(raw[i : i + width], "big") for i in range(0, len(raw), width)]
    for i, c in enumerate(cts):
        if not 0 < c < nsquare:
            raise CodecError(f"Paillier ciphertext {i} is outside (0, n**2)")
    frac_bits = _int_field(d, "frac_bits", 0, PAILLIER_MAX_WIRE_FRAC_BITS)
    raw_bound = _bytes_field(d, "bound")
    if len(raw_bound) > width:
        raise CodecError("Paillier vector bound is larger than the plaintext space")
    bound = int.from_bytes(raw_bound, "big")
    slot_bits = _int_field(d, "slot_bits", 0, pk.n_bits)
    slots = _int_field(d, "slots", 0, pk.n_bits)
    flat_length = _int_field(d, "flat_length", -1, count * max(slots, 1))
    layout: PackingLayout | None = None
    if slot_bits or slots:
        layout = PackingLayout(slot_bits, slots, None if flat_length < 0 else flat_length)
        try:
            layout.check_fits(pk.n_bits)
        except CryptoError as exc:
            raise CodecError(f"Paillier vector layout: {exc}") from None
    elif flat_length != -1:
        raise CodecError("Paillier vector has flat_length but no packing layout")
    try:
        return EncryptedVector(pk, cts, frac_bits, bound, layout)
    except CryptoError as exc:
        raise CodecError(f"Paillier vector: {exc}") from None
