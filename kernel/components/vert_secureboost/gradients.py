"""A tree's encrypted gradients, message `encrypted_gh`: sent in chunks, checked chunk by chunk.

The promoter packs each drawn row's gradient and hessian into one ciphertext and sends the
rows `GH_CHUNK_ROWS` at a time, after a first message that says how many chunks and rows
follow: its driver holds one chunk of ciphertexts at a time. Every chunk is encrypted with
one packing layout and fixed point, the slot width taken from all of the tree's values
before the first chunk, so a sum over rows of several chunks is the sum one vector of all
of them would give. A provider checks each chunk against the first message and the chunks
before it as it arrives, and hands the chunks on one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.blocks.payloads import PayloadCheck
from kernel.components.vert_secureboost.constants import (
    COMPONENT,
    GH_CHUNK_ROWS,
    PHASE_ENCRYPT,
    PHASE_SEND,
    PRODUCT_WORKERS,
)
from kernel.components.vert_secureboost.phases import PhaseClock
from kernel.components.vert_secureboost.variables import VertSecureBoostVariables
from kernel.errors import InvalidArgument
from kernel.security.paillier import (
    EncryptedVector,
    PackingLayout,
    PaillierPrivateKey,
    PaillierPublicKey,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PAYLOAD: Final = PayloadCheck(COMPONENT)


@dataclass(frozen=True)
class GradientEncoding:
    """What every ciphertext of a tree's encrypted g/h shares: the key, the packing layout,
    the fixed point and a bound of every slot's plaintext."""

    public_key: PaillierPublicKey
    layout: PackingLayout
    frac_bits: int
    bound: int

    def vector(self, ciphertexts: list[mpz]) -> EncryptedVector:
        """Ciphertexts of the tree's g/h as a vector."""
        return EncryptedVector(self.public_key, ciphertexts, self.frac_bits, self.bound, self.layout)


def packed_slot_bits(bound: int, headroom_bits: int) -> int:
    """The slot width `EncryptedVector.encrypt_packed` gives one vector of values whose largest
    fixed-point magnitude is `bound`: its bits, a sign bit, the headroom."""
    return bound.bit_length() + 1 + headroom_bits


def send_encrypted_gh(variables: VertSecureBoostVariables, private_key: PaillierPrivateKey,
                      chunks: Callable[[int], Iterable[tuple[IntArray, FloatArray]]], count: int, bound: int, precision_bits: int,
                      headroom_bits: int, processes: int, clock: PhaseClock) -> GradientEncoding:
    """Encrypt and send a tree's drawn rows' (g, h) to every provider in the tree's scope
    `variables`: the count of chunks and rows, then the chunks `chunks(GH_CHUNK_ROWS)` yields
    (drawn rows in increasing order and their (g, h) values, that many rows each but the
    last) one by one. `bound` is the
    largest fixed-point |g| or |h| of all `count` rows."""
    slot_bits = packed_slot_bits(bound, headroom_bits)
    expected = -(-count // GH_CHUNK_ROWS)
    with clock.phase(PHASE_SEND):
        variables.encrypted_gh.remote({"chunks": expected, "rows": count})
    encoding: GradientEncoding | None = None
    sent = 0
    for chunk, (rows, values) in enumerate(chunks(GH_CHUNK_ROWS)):
        with clock.phase(PHASE_ENCRYPT):
            encrypted = EncryptedVector.encrypt_packed(private_key, values, precision_bits=precision_bits,
                                                       slot_bits=slot_bits, workers=PRODUCT_WORKERS,
                                                       processes=processes)
        with clock.phase(PHASE_SEND):
            variables.at(chunk).encrypted_gh.remote({"rows": rows, "gh": encrypted})
        assert encrypted.layout is not None
        encoding = GradientEncoding(private_key.public_key, encrypted.layout, encrypted.frac_bits, bound)
        sent += len(rows)
    if encoding is None or sent != count:
        raise InvalidArgument(f"{COMPONENT}: the tree drew {count} rows but {sent} were sent")
    return encoding


class GradientStream:
    """The promoter's `encrypted_gh` of one tree at a provider: the first message is read when
    the stream is made, the chunks as it is iterated.

    `encoding` is known once every chunk has been read: the chunks' layout and fixed point
    (the same in every chunk) and the largest of their bounds.
    """

    def __init__(self, variables: VertSecureBoostVariables, rows: int, public_key: PaillierPublicKey) -> None:
        what = "the promoter's encrypted_gh"
        first = PAYLOAD.fields(variables.encrypted_gh.get(), what, "chunks", "rows")
        self.count = PAYLOAD.count(first["rows"], f"{what}.rows", 1, rows)
        self.chunks = PAYLOAD.count(first["chunks"], f"{what}.chunks", 1, self.count)
        self.encoding: GradientEncoding | None = None
        self._variables = variables
        self._rows = rows
        self._public_key = public_key

    def __iter__(self) -> Iterator[tuple[IntArray, EncryptedVector]]:
        """Each chunk's drawn rows (increasing, all after the previous chunk's) and their ciphertexts."""
        last, received = -1, 0
        for chunk in range(self.chunks):
            what = f"the promoter's encrypted_gh chunk {chunk} of {self.chunks}"
            message = PAYLOAD.fields(self._variables.at(chunk).encrypted_gh.get(), what, "rows", "gh")
            rows = PAYLOAD.sorted_unique(PAYLOAD.int_array(message["rows"], f"{what}: rows", 0, self._rows),
                                         f"{what}: rows")
            if not len(rows):
                raise InvalidArgument(f"{COMPONENT}: {what} holds no rows")
            if rows[0] <= last:
                raise InvalidArgument(
                    f"{COMPONENT}: {what} names row {int(rows[0])}, not after the previous chunks' rows (up to {last})"
                )
            received += len(rows)
            if received > self.count:
                raise InvalidArgument(
                    f"{COMPONENT}: {what} brings the drawn rows to {received}, more than the {self.count} "
                    "its first message announced"
                )
            gh = message["gh"]
            if not isinstance(gh, EncryptedVector) or gh.public_key != self._public_key or len(gh) != len(rows) \
                    or gh.layout is None or gh.layout.slots != 2 or gh.layout.flat_length is not None:
                raise InvalidArgument(f"{COMPONENT}: {what} must pack a gradient and a hessian per drawn row")
            if self.encoding is not None and (gh.layout, gh.frac_bits) != (self.encoding.layout,
                                                                           self.encoding.frac_bits):
                raise InvalidArgument(f"{COMPONENT}: {what} is not packed like the chunks before it")
            bound = max(gh.bound, self.encoding.bound if self.encoding is not None else 0)
            self.encoding = GradientEncoding(self._public_key, gh.layout, gh.frac_bits, bound)
            last = int(rows[-1])
            yield rows, gh
        if received != self.count:
            raise InvalidArgument(
                f"{COMPONENT}: the promoter's encrypted_gh announced {self.count} drawn rows, "
                f"its {self.chunks} chunks bring {received}"
            )
