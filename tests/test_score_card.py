"""ScoreCard against toad's scorecard arithmetic with the same coefficients, on German credit;
the providers' points streamed in many messages give the same scores as in one."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import toad

from kernel.components.score_card import score_card
from kernel.computing import ComputingSession, local_session
from kernel.inprocess_run import PartyFailed
from kernel.security.paillier import WeakKeyWarning
from kernel.tracker import load_model
from tests.credit_kit import german_members, german_numeric
from tests.test_vert_kit import VerticalJob

MODEL_OUT = {"data": ["train"], "model": ["model"]}
SCALE = {"base_score": 600.0, "base_odds": 50.0, "pdo": 20.0}


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def model_of(job: VerticalJob, index: int, component: str) -> dict[str, Any]:
    member = job.members[index]
    role = "promoter" if index == 0 else "provider"
    return load_model(member.root / "models", job.job.job_id, component, role, member.member_id)


def test_points_and_scores_match_toad(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: binning, WOE and a short VertLR on German credit split between two members.
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", german_members(german_numeric()))
    job.run("binning_0", "VertFeatureBinning", computing, {"data": {"data": ["args.train"]}}, MODEL_OUT,
            params={"key_bits": 1024, "bin_num": 5}, data_args=("train",))
    job.run("woe_0", "WOE", computing, {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]},
            MODEL_OUT)
    job.run("vert_lr_0", "VertLR", computing, {"data": {"train_data": ["woe_0.train"]}}, MODEL_OUT,
            params={"key_bits": 1024, "max_iter": 8, "random_seed": 1, "learning_rate": 0.1, "decay": 0.0, "batch_size": -1})
    card_inputs = {"data": {"data": ["woe_0.train"]}, "model": ["vert_lr_0.model", "woe_0.model"]}

    # Execute: unrounded and rounded cards.
    job.run("card_exact", "ScoreCard", computing, card_inputs, MODEL_OUT, params={**SCALE, "points_decimals": None})
    job.run("card_0", "ScoreCard", computing, card_inputs, MODEL_OUT, params=SCALE)

    # Assert: toad, given the same coefficients and intercept on the pooled WOE data, gives the
    # same scores; each bin's points are toad's less its evenly spread base.
    models = [model_of(job, 0, "vert_lr_0"), model_of(job, 1, "vert_lr_0")]
    names = models[0]["features"] + models[1]["features"]
    coefficients = np.concatenate([np.asarray(m["weights"]) / np.asarray(m["scale"]) for m in models])
    means = np.concatenate([np.asarray(m["mean"]) for m in models])
    intercept = models[0]["intercept"] - float(coefficients @ means)
    woe = pd.merge(*[job.output(m, computing, "woe_0", "train") for m in job.members], on="id")
    card = toad.ScoreCard(**{k: v for k, v in SCALE.items()}, rate=2)
    card.model.coef_, card.model.intercept_ = coefficients[None, :], np.array([intercept])
    expected = card.woe_to_score(woe[names]).sum(axis=1)
    exact = job.output(job.promoter, computing, "card_exact", "train")
    np.testing.assert_allclose(exact["score"], expected, rtol=1e-9)
    rounded = job.output(job.promoter, computing, "card_0", "train")
    assert np.abs(rounded["score"] - expected).max() <= 0.5 * (len(names) + 2)
    assert rounded["score"].eq(rounded["score"].round()).all()
    spread = (card.offset - card.factor * intercept) / np.count_nonzero(coefficients)
    for index, member in enumerate(job.members):
        tables = job.metrics(member, "card_exact")["points"]["features"]
        assert sorted(tables) == sorted(models[index]["features"])
        for name, table in tables.items():
            j = names.index(name)
            toad_points = card.woe_to_score(np.asarray(table["values"]), weight=coefficients[j]) - spread
            np.testing.assert_allclose(table["points"], toad_points, rtol=1e-9, atol=1e-9)
    # The probability a score stands for is VertLR's own prediction.
    vert_lr = job.output(job.promoter, computing, "vert_lr_0", "train")
    np.testing.assert_allclose(exact["predict_score"], vert_lr["predict_score"], rtol=1e-6)


STREAM_ROWS = 300
CARD_OUT = {"data": ["data"], "model": ["model"]}


@pytest.fixture(scope="module")
def small_lr(tmp_path_factory: pytest.TempPathFactory, computing: ComputingSession) -> VerticalJob:
    """A short VertLR on 300 synthetic rows, two features at each member (no WOE: raw values)."""
    rng = np.random.default_rng(5)
    ids = [f"s{i:04d}" for i in range(STREAM_ROWS)]
    x = rng.normal(size=(STREAM_ROWS, 4))
    y = (x @ np.array([1.0, -0.5, 0.8, 0.3]) + rng.normal(size=STREAM_ROWS) > 0).astype(np.int64)
    job = VerticalJob(tmp_path_factory.mktemp("score_card_stream"), providers=1)
    job.upload("data", [pd.DataFrame({"id": ids, "y": y, "a": x[:, 0], "b": x[:, 1]}),
                        pd.DataFrame({"id": ids, "c": x[:, 2], "d": x[:, 3]})])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        job.run("vert_lr_0", "VertLR", computing, {"data": {"train_data": ["args.data"]}}, MODEL_OUT,
                data_args=("data",),
                params={"key_bits": 1024, "max_iter": 3, "random_seed": 1, "learning_rate": 0.1, "batch_size": -1})
    return job


def run_card(job: VerticalJob, name: str, computing: ComputingSession) -> pd.DataFrame:
    job.run(name, "ScoreCard", computing, {"data": {"data": ["args.data"]}, "model": ["vert_lr_0.model"]},
            CARD_OUT, params={**SCALE, "points_decimals": None}, data_args=("data",))
    return job.output(job.promoter, computing, name, "data")


def test_points_streamed_in_many_messages_score_as_in_one(
    small_lr: VerticalJob, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: one message holds every row; then messages of 16 rows, 19 or more of them.
    whole = run_card(small_lr, "card_whole", computing)
    monkeypatch.setattr(score_card, "POINTS_STREAM_ROWS", 16)

    # Execute
    streamed = run_card(small_lr, "card_streamed", computing)

    # Assert: the same rows and scores, to the bit, and the probabilities VertLR predicts.
    assert len(streamed) == STREAM_ROWS
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    vert_lr = small_lr.output(small_lr.promoter, computing, "vert_lr_0", "train")
    np.testing.assert_allclose(streamed["predict_score"], vert_lr["predict_score"], rtol=1e-9)


def test_a_points_message_of_other_columns_stops_the_promoter(
    small_lr: VerticalJob, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a provider whose messages carry a third column.
    points_table = score_card.ScoreCardProvider._points_table

    def with_extra_column(self: score_card.ScoreCardProvider, data: Any) -> Any:
        table = points_table(self, data)
        return table.map_partitions(lambda block: block.append_column("extra", pa.array(np.zeros(block.num_rows))),
                                    schema=table.schema.append(pa.field("extra", pa.float64())))

    monkeypatch.setattr(score_card.ScoreCardProvider, "_points_table", with_extra_column)
    monkeypatch.setattr(score_card, "POINTS_STREAM_ROWS", 64)

    # Execute / Assert
    with pytest.raises(PartyFailed, match="ScoreCard: provider 0's provider_points message 0 must be a table of "
                                          "id and points, got columns id, __weft_points, extra"):
        run_card(small_lr, "card_bad", computing)
