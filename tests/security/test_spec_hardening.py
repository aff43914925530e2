"""Hostile job specs and ids are refused with INVALID_ARGUMENT naming the problem; nothing is stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.weft.v1 import scheduler_pb2
from tests.security.client_kit import MEMBER, GuardedScheduler, guarded_scheduler


def spec(**changes: Any) -> dict[str, Any]:
    """A spec that passes every check (DataIO then Distribution at one member), with `changes`."""
    base: dict[str, Any] = {
        "name": "hardening",
        "initiator": {"member_id": MEMBER, "role": "promoter"},
        "role": {"promoter": [MEMBER], "arbiter": [MEMBER]},
        "job_args": {MEMBER: {"data": {"train": {"namespace": "test", "name": "rows"}}}},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}},
                         "output": {"data": ["train"]}, "params": {"with_label": True, "label_name": "y"}},
            "distribution_0": {"module": "Distribution", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"]}, "params": {"bins": 8}},
        },
    }
    base.update(changes)
    return base


def with_bins(value: Any) -> str:
    raw = spec()
    raw["components"]["distribution_0"]["params"]["bins"] = value
    return json.dumps(raw)


def nested(depth: int) -> str:
    raw = spec()
    raw["job_parameters"] = {"deep": json.loads("[" * depth + "]" * depth)}
    return json.dumps(raw)


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    async with guarded_scheduler(tmp_path) as scheduler:
        data = b"id,y,x\nu1,1,0.5\nu2,0,1.5\n"
        header = scheduler_pb2.UploadDataSetHeader(
            namespace="test", name="rows", format=scheduler_pb2.DATA_FORMAT_CSV, id_column="id", label_column="y",
            total_size=len(data), sha256=hashlib.sha256(data).digest())
        await scheduler.call("UploadDataSet", iter([scheduler_pb2.UploadDataSetRequest(header=header),
                                                    scheduler_pb2.UploadDataSetRequest(chunk=data)]),
                             scheduler.admin_token)
        yield scheduler


CASES = [
    pytest.param("[" * 100_000 + "]" * 100_000, "spec_json: nested too deeply (at most 32 levels)", id="deep-json"),
    pytest.param(nested(40), "nested too deeply (at most 32 levels)", id="nested-40"),
    pytest.param('{"name": "x", "n": ' + "9" * 5000 + "}", "spec_json: a number is out of range", id="huge-literal"),
    pytest.param(with_bins(2**70), "spec.components.distribution_0.params.bins: integer out of range", id="int-2^70"),
    pytest.param(with_bins("8"), "DistributionParam.bins: Value error, expected an integer, got a string",
                 id="bins-as-string"),
    pytest.param(with_bins(True), "DistributionParam.bins: Value error, expected an integer, got a boolean",
                 id="bins-as-true"),
    pytest.param('{"name": NaN}', "spec_json: NaN is not a JSON number", id="nan"),
    pytest.param(json.dumps(spec(name="report\u202etxt.exe")), "name: character U+202E RIGHT-TO-LEFT OVERRIDE",
                 id="bidi-name"),
    pytest.param(json.dumps(spec(name="ok\nFORGED LOG LINE")), "name: character U+000A", id="newline-name"),
]


@pytest.mark.parametrize(("spec_json", "message"), CASES)
async def test_a_hostile_spec_is_invalid_argument_and_stores_nothing(
    member: GuardedScheduler, spec_json: str, message: str
) -> None:
    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await member.call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=spec_json), member.admin_token)

    # Assert
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
    assert await member.job_count() == 0


async def test_the_valid_spec_of_these_cases_is_accepted(member: GuardedScheduler) -> None:
    # Execute: the same spec with a plain integer passes every check (so the cases above fail on their change).
    reply = await member.call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=with_bins(8)), member.admin_token)

    # Assert
    assert reply.job_id
    assert await member.job_count() == 1


@pytest.mark.parametrize("job_id", ["../../etc", "a/b", "job\u202e1", "job\n1", ""])
async def test_a_job_id_that_is_not_a_plain_name_is_invalid_argument(member: GuardedScheduler, job_id: str) -> None:
    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await member.call("GetJob", scheduler_pb2.GetJobRequest(job_id=job_id), member.admin_token)

    # Assert
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("job_id ")


@pytest.mark.parametrize("name", ["rows\n", "ro\u202ews", "../rows"])
async def test_a_data_set_name_that_is_not_a_plain_name_is_refused(member: GuardedScheduler, name: str) -> None:
    # Prepare
    data = b"id,x\nu1,1\n"
    header = scheduler_pb2.UploadDataSetHeader(namespace="test", name=name, format=scheduler_pb2.DATA_FORMAT_CSV,
                                               id_column="id", total_size=len(data))

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await member.call("UploadDataSet", iter([scheduler_pb2.UploadDataSetRequest(header=header),
                                                 scheduler_pb2.UploadDataSetRequest(chunk=data)]), member.admin_token)

    # Assert
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("header.name ")
    listed = await member.call("ListDataSets", scheduler_pb2.ListDataSetsRequest(), member.admin_token)
    assert [d.ref.name for d in listed.data_sets] == ["rows"]
