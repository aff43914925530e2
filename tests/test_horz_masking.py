"""What the arbiter of HorzLR receives: masked words that look uniform, whose sum is exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernel.computing import ComputingSession, local_session
from kernel.security.secure_aggregation import decode_sum, encode_fixed
from kernel.tracker import load_model
from tests.test_horz_kit import HorizontalJob, uniformity_p_values

FEATURES = 12
PRECISION = 24
MASKED_SUM = "HorzLRTransferVariable.masked_sum"
# A masked word set fails these only with probability about 1e-4; plain fixed-point words
# (small magnitudes, so mostly 0x0 or 0xF nibbles) fail them by many orders of magnitude.
UNIFORM_P = 1e-4
PLAIN_P = 1e-12


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def dyadic_rows(rows: int, seed: int) -> pd.DataFrame:
    """Features that are multiples of 1/8, so every float sum of them is exact in any order."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-80, 81, size=(rows, FEATURES)) / 8.0
    logits = x[:, :3] @ np.array([0.8, -0.5, 0.3]) + 0.2
    y = (rng.uniform(size=rows) < 1.0 / (1.0 + np.exp(-logits))).astype(int)
    frame = pd.DataFrame({"id": [f"s{seed}_{i}" for i in range(rows)], "y": y})
    for c in range(FEATURES):
        frame[f"f{c}"] = x[:, c]
    return frame


def test_the_arbiter_receives_uniform_looking_words_that_sum_exactly(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: two members with 150 and 250 rows; the hub records every message.
    frames = [dyadic_rows(150, 1), dyadic_rows(250, 2)]
    job = HorizontalJob(tmp_path, data_members=2)
    job.upload("train", frames)
    promoter, provider = (job.party(m) for m in job.data)

    # Execute
    job.run("horz_lr_0", "HorzLR", computing, {"data": {"train_data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, params={"max_iter": 30, "early_stop": "none"},
            data_args=("train",))

    # Assert: in the first masked round each member sends (rows, column sums); the arbiter
    # gets words unrelated to them, whose sum modulo 2**64 is exactly the plain sum.
    received = job.hub.received(MASKED_SUM, "arbiter")
    plain = [
        encode_fixed(np.concatenate([[len(f)], f[[f"f{c}" for c in range(FEATURES)]].to_numpy().sum(axis=0)]),
                     PRECISION, 2)
        for f in frames
    ]
    seen = received[("fit.scale-mean", promoter)]
    assert seen.dtype == np.uint64 and seen.shape == plain[0].shape
    assert np.count_nonzero(seen == plain[0]) == 0
    assert np.max(np.abs(decode_sum(seen, PRECISION) - decode_sum(plain[0], PRECISION))) > 1e6
    np.testing.assert_array_equal(seen + received[("fit.scale-mean", provider)], plain[0] + plain[1])

    # Every word the promoter sent, over all 32 rounds, looks uniform; its plain vector does not.
    words = np.concatenate([vector for (_, sender), vector in received.items() if sender == promoter])
    assert len(words) == (FEATURES + 1) + FEATURES + 30 * (FEATURES + 3)
    assert min(uniformity_p_values(words)) > UNIFORM_P
    assert uniformity_p_values(plain[0])[1] < PLAIN_P

    # The arbiter's sums were exact: the model's means are the pooled means.
    model = load_model(job.arbiter.root / "models", job.job.job_id, "horz_lr_0", "arbiter", job.arbiter.member_id)
    pooled = pd.concat(frames)[[f"f{c}" for c in range(FEATURES)]].to_numpy()
    np.testing.assert_allclose(model["mean"], pooled.mean(axis=0), rtol=1e-15, atol=0)
