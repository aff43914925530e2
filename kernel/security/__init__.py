"""Cryptographic primitives of the kernel: Paillier, ECDH PSI and secure aggregation."""
