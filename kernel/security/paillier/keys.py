"""Paillier keys (g = n + 1) with DJN short-exponent obfuscation and CRT for the key holder."""

from __future__ import annotations

import functools
import hashlib
import secrets
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import gmpy2
from gmpy2 import mpz

from kernel.errors import CryptoError
from kernel.security.constants import (
    ENCRYPT_PARTS_PER_PROCESS,
    FAST_DECRYPT_MARGIN_BITS,
    FIXED_BASE_CACHE_SIZE,
    KEY_ID_BYTES,
    PAILLIER_DEFAULT_KEY_BITS,
    PAILLIER_KEY_BITS,
    PAILLIER_WEAK_KEY_BITS,
    PAILLIER_WINDOW_BITS,
)
from kernel.security.paillier.fixed_base import FixedBaseTable
from kernel.security.paillier.parallel import map_chunks, split_even
from kernel.security.processes import SHARED_PROCESSES


class WeakKeyWarning(UserWarning):
    """A key size that is accepted but too small for production (1024-bit Paillier)."""


def short_exponent_bits(n_bits: int) -> int:
    """Length of the DJN obfuscation exponent for an n_bits modulus: ceil(n_bits / 2)."""
    return (n_bits + 1) // 2


def window_bits_for(n_bits: int) -> int:
    """Width of the fixed-base table windows for this modulus size."""
    return PAILLIER_WINDOW_BITS.get(n_bits, 8)


@functools.lru_cache(maxsize=FIXED_BASE_CACHE_SIZE)
def _public_table(h_s: mpz, nsquare: mpz, n_bits: int) -> FixedBaseTable:
    return FixedBaseTable(
        h_s, nsquare, short_exponent_bits(n_bits), window_bits_for(n_bits), workers=None
    )


@functools.lru_cache(maxsize=FIXED_BASE_CACHE_SIZE)
def _crt_tables(
    h_s: mpz, psquare: mpz, qsquare: mpz, n_bits: int
) -> tuple[FixedBaseTable, FixedBaseTable]:
    bits, window = short_exponent_bits(n_bits), window_bits_for(n_bits)
    return (
        FixedBaseTable(h_s % psquare, psquare, bits, window, workers=None),
        FixedBaseTable(h_s % qsquare, qsquare, bits, window, workers=None),
    )


class PaillierPublicKey:
    """The public half: modulus n and the DJN fixed base h_s = h**n mod n**2.

    Ciphertext of m: (1 + m*n) * h_s**a mod n**2, with `a` a random exponent of
    ceil(n_bits/2) bits (rounded up to whole table windows).
    """

    __slots__ = ("n", "h_s", "nsquare", "n_bits", "max_int", "key_id")

    def __init__(self, n: int, h_s: int) -> None:
        self.n = mpz(n)
        self.h_s = mpz(h_s)
        self.nsquare = self.n * self.n
        self.n_bits = int(self.n.bit_length())
        # Plaintexts in [-max_int, max_int] decode as signed numbers; the gap between the
        # positive and the negative range is what makes an overflow detectable at decryption.
        self.max_int = self.n // 3
        digest = hashlib.sha256(int(self.n).to_bytes((self.n_bits + 7) // 8, "big")).hexdigest()
        self.key_id = digest[: 2 * KEY_ID_BYTES]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.n == self.n and other.h_s == self.h_s

    def __hash__(self) -> int:
        return hash((self.n, self.h_s))

    def __repr__(self) -> str:
        return f"PaillierPublicKey(n_bits={self.n_bits}, key_id={self.key_id!r})"

    @property
    def ciphertext_bytes(self) -> int:
        """Fixed width of one ciphertext in big-endian bytes."""
        return (int(self.nsquare.bit_length()) + 7) // 8

    def check_plaintexts(self, plaintexts: Sequence[int], what: str) -> None:
        """Refuse signed plaintexts outside [-max_int, max_int] (they would wrap modulo n)."""
        if not plaintexts:
            return
        largest = max(max(plaintexts), -min(plaintexts))
        if largest > self.max_int:
            raise CryptoError(
                f"{what}: a value needs {int(largest).bit_length()} bits but a {self.n_bits}-bit "
                f"key holds at most {int(self.max_int).bit_length()} bits; lower the precision, "
                f"scale the data or use a larger key"
            )

    def obfuscators(self, count: int, workers: int | None = None) -> list[mpz]:
        """`count` fresh values h_s**a mod n**2 (random n-th residues) for encryption."""
        table = _public_table(self.h_s, self.nsquare, self.n_bits)
        return table.powers(table.random_digits(count), workers)

    def encrypt_integers(self, plaintexts: Sequence[int], workers: int | None = None) -> list[mpz]:
        """Encrypt signed integers (already fixed-point encoded)."""
        self.check_plaintexts(plaintexts, "encrypt")
        obf = self.obfuscators(len(plaintexts), workers)
        n, nsquare = self.n, self.nsquare
        return [(1 + m * n) * r % nsquare for m, r in zip(plaintexts, obf, strict=True)]

    def trivial_integers(self, plaintexts: Sequence[int]) -> list[mpz]:
        """g**m without randomness: only for combining with ciphertexts (ct + pt)."""
        n, nsquare = self.n, self.nsquare
        return [(1 + mpz(m) * n) % nsquare for m in plaintexts]


class PaillierPrivateKey:
    """The secret half: the primes, CRT decryption and CRT encryption."""

    __slots__ = ("public_key", "p", "q", "psquare", "qsquare", "hp", "hq", "q_inv_p", "qsq_inv_psq")

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int) -> None:
        p_, q_ = mpz(p), mpz(q)
        if p_ * q_ != public_key.n:
            raise CryptoError("private key: p * q does not equal the public modulus n")
        if p_ == q_:
            raise CryptoError("private key: p and q must be distinct primes")
        self.public_key = public_key
        self.p, self.q = p_, q_
        self.psquare, self.qsquare = p_ * p_, q_ * q_
        self.hp = self._h(p_, self.psquare, public_key.n)
        self.hq = self._h(q_, self.qsquare, public_key.n)
        self.q_inv_p = gmpy2.invert(q_, p_)
        self.qsq_inv_psq = gmpy2.invert(self.qsquare, self.psquare)

    @staticmethod
    def _h(prime: mpz, prime_sq: mpz, n: mpz) -> mpz:
        # h_p = L_p(g**(p-1) mod p**2)**-1 mod p, with g = n + 1.
        x = gmpy2.powmod(n + 1, prime - 1, prime_sq)
        return gmpy2.invert((x - 1) // prime, prime)

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(key_id={self.public_key.key_id!r})"

    def decrypt_integers(
        self, ciphertexts: Sequence[mpz], bound: int | None = None, workers: int | None = None
    ) -> list[int]:
        """Signed plaintext integers; raises CryptoError for a value outside the valid range.

        With a `bound` on |plaintext| far below p (by FAST_DECRYPT_MARGIN_BITS bits), only the
        exponentiation modulo p**2 is needed: the plaintext is recovered from m mod p. A
        plaintext outside the bound is refused, never returned, so a crafted ciphertext whose
        plaintext exceeds the bound cannot turn the answer into m mod p (which would reveal p).
        """
        if bound is not None and bound < 0:
            raise CryptoError(f"decrypt: bound must be non-negative, got {bound}")
        fast = bound is not None and bound.bit_length() + FAST_DECRYPT_MARGIN_BITS <= self.p.bit_length()
        p, q, psq, qsq = self.p, self.q, self.psquare, self.qsquare
        hp, hq, q_inv_p = self.hp, self.hq, self.q_inv_p
        pk = self.public_key
        n = pk.n
        limit = pk.max_int if bound is None else min(mpz(bound), pk.max_int)
        p1, q1 = p - 1, q - 1

        def refuse() -> CryptoError:
            return CryptoError(
                "decrypt: a plaintext lies outside its valid range: the computation overflowed, "
                "the ciphertext was altered, or it is under another key"
            )

        def chunk_mod_p(cts: Sequence[mpz]) -> list[int]:
            out: list[int] = []
            for a in gmpy2.powmod_base_list(list(cts), p1, psq):
                mp = (a - 1) // p * hp % p
                if mp <= limit:
                    out.append(int(mp))
                elif mp >= p - limit:
                    out.append(int(mp - p))
                else:
                    raise refuse()
            return out

        def chunk_crt(cts: Sequence[mpz]) -> list[int]:
            cts = list(cts)
            xp = gmpy2.powmod_base_list(cts, p1, psq)
            xq = gmpy2.powmod_base_list(cts, q1, qsq)
            out: list[int] = []
            for a, b in zip(xp, xq, strict=True):
                mp = (a - 1) // p * hp % p
                mq = (b - 1) // q * hq % q
                m = mq + q * ((mp - mq) * q_inv_p % p)
                if m <= limit:
                    out.append(int(m))
                elif m >= n - limit:
                    out.append(int(m - n))
                else:
                    raise refuse()
            return out

        return map_chunks(chunk_mod_p if fast else chunk_crt, ciphertexts, workers)

    def encrypt_integers(self, plaintexts: Sequence[int], workers: int | None = None) -> list[mpz]:
        """Encrypt with CRT: the obfuscator is computed mod p**2 and q**2, then combined."""
        pk = self.public_key
        pk.check_plaintexts(plaintexts, "encrypt")
        table_p, table_q = _crt_tables(pk.h_s, self.psquare, self.qsquare, pk.n_bits)
        digits = table_p.random_digits(len(plaintexts))
        obf_p = table_p.powers(digits, workers)
        obf_q = table_q.powers(digits, workers)
        n, psq, qsq, inv = pk.n, self.psquare, self.qsquare, self.qsq_inv_psq
        out = []
        for m, rp, rq in zip(plaintexts, obf_p, obf_q, strict=True):
            g_m = 1 + m * n
            xp = g_m * rp % psq
            xq = g_m * rq % qsq
            out.append(xq + qsq * ((xp - xq) * inv % psq))
        return out


def _encrypt_part(key: PaillierPublicKey | PaillierPrivateKey, plaintexts: list[int]) -> bytes:
    """One worker process's share of `encrypt_on_processes`, as fixed-width ciphertext bytes."""
    pk = key.public_key if isinstance(key, PaillierPrivateKey) else key
    width = pk.ciphertext_bytes
    return b"".join(c.to_bytes(width, "big") for c in key.encrypt_integers(plaintexts, 1))


def encrypt_on_processes(
    key: PaillierPublicKey | PaillierPrivateKey, plaintexts: Sequence[int], processes: int
) -> list[mpz]:
    """`key.encrypt_integers` split over the security kernel's worker processes.

    Encryption is a chain of sub-microsecond products per value, too short for threads to
    gain (the GIL hand-offs cost more), so large batches go to processes: each draws its own
    random exponents and builds the key's fixed-base table once (kept per process). The
    key travels only to this task's own worker processes.
    """
    pk = key.public_key if isinstance(key, PaillierPrivateKey) else key
    pk.check_plaintexts(plaintexts, "encrypt")
    values = [int(m) for m in plaintexts]
    parts = split_even(len(values), processes * ENCRYPT_PARTS_PER_PROCESS)
    pool = SHARED_PROCESSES.pool(processes)
    futures = [pool.submit(_encrypt_part, key, values[a:b]) for a, b in parts]
    width = pk.ciphertext_bytes
    out: list[mpz] = []
    for future in futures:
        raw = future.result()
        out.extend(mpz.from_bytes(raw[i : i + width], "big") for i in range(0, len(raw), width))
    return out


class PaillierKeypair(NamedTuple):
    """A freshly generated key pair."""

    public_key: PaillierPublicKey
    private_key: PaillierPrivateKey


def _random_prime(bits: int) -> mpz:
    while True:
        # Top two bits set so that the product of two such primes has exactly 2*bits bits.
        candidate = mpz(secrets.randbits(bits)) | (mpz(3) << (bits - 2)) | 1
        prime = gmpy2.next_prime(candidate)
        if prime.bit_length() == bits and gmpy2.is_prime(prime, 40):
            return mpz(prime)


def generate_keypair(n_bits: int = PAILLIER_DEFAULT_KEY_BITS) -> PaillierKeypair:
    """A Paillier key pair with an n of exactly `n_bits` bits (1024, 2048 or 3072)."""
    if n_bits not in PAILLIER_KEY_BITS:
        raise CryptoError(
            f"n_bits must be one of {list(PAILLIER_KEY_BITS)}, got {n_bits}"
        )
    if n_bits == PAILLIER_WEAK_KEY_BITS:
        warnings.warn(
            "1024-bit Paillier keys give about 80-bit security and are weak; use 2048 or 3072 "
            "bits outside tests",
            WeakKeyWarning,
            stacklevel=2,
        )
    half = n_bits // 2
    while True:
        p, q = _random_prime(half), _random_prime(half)
        n = p * q
        # Equal-size primes far apart; gcd(n, phi) = 1 is what makes g = n + 1 work.
        if p != q and n.bit_length() == n_bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    nsquare = n * n
    while True:
        x = mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(x, n) == 1:
            break
    # DJN: h = -x**2 mod n generates (most of) the squares-with-sign subgroup; h_s = h**n.
    h = (-x * x) % n
    h_s = gmpy2.powmod(h, n, nsquare)
    public_key = PaillierPublicKey(n, h_s)
    return PaillierKeypair(public_key, PaillierPrivateKey(public_key, p, q))
