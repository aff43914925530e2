"""Large multi-exponentiations split over worker processes give the single-thread result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kernel.security.constants import MULTIEXP_PROCESS_MIN_TERMS
from kernel.security.paillier import EncryptedVector, WeakKeyWarning, generate_keypair


@pytest.mark.slow
def test_rmatvec_over_processes_matches_one_thread_and_numpy() -> None:
    # Prepare: a product large enough to take the process path, with negative coefficients.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        public_key, private_key = generate_keypair(1024)
    rng = np.random.default_rng(11)
    rows, columns = 2500, MULTIEXP_PROCESS_MIN_TERMS // 2500
    residual = rng.normal(size=rows)
    features = rng.normal(size=(rows, columns))
    encrypted = EncryptedVector.encrypt(public_key, residual, precision_bits=24)

    # Execute
    split = encrypted.rmatvec(features, precision_bits=8, workers=2).decrypt(private_key)
    single = encrypted.rmatvec(features, precision_bits=8, workers=1).decrypt(private_key)

    # Assert
    np.testing.assert_array_equal(split, single)
    np.testing.assert_allclose(split, features.T @ residual, atol=0.05 * np.sqrt(rows))
