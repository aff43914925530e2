"""Fixed-base exponentiation with a windowed table: base**e costs one multiplication per window."""

from __future__ import annotations

import os
from collections.abc import Sequence

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.security.paillier.parallel import map_chunks

DigitArray = npt.NDArray[np.uint16]


class FixedBaseTable:
    """Row r holds base**(v * 2**(w*r)) mod m for every digit v in [0, 2**w).

    base**e for an exponent with base-2**w digits (d_0, d_1, ...) is the product of
    row_r[d_r] over the rows: rows - 1 modular multiplications and no squarings.
    """

    def __init__(
        self, base: mpz, modulus: mpz, exponent_bits: int, window_bits: int, workers: int | None
    ) -> None:
        if not 1 <= window_bits <= 16:
            raise ValueError(f"window_bits must be in [1, 16], got {window_bits}")
        self.modulus = mpz(modulus)
        self.window_bits = window_bits
        self.rows = -(-exponent_bits // window_bits)
        # Every row's generator in one GIL-free call, then each row filled by repeated products.
        row_bases = gmpy2.powmod_exp_list(
            mpz(base), [mpz(1) << (window_bits * r) for r in range(self.rows)], self.modulus
        )
        size = 1 << window_bits
        modulus_ = self.modulus

        def fill(bases: Sequence[mpz]) -> list[list[mpz]]:
            table_rows = []
            for generator in bases:
                row = [mpz(1)] * size
                acc = mpz(1)
                for v in range(1, size):
                    acc = acc * generator % modulus_
                    row[v] = acc
                table_rows.append(row)
            return table_rows

        self._table: list[list[mpz]] = map_chunks(fill, row_bases, workers, min_per_worker=1)

    @property
    def exponent_bits(self) -> int:
        """Bits of the exponents this table covers (rows * window)."""
        return self.rows * self.window_bits

    def random_digits(self, count: int) -> DigitArray:
        """Uniform digits of `count` random exponents in [0, 2**exponent_bits), shape (rows, count)."""
        raw = np.frombuffer(os.urandom(2 * self.rows * count), dtype=np.uint16)
        mask = np.uint16((1 << self.window_bits) - 1)
        return (raw.reshape(self.rows, count) & mask).astype(np.uint16)

    def powers(self, digits: DigitArray, workers: int | None) -> list[mpz]:
        """base**e mod m for every column of `digits` (shape (rows, count))."""
        if digits.ndim != 2 or digits.shape[0] != self.rows:
            raise ValueError(f"digits must have shape ({self.rows}, count), got {digits.shape}")
        table = self._table
        modulus = self.modulus

        def chunk_powers(columns: Sequence[int]) -> list[mpz]:
            if not columns:
                return []
            block = digits[:, columns[0] : columns[0] + len(columns)]
            first = table[0]
            accs = [first[d] for d in block[0].tolist()]
            for r in range(1, self.rows):
                row = table[r]
                accs = [a * row[d] % modulus for a, d in zip(accs, block[r].tolist(), strict=True)]
            return accs

        return map_chunks(chunk_powers, range(digits.shape[1]), workers)
