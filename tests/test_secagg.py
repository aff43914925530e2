"""Secure aggregation: masks cancel exactly, single vectors stay hidden, dropouts fail cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernel.errors import CryptoError, FederationError
from kernel.security.secure_aggregation import MaskingClient, SecureAggregator, encode_fixed

MEMBERS = ["3f0a", "9c11", "b7e2", "e5d4"]
PRECISION = 24


def make_group(members: list[str] = MEMBERS) -> list[MaskingClient]:
    clients = [MaskingClient(m, precision_bits=PRECISION) for m in members]
    keys = {c.member_id: c.public_key() for c in clients}
    for client in clients:
        client.set_peer_keys(keys)
    return clients


@settings(max_examples=20, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.just(len(MEMBERS)), st.integers(1, 50)),
        elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
    )
)
def test_masks_cancel_in_the_sum(values: np.ndarray) -> None:
    # Prepare
    clients = make_group()
    aggregator = SecureAggregator(MEMBERS, precision_bits=PRECISION)
    # Execute
    masked = {c.member_id: c.mask(values[k], round_id=1) for k, c in enumerate(clients)}
    total = aggregator.unmask_sum(masked, round_id=1)
    # Assert: only the fixed-point rounding of each member remains
    np.testing.assert_allclose(total, values.sum(axis=0), rtol=0, atol=len(MEMBERS) * 2.0**-PRECISION)


def test_sum_is_exact_in_fixed_point() -> None:
    clients = make_group()
    values = np.arange(4 * 6, dtype=np.float64).reshape(4, 6) - 11.5
    masked = {c.member_id: c.mask(values[k], "r0") for k, c in enumerate(clients)}
    total = SecureAggregator(MEMBERS, precision_bits=PRECISION).sum_masked(masked)
    expected = sum(encode_fixed(v, PRECISION, 4) for v in values)
    np.testing.assert_array_equal(total, expected)


def test_masked_vector_hides_the_values() -> None:
    # Prepare: two members mask the same zeros
    clients = make_group()
    zeros = np.zeros(64)
    # Execute
    masked = [c.mask(zeros, "r") for c in clients]
    # Assert: masks look random and differ per member and per round
    assert np.count_nonzero(masked[0]) > 60
    assert not np.array_equal(masked[0], masked[1])
    assert not np.array_equal(masked[0], clients[0].mask(zeros, "r2"))


def test_dropped_member_fails_the_round_by_name() -> None:
    clients = make_group()
    masked = {c.member_id: c.mask(np.ones(3), 7) for c in clients if c.member_id != "b7e2"}
    with pytest.raises(FederationError, match=r"round 7.*b7e2"):
        SecureAggregator(MEMBERS, precision_bits=PRECISION).unmask_sum(masked, round_id=7)


def test_round_ids_cannot_be_reused() -> None:
    client = make_group()[0]
    client.mask(np.ones(2), "round-1")
    with pytest.raises(CryptoError, match="already masked"):
        client.mask(np.ones(2), "round-1")


def test_bad_inputs_are_refused() -> None:
    clients = make_group()
    aggregator = SecureAggregator(MEMBERS, precision_bits=PRECISION)
    with pytest.raises(CryptoError, match="32 raw bytes"):
        clients[0].set_peer_keys({"x": b"short"})
    with pytest.raises(CryptoError, match="exceeds 2"):
        clients[0].mask(np.array([2.0**40]), "big")
    with pytest.raises(CryptoError, match="NaN"):
        clients[0].mask(np.array([np.nan]), "nan")
    masked = {c.member_id: c.mask(np.ones(3), "s") for c in clients}
    masked["9c11"] = masked["9c11"][:2]
    with pytest.raises(CryptoError, match="length"):
        aggregator.sum_masked(masked)
    masked["9c11"] = np.ones(3)
    with pytest.raises(CryptoError, match="uint64"):
        aggregator.sum_masked(masked)
    with pytest.raises(CryptoError, match="outside the group"):
        aggregator.sum_masked({**masked, "zzz": np.ones(3, dtype=np.uint64)})
