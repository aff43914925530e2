"""Paillier homomorphic encryption: keys, fixed-point vectors, packing and the wire format."""

from kernel.security.paillier import wire
from kernel.security.paillier.keys import (
    PaillierKeypair,
    PaillierPrivateKey,
    PaillierPublicKey,
    WeakKeyWarning,
    generate_keypair,
)
from kernel.security.paillier.packing import PackingLayout
from kernel.security.paillier.vector import EncryptedVector

__all__ = [
    "EncryptedVector",
    "PackingLayout",
    "PaillierKeypair",
    "PaillierPrivateKey",
    "PaillierPublicKey",
    "WeakKeyWarning",
    "generate_keypair",
    "wire",
]
