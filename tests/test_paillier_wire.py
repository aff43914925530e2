"""Wire form of Paillier keys and vectors: round trips, the typed codec, malformed input."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from kernel.errors import CodecError
from kernel.federation import codec
from kernel.security.paillier import (
    EncryptedVector,
    PaillierKeypair,
    WeakKeyWarning,
    generate_keypair,
    wire,
)


@pytest.fixture(scope="module")
def keypair() -> Iterator[PaillierKeypair]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield generate_keypair(1024)


@pytest.fixture()
def vector(keypair: PaillierKeypair) -> EncryptedVector:
    return EncryptedVector.encrypt(keypair.public_key, np.array([1.5, -2.25, 0.0, 1e6]))


def test_public_key_round_trip(keypair: PaillierKeypair) -> None:
    # Execute
    fields = wire.public_key_to_wire(keypair.public_key)
    back = wire.public_key_from_wire(fields)
    # Assert
    assert back == keypair.public_key
    assert back.key_id == keypair.public_key.key_id
    assert isinstance(fields["n"], bytes) and len(fields["n"]) == 128


def test_vector_round_trip_keeps_values_precision_and_bound(
    keypair: PaillierKeypair, vector: EncryptedVector
) -> None:
    # Execute
    fields = wire.encrypted_vector_to_wire(vector)
    back = wire.encrypted_vector_from_wire(fields)
    # Assert: one bytes value holds every ciphertext at a fixed width
    assert isinstance(fields["ciphertexts"], bytes)
    assert len(fields["ciphertexts"]) == 4 * 256
    assert (back.frac_bits, back.bound, back.layout) == (vector.frac_bits, vector.bound, None)
    np.testing.assert_array_equal(back.decrypt(keypair.private_key), vector.decrypt(keypair.private_key))


def test_packed_vector_round_trip(keypair: PaillierKeypair) -> None:
    values = np.arange(12, dtype=np.float64).reshape(6, 2) - 5
    packed = EncryptedVector.encrypt_packed(keypair.public_key, values)
    flat_packed = EncryptedVector.encrypt(keypair.public_key, values.ravel()).pack(slots=5)
    for vec in (packed, flat_packed):
        back = wire.encrypted_vector_from_wire(wire.encrypted_vector_to_wire(vec))
        assert back.layout == vec.layout
        np.testing.assert_allclose(back.decrypt(keypair.private_key), vec.decrypt(keypair.private_key))


def test_round_trip_through_the_typed_codec(keypair: PaillierKeypair, vector: EncryptedVector) -> None:
    # Execute
    decoded = codec.decode(codec.encode({"pk": keypair.public_key, "grad": vector}))
    # Assert
    assert decoded["pk"] == keypair.public_key
    np.testing.assert_allclose(decoded["grad"].decrypt(keypair.private_key), vector.decrypt(keypair.private_key))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scheme", "other", "scheme"),
        ("key_id", "0" * 16, "key id"),
        ("n_bits", 512, "key size"),
        ("n", b"\x01" * 10, "bytes"),
        ("h_s", b"\x00" * 256, "unit"),
        ("n_bits", "1024", "integer"),
    ],
)
def test_malformed_public_key_is_refused(
    keypair: PaillierKeypair, field: str, value: object, message: str
) -> None:
    fields = wire.public_key_to_wire(keypair.public_key)
    fields[field] = value
    with pytest.raises(CodecError, match=message):
        wire.public_key_from_wire(fields)


def test_malformed_vectors_are_refused(keypair: PaillierKeypair, vector: EncryptedVector) -> None:
    good = wire.encrypted_vector_to_wire(vector)
    n2 = keypair.public_key.nsquare
    too_big = (int(n2) + 5).to_bytes(256, "big")
    cases: list[tuple[dict[str, object], str]] = [
        ({**good, "ciphertexts": good["ciphertexts"][:-1]}, "carries"),  # type: ignore[index]
        ({**good, "count": 5}, "declares 5"),
        ({**good, "ciphertexts": too_big + good["ciphertexts"][256:]}, "outside"),  # type: ignore[index,operator]
        ({**good, "ciphertexts": bytes(256) + good["ciphertexts"][256:]}, "outside"),  # type: ignore[index,operator]
        ({**good, "bound": b"\xff" * 300}, "bound"),
        ({**good, "bound": b"\xff" * 128}, "plaintext space"),
        ({**good, "slot_bits": 600, "slots": 4}, "layout"),
        ({**good, "flat_length": 3}, "flat_length"),
        ({**good, "key": "nope"}, "key"),
        ({**good, "frac_bits": -1}, "frac_bits"),
    ]
    for fields, message in cases:
        with pytest.raises(CodecError, match=message):
            wire.encrypted_vector_from_wire(fields)
