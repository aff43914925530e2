"""A member that drops out mid-round: the round is not released and every member's task fails naming it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernel.federation.base import Party
from tests.componentkit import Member, make_members
from tests.test_horz_kit import breast_rows

REPO = Path(__file__).resolve().parent.parent
COMPONENT = "horz_lr_0"
JOB = "dropout"
# The arbiter waits this long for a member's message (task start-up included on a busy machine);
# members wait twice as long for the answer.
GET_TIMEOUT_S = 15
KILL_AFTER_ROUND = 3
ROUND = re.compile(r"round (\d+):")


def conf(roles: dict[str, list[Member]], party: Party, data: dict[str, Any]) -> dict[str, Any]:
    """A seed-format runtime conf on the STANDALONE federation and the LOCAL backend."""
    return {
        "initiator": {"member_id": roles["promoter"][0].member_id, "role": "promoter"},
        "job_parameters": {"backend": 0, "work_mode": 0, "db_type": "PARQUET"},
        "role": {role: [m.member_id for m in members] for role, members in roles.items()},
        "local": {"member_id": party.member_id, "role": party.role},
        "job_args": {"data": data},
        "input": {"data": {"train_data": ["args.train"]}},
        "output": {"data": ["train"], "model": ["model"]},
        # Many small rounds: the run is still training when the provider is killed.
        "HorzLRParam": {"max_iter": 100_000, "early_stop": "none", "batch_size": 16},
        "module": "HorzLR",
    }


def launch(member: Member, party: Party, task_conf: dict[str, Any], spool: Path) -> subprocess.Popen[str]:
    path = member.root / f"{party.role}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(task_conf))
    command = [
        sys.executable, "-m", "kernel.task_executor", "-j", JOB, "-n", COMPONENT, "-t", f"{JOB}_{party.role}",
        "-r", party.role, "-m", party.member_id, "-s", f"{JOB}-session", "-c", str(path),
        "--storage-root", str(member.root), "--spool-dir", str(spool),
    ]
    env = {**os.environ, "WEFT_GET_TIMEOUT_S": str(GET_TIMEOUT_S), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def task_dir(member: Member, party: Party) -> Path:
    return member.root / "tasks" / JOB / COMPONENT / party.role / party.member_id


def wait_for_round(member: Member, party: Party, process: subprocess.Popen[str], limit_s: float) -> int:
    """The round the member's progress reports once it reaches KILL_AFTER_ROUND."""
    progress = task_dir(member, party) / "progress.json"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and process.poll() is None:
        if progress.exists():
            match = ROUND.search(json.loads(progress.read_text()).get("message", ""))
            if match and int(match.group(1)) >= KILL_AFTER_ROUND:
                return int(match.group(1))
        time.sleep(0.05)
    raise AssertionError(f"{party} did not reach round {KILL_AFTER_ROUND} (exit code {process.poll()})")


def test_a_provider_killed_mid_training_fails_the_job_at_every_member_naming_it(tmp_path: Path) -> None:
    # Prepare: three members, each its own task process; the provider will be SIGKILLed.
    promoter_m, provider_m, arbiter_m = make_members(tmp_path, 3)
    roles = {"promoter": [promoter_m], "provider": [provider_m], "arbiter": [arbiter_m]}
    rows = breast_rows([1, 1])
    parties = {
        Party("promoter", promoter_m.member_id): (promoter_m, {"train": promoter_m.upload("train", rows.members[0], label="y")}),
        Party("provider", provider_m.member_id): (provider_m, {"train": provider_m.upload("train", rows.members[1], label="y")}),
        Party("arbiter", arbiter_m.member_id): (arbiter_m, {}),
    }
    spool = tmp_path / "spool"
    processes = {party: launch(member, party, conf(roles, party, data), spool)
                 for party, (member, data) in parties.items()}
    provider = Party("provider", provider_m.member_id)

    # Execute: kill the provider once it is a few rounds in.
    try:
        wait_for_round(provider_m, provider, processes[provider], limit_s=120)
        os.kill(processes[provider].pid, signal.SIGKILL)
        outcomes = {party: (p.wait(timeout=8 * GET_TIMEOUT_S + 60), p.stderr.read() if p.stderr else "")
                    for party, p in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()

    # Assert: the promoter and the arbiter fail with the provider named as the member who dropped out.
    for party in (Party("promoter", promoter_m.member_id), Party("arbiter", arbiter_m.member_id)):
        code, stderr = outcomes[party]
        assert code != 0, f"{party} did not fail"
        status = json.loads((task_dir(parties[party][0], party) / "status.json").read_text())
        assert status["status"] == "failed"
        assert f"no message from member(s) {provider}" in status["error"], status["error"]
        assert "dropped out" in status["error"] and "round 'round-" in status["error"]
        assert f"{provider}" in stderr
    assert outcomes[provider][0] == -signal.SIGKILL
    assert not (promoter_m.root / "models" / JOB).exists()


@pytest.mark.parametrize("module", ["HorzLR", "Distribution"])
def test_a_member_that_never_sends_fails_the_others_naming_it(tmp_path: Path, module: str) -> None:
    # Prepare: the provider is in the job's roles but its task never runs.
    from kernel.computing import local_session
    from kernel.inprocess_run import PartyFailed
    from tests.test_horz_kit import HorizontalJob

    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2)
    job.upload("train", rows.members)
    provider = job.members[1]
    computing = local_session(num_partitions=1)

    # Execute
    try:
        with pytest.raises(PartyFailed) as failure:
            job.run("component_0", module, computing, {"data": {"data": ["args.train"]}}, {"data": ["out"]},
                    data_args=("train",), timeout=5, absent=(provider,))
    finally:
        computing.stop()

    # Assert: both parties that ran fail, naming the provider.
    message = str(failure.value)
    for member in (job.members[0], job.arbiter):
        assert f"{job.party(member)}: FederationError: {module} failed at the arbiter: hello: " \
               f"no message from member(s) {job.party(provider)}" in message
