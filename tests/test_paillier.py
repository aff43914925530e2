"""Paillier keys, fixed-point vectors, homomorphic operations, matvec, packing and overflow."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import gmpy2
import numpy as np
import pytest
from gmpy2 import mpz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernel.errors import CryptoError
from kernel.security.paillier import (
    EncryptedVector,
    PaillierKeypair,
    WeakKeyWarning,
    generate_keypair,
    multiexp,
)
from kernel.security.paillier import vector as vector_module
from kernel.security.paillier.keys import short_exponent_bits

PROPERTY = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
SMALL = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
# Fixed-point error of one encoded value at 32 fractional bits.
EPS = 2.0**-32


@pytest.fixture(scope="module")
def keypair() -> Iterator[PaillierKeypair]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield generate_keypair(1024)


@pytest.fixture(scope="module")
def other_keypair() -> Iterator[PaillierKeypair]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield generate_keypair(1024)


def vectors(max_size: int = 8, elements: st.SearchStrategy[float] = FLOATS) -> st.SearchStrategy:
    return hnp.arrays(np.float64, st.integers(1, max_size), elements=elements)


# ---------------------------------------------------------------------------- keys
def test_keygen_1024_warns_weak_and_has_exact_size() -> None:
    # Execute
    with pytest.warns(WeakKeyWarning, match="weak"):
        pk, sk = generate_keypair(1024)
    # Assert
    assert pk.n_bits == 1024
    assert sk.p * sk.q == pk.n
    assert len(pk.key_id) == 16


def test_keygen_2048_default_has_no_warning() -> None:
    # Execute
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeakKeyWarning)
        pk, _ = generate_keypair()
    # Assert
    assert pk.n_bits == 2048
    assert short_exponent_bits(pk.n_bits) == 1024


def test_keygen_refuses_unsupported_size() -> None:
    with pytest.raises(CryptoError, match="n_bits"):
        generate_keypair(512)


# ---------------------------------------------------------------------------- round trips
@PROPERTY
@given(values=vectors())
def test_encrypt_decrypt_round_trip(keypair: PaillierKeypair, values: np.ndarray) -> None:
    # Execute
    enc = EncryptedVector.encrypt(keypair.public_key, values)
    # Assert
    np.testing.assert_allclose(enc.decrypt(keypair.private_key), values, rtol=0, atol=EPS)


@PROPERTY
@given(values=vectors())
def test_crt_encryption_matches_public_encryption(keypair: PaillierKeypair, values: np.ndarray) -> None:
    # Execute: the key holder's CRT path and the public path give ciphertexts of equal plaintexts
    by_private = EncryptedVector.encrypt(keypair.private_key, values)
    by_public = EncryptedVector.encrypt(keypair.public_key, values)
    # Assert
    np.testing.assert_array_equal(
        by_private.decrypt(keypair.private_key), by_public.decrypt(keypair.private_key)
    )


def test_encryption_is_randomised(keypair: PaillierKeypair) -> None:
    # Execute
    a = EncryptedVector.encrypt(keypair.public_key, np.zeros(4))
    b = EncryptedVector.encrypt(keypair.public_key, np.zeros(4))
    # Assert
    assert len(set(a.ciphertexts) | set(b.ciphertexts)) == 8


def test_integer_input_is_exact(keypair: PaillierKeypair) -> None:
    values = np.array([0, -1, 2**60, -(2**60)], dtype=np.int64)
    enc = EncryptedVector.encrypt(keypair.public_key, values)
    assert enc.frac_bits == 0
    assert enc.decrypt_integers(keypair.private_key) == [int(v) for v in values]


def test_full_crt_decryption_path_for_large_values(keypair: PaillierKeypair) -> None:
    # Prepare: a bound close to n forces decryption modulo p and q
    big = 2**900
    cts = keypair.public_key.encrypt_integers([big, -big])
    # Execute
    out = keypair.private_key.decrypt_integers(cts, bound=None)
    # Assert
    assert out == [big, -big]


def test_threads_give_the_same_result(keypair: PaillierKeypair) -> None:
    values = np.linspace(-5, 5, 101)
    enc = EncryptedVector.encrypt(keypair.public_key, values, workers=2)
    np.testing.assert_allclose(enc.decrypt(keypair.private_key, workers=2), values, atol=EPS)


@pytest.mark.parametrize("key_kind", ["public", "private"])
def test_packed_encryption_on_worker_processes_decrypts_to_the_values(
    keypair: PaillierKeypair, key_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a threshold low enough that 300 rows go to two worker processes
    monkeypatch.setattr(vector_module, "ENCRYPT_PROCESS_MIN_VALUES", 100)
    key = keypair.public_key if key_kind == "public" else keypair.private_key
    values = np.random.default_rng(3).normal(size=(300, 2))
    # Execute
    spread = EncryptedVector.encrypt_packed(key, values, precision_bits=24, processes=2)
    here = EncryptedVector.encrypt_packed(key, values, precision_bits=24, workers=1)
    # Assert: the same plaintexts and layout, fresh randomness in every ciphertext
    np.testing.assert_allclose(spread.decrypt(keypair.private_key), values, atol=2.0**-23)
    assert spread.layout == here.layout and spread.bound == here.bound and len(spread) == 300
    assert len(set(spread.ciphertexts)) == 300 and not set(spread.ciphertexts) & set(here.ciphertexts)


# ---------------------------------------------------------------------------- arithmetic
@PROPERTY
@given(data=st.data())
def test_homomorphic_addition(keypair: PaillierKeypair, data: st.DataObject) -> None:
    # Prepare
    x = data.draw(vectors())
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=FLOATS))
    ex = EncryptedVector.encrypt(keypair.public_key, x)
    ey = EncryptedVector.encrypt(keypair.public_key, y, precision_bits=20)
    sk = keypair.private_key
    # Execute / Assert
    np.testing.assert_allclose((ex + ey).decrypt(sk), x + y, rtol=0, atol=2 * 2.0**-20)
    np.testing.assert_allclose((ex + y).decrypt(sk), x + y, rtol=0, atol=2 * EPS)
    np.testing.assert_allclose((ex - ey).decrypt(sk), x - y, rtol=0, atol=2 * 2.0**-20)
    np.testing.assert_allclose((y - ex).decrypt(sk), y - x, rtol=0, atol=2 * EPS)
    np.testing.assert_allclose((ex + 1.5).decrypt(sk), x + 1.5, rtol=0, atol=EPS)


@PROPERTY
@given(x=vectors(elements=SMALL), scalar=SMALL)
def test_homomorphic_scalar_multiplication(
    keypair: PaillierKeypair, x: np.ndarray, scalar: float
) -> None:
    # Execute
    enc = EncryptedVector.encrypt(keypair.public_key, x) * scalar
    # Assert: error of x's encoding times |scalar| plus the scalar's encoding times |x|
    atol = EPS * (abs(scalar) + np.abs(x) + 1)
    np.testing.assert_array_less(np.abs(enc.decrypt(keypair.private_key) - x * scalar), atol)


@PROPERTY
@given(data=st.data())
def test_elementwise_multiplication_and_sum(keypair: PaillierKeypair, data: st.DataObject) -> None:
    # Prepare
    x = data.draw(vectors(elements=SMALL))
    w = data.draw(hnp.arrays(np.float64, x.shape, elements=SMALL))
    enc = EncryptedVector.encrypt(keypair.public_key, x)
    sk = keypair.private_key
    # Execute
    product = enc * w
    total = product.sum()
    # Assert
    atol = EPS * (np.abs(w) + np.abs(x) + 1)
    np.testing.assert_array_less(np.abs(product.decrypt(sk) - x * w), atol)
    assert len(total) == 1
    assert abs(total.decrypt(sk)[0] - float(np.dot(x, w))) < float(atol.sum())


def test_float_added_to_integer_vector_is_not_rounded(keypair: PaillierKeypair) -> None:
    enc = EncryptedVector.encrypt(keypair.public_key, np.array([3, -4], dtype=np.int64))
    np.testing.assert_allclose((enc + 0.25).decrypt(keypair.private_key), [3.25, -3.75])
    np.testing.assert_allclose(
        (enc - np.array([1, 2], dtype=np.uint8)).decrypt(keypair.private_key), [2, -6]
    )


def test_integer_scalar_is_exact(keypair: PaillierKeypair) -> None:
    enc = EncryptedVector.encrypt(keypair.public_key, np.array([3, -4], dtype=np.int64))
    assert (enc * -7).decrypt_integers(keypair.private_key) == [-21, 28]
    assert (enc * np.array([2, 5])).decrypt_integers(keypair.private_key) == [6, -20]


def test_vectors_under_different_keys_do_not_mix(
    keypair: PaillierKeypair, other_keypair: PaillierKeypair
) -> None:
    a = EncryptedVector.encrypt(keypair.public_key, np.ones(2))
    b = EncryptedVector.encrypt(other_keypair.public_key, np.ones(2))
    with pytest.raises(CryptoError, match="different keys"):
        _ = a + b
    with pytest.raises(CryptoError, match="private key is for"):
        a.decrypt(other_keypair.private_key)


def test_indexing_concatenate_and_group_sum(keypair: PaillierKeypair) -> None:
    # Prepare
    x = np.arange(10, dtype=np.float64) - 4.5
    enc = EncryptedVector.encrypt(keypair.public_key, x)
    groups = np.array([0, 2, 2, 0, 1, 1, 1, 2, 0, 0])
    sk = keypair.private_key
    # Execute
    picked = enc[np.array([9, 0, 3])]
    masked = enc[x > 0]
    joined = EncryptedVector.concatenate([enc[:2], enc[8:]])
    sums = enc.group_sum(groups, 4).rerandomize()
    # Assert
    np.testing.assert_allclose(picked.decrypt(sk), x[[9, 0, 3]])
    np.testing.assert_allclose(masked.decrypt(sk), x[x > 0])
    np.testing.assert_allclose(joined.decrypt(sk), np.concatenate([x[:2], x[8:]]))
    np.testing.assert_allclose(sums.decrypt(sk), np.bincount(groups, weights=x, minlength=4))


# ---------------------------------------------------------------------------- matvec
@PROPERTY
@given(data=st.data())
def test_rmatvec_equals_numpy(keypair: PaillierKeypair, data: st.DataObject) -> None:
    # Prepare
    rows = data.draw(st.integers(1, 30))
    cols = data.draw(st.integers(1, 5))
    d = data.draw(hnp.arrays(np.float64, rows, elements=SMALL))
    x = data.draw(hnp.arrays(np.float64, (rows, cols), elements=SMALL))
    enc = EncryptedVector.encrypt(keypair.public_key, d)
    # Execute
    got = enc.rmatvec(x).decrypt(keypair.private_key)
    # Assert: each term carries at most EPS*(|x|+|d|+1) of fixed-point error
    atol = EPS * (np.abs(x) + np.abs(d)[:, None] + 1).sum(axis=0)
    np.testing.assert_array_less(np.abs(got - x.T @ d), atol)


def test_matvec_and_dot_agree_with_numpy(keypair: PaillierKeypair) -> None:
    rng = np.random.default_rng(7)
    d = rng.normal(size=40)
    x = rng.normal(size=(3, 40))
    enc = EncryptedVector.encrypt(keypair.public_key, d)
    sk = keypair.private_key
    np.testing.assert_allclose(enc.matvec(x).decrypt(sk), x @ d, atol=1e-7)
    np.testing.assert_allclose(enc.dot(x[0]).decrypt(sk), [x[0] @ d], atol=1e-7)


@pytest.mark.parametrize("merged", [False, True])
@pytest.mark.parametrize("window_bits", [1, 4, 9])
def test_multi_exponentiation_plans_match_naive_powers(
    keypair: PaillierKeypair, merged: bool, window_bits: int
) -> None:
    # Prepare: signed exponents of up to 40 bits, both Pippenger variants, several windows
    rng = np.random.default_rng(window_bits)
    modulus = keypair.public_key.nsquare
    bases = keypair.public_key.encrypt_integers(list(range(1, 13)))
    exps = rng.integers(-(2**40), 2**40, size=(12, 4)).astype(np.int64)
    exps[0, 0], exps[1, 1] = 0, -1
    bits = 41 if merged else 40
    plan = multiexp.Plan(merged, window_bits, -(-bits // window_bits))
    runner = multiexp._merged_block if merged else multiexp._windowed_block
    # Execute
    got = runner(bases, exps, modulus, plan, 2)
    # Assert
    for j in range(4):
        want = mpz(1)
        for i in range(12):
            want = want * gmpy2.powmod(bases[i], int(exps[i, j]), modulus) % modulus
        assert got[j] == want


def test_rmatvec_over_several_row_blocks(keypair: PaillierKeypair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiexp, "MULTIEXP_ROW_BLOCK", 7)
    rng = np.random.default_rng(3)
    d, x = rng.normal(size=30), rng.normal(size=(30, 2))
    enc = EncryptedVector.encrypt(keypair.public_key, d)
    np.testing.assert_allclose(enc.rmatvec(x).decrypt(keypair.private_key), x.T @ d, atol=1e-7)


# ---------------------------------------------------------------------------- overflow
def test_encrypting_beyond_the_plaintext_space_raises(keypair: PaillierKeypair) -> None:
    with pytest.raises(CryptoError, match="bits"):
        keypair.public_key.encrypt_integers([int(keypair.public_key.n)])
    with pytest.raises(CryptoError, match="NaN"):
        EncryptedVector.encrypt(keypair.public_key, np.array([1.0, np.nan]))


def test_growing_past_the_plaintext_space_raises_before_computing(keypair: PaillierKeypair) -> None:
    # Prepare: 2**300 * 2**32 fits, but repeated squaring of the scale cannot
    enc = EncryptedVector.encrypt(keypair.public_key, np.array([2.0**300]))
    # Execute / Assert
    with pytest.raises(CryptoError, match="plaintext space"):
        _ = enc * (2**400) * (2**400)


def test_matvec_overflow_raises(keypair: PaillierKeypair) -> None:
    enc = EncryptedVector.encrypt(keypair.public_key, np.full(4, 2.0**950))
    with pytest.raises(CryptoError, match="rmatvec"):
        enc.rmatvec(np.full((4, 1), 2.0**29), precision_bits=32)


@PROPERTY
@given(value_bits=st.integers(0, 1000), scalar_bits=st.integers(0, 1000), negative=st.booleans())
def test_overflow_raises_exactly_when_the_result_leaves_the_plaintext_space(
    keypair: PaillierKeypair, value_bits: int, scalar_bits: int, negative: bool
) -> None:
    # Prepare: an exact integer 2**value_bits (skip values that cannot even be encrypted)
    pk, sk = keypair
    value = -(2**value_bits) if negative else 2**value_bits
    if 2**value_bits > pk.max_int:
        with pytest.raises(CryptoError):
            pk.encrypt_integers([value])
        return
    enc = EncryptedVector(pk, pk.encrypt_integers([value]), 0, 2**value_bits)
    # Execute / Assert: fits -> exact result; does not fit -> CryptoError, never a wrapped value
    if 2 ** (value_bits + scalar_bits) <= pk.max_int:
        assert (enc * 2**scalar_bits).decrypt_integers(sk) == [value * 2**scalar_bits]
    else:
        with pytest.raises(CryptoError, match="plaintext space"):
            _ = enc * 2**scalar_bits


def test_out_of_range_plaintext_is_refused_not_reduced(keypair: PaillierKeypair) -> None:
    # Prepare: a ciphertext whose plaintext exceeds the claimed bound (a lying peer)
    pk, sk = keypair
    crafted = EncryptedVector(pk, pk.encrypt_integers([2**600]), 0, 5)
    # Execute / Assert: never m mod p (which would reveal p)
    with pytest.raises(CryptoError, match="outside its valid range"):
        crafted.decrypt_integers(sk)


# ---------------------------------------------------------------------------- packing
@PROPERTY
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=FLOATS))
def test_packing_round_trip(keypair: PaillierKeypair, values: np.ndarray) -> None:
    enc = EncryptedVector.encrypt_packed(keypair.public_key, values, precision_bits=24)
    assert len(enc) == values.shape[0]
    np.testing.assert_allclose(enc.decrypt(keypair.private_key), values, rtol=0, atol=2.0**-24)


def test_packed_gradient_hessian_pairs_through_add_and_rmatvec(keypair: PaillierKeypair) -> None:
    # Prepare: (g, h) pairs, one ciphertext per row
    rng = np.random.default_rng(11)
    gh = np.stack([rng.normal(size=50), rng.uniform(0, 0.25, size=50)], axis=1)
    x = rng.normal(size=(50, 3))
    enc = EncryptedVector.encrypt_packed(keypair.private_key, gh, precision_bits=24, headroom_bits=40)
    sk = keypair.private_key
    # Execute
    doubled = enc + enc
    shifted = enc + np.ones((50, 2))
    projected = enc.rmatvec(x, precision_bits=16)
    bins = enc.group_sum(np.arange(50) % 4, 4)
    # Assert
    np.testing.assert_allclose(doubled.decrypt(sk), 2 * gh, atol=1e-6)
    np.testing.assert_allclose(shifted.decrypt(sk), gh + 1, atol=1e-6)
    np.testing.assert_allclose(projected.decrypt(sk), x.T @ gh, atol=1e-3)
    want_bins = np.stack([np.bincount(np.arange(50) % 4, weights=gh[:, k]) for k in range(2)], 1)
    np.testing.assert_allclose(bins.decrypt(sk), want_bins, atol=1e-5)


def test_packing_slot_overflow_raises(keypair: PaillierKeypair) -> None:
    enc = EncryptedVector.encrypt_packed(
        keypair.public_key, np.ones((3, 2)), precision_bits=8, headroom_bits=1
    )
    with pytest.raises(CryptoError, match="slot"):
        _ = enc * 1000
    with pytest.raises(CryptoError, match="needs"):
        EncryptedVector.encrypt_packed(keypair.public_key, np.ones((1, 40)), precision_bits=32)


@PROPERTY
@given(values=vectors(max_size=40))
def test_pack_after_encryption_round_trip(keypair: PaillierKeypair, values: np.ndarray) -> None:
    enc = EncryptedVector.encrypt(keypair.public_key, values)
    packed = enc.pack()
    assert len(packed) <= len(enc)
    np.testing.assert_allclose(packed.decrypt(keypair.private_key), values, rtol=0, atol=EPS)


def test_pack_compresses_sums_of_histogram_bins(keypair: PaillierKeypair) -> None:
    # Prepare: 64 bin sums of bounded values pack several per ciphertext
    values = np.linspace(-1, 1, 640)
    enc = EncryptedVector.encrypt(keypair.public_key, values, precision_bits=16)
    bins = enc.group_sum(np.arange(640) % 64, 64)
    # Execute
    packed = bins.pack()
    # Assert
    assert len(packed) < 64 / 5
    np.testing.assert_allclose(
        packed.decrypt(keypair.private_key), np.bincount(np.arange(640) % 64, weights=values), atol=1e-3
    )
    with pytest.raises(CryptoError, match="packed after encryption"):
        packed.sum()
