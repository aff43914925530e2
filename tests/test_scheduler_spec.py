"""SubmitJob refuses malformed specs with INVALID_ARGUMENT naming the field, writing nothing anywhere."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from protos.weft.v1 import scheduler_pb2
from services.common.db import create_engine
from services.common.db.schema import flow_action_queue, job, task
from tests.test_scheduler_support import (
    PROMOTER,
    PROVIDER,
    Member,
    load_rows,
    start_members,
    stop_members,
)

UNKNOWN = "d" * 32
Mutation = Callable[[dict[str, Any]], Any]


def base_spec() -> dict[str, Any]:
    """A valid two-member job: DataIO at both, then Distribution at both."""
    return {
        "name": "valid",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "provider": [PROVIDER]},
        "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE"},
        "job_args": {PROMOTER: {"data": {"train": {"namespace": "test", "name": "promoter_rows"}}},
                     PROVIDER: {"data": {"train": {"namespace": "test", "name": "provider_rows"}}}},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}},
                         "output": {"data": ["train"]}, "params": {"with_label": True},
                         "role_params": {"provider": {"with_label": False}}},
            "distribution_0": {"module": "Distribution", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"], "model": ["model"]}},
        },
    }


def _set(path: str, value: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = spec
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = spec
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


DIST = "components/distribution_0"
DATAIO = "components/dataio_0"
CASES: list[tuple[str, Mutation | str, str]] = [
    ("not json", "{\"name\": ", "spec_json: not valid JSON"),
    ("unknown top-level key", _set("schedule", "daily"), "spec: unknown key(s) 'schedule'"),
    ("no components", _drop("components"), "components: missing"),
    ("unknown module", _set(f"{DATAIO}/module", "NoSuchModule"), "components.dataio_0.module: unknown module 'NoSuchModule'"),
    ("unknown upstream", _set(f"{DIST}/input/data/data", ["nowhere_0.train"]), "upstream component 'nowhere_0' is not in components"),
    ("missing upstream output", _set(f"{DIST}/input/data/data", ["dataio_0.test"]), "dataio_0 has no data output 'test'"),
    ("cycle", _set(f"{DATAIO}/input/data/data", ["distribution_0.train"]), "components: cycle dataio_0 -> distribution_0 -> dataio_0"),
    ("bad param", _set(f"{DATAIO}/params/label_type", "complex"), "components.dataio_0.params: DataIOParam.label_type"),
    ("unknown param", _set(f"{DIST}/params", {"bins": 4, "colour": "red"}), "DistributionParam.colour: unknown parameter"),
    ("bad role param", _set(f"{DIST}/role_params", {"provider": {"bins": 0}}), "components.distribution_0.role_params.provider: DistributionParam.bins"),
    ("role not supported", _set(f"{DATAIO}/roles", ["arbiter"]), "module DataIO does not support role arbiter"),
    ("role params for a role not in the job", _set(f"{DIST}/role_params", {"arbiter": {}}),
     "role.arbiter: missing; components.distribution_0.role_params.arbiter sets parameters for the arbiter"),
    ("role params for a role the component skips",
     lambda s: s["components"]["distribution_0"].update({"roles": ["promoter"], "role_params": {"provider": {}}}),
     "distribution_0 does not run at role provider"),
    ("role lacks the provider", _drop("role/provider"), f"role: member {PROVIDER} is missing; job_args.{PROVIDER}"),
    ("unknown role name", _set("role/guest", [PROVIDER]), "role.guest: unknown role"),
    ("malformed member id", _set("role/provider", ["XYZ"]), "role.provider[0]: 'XYZ' is not a member id"),
    ("unknown member", _set("role/provider", [UNKNOWN]), f"member {UNKNOWN} is unknown here"),
    ("no promoter", _set("role/promoter", []), "role.promoter: a job needs at least one promoter"),
    ("initiator elsewhere", _set("initiator/member_id", PROVIDER), "initiator: member " + PROVIDER + " is not a promoter"),
    ("initiator is another member", _set("initiator", {"member_id": PROVIDER, "role": "provider"}),
     f"initiator.member_id: {PROVIDER} is not this member"),
    ("missing job_args entry", _drop(f"job_args/{PROVIDER}"), f"job_args.{PROVIDER}.data.train: missing"),
    ("data set missing here", _set(f"job_args/{PROMOTER}/data/train/name", "absent"),
     f"job_args.{PROMOTER}.data.train: data set test/absent is not registered at member {PROMOTER}"),
    ("data set missing at a member", _set(f"job_args/{PROVIDER}/data/train/name", "absent"),
     f"member {PROVIDER} refused the job: member {PROVIDER}: job_args.{PROVIDER}.data.train: data set test/absent"),
    ("input combination refused", _set(f"{DIST}/input", {"data": {"test_data": ["dataio_0.train"]}}),
     "input.data.test_data needs a model input"),
    ("model from a component without one", _set(f"{DIST}/input", {"data": {"data": ["dataio_0.train"]}, "model": ["dataio_0.model"]}),
     "dataio_0 has no model output 'model'"),
    ("bad backend", _set("job_parameters/backend", "GPU"), "job_parameters.backend: unknown value 'GPU'"),
    ("bad component name", lambda s: s["components"].update({"bad name": s["components"].pop("distribution_0")}),
     "components.bad name: bad component name"),
    ("two data outputs", _set(f"{DATAIO}/output/data", ["train", "extra"]), "components.dataio_0.output.data: this component writes one data output"),
]


def spec_json(mutation: Mutation | str) -> str:
    if isinstance(mutation, str):
        return mutation
    spec = copy.deepcopy(base_spec())
    mutation(spec)
    return json.dumps(spec)


@pytest.fixture()
async def pair(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Member]]:
    """Promoter and provider schedulers with their data sets loaded (SQLite, or MariaDB)."""
    if getattr(request, "param", "sqlite") == "mysql":
        base = request.getfixturevalue("mysql_url")
        urls = {PROMOTER: base, PROVIDER: base + "_peer"}
        _create_database(urls[PROVIDER])
    else:
        urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER)}
    members = await start_members(tmp_path, urls)
    load_rows(members[PROMOTER], "promoter_rows", 50, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 50, 2, False)
    try:
        yield members
    finally:
        await stop_members(members)
        if PROVIDER in urls and urls[PROVIDER].startswith("mysql"):
            _drop_database(urls[PROVIDER])


def _mysql_admin(url: str) -> tuple[Any, str]:
    import pymysql

    parsed = sa.engine.make_url(url)
    conn = pymysql.connect(host=parsed.host, port=parsed.port or 3306, user=parsed.username, password="")
    return conn, str(parsed.database)


def _create_database(url: str) -> None:
    conn, name = _mysql_admin(url)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    conn.close()


def _drop_database(url: str) -> None:
    conn, name = _mysql_admin(url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


async def _rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {t.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
                    for t in (job, task, flow_action_queue)}
    finally:
        await engine.dispose()


async def _refusal(member: Member, text: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await member.client.stub.SubmitJob(scheduler_pb2.SubmitJobRequest(spec_json=text), timeout=30)
    return caught.value


@pytest.mark.parametrize(("case", "mutation", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_malformed_spec_is_refused_naming_the_field(
    pair: dict[str, Member], case: str, mutation: Mutation | str, expected: str
) -> None:
    # Execute
    error = await _refusal(pair[PROMOTER], spec_json(mutation))

    # Assert: INVALID_ARGUMENT with the field named, and no row written at either member.
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert expected in (error.details() or "")
    for member in pair.values():
        assert await _rows(member.config["database_url"]) == {"job": 0, "task": 0, "flow_action_queue": 0}


def test_every_malformed_case_has_its_own_message() -> None:
    # Assert: no two cases expect the same message.
    expected = [c[2] for c in CASES]
    assert len(CASES) >= 15 and len(set(expected)) == len(expected)


@pytest.mark.mysql
@pytest.mark.parametrize("pair", ["mysql"], indirect=True)
async def test_malformed_specs_on_mariadb_write_nothing(pair: dict[str, Member]) -> None:
    # Execute: every case against schedulers on MariaDB.
    messages = []
    for _, mutation, expected in CASES:
        error = await _refusal(pair[PROMOTER], spec_json(mutation))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and expected in (error.details() or "")
        messages.append(error.details())

    # Assert: distinct messages and empty tables at both members.
    assert len(set(messages)) == len(messages)
    for member in pair.values():
        assert await _rows(member.config["database_url"]) == {"job": 0, "task": 0, "flow_action_queue": 0}


async def test_valid_spec_is_created_at_both_members(pair: dict[str, Member]) -> None:
    # Execute
    job_id = await pair[PROMOTER].client.submit(base_spec())

    # Assert: the job and all four tasks exist at both members, with the same spec.
    infos = [await member.client.job(job_id) for member in pair.values()]
    assert all(len(info.tasks) == 4 for info in infos)
    assert infos[0].spec_json == infos[1].spec_json
    assert list(infos[1].my_roles) == ["provider"] and infos[1].initiator.member_id == PROMOTER


def _import(member: Member, name: str, header: str, rows: list[str], label: str | None = "y") -> None:
    from kernel.storage import DataStore

    csv = "\n".join([header, *rows]) + "\n"
    DataStore(str(member.root / "storage" / "data")).import_csv("test", name, csv.encode(), "id", label)


def _vert_lr(spec: dict[str, Any]) -> None:
    spec["components"]["distribution_0"] = {
        "module": "VertLR", "input": {"data": {"train_data": ["dataio_0.train"]}},
        "output": {"data": ["train"], "model": ["model"]}}


async def test_bad_data_is_refused_at_submit_with_the_offending_values(pair: dict[str, Member]) -> None:
    # Prepare: a feature column with text in a few rows; labels other than 0/1; text at the provider
    promoter, provider = pair[PROMOTER], pair[PROVIDER]
    text_rows = [f"u{i},{i % 2},{i * 0.5},{'n/a' if i % 10 == 3 else ('?' if i == 7 else i)}" for i in range(40)]
    _import(promoter, "text_rows", "id,y,x0,x1", text_rows)
    _import(promoter, "label_rows", "id,y,x0", [f"u{i},{[0, 1, 2, -1][i % 4]},{i}" for i in range(40)])
    _import(provider, "provider_text", "id,x0,city", [f"u{i},{i},{'Lyon' if i % 2 else 'Graz'}" for i in range(40)],
            label=None)

    def using(promoter_set: str = "promoter_rows", provider_set: str = "provider_rows",
              mutation: Mutation | None = None) -> str:
        spec = copy.deepcopy(base_spec())
        spec["job_args"][PROMOTER]["data"]["train"]["name"] = promoter_set
        spec["job_args"][PROVIDER]["data"]["train"]["name"] = provider_set
        if mutation is not None:
            mutation(spec)
        return json.dumps(spec)

    # Execute
    text = await _refusal(promoter, using("text_rows"))
    labels = await _refusal(promoter, using("label_rows", mutation=_vert_lr))
    at_provider = await _refusal(promoter, using(provider_set="provider_text"))

    # Assert: each names the data set, the column and its offending values, before any job exists
    for error in (text, labels, at_provider):
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "data set test/text_rows" in text.details()
    assert "feature column 'x1' is not numeric" in text.details()
    assert "'n/a' (4 rows), '?' (1 row)" in text.details()
    assert "data set test/label_rows" in labels.details()
    assert "label column 'y' must hold only 0 and 1" in labels.details()
    assert "2 (10 rows), -1 (10 rows)" in labels.details()
    assert f"member {PROVIDER} refused the job" in at_provider.details()
    assert "feature column 'city' is not numeric" in at_provider.details() and "'Lyon' (20 rows)" in at_provider.details()
    for member in pair.values():
        assert await _rows(member.config["database_url"]) == {"job": 0, "task": 0, "flow_action_queue": 0}
