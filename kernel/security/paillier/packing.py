"""Several signed fixed-point values in one Paillier plaintext: layout, pack and unpack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kernel.errors import CryptoError


@dataclass(frozen=True)
class PackingLayout:
    """`slots` signed values of `slot_bits` bits each, slot 0 in the lowest bits.

    A value v sits in its slot as a signed digit in [-2**(slot_bits-1), 2**(slot_bits-1)):
    the packed plaintext is sum_s v_s * 2**(s*slot_bits), so adding packed plaintexts adds
    slot by slot and multiplying by an integer scales every slot, with no offsets to track.
    `flat_length` is set when a 1-D vector was packed after encryption: decryption then
    returns that many values in their original order instead of a (rows, slots) array.
    """

    slot_bits: int
    slots: int
    flat_length: int | None = None

    @property
    def slot_limit(self) -> int:
        """Largest |value| a slot holds."""
        return (1 << (self.slot_bits - 1)) - 1

    def plaintext_bound(self, slot_bound: int) -> int:
        """Largest |packed plaintext| when every slot holds at most `slot_bound`."""
        return slot_bound * (((1 << (self.slots * self.slot_bits)) - 1) // ((1 << self.slot_bits) - 1))

    def check_fits(self, n_bits: int) -> None:
        """The whole layout must stay well inside the plaintext space of an n_bits key."""
        if self.slots < 1 or self.slot_bits < 2:
            raise CryptoError(
                f"packing needs slots >= 1 and slot_bits >= 2, got {self.slots} x {self.slot_bits}"
            )
        if self.slots * self.slot_bits > n_bits - 2:
            raise CryptoError(
                f"packing {self.slots} slots of {self.slot_bits} bits needs "
                f"{self.slots * self.slot_bits} bits; a {n_bits}-bit key holds {n_bits - 2}"
            )


def pack_rows(values: Sequence[int], layout: PackingLayout) -> list[int]:
    """Pack a row-major flat list (rows * slots signed ints) into one integer per row."""
    k, bits = layout.slots, layout.slot_bits
    if len(values) % k:
        raise CryptoError(f"packing: {len(values)} values do not fill rows of {k} slots")
    limit = layout.slot_limit
    if values and max(max(values), -min(values)) > limit:
        raise CryptoError(
            f"packing: a value needs more than the {bits} bits of its slot; widen slot_bits "
            f"or lower the precision"
        )
    packed = []
    for r in range(0, len(values), k):
        acc = 0
        for s in range(k - 1, -1, -1):
            acc = (acc << bits) + values[r + s]
        packed.append(acc)
    return packed


def unpack_rows(packed: Sequence[int], layout: PackingLayout) -> list[int]:
    """Inverse of `pack_rows`: row-major signed slot values."""
    k, bits = layout.slots, layout.slot_bits
    mask, half, full = (1 << bits) - 1, 1 << (bits - 1), 1 << bits
    out: list[int] = []
    for p in packed:
        for _ in range(k):
            digit = p & mask  # Python's & on a negative int acts on infinite two's complement
            if digit >= half:
                digit -= full
            out.append(digit)
            p = (p - digit) >> bits
        if p:
            raise CryptoError("unpacking: a packed plaintext has bits beyond its last slot")
    return out
