"""Acceptance: the seed's Distribution conf runs as two STANDALONE task processes."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kernel.storage import DataStore

MEMBER = "e333ed098ccc418c9d24abdda5be2c88"
DATA_NAME = "data_set_8998201f93bd4420a8c8a8d56e024442"
SEED_CONF: dict[str, Any] = {
    "initiator": {"member_id": MEMBER, "role": "promoter"},
    "job_parameters": {"db_type": "CLICK_HOUSE", "model_version": "f7324cb9f7bd4620a5251effff6fc1d7",
                       "backend": 1, "model_id": f"promoter-{MEMBER}#", "work_mode": 1},
    "role": {"arbiter": [MEMBER], "provider": [], "promoter": [MEMBER]},
    "local": {"member_id": MEMBER, "role": "promoter"},
    "job_args": {"data": {"train_data": {"name": DATA_NAME, "namespace": "wefe_data"}}},
    "input": {"data": {"data": ["args.train_data"]}},
    "output": {"data": ["data_name"], "model": ["model_name"]},
    "DistributionParam": {},
    "module": "Distribution",
}
REPO = Path(__file__).resolve().parent.parent


def seed_conf(role: str, backend: int) -> dict[str, Any]:
    """The seed conf with the two changes this machine needs: Parquet storage, STANDALONE."""
    conf = copy.deepcopy(SEED_CONF)
    conf["job_parameters"].update({"db_type": "PARQUET", "work_mode": 0, "backend": backend})
    conf["local"]["role"] = role
    return conf


@pytest.fixture()
def member_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    rows = 500
    lines = ["id,y,x0,x1,x2"] + [
        f"u{i},{int(rng.integers(0, 2))},{rng.normal():.6f},{'' if i % 10 == 0 else f'{rng.uniform(0, 5):.6f}'},{i}"
        for i in range(rows)
    ]
    csv = tmp_path / "upload.csv"
    csv.write_text("\n".join(lines) + "\n")
    root = tmp_path / "member"
    DataStore(str(root / "data")).import_csv("wefe_data", DATA_NAME, str(csv), id_column="id", label_column="y")
    return root


def launch(root: Path, role: str, conf: dict[str, Any], job_id: str = "job1") -> subprocess.Popen[str]:
    conf_path = root / f"{role}.json"
    conf_path.write_text(json.dumps(conf))
    command = [
        sys.executable, "-m", "kernel.task_executor", "-j", job_id, "-n", "distribution_0",
        "-t", f"{job_id}_distribution_0_{role}", "-r", role, "-m", MEMBER, "-s", f"{job_id}-session",
        "-c", str(conf_path), "--storage-root", str(root),
    ]
    env = {**os.environ, "WEFT_GET_TIMEOUT_S": "120", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", [0, pytest.param(1, marks=pytest.mark.spark)])
def test_seed_conf_runs_as_promoter_and_arbiter_processes(member_root: Path, backend: int) -> None:
    # Execute: the promoter and the arbiter of the same member, as two processes.
    processes = {role: launch(member_root, role, seed_conf(role, backend)) for role in ("promoter", "arbiter")}
    outcomes = {role: (p.wait(timeout=300), p.stderr.read() if p.stderr else "") for role, p in processes.items()}

    # Assert: both succeeded and wrote their outputs.
    for role, (code, stderr) in outcomes.items():
        assert code == 0, f"{role} failed: {stderr[-2000:]}"
    tasks = member_root / "tasks" / "job1" / "distribution_0"
    for role in ("promoter", "arbiter"):
        status = json.loads((tasks / role / MEMBER / "status.json").read_text())
        assert status["status"] == "success"
    metrics = [json.loads(line) for line in (tasks / "arbiter" / MEMBER / "metrics.jsonl").read_text().splitlines()]
    summary = metrics[-1]["points"]
    assert set(summary) == {"x0", "x1", "x2"}
    assert summary["x2"]["count"] == 500 and summary["x2"]["min"] == 0 and summary["x2"]["max"] == 499
    assert summary["x1"]["missing_ratio"] == pytest.approx(0.1)
    assert summary["x2"]["mean"] == pytest.approx(249.5)
    assert summary["x2"]["std"] == pytest.approx(np.std(np.arange(500), ddof=1))
    promoter_outputs = json.loads((tasks / "promoter" / MEMBER / "outputs.json").read_text())
    assert promoter_outputs["data"]["data_name"]["rows"] == 500
    assert (member_root / "models" / "job1" / "distribution_0" / "arbiter" / MEMBER / "v1" / "model.wft").exists()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.pop("module"), "missing required key 'module'"),
        (lambda c: c.update(module="NoSuchThing"), "unknown module 'NoSuchThing'"),
        (lambda c: c.update(DistributionParam={"bins": 0}), "DistributionParam.bins"),
        (lambda c: c.update(DistributionParam={"colour": "red"}), "DistributionParam.colour: unknown parameter"),
        (lambda c: c["input"]["data"].update(data=["dataio_0.train"]), "upstream output dataio_0.train"),
        (lambda c: c["job_parameters"].update(backend=7), "job_parameters.backend"),
        (lambda c: c["job_args"]["data"]["train_data"].update(name="absent"), "data set args.train_data"),
    ],
)
def test_bad_conf_exits_non_zero_with_one_clear_line(member_root: Path, mutate: Any, expected: str) -> None:
    conf = seed_conf("promoter", 0)
    mutate(conf)
    process = launch(member_root, "promoter", conf, job_id="bad")
    code = process.wait(timeout=120)
    stderr = process.stderr.read() if process.stderr else ""
    assert code != 0
    error_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and expected in error_lines[0], stderr
    status = json.loads((member_root / "tasks" / "bad" / "distribution_0" / "promoter" / MEMBER / "status.json").read_text())
    assert status["status"] == "failed" and expected in status["error"]
    assert not (member_root / "data" / f"job-bad-promoter-{MEMBER}").exists()
