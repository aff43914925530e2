"""The weft command end to end: three members on MariaDB run the seed's Distribution job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "services" / "client" / "examples"
MYSQL = "mysql://root@127.0.0.1:3306"


def weft(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", str(data_dir), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\nstdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    data_dir = tmp_path_factory.mktemp("federation")
    try:
        ok(weft(data_dir, "standalone", "up", "--members", "3", "--arbiter", "--db", MYSQL))
        members = json.loads((data_dir / "standalone.json").read_text())["members"]
        yield data_dir, members
    finally:
        weft(data_dir, "standalone", "down")
        state = data_dir / "standalone.json"
        if state.exists():
            urls = [Path(m["config_path"]).read_text() for m in json.loads(state.read_text())["members"]]
            connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
            with connection.cursor() as cursor:
                for text in urls:
                    name = text.split("database_url: ", 1)[1].split("\n", 1)[0].rsplit("/", 1)[1]
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            connection.close()


@pytest.mark.mysql
def test_standalone_federation_runs_the_seed_distribution_job(
    federation: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    # Prepare: rows of the same columns at the promoter and the provider; the third member arbitrates.
    data_dir, members = federation
    promoter, provider, arbiter = (m["member_id"] for m in members)
    status = ok(weft(data_dir, "standalone", "status"))
    assert len(re.findall(r"\bserving\s*│?\s*$", status, re.MULTILINE)) == 15  # 3 members x 5 services, all up
    ok(weft(data_dir, "--member", "member-1", "upload", str(EXAMPLES / "breast_promoter_train.csv"),
            "--namespace", "wefe_data", "--name", "rows_a", "--id-column", "id", "--label-column", "y"))
    ok(weft(data_dir, "--member", "member-2", "upload", str(EXAMPLES / "breast_promoter_test.csv"),
            "--namespace", "wefe_data", "--name", "rows_b", "--id-column", "id", "--label-column", "y"))
    job = {
        "name": "seed-distribution",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": [arbiter]},
        "job_parameters": {"backend": 0, "work_mode": 1, "db_type": "PARQUET"},
        "job_args": {promoter: {"data": {"train_data": {"namespace": "wefe_data", "name": "rows_a"}}},
                     provider: {"data": {"train_data": {"namespace": "wefe_data", "name": "rows_b"}}}},
        "components": {"distribution_0": {"module": "Distribution", "input": {"data": {"data": ["args.train_data"]}},
                                          "output": {"data": ["data_name"], "model": ["model_name"]}}},
    }
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))

    # Execute: submit, then follow it with weft watch.
    job_id = ok(weft(data_dir, "submit", str(job_file))).split("job id: ", 1)[1].split()[0]
    watched = ok(weft(data_dir, "watch", job_id))

    # Assert: success everywhere, and the arbiter's summary covers both members' rows.
    assert f"job {job_id}: success" in watched
    for member in ("member-1", "member-2", "member-3"):
        assert "success" in ok(weft(data_dir, "--member", member, "job", job_id))
    result = ok(weft(data_dir, "--member", "member-3", "result", job_id))
    assert "distribution/global" in result
    arbiter_dir = Path(members[2]["config_path"]).parent / "storage" / "tasks" / job_id / "distribution_0"
    metrics = (arbiter_dir / "arbiter" / arbiter / "metrics.jsonl").read_text().splitlines()
    summary = json.loads(metrics[-1])["points"]
    rows = sum(1 for _ in (EXAMPLES / "breast_promoter_train.csv").open()) - 1
    rows += sum(1 for _ in (EXAMPLES / "breast_promoter_test.csv").open()) - 1
    assert summary["x0"]["count"] == rows


@pytest.mark.mysql
def test_standalone_federation_runs_a_vertical_job(federation: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    # Prepare: the demo's vertical split, promoter at member-1 and provider at member-2.
    data_dir, members = federation
    promoter, provider = members[0]["member_id"], members[1]["member_id"]
    for member, side, label in (("member-1", "promoter", ["--label-column", "y"]), ("member-2", "provider", [])):
        for split in ("train", "test"):
            ok(weft(data_dir, "--member", member, "upload", str(EXAMPLES / f"breast_{side}_{split}.csv"),
                    "--namespace", "demo", "--name", f"breast_{side}_{split}", "--id-column", "id", *label))
    text = (EXAMPLES / "demo_job.json").read_text().replace("PROMOTER_ID", promoter).replace("PROVIDER_ID", provider)
    job_file = tmp_path / "vertical.json"
    job_file.write_text(text)

    # Execute
    output = ok(weft(data_dir, "submit", str(job_file), "--watch"))

    # Assert
    job_id = output.split("job id: ", 1)[1].split()[0]
    assert f"job {job_id}: success" in output
    result = ok(weft(data_dir, "result", job_id, "--component", "evaluation_0", "--plot", str(tmp_path / "plots")))
    assert "evaluation/validate" in result
    assert (tmp_path / "plots" / "evaluation_0_validate_roc_ks.png").stat().st_size > 0
