"""Encrypted gradient/hessian histograms: built at a provider, compressed, decrypted at the promoter.

Every row carries one ciphertext holding its gradient and hessian in two packed slots. A
histogram bin is the homomorphic sum of the rows that fall in it, taken with the vector's
grouped sum (one call per feature or feature pair, never a Python loop over ciphertexts).
For two features whose joint bins are few compared with the rows, the rows are summed once
into the joint cells and both features' bins are then summed from the cells: about half the
ciphertext multiplications of summing the rows once per feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.components.vert_secureboost.constants import (
    COMPRESS_HEADROOM_BITS,
    MAX_ROWS_PER_CIPHERTEXT,
    PACK_EXTRA_HEADROOM_BITS,
)
from kernel.components.vert_secureboost.data import BinArray
from kernel.errors import InvalidArgument
from kernel.security.paillier import EncryptedVector, PackingLayout, PaillierPrivateKey
from kernel.security.paillier.parallel import map_chunks

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def gh_headroom_bits(rows: int, max_bin: int) -> int:
    """Spare bits per packed slot of the encrypted gradients: sums of `rows` values, summed
    through pair cells (up to max_bin cells a bin), then compressed."""
    return (
        max(1, math.ceil(math.log2(max(rows, 2))))
        + max(1, math.ceil(math.log2(max(max_bin, 2))))
        + PACK_EXTRA_HEADROOM_BITS
        + COMPRESS_HEADROOM_BITS
    )


def feature_groups(bins: IntArray, rows: int, nodes: int) -> list[tuple[int, ...]]:
    """Positions of features summed together: pairs where the joint cells cost less.

    A pair costs rows + 2 * nodes * b1 * b2 multiplications (rows into cells, cells into
    both features' bins) against 2 * rows for the two features alone.
    """
    order = np.argsort(bins, kind="stable").tolist()
    groups: list[tuple[int, ...]] = []
    k = 0
    while k < len(order):
        if k + 1 < len(order):
            first, second = order[k], order[k + 1]
            if rows > 2 * nodes * int(bins[first]) * int(bins[second]):
                groups.append((first, second))
                k += 2
                continue
        groups.append((order[k],))
        k += 1
    return groups


def build_histograms(
    gh: EncryptedVector, node: IntArray, binned: BinArray, bins: IntArray, nodes: int, workers: int | None
) -> EncryptedVector:
    """Per feature (columns of `binned`), per node, per bin: the sum of the rows' ciphertexts.

    `node[i]` in [0, nodes) is row i's node. The result is feature-major, then node, then
    bin: feature f occupies nodes * bins[f] entries.
    """
    if binned.shape[1] == 0:
        raise InvalidArgument("VertSecureBoost: a provider needs at least one feature")
    parts: list[EncryptedVector | None] = [None] * binned.shape[1]
    for group in feature_groups(bins, len(gh), nodes):
        if len(group) == 1:
            (f,) = group
            width = int(bins[f])
            parts[f] = gh.group_sum(node * width + binned[:, f].astype(np.int64), nodes * width, workers)
            continue
        first, second = group
        b1, b2 = int(bins[first]), int(bins[second])
        cell_of_row = (node * b1 + binned[:, first].astype(np.int64)) * b2 + binned[:, second].astype(np.int64)
        cells = gh.group_sum(cell_of_row, nodes * b1 * b2, workers)
        cell = np.arange(nodes * b1 * b2, dtype=np.int64)
        parts[first] = cells.group_sum(cell // b2, nodes * b1, workers)
        parts[second] = cells.group_sum((cell // (b1 * b2)) * b2 + cell % b2, nodes * b2, workers)
    return EncryptedVector.concatenate([p for p in parts if p is not None])


def rows_per_ciphertext(layout: PackingLayout, n_bits: int) -> int:
    """How many packed rows of `layout` fit one plaintext of an n_bits key (at most MAX_ROWS_PER_CIPHERTEXT)."""
    return max(1, min(MAX_ROWS_PER_CIPHERTEXT, (n_bits - 2) // (layout.slots * layout.slot_bits)))


def _raise_all(cts: list[mpz], exponent: mpz, modulus: mpz, workers: int | None) -> list[mpz]:
    def chunk(items: Sequence[mpz]) -> list[mpz]:
        return list(gmpy2.powmod_base_list(list(items), exponent, modulus))

    return map_chunks(chunk, cts, workers)


def compress(vector: EncryptedVector, slot_bound: int, per_ciphertext: int, workers: int | None) -> EncryptedVector:
    """`per_ciphertext` packed rows in one ciphertext: row j of a group shifted up by j rows.

    `slot_bound` bounds every slot's plaintext (rows * the encrypted values' bound for a
    histogram). The shifted rows occupy disjoint slots, so the bound of the result is the same;
    one exponentiation by 2**(row bits) per output ciphertext and step (Horner's rule).
    """
    layout = vector.layout
    if layout is None:
        raise InvalidArgument("VertSecureBoost: compress needs a vector of packed rows")
    k = per_ciphertext
    pk = vector.public_key
    wide = PackingLayout(layout.slot_bits, layout.slots * k)
    wide.check_fits(pk.n_bits)
    cts = list(vector.ciphertexts)
    cts += [mpz(1)] * (-len(cts) % k)
    shift = mpz(1) << (layout.slots * layout.slot_bits)
    acc = EncryptedVector(pk, cts[k - 1 :: k], vector.frac_bits, slot_bound, wide)
    for j in range(k - 2, -1, -1):
        shifted = EncryptedVector(pk, _raise_all(list(acc.ciphertexts), shift, pk.nsquare, workers),
                                  vector.frac_bits, slot_bound, wide)
        summed = shifted.add(EncryptedVector(pk, cts[j::k], vector.frac_bits, slot_bound, wide), workers)
        acc = EncryptedVector(pk, list(summed.ciphertexts), vector.frac_bits, slot_bound, wide)
    return acc


def decrypt_compressed(
    private_key: PaillierPrivateKey, received: EncryptedVector, slot_bits: int, slots: int, frac_bits: int,
    slot_bound: int, per_ciphertext: int, count: int, workers: int | None,
) -> FloatArray:
    """The (count, slots) values of a compressed histogram, decrypted under our own layout and
    bound (never the sender's declarations)."""
    layout = PackingLayout(slot_bits, slots * per_ciphertext)
    layout.check_fits(private_key.public_key.n_bits)
    if len(received) != -(-count // per_ciphertext):
        raise InvalidArgument(
            f"VertSecureBoost: a histogram of {count} bins in ciphertexts of {per_ciphertext} needs "
            f"{-(-count // per_ciphertext)} ciphertexts, got {len(received)}"
        )
    ours = EncryptedVector(private_key.public_key, list(received.ciphertexts), frac_bits, slot_bound, layout)
    values = ours.decrypt(private_key, workers).reshape(-1, slots)
    result: FloatArray = values[:count]
    return result
