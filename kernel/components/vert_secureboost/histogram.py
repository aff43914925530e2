"""Encrypted gradient/hessian histograms: built at a provider, compressed, decrypted at the promoter.

Every row carries one ciphertext holding its gradient and hessian in two packed slots. A
histogram bin is the homomorphic sum of the rows that fall in it, taken with the vector's
grouped sum (one call per feature or feature pair, never a Python loop over ciphertexts).
For two features whose joint bins are few compared with the rows, the rows are summed once
into the joint cells and both features' bins are then summed from the cells: about half the
ciphertext multiplications of summing the rows once per feature.

The products are a few microseconds of GMP work each, too short to gain from threads, so a
large histogram is split by feature groups over the security kernel's worker processes
(`kernel.security.processes`): each is handed the node's ciphertexts as fixed-width bytes
and its groups' bin columns, and hands back its groups' sums. The sums are the same
products in the same order, so the ciphertexts are identical to those of one process.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.components.vert_secureboost.constants import (
    COMPRESS_HEADROOM_BITS,
    HISTOGRAM_PARTS_PER_PROCESS,
    HISTOGRAM_PROCESS_MIN_PRODUCTS,
    MAX_ROWS_PER_CIPHERTEXT,
    PACK_EXTRA_HEADROOM_BITS,
)
from kernel.components.vert_secureboost.data import BinArray
from kernel.errors import InvalidArgument
from kernel.security.paillier import (
    EncryptedVector,
    PackingLayout,
    PaillierPrivateKey,
    PaillierPublicKey,
)
from kernel.security.paillier.parallel import map_chunks
from kernel.security.processes import SHARED_PROCESSES

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


def _group_cost(group: tuple[int, ...], bins: IntArray, rows: int, nodes: int) -> int:
    """Ciphertext products of one group: rows into its bins (or cells, then cells into bins)."""
    if len(group) == 1:
        return rows
    return rows + 2 * nodes * int(bins[group[0]]) * int(bins[group[1]])


def _sum_groups(gh: EncryptedVector, node: IntArray, columns: BinArray, bins: IntArray, nodes: int,
                groups: Sequence[tuple[int, ...]], workers: int | None) -> list[EncryptedVector]:
    """The histograms of `groups` (positions into `columns` and `bins`), one vector per feature,
    in the order the groups list their features."""
    out: list[EncryptedVector] = []
    for group in groups:
        if len(group) == 1:
            (f,) = group
            width = int(bins[f])
            out.append(gh.group_sum(node * width + columns[:, f].astype(np.int64), nodes * width, workers))
            continue
        first, second = group
        b1, b2 = int(bins[first]), int(bins[second])
        cell_of_row = (node * b1 + columns[:, first].astype(np.int64)) * b2 + columns[:, second].astype(np.int64)
        cells = gh.group_sum(cell_of_row, nodes * b1 * b2, workers)
        cell = np.arange(nodes * b1 * b2, dtype=np.int64)
        out.append(cells.group_sum(cell // b2, nodes * b1, workers))
        out.append(cells.group_sum((cell // (b1 * b2)) * b2 + cell % b2, nodes * b2, workers))
    return out


def _to_bytes(cts: Sequence[mpz], width: int) -> bytes:
    return b"".join(c.to_bytes(width, "big") for c in cts)


def _from_bytes(raw: bytes, width: int) -> list[mpz]:
    return [mpz.from_bytes(raw[i : i + width], "big") for i in range(0, len(raw), width)]


def _groups_in_worker(public_key: PaillierPublicKey, raw_cts: bytes, frac_bits: int, bound: int,
                      layout: PackingLayout | None, node: IntArray, columns: BinArray, bins: IntArray, nodes: int,
                      groups: list[tuple[int, ...]]) -> list[tuple[int, bytes]]:
    """One worker process's share: its groups' histograms (bound, fixed-width ciphertext bytes)."""
    width = public_key.ciphertext_bytes
    gh = EncryptedVector(public_key, _from_bytes(raw_cts, width), frac_bits, bound, layout)
    sums = _sum_groups(gh, node, columns, bins, nodes, groups, workers=1)
    return [(vector.bound, _to_bytes(vector.ciphertexts, width)) for vector in sums]


def _balanced_parts(groups: list[tuple[int, ...]], costs: list[int], parts: int) -> list[list[tuple[int, ...]]]:
    """Groups dealt into `parts` lists of about equal cost (largest first, each to the lightest list)."""
    loads = [0] * parts
    dealt: list[list[tuple[int, ...]]] = [[] for _ in range(parts)]
    for index in sorted(range(len(groups)), key=lambda i: -costs[i]):
        lightest = loads.index(min(loads))
        dealt[lightest].append(groups[index])
        loads[lightest] += costs[index]
    return [part for part in dealt if part]


def build_histograms(
    gh: EncryptedVector, node: IntArray, binned: BinArray, bins: IntArray, nodes: int, workers: int | None,
    processes: int = 1,
) -> EncryptedVector:
    """Per feature (columns of `binned`), per node, per bin: the sum of the rows' ciphertexts.

    `node[i]` in [0, nodes) is row i's node. The result is feature-major, then node, then
    bin: feature f occupies nodes * bins[f] entries. With `processes` > 1 and at least
    HISTOGRAM_PROCESS_MIN_PRODUCTS products, the feature groups are split over that many
    worker processes; `workers` threads serve each grouped sum otherwise.
    """
    if binned.shape[1] == 0:
        raise InvalidArgument("VertSecureBoost: a provider needs at least one feature")
    groups = feature_groups(bins, len(gh), nodes)
    costs = [_group_cost(group, bins, len(gh), nodes) for group in groups]
    if processes > 1 and sum(costs) >= HISTOGRAM_PROCESS_MIN_PRODUCTS:
        dealt = _balanced_parts(groups, costs, processes * HISTOGRAM_PARTS_PER_PROCESS)
        sums = _sum_groups_on_processes(gh, node, binned, bins, nodes, dealt, processes)
        order = [group for part in dealt for group in part]
    else:
        sums, order = _sum_groups(gh, node, binned, bins, nodes, groups, workers), groups
    parts: list[EncryptedVector | None] = [None] * binned.shape[1]
    features = iter(sums)
    for group in order:
        for f in group:
            parts[f] = next(features)
    return EncryptedVector.concatenate([p for p in parts if p is not None])


def _sum_groups_on_processes(gh: EncryptedVector, node: IntArray, binned: BinArray, bins: IntArray, nodes: int,
                             dealt: list[list[tuple[int, ...]]], processes: int) -> list[EncryptedVector]:
    """`_sum_groups` of each part of `dealt` on a worker process; one vector per feature, part by part."""
    pk = gh.public_key
    width = pk.ciphertext_bytes
    raw_cts = _to_bytes(gh.ciphertexts, width)
    pool = SHARED_PROCESSES.pool(processes)
    pending: deque[Future[list[tuple[int, bytes]]]] = deque()
    for part in dealt:
        used = sorted({f for group in part for f in group})
        position = {f: k for k, f in enumerate(used)}
        local = [tuple(position[f] for f in group) for group in part]
        pending.append(pool.submit(_groups_in_worker, pk, raw_cts, gh.frac_bits, gh.bound, gh.layout, node,
                                   np.ascontiguousarray(binned[:, used]), bins[used], nodes, local))
    sums: list[EncryptedVector] = []
    while pending:
        for bound, raw in pending.popleft().result():
            # The bound was computed (and checked) by the same grouped sums in the worker.
            sums.append(EncryptedVector(pk, _from_bytes(raw, width), gh.frac_bits, bound, gh.layout))
    return sums


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
