"""work_mode STANDALONE: runs where the members share a spool directory, refused at submit where they do not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.weft.v1 import scheduler_pb2
from tests.test_scheduler_support import PROMOTER, PROVIDER, Member, start_members, stop_members

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "services" / "client" / "examples"


def intersection_spec(promoter: str, provider: str, job_parameters: dict[str, Any]) -> dict[str, Any]:
    """DataIO then Intersection at two members; `job_parameters` as given (no work_mode: the default)."""
    return {
        "name": "work-mode",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": []},
        "job_parameters": job_parameters,
        "job_args": {promoter: {"data": {"train": {"namespace": "demo", "name": "rows"}}},
                     provider: {"data": {"train": {"namespace": "demo", "name": "rows"}}}},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}},
                         "output": {"data": ["train"], "model": ["model"]},
                         "params": {"with_label": True, "label_name": "y"},
                         "role_params": {"provider": {"with_label": False}}},
            "intersection_0": {"module": "Intersection", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"]}},
        },
    }


@pytest.fixture()
async def apart(tmp_path: Path) -> AsyncIterator[dict[str, Member]]:
    """Two members on this machine, each with a spool directory of its own."""
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER)}
    members = await start_members(tmp_path, urls, shared_spool=False)
    try:
        yield members
    finally:
        await stop_members(members)


async def test_a_standalone_job_between_members_with_their_own_spools_is_refused_at_submit(
    apart: dict[str, Member],
) -> None:
    # Prepare: the work mode left to its default (STANDALONE)
    spec = intersection_spec(PROMOTER, PROVIDER, {"backend": "LOCAL"})

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await apart[PROMOTER].client.submit(spec)

    # Assert: refused before any job exists, naming the member apart and the work mode to use
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    message = str(refused.value.details())
    assert "job_parameters.work_mode" in message and PROVIDER in message and '"work_mode": "CLUSTER"' in message
    listed = await apart[PROMOTER].client.stub.ListJobs(scheduler_pb2.ListJobsRequest())
    assert not listed.jobs


def weft(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", str(data_dir), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\nstdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
    return result.stdout


def test_a_job_with_the_default_work_mode_runs_on_a_weft_standalone_federation(tmp_path: Path) -> None:
    # Prepare: `weft standalone up` (two members, SQLite); each uploads its rows
    data_dir = tmp_path / "federation"
    try:
        ok(weft(data_dir, "standalone", "up", "--members", "2"))
        members = json.loads((data_dir / "standalone.json").read_text())["members"]
        promoter, provider = (m["member_id"] for m in members)
        ok(weft(data_dir, "--member", "member-1", "upload", str(EXAMPLES / "breast_promoter_test.csv"),
                "--namespace", "demo", "--name", "rows", "--id-column", "id", "--label-column", "y"))
        ok(weft(data_dir, "--member", "member-2", "upload", str(EXAMPLES / "breast_provider_test.csv"),
                "--namespace", "demo", "--name", "rows", "--id-column", "id"))
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps(intersection_spec(promoter, provider, {"backend": "LOCAL"})))

        # Execute
        output = ok(weft(data_dir, "submit", str(job_file), "--watch", timeout=600))

        # Assert: the job id is printed labelled, and the job succeeds
        job_id = output.split("job id: ", 1)[1].split()[0]
        assert f"job {job_id}: success" in output
    finally:
        weft(data_dir, "standalone", "down")
