"""`weft standalone up --backend spark`: tasks go through spark-submit and the SPARK backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_federation import EXAMPLES, ok, weft


@pytest.mark.spark
def test_spark_backend_federation_runs_a_job(tmp_path: Path) -> None:
    # Prepare
    data_dir = tmp_path / "federation"
    try:
        ok(weft(data_dir, "standalone", "up", "--backend", "spark"))
        members = json.loads((data_dir / "standalone.json").read_text())["members"]
        promoter, provider = members[0]["member_id"], members[1]["member_id"]
        config = (Path(members[0]["config_path"])).read_text()
        assert "mode: spark" in config
        ok(weft(data_dir, "--member", "member-1", "upload", str(EXAMPLES / "breast_promoter_test.csv"),
                "--namespace", "demo", "--name", "a", "--id-column", "id", "--label-column", "y"))
        ok(weft(data_dir, "--member", "member-2", "upload", str(EXAMPLES / "breast_provider_test.csv"),
                "--namespace", "demo", "--name", "b", "--id-column", "id"))
        job = {
            "name": "spark-distribution", "initiator": {"member_id": promoter, "role": "promoter"},
            "role": {"promoter": [promoter], "provider": [provider]},
            "job_parameters": {"backend": "SPARK", "work_mode": "CLUSTER"},
            "job_args": {promoter: {"data": {"d": {"namespace": "demo", "name": "a"}}},
                         provider: {"data": {"d": {"namespace": "demo", "name": "b"}}}},
            "components": {"distribution_0": {"module": "Distribution", "input": {"data": {"data": ["args.d"]}},
                                              "output": {"data": ["out"]}}},
        }
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps(job))

        # Execute
        output = ok(weft(data_dir, "submit", str(job_file), "--watch", timeout=600))

        # Assert
        job_id = output.split("job id: ", 1)[1].split()[0]
        assert f"job {job_id}: success" in output
        assert "distribution/local" in ok(weft(data_dir, "--member", "member-2", "result", job_id))
    finally:
        weft(data_dir, "standalone", "down")
