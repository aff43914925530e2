"""Online serving on a local two-member federation: scores equal the batch job's, publish/rollback/unpublish, faults, auth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from protos.weft.v1 import serving_pb2, serving_pb2_grpc
from services.client import standalone
from services.client.sdk import (
    DeadlineExceededError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from tests.serving_kit import NAMESPACE, Trained, train

TOLERANCE = 1e-9
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """The kit's job, with VertLR published as `lr` and VertSecureBoost as `sbt`, providers reading the test rows."""
    kit = train(tmp_path_factory.mktemp("serving"))
    try:
        with kit.serving(kit.promoter) as promoter:
            promoter.publish(kit.job_id, "vert_lr_0", "lr")
            promoter.publish(kit.job_id, "vert_secureboost_0", "sbt")
        with kit.serving(kit.provider) as provider:
            for name in ("lr", "sbt"):
                provider.set_feature_table(name, f"{NAMESPACE}/provider_test")
        yield kit
    finally:
        standalone.stop(kit.state)


@pytest.mark.parametrize(("model", "component"), [("lr", "vert_lr_0"), ("sbt", "vert_secureboost_0")])
def test_online_scores_equal_the_batch_jobs_through_fill_missing_and_scale(
        trained: Trained, model: str, component: str) -> None:
    # Prepare
    batch = trained.batch_scores(component)
    rows = trained.test_rows()

    # Execute
    with trained.serving(trained.promoter) as client:
        published = client.list_models(model)
        single = {row_id: client.predict(model, row_id, features) for row_id, features in rows}
        streamed = client.batch_predict(model, rows)

    # Assert
    assert published[0].chain == ["dataio_0", "fill_missing_0", "scale_0"]
    assert any(not features or len(features) < 3 for _, features in rows)  # missing values were filled online
    assert sorted(single) == sorted(batch) and len(rows) == len(batch)
    for row_id, answer in single.items():
        assert abs(answer.score - batch[row_id]) <= TOLERANCE, row_id
        assert answer.label == int(answer.score >= 0.5)
    assert [a.id for a in streamed] == [row_id for row_id, _ in rows]
    assert all(abs(a.score - batch[a.id]) <= TOLERANCE for a in streamed)
    audit = Path(trained.promoter.config_path).parent / "serving" / "audit.log"
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert any(e["method"] == "Predict" and e["model"] == model and e["version"] == 1 and e["outcome"] == "OK"
               for e in lines)
    provider_audit = Path(trained.provider.config_path).parent / "serving" / "audit.log"
    assert f"member {trained.promoter.member_id}" in provider_audit.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def card_job(trained: Trained) -> str:
    """The scorecard job (OneHot ... WOE -> VertLR -> ScoreCard), its VertLR published as `card-lr`
    and its ScoreCard as `card`, the provider reading its test rows."""
    job_id = trained.train_card()
    with trained.serving(trained.promoter) as promoter:
        promoter.publish(job_id, "vert_lr_0", "card-lr")
        promoter.publish(job_id, "score_card_0", "card")
    with trained.serving(trained.provider) as provider:
        for name in ("card-lr", "card"):
            provider.set_feature_table(name, f"{NAMESPACE}/card_provider_test")
    return job_id


def test_online_scores_equal_the_batch_jobs_through_one_hot_binning_and_woe(trained: Trained, card_job: str) -> None:
    # Prepare
    batch = trained.batch_scores("vert_lr_0", card_job)
    rows = trained.test_rows("card_promoter_test")

    # Execute
    with trained.serving(trained.promoter) as client:
        published = client.list_models("card-lr")[0]
        answers = client.batch_predict("card-lr", rows)
        single = client.predict("card-lr", *rows[0])
    with trained.serving(trained.provider) as client:
        provider_part = client.list_models("card-lr")[0]

    # Assert
    chain = ["onehot_0", "dataio_0", "fill_missing_0", "scale_0", "binning_0", "woe_0"]
    assert published.chain == chain and provider_part.chain == chain
    assert any("c" not in features for _, features in rows)  # a missing category: its own indicator
    assert {features.get("c") for _, features in rows} >= {0.0, 1.0, 2.0, 3.0, 4.0}  # some go to c_other
    assert len(answers) == len(batch) == len(rows)
    for answer in answers:
        assert abs(answer.score - batch[answer.id]) <= TOLERANCE, answer.id
        assert not answer.HasField("card_score") and not answer.points
    assert abs(single.score - batch[rows[0][0]]) <= TOLERANCE


def test_a_scorecard_answers_the_promoters_points_per_feature_that_add_up_to_the_batch_score(
        trained: Trained, card_job: str) -> None:
    # Prepare
    batch = trained.output_table(card_job, "score_card_1.test", ["id", "score", "predict_score"])
    scores = {str(i): (s, p) for i, s, p in zip(batch["id"], batch["score"], batch["predict_score"], strict=True)}
    rows = trained.test_rows("card_promoter_test")
    row_id, features = rows[2]
    flags = [arg for name, value in features.items() for arg in ("--feature", f"{name}={value}")]

    # Execute
    with trained.serving(trained.promoter) as client:
        answers = client.batch_predict("card", rows)
    printed = subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", trained.state.data_dir,
                              "model", "predict", "card", row_id, *flags],
                             capture_output=True, text=True, timeout=120, cwd=REPO)

    # Assert
    assert len(answers) == len(scores) == len(rows)
    provider = trained.provider.member_id
    for answer in answers:
        score, probability = scores[answer.id]
        assert abs(answer.card_score - score) <= TOLERANCE, answer.id
        assert abs(answer.base_points + sum(answer.points.values()) + answer.provider_points[provider]
                   - score) <= TOLERANCE, answer.id
        assert abs(answer.score - probability) <= TOLERANCE, answer.id
        # The promoter's own features only (its raw columns and its indicators), never a provider's.
        assert set(answer.points) and all(name == "c" or name.startswith(("a", "c_")) for name in answer.points)
        assert list(answer.provider_points) == [provider]
    assert len({tuple(a.points.values()) for a in answers}) > 1
    shown = json.loads(printed.stdout)
    assert printed.returncode == 0, printed.stderr
    assert abs(shown["card_score"] - scores[row_id][0]) <= TOLERANCE
    assert abs(shown["base_points"] + sum(shown["points"].values()) + sum(shown["provider_points"].values())
               - scores[row_id][0]) <= TOLERANCE


def test_a_horizontal_model_is_scored_by_the_promoter_alone(trained: Trained) -> None:
    # Prepare
    batch = trained.batch_scores("horz_lr_0", trained.horizontal_job_id)
    rows = trained.test_rows()
    with trained.serving(trained.promoter) as client:
        client.publish(trained.horizontal_job_id, "horz_lr_0", "horz")

    # Execute
    with trained.serving(trained.promoter) as client:
        answers = client.batch_predict("horz", rows)
    with trained.serving(trained.provider) as client:
        provider_part = client.list_models("horz")[0]

    # Assert
    assert all(abs(a.score - batch[a.id]) <= TOLERANCE for a in answers) and len(answers) == len(batch)
    assert provider_part.role == "provider" and provider_part.chain == ["dataio_0"]
    provider_audit = Path(trained.provider.config_path).parent / "serving" / "audit.log"
    assert not any(json.loads(line)["method"] == "PartialPredict" and json.loads(line)["model"] == "horz"
                   for line in provider_audit.read_text(encoding="utf-8").splitlines())


def test_publish_rollback_and_unpublish_reach_every_member(trained: Trained) -> None:
    # Prepare
    promoter, provider = trained.serving(trained.promoter), trained.serving(trained.provider)

    # Execute
    first = promoter.publish(trained.job_id, "vert_lr_0", "lr-versions")
    second = promoter.publish(trained.job_id, "vert_lr_0", "lr-versions", deadline_ms=250)
    before = {m.version: m.current for m in provider.list_models("lr-versions")}
    rolled = promoter.rollback("lr-versions")
    after = {m.version: m.current for m in provider.list_models("lr-versions")}
    removed = promoter.unpublish("lr-versions", version=2)
    remaining = [m.version for m in provider.list_models("lr-versions")]
    promoter.unpublish("lr-versions")

    # Assert
    assert (first.version, second.version) == (1, 2)
    assert before == {1: False, 2: True}
    assert rolled.version == 1 and after == {1: True, 2: False}
    assert removed == 1 and remaining == [1]
    for client in (promoter, provider):
        with pytest.raises(NotFoundError, match="lr-versions"):
            client.list_models("lr-versions")
    with pytest.raises(NotFoundError, match="not published"):
        promoter.predict("lr-versions", "1000", {})
    promoter.close()
    provider.close()


def test_an_id_missing_at_the_provider_is_a_clear_error_not_a_zero(trained: Trained) -> None:
    with trained.serving(trained.promoter) as client, pytest.raises(NotFoundError) as error:
        client.predict("lr", "999999", {"a0": 0.1, "a1": 10.0, "a2": -1.0})
    assert trained.provider.member_id in str(error.value) and "999999" in str(error.value)


def test_unauthenticated_and_unauthorized_calls_are_refused(trained: Trained) -> None:
    # Prepare
    with trained.scheduler(trained.promoter) as scheduler:
        viewer = scheduler.add_user("serving-viewer", "viewer").token.token
    row_id, features = trained.test_rows()[0]

    # Execute / Assert: no token, another member's token, a viewer publishing
    with trained.serving(trained.promoter, token="") as anonymous:
        anonymous._metadata = ()
        with pytest.raises(UnauthenticatedError):
            anonymous.predict("lr", row_id, features)
    with trained.serving(trained.promoter, token=trained.provider.admin_token()) as stranger, \
            pytest.raises(UnauthenticatedError):
        stranger.predict("lr", row_id, features)
    with trained.serving(trained.promoter, token=viewer) as reader:
        assert reader.predict("lr", row_id, features).id == row_id
        with pytest.raises(PermissionDeniedError, match="PublishModel"):
            reader.publish(trained.job_id, "vert_lr_0", "not-allowed")
    # The provider's peer API: plain metadata naming the promoter proves nothing.
    with grpc.insecure_channel(trained.provider.serving_endpoint) as channel:
        stub = serving_pb2_grpc.ServingPeerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.PartialPredict(serving_pb2.PartialPredictRequest(model_name="lr", model_version=1,
                                                                  job_id=trained.job_id, ids=[row_id]),
                                metadata=(("weft-source-member-id", trained.promoter.member_id),), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_stopped_provider_gives_the_deadline_error_naming_it(trained: Trained) -> None:
    # Prepare
    with trained.serving(trained.promoter) as client:
        client.publish(trained.job_id, "vert_lr_0", "lr-deadline", deadline_ms=300)
        client.publish(trained.job_id, "vert_lr_0", "lr-fallback", deadline_ms=300, fallback_score=0.25)
    with trained.serving(trained.provider) as provider:
        for name in ("lr-deadline", "lr-fallback"):
            provider.set_feature_table(name, f"{NAMESPACE}/provider_test")
    row_id, features = trained.test_rows()[0]
    pid = trained.provider.pids["serving"]

    # Execute: the provider's serving process hangs (SIGSTOP), then is gone
    os.killpg(pid, signal.SIGSTOP)
    try:
        with trained.serving(trained.promoter) as client:
            with pytest.raises(DeadlineExceededError) as slow:
                client.predict("lr-deadline", row_id, features)
            fallback = client.predict("lr-fallback", row_id, features)
    finally:
        os.killpg(pid, signal.SIGCONT)
    os.killpg(pid, signal.SIGTERM)
    os.waitpid(pid, 0)  # this process started the federation: reap its child
    try:
        with trained.serving(trained.promoter) as client, \
                pytest.raises((UnavailableError, DeadlineExceededError)) as down:
            client.predict("lr-deadline", row_id, features)
    finally:
        standalone.start(trained.state, log=lambda *_: None)

    # Assert
    assert f"provider {trained.provider.member_id}" in str(slow.value) and "300 ms" in str(slow.value)
    assert (fallback.fallback, fallback.score, fallback.label) == (True, 0.25, 0)
    assert trained.provider.member_id in fallback.fallback_reason
    assert f"provider {trained.provider.member_id}" in str(down.value)
    with trained.serving(trained.promoter) as client:  # the restarted provider serves again
        assert client.predict("lr", row_id, features).id == row_id


def test_weft_model_commands_list_and_predict_at_the_local_federation(trained: Trained) -> None:
    # Prepare
    row_id, features = trained.test_rows()[1]
    base = [sys.executable, "-m", "services.client.cli", "--data-dir", trained.state.data_dir, "model"]
    flags = [arg for name, value in features.items() for arg in ("--feature", f"{name}={value}")]

    # Execute
    listed = subprocess.run([*base, "list", "lr"], capture_output=True, text=True, timeout=120, cwd=REPO)
    predicted = subprocess.run([*base, "predict", "lr", row_id, *flags], capture_output=True, text=True,
                               timeout=120, cwd=REPO)
    refused = subprocess.run([*base, "predict", "no-such-model", row_id], capture_output=True, text=True,
                             timeout=120, cwd=REPO)

    # Assert
    assert listed.returncode == 0 and "VertLR" in listed.stdout and "fill_missing_0" in listed.stdout, listed.stderr
    answer = json.loads(predicted.stdout)
    assert answer["id"] == row_id and abs(answer["score"] - trained.batch_scores("vert_lr_0")[row_id]) <= TOLERANCE
    assert refused.returncode == 1 and "no-such-model" in refused.stderr
