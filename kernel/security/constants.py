"""Constants of the security package: key sizes, fixed-point defaults, table and pool sizes."""

from __future__ import annotations

from typing import Final

# Paillier modulus sizes we accept, and the default. 1024 bits is accepted for tests and
# legacy peers but flagged weak (roughly 80-bit security).
PAILLIER_KEY_BITS: Final[tuple[int, ...]] = (1024, 2048, 3072)
PAILLIER_DEFAULT_KEY_BITS: Final = 2048
PAILLIER_WEAK_KEY_BITS: Final = 1024

# Fixed-base window width (bits) of the obfuscation table per modulus size. Each table row
# holds 2**w powers; one encryption costs ceil(n_bits / 2 / w) modular multiplications.
# Memory of a table: rows * 2**w * (2 * n_bits / 8) bytes (about 54 MB at 2048 bits, w=10).
PAILLIER_WINDOW_BITS: Final[dict[int, int]] = {1024: 10, 2048: 10, 3072: 8}

# How many obfuscation tables (public, and CRT pairs) stay cached per process, by key.
FIXED_BASE_CACHE_SIZE: Final = 2

# Fixed-point encoding: value = integer / 2**precision_bits.
DEFAULT_PRECISION_BITS: Final = 32
MAX_PRECISION_BITS: Final = 256

# Plaintext multipliers of matvec / ct*vector must fit a signed 63-bit integer once scaled.
MAX_EXPONENT_BITS: Final = 62

# Spare bits per packed slot so that sums of up to 2**headroom packed vectors cannot carry.
DEFAULT_PACK_HEADROOM_BITS: Final = 20

# Below this many items per worker, threads cost more than they save.
MIN_ITEMS_PER_WORKER: Final = 16
# Work is cut into this many chunks per thread to even out cores slowed by other processes.
CHUNKS_PER_WORKER: Final = 4

# Bytes of the public key id: a hex prefix of SHA-256(n).
KEY_ID_BYTES: Final = 8

# Wire format tags.
PAILLIER_WIRE_SCHEME: Final = "weft-paillier-djn-v1"

# PSI: domain separation of the id hash, and the size of a blinded point.
PSI_HASH_DOMAIN: Final = b"weft-psi-x25519"  # blake2b personalisation, <= 16 bytes
PSI_POINT_BYTES: Final = 32
PSI_MIN_ITEMS_PER_PROCESS: Final = 20000
# Points per chunk handed to a worker process (512 KiB): small enough that both members'
# chunks interleave and a slowed core holds up little, large enough that the hand-off is noise.
PSI_CHUNK_POINTS: Final = 16384

# Secure aggregation: key-derivation label and default fixed-point precision.
SECAGG_KDF_INFO: Final = b"weft-secagg-v1"
SECAGG_DEFAULT_PRECISION_BITS: Final = 24

# Decryption modulo p alone is used when |plaintext| is known to stay this many bits below p:
# a crafted out-of-range plaintext then passes the range check with probability < 2**-127.
FAST_DECRYPT_MARGIN_BITS: Final = 128

# Multi-exponentiation: rows per block (bounds the memory of precomputed powers) and the
# cost of one modular inversion counted in modular multiplications (measured near 8).
MULTIEXP_ROW_BLOCK: Final = 16384
MULTIEXP_INVERSION_COST: Final = 8

# Largest frac_bits a received vector may declare (a product of a few fixed-point factors).
PAILLIER_MAX_WIRE_FRAC_BITS: Final = 8 * MAX_PRECISION_BITS

# Secure aggregation: raw X25519 key size and the largest fixed-point precision (float64 mantissa).
SECAGG_KEY_BYTES: Final = 32
SECAGG_MAX_PRECISION_BITS: Final = 52

# Multi-exponentiations of at least this many (row, column) terms are split by columns over
# worker processes: the bucket method's Python-level steps hold the GIL, so threads barely
# scale it. The processes start on first use and stay (spawning costs about a second).
MULTIEXP_PROCESS_MIN_TERMS: Final = 200_000

# Encryption split over worker processes (`EncryptedVector.encrypt*(processes=...)`) starts
# at this many values; each process gets this many parts.
ENCRYPT_PROCESS_MIN_VALUES: Final = 20_000
ENCRYPT_PARTS_PER_PROCESS: Final = 2
