"""Typed transfer variables: declarations checked against transfer_variable.json, payloads checked
on receipt, and scopes that tag messages as the untyped suffixes did."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kernel.constants import PROMOTER, PROVIDER
from kernel.errors import ConfError, InvalidArgument
from kernel.federation.base import Party, RoleTable
from kernel.federation.inprocess import InProcessFederation, InProcessHub
from kernel.federation.transfer_variable import FlowContext, TransferVariables, parse_definitions
from kernel.federation.variables import Channel, VariableSet

A, B = "a" * 32, "b" * 32
COMPONENTS = Path(__file__).resolve().parent.parent / "kernel" / "components"
ROLES = RoleTable({"promoter": (A,), "provider": (B,)})
FILE_CONTENT = {
    "DemoTransferVariable": {
        "pubkey": {"src": "promoter", "dst": ["provider"]},
        "gradient": {"src": "provider", "dst": ["promoter"]},
    }
}


def write_file(folder: Path, content: dict[str, Any]) -> Path:
    path = folder / "transfer_variable.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def declare(source: Path) -> type[VariableSet]:
    class DemoVariables(VariableSet, component="Demo", group="DemoTransferVariable", source=source):
        pubkey = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
        gradient = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))

    return DemoVariables


def run_both(jobs: dict[Party, Callable[[InProcessFederation], Any]]) -> dict[Party, Any]:
    hub = InProcessHub()
    results: dict[Party, Any] = {}
    errors: list[BaseException] = []

    def worker(party: Party, job: Callable[[InProcessFederation], Any]) -> None:
        try:
            results[party] = job(InProcessFederation(hub, "session-1", party, ROLES))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


def test_a_declaration_that_matches_the_file_is_accepted(tmp_path: Path) -> None:
    # Execute
    declared = declare(write_file(tmp_path, FILE_CONTENT))

    # Assert
    assert set(declared.definitions) == {"pubkey", "gradient"}


@pytest.mark.parametrize(("content", "message"), [
    ({"DemoTransferVariable": {**FILE_CONTENT["DemoTransferVariable"],
                               "extra": {"src": "promoter", "dst": ["provider"]}}}, "extra is in"),
    ({"DemoTransferVariable": {"pubkey": {"src": "promoter", "dst": ["provider"]}}}, "gradient is declared but not in"),
    ({"DemoTransferVariable": {**FILE_CONTENT["DemoTransferVariable"],
                               "gradient": {"src": "promoter", "dst": ["provider"]}}}, "gradient is declared provider"),
    ({"OtherTransferVariable": FILE_CONTENT["DemoTransferVariable"]}, "no variable group"),
])
def test_a_declaration_that_differs_from_the_file_fails_when_defined(
    tmp_path: Path, content: dict[str, Any], message: str,
) -> None:
    # Prepare
    source = write_file(tmp_path, content)

    # Execute / Assert
    with pytest.raises(ConfError, match=message):
        declare(source)


def test_typed_scoped_messages_meet_untyped_suffixes(tmp_path: Path) -> None:
    # Prepare: a typed promoter and an untyped provider of the same job.
    declared = declare(write_file(tmp_path, FILE_CONTENT))
    untyped = parse_definitions(FILE_CONTENT)

    def promoter(federation: InProcessFederation) -> Any:
        variables = declared(federation, FlowContext("fit"), 20.0)
        received = []
        for epoch, scope in variables.iterations(2):
            scope.pubkey.remote({"epoch": epoch})
            received.append(scope.at(7).gradient.get())
        return received

    def provider(federation: InProcessFederation) -> Any:
        tv = TransferVariables(untyped, federation, FlowContext("fit"), 20.0)
        seen = []
        for epoch in range(2):
            seen.append(tv.pubkey.get(idx=0, suffix=(epoch,)))
            tv.gradient.remote(np.full(3, float(epoch)), suffix=(epoch, 7))
        return seen

    # Execute
    results = run_both({Party("promoter", A): promoter, Party("provider", B): provider})

    # Assert
    assert results[Party("provider", B)] == [{"epoch": 0}, {"epoch": 1}]
    gradients = results[Party("promoter", A)]
    np.testing.assert_array_equal(gradients[0], np.zeros(3))
    np.testing.assert_array_equal(gradients[1], np.ones(3))


def test_a_payload_of_the_wrong_type_is_refused_on_receipt(tmp_path: Path) -> None:
    # Prepare
    declared = declare(write_file(tmp_path, FILE_CONTENT))
    untyped = parse_definitions(FILE_CONTENT)

    def promoter(federation: InProcessFederation) -> Any:
        return declared(federation, FlowContext("fit"), 20.0).gradient.get_all()

    def provider(federation: InProcessFederation) -> None:
        TransferVariables(untyped, federation, FlowContext("fit"), 20.0).gradient.remote([1.0, 2.0])

    # Execute / Assert
    with pytest.raises(InvalidArgument, match="Demo: provider 0's gradient must be a ndarray, got list"):
        run_both({Party("promoter", A): promoter, Party("provider", B): provider})


def test_every_typed_component_matches_its_file() -> None:
    # Prepare: every federated component declares its variables in a variables.py.
    folders = sorted(p.parent.name for p in COMPONENTS.glob("*/variables.py"))
    federated = {p.parent.name for p in COMPONENTS.glob("*/transfer_variable.json")}
    assert folders == sorted(federated)

    # Execute: importing a declaration checks it against the folder's transfer_variable.json.
    declared = [
        value
        for folder in folders
        for value in vars(importlib.import_module(f"kernel.components.{folder}.variables")).values()
        if isinstance(value, type) and issubclass(value, VariableSet) and value is not VariableSet
    ]

    # Assert: each declares every variable of its file, with the file's roles.
    assert len(declared) == len(folders)
    for variables in declared:
        file = parse_definitions(json.loads((COMPONENTS / variables.__module__.split(".")[2]
                                             / "transfer_variable.json").read_text(encoding="utf-8")))
        assert variables.definitions == file
